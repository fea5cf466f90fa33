/**
 * Push vs polling vs Elastic's algorithm: creation → export delay of new events, in one run, on one
 * emulator (authentik 2025.12 profile, 10,000 retained events; --quick: 2,000).
 *
 * Two collectors run side by side as child processes against the same emulator and see the same
 * events, each exporting to its own in-process `_bulk` sink that timestamps every document:
 * - push: `authentik` poller + `authentik_webhook` receiver (provisioned at start through the API)
 *   → `authentik_dedupe` → `authentik_ecs` → `elasticsearch`; the emulator's worker POSTs each new
 *   event as authentik's does;
 * - polling: the same without the webhook receiver, `events.interval` 10 s (the default, real time).
 * Events are inserted one at a time at a steady rate (5/s) for W seconds (120; --quick 30) after both
 * are in steady state; the delay of an event is its arrival at the sink minus its insertion (`created`).
 *
 * Elastic's CEL algorithm (a full re-read from page 1 every 5 minutes) is measured on the same
 * emulator (a full cycle of its pages) and its delay computed with the model of lib/elastic-cel-baseline.ts
 * (as bench/polling.ts does): its p99 is about 297 s whatever the table size below ~100 pages a run.
 */
import { freePort, missingComponents, startCollector } from './lib/collector.ts';
import type { RunningCollector } from './lib/collector.ts';
import { startBulkSink } from './lib/bulk-sink.ts';
import { celDelayModel, celRun } from './lib/elastic-cel-baseline.ts';
import { startEmulatorHere } from './lib/emulator.ts';
import { pipelineConfig, TOKEN_ENV } from './lib/pipeline.ts';
import type { BenchRow, SuiteOptions } from './lib/rows.ts';
import { row, SkipError } from './lib/rows.ts';
import { median, percentile, sleep } from './lib/stats.ts';

export interface PushOptions extends SuiteOptions {
  /** Seconds of measured inserts (default 120; --quick 30). */
  windowSeconds?: number;
  /** Events per second (default 5). */
  rate?: number;
}

export const PUSH_GOALS = { p99Seconds: 1 };

const SECRET = 'bench-push-shared-secret-0123456789';

/** id → arrival time (ms) of the documents a sink received. */
async function timedSink() {
  const arrivals = new Map<string, number>();
  const sink = await startBulkSink({
    onDocs(docs, at) {
      for (const line of docs) {
        try {
          const d = JSON.parse(line) as { event?: { id?: unknown } };
          const id = d.event?.id;
          if (typeof id === 'string' && !arrivals.has(id)) arrivals.set(id, at);
        } catch {
          /* not a document line */
        }
      }
    },
  });
  return { sink, arrivals };
}

