/**
 * Our own telemetry against the real OpenTelemetry Collector's (test/peers/otelcol, v0.165.0): both
 * run a comparable pipeline (a receiver delivering records, an exporter delivering them, an OTLP/HTTP
 * exporter with a sending queue whose endpoint is down) and their Prometheus endpoints are scraped.
 * Every metric both expose must agree on type and label names; the core ones must be present on both;
 * ours follow the same scheme (`otelcol_` prefix, counters without a `_total` suffix).
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startEmulator } from '../emulator/index.ts';
import type { Emulator } from '../emulator/index.ts';
import { Cli, ROOT, freePort, tempDir } from './helpers.ts';

const run = promisify(execFile);
const SKIP = process.env['OTELCOL_OTLP_URL']
  ? false
  : 'OTELCOL_OTLP_URL not set: the OpenTelemetry Collector peer is not available (build/start it with ' +
    '`eval "$(test/peers/otelcol.sh start)"`; npm test does this). This test starts its own instance.';

/** Labels the real collector's otlphttp exporter adds from its HTTP client (not exporterhelper's). */
const CLIENT_LABELS = new Set(['server_address', 'server_port', 'url_path']);

/** The metrics both must expose (the OTel Collector's core pipeline and process telemetry). */
const CORE = [
  'otelcol_receiver_accepted_log_records',
  'otelcol_exporter_sent_log_records',
  'otelcol_exporter_send_failed_log_records',
  'otelcol_exporter_queue_size',
  'otelcol_exporter_queue_capacity',
  'otelcol_exporter_in_flight_requests',
  'otelcol_process_uptime',
  'otelcol_process_cpu_seconds',
  'otelcol_process_memory_rss',
  'otelcol_process_runtime_heap_alloc_bytes',
  'target_info',
];

interface Family {
  type: string;
  labels: Set<string>;
}

/** Prometheus text → name → type and the label names seen on its samples. */
export function parseExposition(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      out.set(t[1]!, { type: t[2]!, labels: new Set() });
      continue;
    }
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
    if (!s) continue;
    const fam = out.get(s[1]!);
    if (!fam) continue;
    for (const m of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) fam.labels.add(m[1]!);
  }
  return out;
}

async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  return parseExposition(await res.text());
}

describe(
  'telemetry names, types and labels match the real OpenTelemetry Collector',
  { skip: SKIP, timeout: 120_000 },
  () => {
    let dir = '';
    let cleanup = async () => {};
    let otelcol: ChildProcess | undefined;
    let emu: Emulator | undefined;
    let ours: Cli | undefined;
    let theirs = new Map<string, Family>();
    let mine = new Map<string, Family>();

    before(async () => {
      ({ dir, cleanup } = await tempDir('telemetry'));
      const { stdout } = await run('bash', [join(ROOT, 'test/peers/otelcol.sh'), 'build']);
      const bin = stdout.trim();
      const [otlpPort, promPort, deadPort, ourMetrics] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      writeFileSync(
        join(dir, 'otelcol.yaml'),
        `receivers:
  otlp: { protocols: { http: { endpoint: "127.0.0.1:${otlpPort}" } } }
exporters:
  debug: { verbosity: basic }
  otlphttp:
    endpoint: http://127.0.0.1:${deadPort}
    retry_on_failure: { enabled: true, initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 1s }
    sending_queue: { enabled: true, queue_size: 100 }
service:
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull: { exporter: { prometheus: { host: 127.0.0.1, port: ${promPort} } } }
  pipelines:
    logs: { receivers: [otlp], exporters: [debug, otlphttp] }
`,
      );
      otelcol = spawn(bin, ['--config', join(dir, 'otelcol.yaml')], { stdio: 'ignore' });
      const body = JSON.stringify({
        resourceLogs: [
          { scopeLogs: [{ logRecords: [{ body: { stringValue: 'a' } }, { body: { stringValue: 'b' } }] }] },
        ],
      });
      await until(
        async () => {
          try {
            const r = await fetch(`http://127.0.0.1:${otlpPort}/v1/logs`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body,
            });
            return r.ok;
          } catch {
            return false;
          }
        },
        20_000,
        'the real collector accepts OTLP',
      );

      emu = await startEmulator({ events: 30, users: 3, groups: 2, seed: 7 });
      writeFileSync(
        join(dir, 'ours.yaml'),
        `receivers:
  authentik:
    endpoint: ${emu.url}
    token: \${env:AUTHENTIK_TOKEN}
    events: { interval: 1s }
exporters:
  file: { path: out.ndjson }
  otlphttp:
    endpoint: http://127.0.0.1:${deadPort}
    retry: { initial_interval: 100ms, max_interval: 200ms, max_elapsed_time: 1s }
    sending_queue: { queue_size: 100 }
service:
  telemetry:
    metrics: { address: "127.0.0.1:${ourMetrics}" }
    health: { address: "" }
  pipelines:
    logs: { receivers: [authentik], exporters: [file, otlphttp] }
`,
      );
      ours = new Cli(['run', '--config', join(dir, 'ours.yaml')], {
        cwd: dir,
        env: { AUTHENTIK_TOKEN: emu.token },
      });
      const ourUrl = `http://127.0.0.1:${ourMetrics}/metrics`;
      const theirUrl = `http://127.0.0.1:${promPort}/metrics`;
      // Both have delivered through one exporter and given up at least once on the other.
      await until(
        async () => {
          try {
            theirs = await scrape(theirUrl);
            mine = await scrape(ourUrl);
          } catch {
            return false;
          }
          const failed = (m: Map<string, Family>) =>
            (m.get('otelcol_exporter_send_failed_log_records')?.labels.size ?? 0) > 0;
          return failed(theirs) && failed(mine);
        },
        60_000,
        'both collectors count a failed send',
      );
    });

    after(async () => {
      otelcol?.kill('SIGTERM');
      await ours?.stop().catch(() => undefined);
      await emu?.close();
      await cleanup();
    });

    test('the core metrics are exposed by both', () => {
      for (const name of CORE) {
        assert.ok(theirs.has(name), `the real collector exposes ${name}`);
        assert.ok(mine.has(name), `we expose ${name}`);
      }
    });

    test('every metric both expose has the same type and the same label names', () => {
      const shared = [...mine.keys()].filter((n) => theirs.has(n));
      assert.ok(shared.length >= CORE.length, `shared: ${shared.join(', ')}`);
      for (const name of shared) {
        const a = mine.get(name)!;
        const b = theirs.get(name)!;
        assert.equal(a.type, b.type, `${name}: type`);
        const theirLabels = [...b.labels].filter((l) => !CLIENT_LABELS.has(l)).sort();
        if (a.labels.size > 0 && theirLabels.length > 0) {
          assert.deepEqual([...a.labels].sort(), theirLabels, `${name}: label names`);
        }
      }
    });

    test('ours follow the same scheme: otelcol_ prefix, counters without _total', () => {
      for (const [name, fam] of mine) {
        if (name === 'target_info') continue;
        assert.match(name, /^otelcol_/, `${name} has the otelcol_ prefix`);
        if (fam.type === 'counter')
          assert.doesNotMatch(name, /_total$/, `${name}: counters carry no _total suffix`);
      }
    });

    test('sent bytes count only what was delivered: nothing for the dead endpoint', () => {
      const bytes = mine.get('otelcol_exporter_otlphttp_sent_bytes');
      assert.ok(bytes, 'the otlphttp exporter registers its byte counter');
      assert.equal(bytes.labels.size, 0, 'no sample: not one byte reached the endpoint');
    });
  },
);
