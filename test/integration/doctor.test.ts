/**
 * `doctor` against the real peers: a real search server (OPENSEARCH_URL / ES_TEST_URLS, started by
 * npm test) and a real OpenTelemetry Collector (OTELCOL_OTLP_URL), with the authentik emulator.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEmulator } from '../emulator/index.ts';
import type { Emulator } from '../emulator/index.ts';
import { runCli, tempDir } from './helpers.ts';

const SEARCH = [
  ...(process.env['OPENSEARCH_URL'] ?? '').split(','),
  ...(process.env['ES_TEST_URLS'] ?? '').split(','),
]
  .map((s) => s.trim())
  .filter((s) => s !== '');
const OTLP = process.env['OTELCOL_OTLP_URL'];
const SKIP =
  SEARCH.length > 0 && OTLP
    ? false
    : 'OPENSEARCH_URL / ES_TEST_URLS and OTELCOL_OTLP_URL not set: start the peers with test/peers/*.sh start (npm test does this)';

interface Check {
  component: string;
  check: string;
  status: string;
  detail: string;
}

describe(
  'doctor against the real search server and OpenTelemetry Collector',
  { skip: SKIP, timeout: 120_000 },
  () => {
    let emu: Emulator;
    let dir = '';
    let cleanup = async () => {};
    before(async () => {
      emu = await startEmulator({ events: 50, users: 3, groups: 2, seed: 9 });
      ({ dir, cleanup } = await tempDir('doctor'));
    });
    after(async () => {
      await emu.close();
      await cleanup();
    });

    for (const search of SEARCH) {
      test(`every search and OTLP check passes against ${search} and ${OTLP}`, async () => {
        writeFileSync(
          join(dir, 'c.yaml'),
          `receivers:
  authentik: { endpoint: ${emu.url}, token: "\${env:AUTHENTIK_TOKEN}" }
exporters:
  elasticsearch: { endpoints: [${search}] }
  otlphttp: { endpoint: ${OTLP} }
service:
  pipelines:
    logs: { receivers: [authentik], exporters: [elasticsearch, otlphttp] }
`,
        );
        const r = await runCli(['doctor', '--config', 'c.yaml', '--json'], {
          cwd: dir,
          env: { AUTHENTIK_TOKEN: emu.token },
        });
        const checks = (JSON.parse(r.stdout) as { checks: Check[] }).checks;
        const of = (component: string, check: string) =>
          checks.find((c) => c.component === component && c.check === check);
        assert.equal(of('exporters.elasticsearch', 'version')?.status, 'pass', JSON.stringify(checks));
        assert.match(
          of('exporters.elasticsearch', 'version')!.detail,
          /^(OpenSearch 2|Elasticsearch [89])\./,
        );
        assert.notEqual(of('exporters.elasticsearch', 'privileges')?.status, 'fail');
        assert.ok(of('exporters.elasticsearch', 'templates'), 'templates are checked');
        assert.equal(of('exporters.otlphttp', 'reachable')?.status, 'pass', JSON.stringify(checks));
        assert.equal(r.code, checks.some((c) => c.status === 'fail') ? 1 : 0);
      });
    }
  },
);
