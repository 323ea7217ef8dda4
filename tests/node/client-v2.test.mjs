// @modelcontextprotocol/client 2.4.0 with versionNegotiation {mode: 'auto'} (negotiates
// 2026-07-28 through server/discover) over stdio and Streamable HTTP. The SDK validates
// structuredContent against each tool's outputSchema itself; any warning it prints fails the test.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
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
  test(`client 2.4.0 (auto) over ${name}`, async () => {
    const warnings = trapWarnings();
    const client = new Client({ name: 'wirelens-test-client-v2', version: '0.0.0' }, { versionNegotiation: { mode: 'auto' } });
    try {
      await client.connect(make());
      assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
      assert.equal(client.getServerVersion()?.name, 'wirelens');
      await exercise(client, `client-v2/${name}`);
    } finally {
      await client.close();
      warnings.restore();
    }
    assert.deepEqual(warnings.seen, [], 'the SDK printed warnings');
  });
}
