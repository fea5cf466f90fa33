/**
 * 4. End to end, the real CLI in a child process against real peers:
 * - `authentik` → `authentik_ecs` (GeoIP + user agent) → `elasticsearch` into a real search server
 *   (OpenSearch from test/peers/opensearch.sh, or OPENSEARCH_URL / ES_TEST_URLS);
 * - `authentik` → `authentik_ecs` → `otlphttp` (proto, gzip) into a real OpenTelemetry Collector
 *   (test/peers/otelcol.sh, or OTELCOL_OTLP_URL).
 * Each backfills the same emulator history (100,000 events; --quick 5,000; no simulated latency, so
 * the pipeline's own throughput shows) with the receiver's defaults (page size 100, 4 requests in
 * flight) and the default pipeline (no batch processor: one `_bulk` / OTLP request per page). Figures:
 * events/s and the collector's CPU seconds per 100,000 events (utime + stime from /proc), both over the
 * span from the first delivered record to the last one, or to a time cap (100 s; --quick 10 s) when
 * the peer is slower than that (the log says so); delivered records are read from the collector's own
 * `otelcol_exporter_sent_log_records`. Process start-up is excluded and reported in the log.
 *
 * Every run writes to its own data stream namespace (`bench<time>`), deleted afterwards, so that runs
 * do not collide with each other or with tests sharing the server. A part whose peer is unavailable is
 * skipped with the reason.
 */
import { missingComponents, scrapeMetric, startCollector } from './lib/collector.ts';
import { startEmulatorWorker } from './lib/emulator.ts';
import type { EmulatorHandle } from './lib/emulator.ts';
import { otelCollector, searchServer } from './lib/peers.ts';
import type { PeerResult } from './lib/peers.ts';
import { GEOIP_DIR, pipelineConfig, TOKEN_ENV } from './lib/pipeline.ts';
import type { BenchRow, SuiteOptions } from './lib/rows.ts';
import { row, SkipError } from './lib/rows.ts';
import { sleep } from './lib/stats.ts';
import { join } from 'node:path';

export interface E2eOptions extends SuiteOptions {
  events?: number;
  /** Measuring stops after this many seconds of delivery even if not every event is through (default 100; --quick 10). */
  maxSeconds?: number;
  /** May start peers that are not running (default: not in --quick mode). */
  startPeers?: boolean;
  /** Called with the reason of each skipped part. */
  onSkip?: (part: string, reason: string) => void;
}

interface E2eRun {
  eventsPerS: number;
  cpuPer100k: number;
  startupS: number;
  startupCpuS: number;
  peakRssMB: number;
}

async function runOnce(
  emu: EmulatorHandle,
  events: number,
  maxSeconds: number,
  exporterId: string,
  exporter: Record<string, unknown>,
  namespace: string,
  log: (l: string) => void,
): Promise<E2eRun> {
  const config = pipelineConfig({
    endpoint: emu.url,
    events: { interval: '10s', page_size: 100, backfill: 'all' },
    maxConcurrentRequests: 4,
    ecs: true,
    exporters: { [exporterId]: exporter },
  });
  const procs = config['processors'] as Record<string, Record<string, unknown>>;
  procs['authentik_ecs'] = {
    namespace,
    geoip: {
      city_database: join(GEOIP_DIR, 'GeoLite2-City-Test.mmdb'),
      asn_database: join(GEOIP_DIR, 'GeoLite2-ASN-Test.mmdb'),
    },
  };
  const t0 = performance.now();
  const c = await startCollector(config, { env: { [TOKEN_ENV]: emu.token }, metrics: true, sampleMs: 200 });
  try {
    const type = exporterId.split('/')[0]!;
    let first: { t: number; sent: number; cpu: number } | undefined;
    let sent = 0;
    const bound = Date.now() + Math.max(120_000, events * 5);
    while (sent < events) {
      const why = c.exitReason();
      if (why) throw new Error(why);
      if (Date.now() > bound)
        throw new Error(`${sent} of ${events} records delivered in time\n${c.logTail()}`);
      await sleep(100);
      sent =
        (await scrapeMetric(c.metricsUrl!, 'otelcol_exporter_sent_log_records', { exporter: exporterId })) ??
        0;
      if (first === undefined && sent > 0) {
        c.sampler.sample();
        first = { t: performance.now(), sent, cpu: c.sampler.cpuSeconds };
      }
    }
    c.sampler.sample();
    const t = performance.now();
    const f = first!;
    const failed =
      (await scrapeMetric(c.metricsUrl!, 'otelcol_exporter_send_failed_log_records', {
        exporter: exporterId,
      })) ?? 0;
    if (sent > events || failed > 0)
      log(`note: ${type}: ${sent} sent, ${failed} failed for ${events} events`);
    const spanS = (t - f.t) / 1000;
    const r: E2eRun = {
      eventsPerS: (sent - f.sent) / spanS,
      cpuPer100k: ((c.sampler.cpuSeconds - f.cpu) / (sent - f.sent)) * 100_000,
      startupS: (f.t - t0) / 1000,
      startupCpuS: f.cpu,
      peakRssMB: c.sampler.peakBytes / 2 ** 20,
    };
    log(
      `e2e ${type}: ${sent} of ${events} events delivered${sent < events ? ` (stopped after ${maxSeconds} s)` : ''}, ${Math.round(r.eventsPerS)} events/s, ${r.cpuPer100k.toFixed(1)} CPU s/100k events ` +
        `(first record after ${r.startupS.toFixed(1)} s and ${r.startupCpuS.toFixed(1)} CPU s of start-up), peak RSS ${r.peakRssMB.toFixed(0)} MB`,
    );
    return r;
  } finally {
    await c.stop();
  }
}

