// The MCP Inspector CLI (@modelcontextprotocol/inspector 2.12.0) over stdio and Streamable HTTP:
// `tools/list --strict` must report no error-severity schema portability problem (exit 6
// otherwise), and a tools/call of every tool must exit 0 (5 = the tool answered isError, 1 = a
// protocol error, which includes a structuredContent that fails the tool's outputSchema).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { here, wirelensBin, startHttp, run } from './lib.mjs';

const inspector = path.join(here, 'node_modules', '.bin', 'inspector');
let server;
let scratch;
before(async () => {
  server = await startHttp();
  scratch = mkdtempSync(path.join(tmpdir(), 'wirelens-inspector-'));
});
after(() => {
  server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const targets = {
  stdio: () => [wirelensBin(), 'mcp', '--demo'],
  http: () => [server.url, '--transport', 'http'],
};

function cli(target, args) {
  // The catalog file goes to a scratch dir, not the user's ~/.mcp-inspector.
  const env = { ...process.env, MCP_CATALOG_PATH: path.join(scratch, 'mcp.json') };
  return run(inspector, ['--cli', ...target, ...args], { env });
}

const EXPECTED_TOOLS = ['capture_status', 'flow_summary', 'get_payload', 'list_entries', 'list_flows', 'tcp_insights', 'validate_filter'];

for (const [name, target] of Object.entries(targets)) {
  test(`inspector --strict tools/list over ${name}`, async () => {
    const r = await cli(target(), ['--strict', '--method', 'tools/list']);
    assert.equal(r.code, 0, `exit ${r.code} (6 = --strict portability errors):\n${r.stderr.slice(-4000)}`);
    assert.match(r.stderr, /(^|\n)0 errors, \d+ warnings across \d+ tools\./, r.stderr.slice(-2000));
    const names = JSON.parse(r.stdout).tools.map((t) => t.name);
    for (const t of EXPECTED_TOOLS) assert.ok(names.includes(t), `${t} missing from ${names}`);
  });

  test(`inspector tools/call of every tool over ${name}`, async () => {
    const listed = await cli(target(), ['--method', 'tools/list']);
    assert.equal(listed.code, 0, listed.stderr);
    const tools = JSON.parse(listed.stdout).tools;
    const first = await cli(target(), ['--method', 'tools/call', '--tool-name', 'list_entries', '--tool-arg', 'limit=1']);
    assert.equal(first.code, 0, first.stderr);
    const id = JSON.parse(first.stdout).structuredContent.entries[0].id;
    const snapshot = `inspector-${name}-${process.pid}-${Date.now()}`;
    const args = {
      // A bare `id=359` is sent as the number 359 (the CLI parses values as JSON); the schema says
      // string and the server accepts both, so send the schema's form.
      get_payload: [`id=${JSON.stringify(id)}`],
      validate_filter: ['filter=http && status >= 500'],
      list_entries: ['limit=5', 'filter=http && status >= 500'],
      list_flows: ['limit=5'],
      tcp_insights: ['limit=5'],
      watch_entries: ['timeout_ms=0'],
      // Tools are listed by name: create_snapshot makes the snapshot delete_snapshot deletes.
      create_snapshot: ['since=1h', 'until=0s', `name=${snapshot}`],
      delete_snapshot: [`name=${snapshot}`],
    };
    for (const tool of tools) {
      const required = tool.inputSchema.required ?? [];
      const given = (args[tool.name] ?? []).map((a) => a.split('=')[0]);
      for (const r of required) assert.ok(given.includes(r), `${tool.name}: no test value for required ${r}`);
      const toolArgs = (args[tool.name] ?? []).flatMap((a) => ['--tool-arg', a]);
      const r = await cli(target(), ['--method', 'tools/call', '--tool-name', tool.name, ...toolArgs]);
      assert.equal(r.code, 0, `${tool.name}: exit ${r.code}\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(-2000)}`);
      const out = JSON.parse(r.stdout);
      assert.ok(!out.isError, `${tool.name}: isError`);
      assert.ok(out.structuredContent, `${tool.name}: no structuredContent`);
    }
    // A tool error is exit 5, as documented: the checks above can fail.
    const bad = await cli(target(), ['--method', 'tools/call', '--tool-name', 'get_payload', '--tool-arg', 'id=nope']);
    assert.equal(bad.code, 5, bad.stderr);
  });
}

test('inspector over http with a bearer token (--header)', async () => {
  const token = 'wl-inspector-test-5c1d7e9a';
  const guarded = await startHttp([], { env: { ...process.env, WIRELENS_TOKEN: token } });
  try {
    const ok = await cli([guarded.url, '--transport', 'http'],
      ['--header', `Authorization: Bearer ${token}`, '--method', 'tools/call', '--tool-name', 'list_entries', '--tool-arg', 'limit=2']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).structuredContent.entries.length, 2);
    const denied = await cli([guarded.url, '--transport', 'http'], ['--method', 'tools/list']);
    assert.notEqual(denied.code, 0, 'tools/list without the token succeeded');
  } finally {
    guarded.stop();
  }
});
