// @modelcontextprotocol/sdk 1.32.2 (protocol 2025-11-25) over stdio and Streamable HTTP. The SDK
// validates structuredContent against each tool's outputSchema itself; any warning it prints
// (e.g. about unknown schema formats) fails the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { wirelensBin, startHttp, trapWarnings, exercise } from './lib.mjs';

const TOKEN = 'wl-node-test-3b8e1f0c9d2a4e6f';
let server;
let guarded;
before(async () => {
  server = await startHttp();
  guarded = await startHttp([], { env: { ...process.env, WIRELENS_TOKEN: TOKEN } });
});
after(() => { server?.stop(); guarded?.stop(); });

const transports = {
  stdio: () => new StdioClientTransport({ command: wirelensBin(), args: ['mcp', '--demo'], stderr: 'pipe' }),
  http: () => new StreamableHTTPClientTransport(new URL(server.url)),
  'http with a bearer token': () => new StreamableHTTPClientTransport(new URL(guarded.url), {
    requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } },
  }),
};

for (const [name, make] of Object.entries(transports)) {
  test(`sdk 1.32.2 over ${name}`, async () => {
    const warnings = trapWarnings();
    const client = new Client({ name: 'wirelens-test-sdk-v1', version: '0.0.0' });
    try {
      await client.connect(make());
      assert.equal(client.getServerVersion().name, 'wirelens');
      await exercise(client, `sdk-v1/${name}`);
    } finally {
      await client.close();
      warnings.restore();
    }
    assert.deepEqual(warnings.seen, [], 'the SDK printed warnings');
  });
}