async function deleteNamespace(url: string, namespace: string): Promise<void> {
  for (const ds of ['authentik.event', 'authentik.user', 'authentik.group']) {
    await fetch(`${url}/_data_stream/logs-${ds}-${namespace}`, { method: 'DELETE' }).catch(() => undefined);
  }
}

export async function runE2eBench(opts: E2eOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const skipped: string[] = [];
  const report = opts.onSkip ?? ((part, reason) => log(`${part} skipped: ${reason}`));
  const skip = (part: string, reason: string) => {
    skipped.push(`${part}: ${reason}`);
    report(part, reason);
  };
  const missing = missingComponents(['cli', 'cli-main', 'emulator', 'authentik', 'authentik_ecs']);
  if (missing) throw new SkipError(missing);
  const events = opts.events ?? (opts.quick ? 5_000 : 100_000);
  const allowStart = opts.startPeers ?? !opts.quick;
  const maxSeconds = opts.maxSeconds ?? (opts.quick ? 10 : 100);
  const rows: BenchRow[] = [];
  const emu = await startEmulatorWorker({ events });
  try {
    const parts: {
      part: string;
      needs: string;
      peer: () => Promise<PeerResult>;
      exporter: (url: string) => Record<string, unknown>;
      id: string;
      cleanup?: (url: string, ns: string) => Promise<void>;
    }[] = [
      {
        part: 'e2e_elasticsearch',
        needs: 'elasticsearch',
        peer: () => searchServer(allowStart),
        id: 'elasticsearch',
        exporter: (url) => ({ endpoints: [url] }),
        cleanup: deleteNamespace,
      },
      {
        part: 'e2e_otlphttp',
        needs: 'otlphttp',
        peer: () => otelCollector(allowStart),
        id: 'otlphttp',
        exporter: (url) => ({ endpoint: url }),
      },
    ];
    for (const p of parts) {
      const absent = missingComponents([p.needs]);
      if (absent) {
        skip(p.part, absent);
        continue;
      }
      const found = await p.peer();
      if ('skip' in found) {
        skip(p.part, found.skip);
        continue;
      }
      const peer = found.peer;
      log(`${p.part}: peer at ${peer.url} (${peer.origin})`);
      const ns = `bench${Date.now()}`;
      try {
        const r = await runOnce(emu, events, maxSeconds, p.id, p.exporter(peer.url), ns, log);
        rows.push(
          row(`${p.part}_events_per_s`, r.eventsPerS, 'events/s'),
          row(`${p.part}_cpu_per_100k`, r.cpuPer100k, 'CPU s/100k events'),
        );
      } finally {
        await p.cleanup?.(peer.url, ns);
        await peer.stop();
      }
    }
  } finally {
    await emu.close();
  }
  if (rows.length === 0 && skipped.length > 0) throw new SkipError(skipped.join('; '));
  return rows;
}

if (import.meta.main) {
  const rows = await runE2eBench({
    quick: process.argv.includes('--quick'),
    startPeers: process.argv.includes('--with-peers') || !process.argv.includes('--quick'),
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify(rows, null, 2));
}
