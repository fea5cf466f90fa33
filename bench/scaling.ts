/**
 * 5. Scaling: backfill time and the collector's peak memory for 10k, 100k and 1M events with
 * `max_concurrent_requests` 2 and 4, in the setup of the backfill benchmark (same pipeline, page size
 * 100, 20 ms latency per page, collector in a child process). Sizes below 1M are measured several times
 * (medians); the 1M / N=4 point is the backfill benchmark's own run when both run together.
 *
 * Time per event = (first → last document at the sink) ÷ events, so process start-up (a constant) does
 * not bend the line. A straight line means the time per event does not depend on the size: the figure is
 * the ratio of the time per event at 1M to that at 10k (goal ≤ 1.25, i.e. within 25 % of linear, a margin
 * for the noise of a shared machine). Memory: peak RSS at each size and the slope in bytes per additional
 * event between sizes (a streaming backfill should be flat: ~0 bytes/event).
 */
import { backfillOnce } from './backfill.ts';
import type { BackfillRun } from './backfill.ts';
import { BACKFILL_LATENCY_MS } from './backfill.ts';
import { startBulkSink } from './lib/bulk-sink.ts';
import { missingComponents } from './lib/collector.ts';
import { startEmulatorWorker } from './lib/emulator.ts';
import type { BenchRow, SuiteOptions } from './lib/rows.ts';
import { row, SkipError } from './lib/rows.ts';
import { median } from './lib/stats.ts';

export const LINEARITY_GOAL = 1.25;

export interface ScalingOptions extends SuiteOptions {
  sizes?: number[];
  concurrency?: number[];
  /** Runs already measured elsewhere (the backfill benchmark's), reused instead of measuring again. */
  known?: BackfillRun[];
}

interface Point {
  events: number;
  n: number;
  perEventUs: number;
  peakRssMB: number;
  runs: number;
}

function repeatsFor(size: number, quick: boolean): number {
  if (quick) return 1;
  if (size <= 20_000) return 3;
  return 1;
}

export async function runScalingBench(opts: ScalingOptions = {}): Promise<BenchRow[]> {
  const log = opts.log ?? (() => undefined);
  const missing = missingComponents(['cli', 'cli-main', 'emulator', 'authentik', 'elasticsearch']);
  if (missing) throw new SkipError(missing);
  const quick = opts.quick ?? false;
  const sizes = opts.sizes ?? (quick ? [2_000, 10_000] : [10_000, 100_000, 1_000_000]);
  const ns = opts.concurrency ?? [2, 4];
  const points: Point[] = [];
  const sink = await startBulkSink();
  try {
    for (const size of sizes) {
      const emu = await startEmulatorWorker({
        events: size,
        faults: { rate: 0, latencyMs: BACKFILL_LATENCY_MS },
      });
      try {
        for (const n of ns) {
          const known = (opts.known ?? []).filter((r) => r.events === size && r.n === n);
          const runs: BackfillRun[] = [...known];
          const want = repeatsFor(size, quick);
          while (runs.length < want) runs.push(await backfillOnce({ emu, sink, events: size, n, log }));
          const p: Point = {
            events: size,
            n,
            perEventUs: median(runs.map((r) => (r.streamS / r.events) * 1e6)),
            peakRssMB: median(runs.map((r) => r.peakRssMB)),
            runs: runs.length,
          };
          points.push(p);
          log(
            `scaling N=${n} ${size} events: ${p.perEventUs.toFixed(1)} µs/event, peak RSS ${p.peakRssMB.toFixed(0)} MB` +
              ` (${p.runs} run${p.runs > 1 ? 's, medians' : ''}${known.length ? ', reused from the backfill benchmark' : ''})`,
          );
        }
      } finally {
        await emu.close();
      }
    }
  } finally {
    await sink.close();
  }

  const rows: BenchRow[] = [];
  for (const n of ns) {
    const ps = points.filter((p) => p.n === n).sort((a, b) => a.events - b.events);
    if (ps.length < 2) continue;
    const first = ps[0]!;
    const last = ps[ps.length - 1]!;
    const lines: string[] = [];
    for (let i = 1; i < ps.length; i++) {
      const a = ps[i - 1]!;
      const b = ps[i]!;
      const memSlope = ((b.peakRssMB - a.peakRssMB) * 2 ** 20) / (b.events - a.events);
      const timeSlope = (b.perEventUs * b.events - a.perEventUs * a.events) / (b.events - a.events);
      lines.push(
        `${a.events}→${b.events}: ${timeSlope.toFixed(1)} µs per additional event, ${memSlope.toFixed(1)} bytes of peak RSS per additional event`,
      );
    }
    log(`scaling N=${n} slopes: ${lines.join('; ')}`);
    const ratio = last.perEventUs / first.perEventUs;
    const tag = (x: number) => (x >= 1_000_000 ? `${x / 1_000_000}m` : `${x / 1000}k`);
    rows.push(
      row(
        `scaling_n${n}_time_per_event_${tag(last.events)}_vs_${tag(first.events)}`,
        last.perEventUs,
        'µs/event',
        {
          baseline: first.perEventUs,
          ratio,
          goal: LINEARITY_GOAL,
          met: ratio <= LINEARITY_GOAL,
        },
      ),
    );
    const mid = ps[ps.length - 2]!;
    const slope = ((last.peakRssMB - mid.peakRssMB) * 2 ** 20) / (last.events - mid.events);
    rows.push(
      row(`scaling_n${n}_peak_rss_${tag(last.events)}_vs_${tag(first.events)}`, last.peakRssMB, 'MB', {
        baseline: first.peakRssMB,
        ratio: last.peakRssMB / first.peakRssMB,
      }),
      row(`scaling_n${n}_memory_slope_${tag(mid.events)}_to_${tag(last.events)}`, slope, 'bytes/event'),
    );
  }
  return rows;
}

if (import.meta.main) {
  const rows = await runScalingBench({
    quick: process.argv.includes('--quick'),
    log: (l) => console.error(l),
  });
  console.log(JSON.stringify(rows, null, 2));
}