export async function runPushBench(opts: PushOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const missing = missingComponents(['cli', 'cli-main', 'emulator', 'authentik', 'elasticsearch']);
  if (missing) throw new SkipError(missing);
  const windowS = opts.windowSeconds ?? (opts.quick ? 30 : 120);
  const rate = opts.rate ?? 5;
  const retained = opts.quick ? 2000 : 10_000;
  const { emu } = await startEmulatorHere({ events: retained, version: '2025.12', maxLogEntries: 20_000 });
  const pushSink = await timedSink();
  const pollSink = await timedSink();
  const collectors: RunningCollector[] = [];
  try {
    // ---------------- Elastic's algorithm on this emulator ----------------
    const first: number[] = [];
    for (let i = 0; i < 3; i++)
      first.push((await celRun({ url: emu.url, token: emu.token, maxPages: 1 })).ms);
    const cel = await celRun({ url: emu.url, token: emu.token });
    const model = celDelayModel(cel.ms, median(first));
    log(
      `baseline (Elastic's CEL algorithm): a full cycle of ${cel.requests} pages in ${(cel.ms / 1000).toFixed(1)} s; ` +
        `period ${(model.periodMs / 1000).toFixed(0)} s → delay median ${(model.medianMs / 1000).toFixed(0)} s, p99 ${(model.p99Ms / 1000).toFixed(0)} s (model)`,
    );

    // ---------------- the two collectors ----------------
    const port = await freePort();
    const hookUrl = `http://127.0.0.1:${port}/authentik/webhook`;
    const base = (exporter: string) =>
      pipelineConfig({
        endpoint: emu.url,
        events: { interval: '10s', page_size: 100, backfill: 'none' },
        maxConcurrentRequests: 4,
        geoip: false,
        exporters: { elasticsearch: { endpoints: [exporter] } },
      });
    const pushCfg = (dir: string) => {
      const c = base(pushSink.sink.url) as {
        receivers: Record<string, unknown>;
        processors: Record<string, unknown>;
        extensions?: Record<string, unknown>;
        service: {
          extensions?: string[];
          pipelines: { logs: { receivers: string[]; processors: string[] } };
        };
      };
      c.extensions = { file_storage: { directory: `${dir}/state` } };
      c.service.extensions = ['file_storage'];
      c.receivers['authentik_webhook'] = {
        endpoint: `127.0.0.1:${port}`,
        secret: SECRET,
        authentik: { endpoint: emu.url, token: `\${env:${TOKEN_ENV}}` },
        provision: true,
        public_url: hookUrl,
      };
      c.processors['authentik_dedupe'] = { storage: 'file_storage' };
      c.service.pipelines.logs.receivers.push('authentik_webhook');
      c.service.pipelines.logs.processors.unshift('authentik_dedupe');
      return c as unknown as Record<string, unknown>;
    };
    const env = { env: { [TOKEN_ENV]: emu.token }, metrics: true };
    const push = await startCollector(pushCfg, env);
    collectors.push(push);
    const poll = await startCollector(base(pollSink.sink.url), env);
    collectors.push(poll);
    // Steady state: push provisioned, and both have exported a warm-up event.
    const until = Date.now() + 120_000;
    for (;;) {
      for (const c of collectors) {
        const why = c.exitReason();
        if (why) throw new Error(why);
      }
      if (push.grep(/push provisioned in authentik/).length > 0) break;
      if (Date.now() > until) throw new Error(`push was not provisioned within 120 s\n${push.logTail()}`);
      await sleep(100);
    }
    const [warm] = emu.events.insert(1);
    while (!(pushSink.arrivals.has(warm!) && pollSink.arrivals.has(warm!))) {
      if (Date.now() > until + 30_000) throw new Error('warm-up event did not arrive at both sinks');
      await sleep(50);
    }

    // ---------------- measured window ----------------
    const inserted = new Map<string, number>();
    const n = Math.round(windowS * rate);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      const [pk] = emu.events.insert(1);
      inserted.set(pk!, Date.now());
    }
    const drainUntil = Date.now() + 30_000;
    while ([...inserted.keys()].some((pk) => !pushSink.arrivals.has(pk) || !pollSink.arrivals.has(pk))) {
      if (Date.now() > drainUntil) break;
      await sleep(100);
    }
    const delays = (arr: Map<string, number>) =>
      [...inserted].filter(([pk]) => arr.has(pk)).map(([pk, at]) => (arr.get(pk)! - at) / 1000);
    const dPush = delays(pushSink.arrivals);
    const dPoll = delays(pollSink.arrivals);
    const lostPush = n - dPush.length;
    const lostPoll = n - dPoll.length;
    const pushP50 = median(dPush);
    const pushP99 = percentile(dPush, 99);
    const pollP50 = median(dPoll);
    const pollP99 = percentile(dPoll, 99);
    const celP50 = model.medianMs / 1000;
    const celP99 = model.p99Ms / 1000;
    const dupMetric = push.metricsUrl
      ? await fetch(push.metricsUrl)
          .then((r) => r.text())
          .catch(() => '')
      : '';
    const pollDups =
      /otelcol_processor_authentik_dedupe_duplicates\{[^}]*source="poll"[^}]*\} (\d+)/.exec(dupMetric)?.[1] ??
      '0';
    log(
      `${n} events at ${rate}/s: push p50 ${pushP50.toFixed(3)} s / p99 ${pushP99.toFixed(3)} s (${lostPush} missing); ` +
        `polling every 10 s p50 ${pollP50.toFixed(2)} s / p99 ${pollP99.toFixed(2)} s (${lostPoll} missing); ` +
        `the push collector's poller dropped ${pollDups} events already pushed`,
    );
    if (lostPush > 0 || lostPoll > 0) log(`warning: events missing at a sink; the percentiles exclude them`);
    return [
      row('push_delay_median', pushP50, 's', { baseline: pollP50, ratio: pollP50 / pushP50 }),
      row('push_delay_p99', pushP99, 's', {
        baseline: pollP99,
        ratio: pollP99 / pushP99,
        goal: PUSH_GOALS.p99Seconds,
        met: lostPush === 0 && pushP99 < PUSH_GOALS.p99Seconds,
      }),
      row('push_polling_delay_median', pollP50, 's'),
      row('push_polling_delay_p99', pollP99, 's'),
      row('push_delay_p99_vs_elastic', pushP99, 's', { baseline: celP99, ratio: celP99 / pushP99 }),
      row('push_elastic_delay_median', celP50, 's'),
    ];
  } finally {
    for (const c of collectors) await c.stop().catch(() => undefined);
    await pushSink.sink.close();
    await pollSink.sink.close();
    await emu.close();
  }
}

if (import.meta.main) {
  const rows = await runPushBench({ quick: process.argv.includes('--quick'), log: (l) => console.error(l) });
  console.log(JSON.stringify(rows, null, 2));
}
