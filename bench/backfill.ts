/**
 * 2. Backfill: the whole retained history (1,000,000 events; --quick 50,000), page size 100, 20 ms of
 * simulated server latency per page (emulator `faults.latencyMs: 20`, no faults), read by the real CLI in
 * a child process: `authentik` receiver (`backfill: all`, `max_concurrent_requests` N) → `elasticsearch`
 * exporter (defaults: gzip, 1000 documents per `_bulk`) → a minimal in-process `_bulk` sink answering
 * 201 for every item. No `authentik_ecs` here: this figure is about reading concurrency (the processor
 * has its own benchmark, and the end-to-end one includes it).
 *
 * Figures: events/s (events ÷ time from the first to the last document at the sink: the backfill itself,
 * like the baseline's rate, which has no process start either), wall time from process start (start-up
 * included), and the collector's peak RSS (VmHWM from /proc), for N = 4 and 8.
 *
 * Baseline: sequential paging at the same latency, which is what Elastic's CEL program does (next page
 * only after the previous one): lib/elastic-cel-baseline.ts on a prefix of the history (its rate is
 * steady: every page costs the same latency), median of 3 runs. Goal: ≥ 0.85 × N times its throughput,
 * peak RSS < 256 MB.
 *
 * The emulator runs in a worker thread of this process, the sink on the main thread, the collector in its
 * own process: on the 2-core machine these three share the cores.
 */
import { startBulkSink } from './lib/bulk-sink.ts';
import type { BulkSink } from './lib/bulk-sink.ts';
import { missingComponents, startCollector } from './lib/collector.ts';
import { celRun } from './lib/elastic-cel-baseline.ts';
import { optimalRowsPerRequest, parallelRate } from './lib/ceiling.ts';
import { startEmulatorWorker } from './lib/emulator.ts';
import type { EmulatorHandle } from './lib/emulator.ts';
import { pipelineConfig, TOKEN_ENV } from './lib/pipeline.ts';
import type { BenchRow, SuiteOptions } from './lib/rows.ts';
import { row, SkipError } from './lib/rows.ts';
import { median } from './lib/stats.ts';

export const BACKFILL_LATENCY_MS = 20;
export const BACKFILL_PAGE_SIZE = 100;
export const RSS_GOAL_MB = 256;
export const SPEEDUP_SHARE = 0.85;

export interface BackfillRun {
  events: number;
  n: number;
  /** Process start → last document at the sink. */
  wallS: number;
  /** First → last document at the sink (the backfill itself, without start-up). */
  streamS: number;
  eventsPerS: number;
  peakRssMB: number;
  cpuS: number;
  emulatorRequests: number;
}

export interface BackfillRunOptions {
  emu: EmulatorHandle;
  sink: BulkSink;
  events: number;
  n: number;
  /** Extra node flags for the collector (profiling). */
  nodeArgs?: string[];
  /** Put a `batch` processor (defaults) in the pipeline. */
  batch?: boolean;
  log?: (line: string) => void;
}

