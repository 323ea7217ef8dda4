// Shared helpers of the Node suites: the wirelens binary, `wirelens serve --demo` on 127.0.0.1
// port 0 (the real port is read from its `wirelens: listening on ADDR` line on stderr), and a
// trap that turns any console warning printed by an SDK into a test failure.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import assert from 'node:assert/strict';

export const here = path.dirname(fileURLToPath(import.meta.url));

export function wirelensBin() {
  const bin = process.env.WIRELENS_BIN;
  assert.ok(bin && existsSync(bin), 'WIRELENS_BIN must point at the wirelens binary (run through scripts/test)');
  return bin;
}

/** Starts `wirelens serve --demo --listen 127.0.0.1:0 ...args`; resolves once /readyz says ready. */
export async function startHttp(args = [], { timeoutMs = 60000, env } = {}) {
  const proc = spawn(wirelensBin(), ['serve', '--demo', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: env ?? process.env,
    detached: true,
  });
  let log = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wirelens serve did not start:\n${log}`)), timeoutMs);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = /wirelens: listening on (\S+)\r?\n/.exec(log);  // a whole line: data arrives in chunks
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`wirelens serve exited ${code}:\n${log}`)); });
  });
  const base = `http://${addr}`;
  const stop = () => {
    try { process.kill(-proc.pid, 'SIGTERM'); } catch { /* gone */ }
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline || proc.exitCode !== null) { stop(); throw new Error(`${base} never became ready:\n${log}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { base, url: `${base}/mcp`, port: Number(addr.split(':').pop()), proc, stop, log: () => log };
}

/** Records everything written through console.warn/console.error and process warnings. */
export function trapWarnings() {
  const seen = [];
  const orig = { warn: console.warn, error: console.error };
  console.warn = (...a) => { seen.push(a.map(String).join(' ')); orig.warn(...a); };
  console.error = (...a) => { seen.push(a.map(String).join(' ')); orig.error(...a); };
  const onWarning = (w) => seen.push(`process warning: ${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  return {
    seen,
    restore() {
      console.warn = orig.warn;
      console.error = orig.error;
      process.off('warning', onWarning);
    },
  };
}

/** The structured result of a successful call: present, and equal to its JSON text mirror. */
export function structured(result, what) {
  assert.ok(!result.isError, `${what}: ${JSON.stringify(result.content)}`);
  assert.ok(result.structuredContent && typeof result.structuredContent === 'object', `${what}: no structuredContent`);
  const text = result.content.find((c) => c.type === 'text');
  assert.ok(text, `${what}: no text mirror`);
  assert.deepEqual(JSON.parse(text.text), result.structuredContent);
  return result.structuredContent;
}

/** The checks every SDK runs: list tools, call list_entries and get_payload, check errors. */
export async function exercise(client, what) {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const n of ['list_entries', 'get_payload', 'capture_status']) assert.ok(names.includes(n), `${what}: ${n} missing`);
  for (const t of tools) assert.ok(t.outputSchema, `${what}: ${t.name} has no outputSchema`);
  const listing = structured(await client.callTool({ name: 'list_entries', arguments: { limit: 20 } }), `${what} list_entries`);
  assert.equal(listing.entries.length, 20);
  assert.equal(listing.coverage.complete, true);
  const first = listing.entries[0];
  const payload = structured(await client.callTool({ name: 'get_payload', arguments: { id: first.id } }), `${what} get_payload`);
  assert.ok(payload.request.start_line.startsWith(first.method), `${what}: ${payload.request.start_line}`);
  structured(await client.callTool({ name: 'capture_status', arguments: {} }), `${what} capture_status`);
  const bad = await client.callTool({ name: 'list_entries', arguments: { filter: 'http and stauts >= 500' } });
  assert.equal(bad.isError, true);
  assert.match(bad.content[0].text, /did you mean `status`/);
  return tools;
}

/** Runs a command; resolves {code, stdout, stderr} whatever the exit code. */
export function run(cmd, args, { timeoutMs = 120000, env, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, cwd });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); }, timeoutMs);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code: code ?? `signal ${signal}`, stdout, stderr }); });
  });
}
