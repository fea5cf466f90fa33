/**
 * Throughput of the `otlphttp` exporter (records/s), medians over several runs:
 *
 * - into an in-process HTTP sink that reads each request and answers 200 (baseline: the exporter's own
 *   cost: mapping, serialization, gzip, HTTP);
 * - into a real OpenTelemetry Collector (test/peers/otelcol.sh), proto and JSON. The bench starts its
 *   own collector instance with only the `debug` exporter (so the measurement is the collector's OTLP
 *   intake, not its file writer, and the shared peer's output file is not flooded). It runs when
 *   OTELCOL_OTLP_URL is set (i.e. the peer was built and started); otherwise those rows are skipped.
 *
 * Records are the 30 fixture ECS documents (exporters/otlphttp/testdata), cycled with distinct ids,
 * sent in batches of 1000 (max_batch_size), one batch at a time, default config (proto, gzip).
 *
 *   node bench/otlp.ts [--quick]
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { factory } from '../exporters/otlphttp/factory.ts';
import { nopHost, nopSettings } from '../test/kit/index.ts';
import type { AnyValueMap, LogsBatch } from '../runtime/model.ts';
import { hrTimeFromIso, nowHrTime } from '../runtime/model.ts';
import type { BenchRow } from './lib/rows.ts';

export type { BenchRow };

export interface OtlpBenchOptions {
  quick?: boolean;
  /** Log progress lines (default: false). */
  log?: (line: string) => void;
}

/**
 * Minimum throughput into a real collector. A large authentik installation produces at most a few
 * hundred events per second at peak; 1000 records/s leaves headroom for catching up after an outage.
 */
const GOAL_RECORDS_PER_S = 1000;
const BATCH = 1000;
const SCRIPT = new URL('../test/peers/otelcol.sh', import.meta.url).pathname;
const run = promisify(execFile);

function documents(n: number): LogsBatch {
  const docs = (
    JSON.parse(
      readFileSync(
        new URL('../exporters/otlphttp/testdata/test-event.log-expected.json', import.meta.url),
        'utf8',
      ),
    ) as { expected: AnyValueMap[] }
  ).expected;
  return Array.from({ length: n }, (_, i) => {
    const doc = structuredClone(docs[i % docs.length]!);
    (doc['event'] as AnyValueMap)['id'] = `bench-${i}`;
    return {
      timestamp: hrTimeFromIso(doc['@timestamp'] as string)!,
      observedTimestamp: nowHrTime(),
      eventName: (doc['event'] as AnyValueMap)['action'] as string,
      body: doc,
      attributes: {
        'data_stream.dataset': 'authentik.event',
        'data_stream.namespace': 'default',
        'elasticsearch.document_id': `bench-${i}`,
      },
      resource: { 'host.name': 'auth.example.com', 'service.version': '2024.8.0' },
    };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Records/s of one run: `records` sent through a fresh exporter, batch by batch. */
async function once(endpoint: string, encoding: 'proto' | 'json', records: LogsBatch): Promise<number> {
  const settings = nopSettings('otlphttp/bench', 'exporter');
  const exp = await factory.create(settings, factory.configSchema.parse({ endpoint, encoding }));
  await exp.start(nopHost());
  // Warm-up (connection, JIT) outside the measurement.
  await exp.consume(records.slice(0, 100).map((r) => ({ ...r })));
  const t0 = performance.now();
  for (let i = 0; i < records.length; i += BATCH) {
    await exp.consume(records.slice(i, i + BATCH).map((r) => ({ ...r })));
  }
  const seconds = (performance.now() - t0) / 1000;
  await exp.shutdown();
  if (settings.drops.length > 0)
    throw new Error(`records dropped during the bench: ${JSON.stringify(settings.drops)}`);
  return records.length / seconds;
}

async function measure(endpoint: string, encoding: 'proto' | 'json', records: LogsBatch, runs: number) {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) rates.push(await once(endpoint, encoding, records));
  return median(rates);
}

/** A sink that reads every request body and answers 200 with an empty body. */
async function startSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const round = (x: number) => Math.round(x);

export async function runOtlpBench(opts: OtlpBenchOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const n = opts.quick ? 2000 : 10_000;
  const runs = opts.quick ? 3 : 5;
  const records = documents(n);
  const rows: BenchRow[] = [];

  const sink = await startSink();
  let baseline: number;
  try {
    baseline = await measure(sink.url, 'proto', records, runs);
  } finally {
    await sink.close();
  }
  log(`in-process sink, proto+gzip: ${round(baseline)} records/s`);
  rows.push({
    name: 'otlphttp_sink_proto_gzip',
    value: round(baseline),
    unit: 'records/s',
    baseline: null,
    ratio: null,
    goal: null,
    met: null,
  });

  if (!process.env['OTELCOL_OTLP_URL']) {
    log('collector rows skipped: OTELCOL_OTLP_URL not set (collector peer not built/started)');
    return rows;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, OTELCOL_EXPORTERS: 'debug' };
  delete env['OTELCOL_DIR'];
  delete env['OTELCOL_PORT'];
  const { stdout } = await run('bash', [SCRIPT, 'start'], { env });
  const vars = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  try {
    for (const encoding of ['proto', 'json'] as const) {
      const rate = await measure(vars['OTELCOL_OTLP_URL']!, encoding, records, runs);
      log(`real collector, ${encoding}+gzip: ${round(rate)} records/s`);
      rows.push({
        name: `otlphttp_collector_${encoding}_gzip`,
        value: round(rate),
        unit: 'records/s',
        baseline: round(baseline),
        ratio: Math.round((rate / baseline) * 100) / 100,
        goal: GOAL_RECORDS_PER_S,
        met: rate >= GOAL_RECORDS_PER_S,
      });
    }
  } finally {
    await run('bash', [SCRIPT, 'stop', vars['OTELCOL_DIR']!]);
  }
  return rows;
}

if (import.meta.main) {
  const rows = await runOtlpBench({ quick: process.argv.includes('--quick'), log: (l) => console.error(l) });
  console.log(JSON.stringify(rows, null, 2));
}