/** One backfill by a fresh collector (empty state) until every event reached the sink. */
export async function backfillOnce(o: BackfillRunOptions): Promise<BackfillRun> {
  await o.emu.resetStats();
  o.sink.reset();
  const config = pipelineConfig({
    endpoint: o.emu.url,
    events: { interval: '10s', page_size: BACKFILL_PAGE_SIZE, backfill: 'all' },
    maxConcurrentRequests: o.n,
    ecs: false,
    exporters: { elasticsearch: { endpoints: [o.sink.url] } },
  });
  if (o.batch) {
    const c = config as {
      processors?: Record<string, unknown>;
      service: { pipelines: Record<string, { processors?: string[] }> };
    };
    c.processors = { ...c.processors, batch: {} };
    for (const p of Object.values(c.service.pipelines)) p.processors = [...(p.processors ?? []), 'batch'];
  }
  const t0 = performance.now();
  const c = await startCollector(config, {
    env: { [TOKEN_ENV]: o.emu.token },
    ...(o.nodeArgs ? { nodeArgs: o.nodeArgs } : {}),
  });
  try {
    // Generous bound: 20x the sequential time at the configured latency.
    const bound = Math.max(60_000, (o.events / BACKFILL_PAGE_SIZE) * BACKFILL_LATENCY_MS * 20);
    await o.sink.waitForItems(o.events, bound, () => c.exitReason());
    c.sampler.sample();
    const wallS = (performance.now() - t0) / 1000;
    const stats = await o.emu.stats();
    const r: BackfillRun = {
      events: o.events,
      n: o.n,
      wallS,
      streamS: (o.sink.lastAt - o.sink.firstAt) / 1000,
      eventsPerS: o.events / Math.max(1e-3, (o.sink.lastAt - o.sink.firstAt) / 1000),
      peakRssMB: c.sampler.peakBytes / 2 ** 20,
      cpuS: c.sampler.cpuSeconds,
      emulatorRequests: stats.requests,
    };
    if (o.sink.items !== o.events)
      o.log?.(`warning: the sink got ${o.sink.items} documents for ${o.events} events`);
    o.log?.(
      `backfill ${o.events} events, N=${o.n}${o.batch ? ', with batch' : ''}: ${wallS.toFixed(1)} s, ${Math.round(r.eventsPerS)} events/s, ` +
        `(${r.streamS.toFixed(1)} s first to last document), peak RSS ${r.peakRssMB.toFixed(0)} MB, collector CPU ${r.cpuS.toFixed(1)} s, ${stats.requests} API requests ` +
        `(${(o.events / Math.max(1, stats.requests)).toFixed(1)} events/request)`,
    );
    return r;
  } finally {
    await c.stop();
  }
}

/** Sequential paging (the baseline) over `pages` pages: events/s, median of `runs`. */
export async function sequentialRate(emu: EmulatorHandle, pages: number, runs: number): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await celRun({ url: emu.url, token: emu.token, pageSize: BACKFILL_PAGE_SIZE, maxPages: pages });
    if (r.errors > 0) throw new Error('baseline: the emulator answered with an error');
    rates.push(r.records / (r.ms / 1000));
  }
  return median(rates);
}

export interface BackfillOptions extends SuiteOptions {
  events?: number;
  concurrency?: number[];
  baselinePages?: number;
  /** Reuse these runs (scaling shares the 1M / N=4 run). */
  onRun?: (r: BackfillRun) => void;
}

