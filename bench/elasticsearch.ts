/**
 * Throughput of the `elasticsearch` exporter, documents/s and bytes/s (uncompressed NDJSON, what the
 * server ingests), medians over several runs:
 *
 * - into a minimal in-process `_bulk` sink (reads the request, counts the lines, answers 201 for every
 *   item): the exporter's own cost (document encoding, NDJSON, gzip, HTTP, response parsing);
 * - into each real search server given by OPENSEARCH_URL / ES_TEST_URLS (comma-separated; printed by
 *   test/peers/opensearch.sh / elasticsearch.sh `start`); rows skipped when neither is set. Documents go
 *   to a fresh namespace per run, so every document is really created (no 409 short cut).
 *
 * Documents: the 55 ECS documents of Elastic's pipeline tests (events, users, groups), cycled with
 * distinct `_id`s. Default config (gzip, flush.max_documents 1000, max_in_flight 2), batches of 1000
 * records consumed by two concurrent callers (as the sending queue's default two consumers do).
 *
 *   node bench/elasticsearch.ts [--quick]
 */
import { Registry } from 'prom-client';
import type { AnyValueMap, LogRecord, LogsBatch } from '../runtime/model.ts';
import { hrTimeFromIso, nowHrTime } from '../runtime/model.ts';
import { nopHost, nopSettings } from '../test/kit/index.ts';
import type { ElasticsearchExporter } from '../exporters/elasticsearch/exporter.ts';
import { factory } from '../exporters/elasticsearch/factory.ts';
import { FakeElasticsearch } from '../exporters/elasticsearch/testing.ts';
import { fixtureCases } from '../processors/authentik_ecs/fixtures.ts';
import type { BenchRow } from './lib/rows.ts';
import { row } from './lib/rows.ts';

export interface ElasticsearchBenchOptions {
  quick?: boolean;
  log?: (line: string) => void;
  /** Servers to measure (default: OPENSEARCH_URL and ES_TEST_URLS). */
  servers?: string[];
}

/**
 * Minimum into a real server. A large authentik installation produces at most a few hundred events per
 * second at peak; 1000 documents/s leaves room to catch up after an outage.
 */
const GOAL_DOCS_PER_S = 1000;
const BATCH = 1000;
const CONSUMERS = 2;
const MIB = 1024 * 1024;