export async function runBackfillBench(opts: BackfillOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const missing = missingComponents(['cli', 'cli-main', 'emulator', 'authentik', 'elasticsearch']);
  if (missing) throw new SkipError(missing);
  const events = opts.events ?? (opts.quick ? 20_000 : 1_000_000);
  const ns = opts.concurrency ?? [4, 8];
  const pages = opts.baselinePages ?? (opts.quick ? 50 : 400);
  const emu = await startEmulatorWorker({
    events,
    faults: { rate: 0, latencyMs: BACKFILL_LATENCY_MS },
  });
  const sink = await startBulkSink();
  const rows: BenchRow[] = [];
  try {
    const base = await sequentialRate(emu, pages, 3);
    log(
      `baseline: sequential paging at ${BACKFILL_LATENCY_MS} ms/page: ${Math.round(base)} events/s ` +
        `(median of 3 runs over ${pages} pages of ${BACKFILL_PAGE_SIZE}); ${events} events would take ${(events / base).toFixed(0)} s`,
    );
    // The ceiling (lib/ceiling.ts): a client that costs nothing, N requests in flight, × the most new
    // rows per request a gap-free scan of page-number slices can average over this history.
    const bestRows = optimalRowsPerRequest(events, BACKFILL_PAGE_SIZE, 1);
    const ceilings = new Map<number, number>();
    for (const n of ns) {
      const rates: number[] = [];
      for (let i = 0; i < 3; i++) {
        rates.push(
          await parallelRate({
            url: emu.url,
            token: emu.token,
            n,
            pages: pages * Math.min(n, 4),
            pageSize: BACKFILL_PAGE_SIZE,
            ordering: '-created,pk',
          }),
        );
      }
      const connections = median(rates) / base;
      ceilings.set(n, (connections * bestRows) / BACKFILL_PAGE_SIZE);
      log(
        `ceiling N=${n}: a minimal client with ${n} requests in flight reads ${Math.round(median(rates))} events/s ` +
          `(${connections.toFixed(2)}x sequential, median of 3); a gap-free scan averages at most ` +
          `${bestRows.toFixed(2)} new rows per request of ${BACKFILL_PAGE_SIZE} (optimum over ${events} ranks) ` +
          `→ ceiling ${ceilings.get(n)!.toFixed(2)}x`,
      );
    }
    for (const n of ns) {
      const r = await backfillOnce({ emu, sink, events, n, log });
      opts.onRun?.(r);
      const ratio = r.eventsPerS / base;
      const goal = Math.round(SPEEDUP_SHARE * n * 100) / 100;
      const ceiling = ceilings.get(n)!;
      rows.push(
        // ratio: the share of the ceiling our speed-up reaches.
        row(`backfill_n${n}_ceiling`, ceiling, 'x', {
          ratio: ratio / ceiling,
          goal,
          met: ceiling >= goal,
        }),
        row(`backfill_n${n}_events_per_s`, r.eventsPerS, 'events/s', {
          baseline: base,
          ratio,
          goal,
          met: ratio >= goal,
        }),
        row(`backfill_n${n}_wall_time`, r.wallS, 's', {
          baseline: events / base,
          ratio: events / base / r.wallS,
        }),
        row(`backfill_n${n}_peak_rss`, r.peakRssMB, 'MB', {
          goal: RSS_GOAL_MB,
          met: r.peakRssMB > 0 && r.peakRssMB < RSS_GOAL_MB,
        }),
      );
    }
  } finally {
    await sink.close();
    await emu.close();
  }
  return rows;
}

export const BATCH_COST_GOAL = 1.1;

/**
 * The `batch` processor's cost during a backfill: the same backfill (N = 4, 20 ms per page) without and
 * with `batch` (defaults: 1000 records, 200 ms) in the same run, alternating, median of 3 each
 * (--quick: 1 each). Goal: with batch at most 10 % slower (ratio without/with ≤ 1.1).
 */
export async function runBatchBench(opts: BackfillOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const missing = missingComponents(['cli', 'cli-main', 'emulator', 'authentik', 'elasticsearch']);
  if (missing) throw new SkipError(missing);
  const events = opts.events ?? (opts.quick ? 10_000 : 50_000);
  const runs = opts.quick ? 1 : 3;
  const emu = await startEmulatorWorker({ events, faults: { rate: 0, latencyMs: BACKFILL_LATENCY_MS } });
  const sink = await startBulkSink();
  try {
    const without: number[] = [];
    const withBatch: number[] = [];
    for (let i = 0; i < runs; i++) {
      without.push((await backfillOnce({ emu, sink, events, n: 4, log })).eventsPerS);
      withBatch.push((await backfillOnce({ emu, sink, events, n: 4, batch: true, log })).eventsPerS);
    }
    const base = median(without);
    const value = median(withBatch);
    const ratio = base / value;
    log(
      `batch: ${Math.round(value)} events/s with, ${Math.round(base)} without (${((ratio - 1) * 100).toFixed(1)} % cost)`,
    );
    return [
      row('backfill_n4_with_batch_events_per_s', value, 'events/s', {
        baseline: base,
        ratio,
        goal: BATCH_COST_GOAL,
        met: ratio <= BATCH_COST_GOAL,
      }),
    ];
  } finally {
    await sink.close();
    await emu.close();
  }
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  const rows = await runBackfillBench({ quick, log: (l) => console.error(l) });
  console.log(JSON.stringify(rows, null, 2));
}