function documents(n: number, tag: string): LogsBatch {
  const cases = fixtureCases();
  return Array.from({ length: n }, (_, i): LogRecord => {
    const c = cases[i % cases.length]!;
    // Shared, not cloned: the exporter never modifies a body (it copies the top level).
    const doc = c.expected as AnyValueMap;
    const ts = typeof doc['@timestamp'] === 'string' ? hrTimeFromIso(doc['@timestamp']) : undefined;
    return {
      ...(ts ? { timestamp: ts } : {}),
      observedTimestamp: nowHrTime(),
      body: doc,
      attributes: {
        'data_stream.dataset': `authentik.${c.dataset}`,
        'elasticsearch.document_id': `${tag}-${i}`,
      },
    };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function counterValue(reg: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await reg.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

interface RunResult {
  docsPerS: number;
  bytesPerS: number;
  wireBytesPerS: number;
  seconds: number;
}

/** One run: a fresh exporter (set up before the clock starts), `n` documents, two concurrent consumers. */
async function oneRun(url: string, n: number, namespace: string): Promise<RunResult> {
  const settings = nopSettings('elasticsearch/bench', 'exporter');
  settings.metrics = new Registry();
  const config = factory.configSchema.parse({
    endpoints: [url],
    data_stream: { namespace },
    retry: { initial_interval: '100ms', max_interval: '2s' },
  });
  const exp = (await factory.create(settings, config)) as ElasticsearchExporter;
  await exp.start(nopHost());
  await exp.whenSetUp();
  const docs = documents(n, namespace);
  const batches: LogsBatch[] = [];
  for (let i = 0; i < docs.length; i += BATCH) batches.push(docs.slice(i, i + BATCH));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONSUMERS }, async () => {
      while (next < batches.length) await exp.consume(batches[next++]!);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const indexed = await counterValue(settings.metrics, 'otelcol_exporter_elasticsearch_documents', {
    outcome: 'indexed',
  });
  const raw = await counterValue(settings.metrics, 'otelcol_exporter_elasticsearch_bulk_sent_bytes', {
    encoding: 'raw',
  });
  const wire = await counterValue(settings.metrics, 'otelcol_exporter_elasticsearch_bulk_sent_bytes', {
    encoding: 'wire',
  });
  await exp.shutdown();
  if (indexed !== n) throw new Error(`run into ${url}: ${indexed} of ${n} documents indexed`);
  return { docsPerS: n / seconds, bytesPerS: raw / seconds, wireBytesPerS: wire / seconds, seconds };
}

async function series(
  url: string,
  n: number,
  runs: number,
  label: string,
  log: (l: string) => void,
): Promise<{ docs: number; bytes: number; wire: number }> {
  const results: RunResult[] = [];
  // One unmeasured warm-up (JIT, connections, templates, first backing index creation).
  await oneRun(url, Math.min(n, 2000), `benchw${Date.now().toString(36)}`);
  for (let r = 0; r < runs; r++) {
    const res = await oneRun(url, n, `bench${Date.now().toString(36)}${r}`);
    results.push(res);
    log(
      `  ${label} run ${r + 1}/${runs}: ${Math.round(res.docsPerS)} docs/s, ${(res.bytesPerS / MIB).toFixed(2)} MiB/s raw, ` +
        `${(res.wireBytesPerS / MIB).toFixed(2)} MiB/s gzip (${n} docs in ${res.seconds.toFixed(2)} s)`,
    );
  }
  return {
    docs: median(results.map((r) => r.docsPerS)),
    bytes: median(results.map((r) => r.bytesPerS)),
    wire: median(results.map((r) => r.wireBytesPerS)),
  };
}

async function describeServer(url: string): Promise<string> {
  try {
    const res = await fetch(`${url}/`);
    if (res.ok) {
      const j = (await res.json()) as { version?: { number?: string; distribution?: string } };
      return `${j.version?.distribution === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} ${j.version?.number ?? ''}`.trim();
    }
    const nodes = await fetch(`${url}/_nodes/_local?filter_path=nodes.*.version`);
    const j = (await nodes.json()) as { nodes?: Record<string, { version?: string }> };
    const v = j.nodes ? Object.values(j.nodes)[0]?.version : undefined;
    return `Elasticsearch ${v ?? ''}`.trim();
  } catch {
    return url;
  }
}

export async function runElasticsearchBench(opts: ElasticsearchBenchOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const quick = opts.quick ?? false;
  const n = quick ? 3000 : 20_000;
  const sinkRuns = quick ? 3 : 5;
  const serverRuns = quick ? 2 : 3;
  const servers =
    opts.servers ??
    [...(process.env['OPENSEARCH_URL'] ?? '').split(','), ...(process.env['ES_TEST_URLS'] ?? '').split(',')]
      .map((s) => s.trim().replace(/\/+$/, ''))
      .filter((s, i, all) => s !== '' && all.indexOf(s) === i);
  const rows: BenchRow[] = [];

  const sink = new FakeElasticsearch({ minimal: true });
  await sink.start();
  let base: { docs: number; bytes: number; wire: number };
  try {
    log(`elasticsearch exporter into an in-process _bulk sink: ${n} documents x ${sinkRuns} runs`);
    base = await series(sink.url, n, sinkRuns, 'sink', log);
  } finally {
    await sink.close();
  }
  rows.push(row('elasticsearch exporter → in-process _bulk sink', base.docs, 'docs/s'));
  rows.push(row('elasticsearch exporter → in-process _bulk sink, NDJSON bytes', base.bytes / MIB, 'MiB/s'));

  if (servers.length === 0) {
    log('no real search server (set OPENSEARCH_URL or ES_TEST_URLS): server rows skipped');
  }
  for (const url of servers) {
    const name = await describeServer(url);
    log(`elasticsearch exporter into ${name} at ${url}: ${n} documents x ${serverRuns} runs`);
    const s = await series(url, n, serverRuns, name, log);
    rows.push(
      row(`elasticsearch exporter → ${name}`, s.docs, 'docs/s', {
        baseline: base.docs,
        ratio: s.docs / base.docs,
        goal: GOAL_DOCS_PER_S,
        met: s.docs >= GOAL_DOCS_PER_S,
      }),
    );
    rows.push(
      row(`elasticsearch exporter → ${name}, NDJSON bytes`, s.bytes / MIB, 'MiB/s', {
        baseline: base.bytes / MIB,
        ratio: s.bytes / base.bytes,
      }),
    );
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const rows = await runElasticsearchBench({ quick, log: (l) => console.log(l) });
  console.table(rows);
}
