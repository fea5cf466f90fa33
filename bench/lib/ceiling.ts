/**
 * What any client could reach in the backfill benchmark, measured in the same run: the figure our
 * receiver's speed-up is to be read against (bench/README.md, "Backfill ceiling").
 *
 * Two factors, multiplied:
 *
 * - **Server and machine.** `parallelRate`: a minimal client (keep-alive sockets, gzip, `JSON.parse`,
 *   nothing else) reading distinct pages with N requests in flight against the same emulator. Its rate
 *   over the sequential baseline's is what N connections give on this machine when the client costs
 *   nothing: the emulator renders pages on one thread and shares the cores with the sink and the
 *   collector, so it is below N.
 * - **Gap-free paging.** authentik pages only by page number (`page`, `page_size` ≤ the clamp, 100), and
 *   a scan that trusts only response contents must overlap every response with the covered rows
 *   (receivers/authentik/scan.ts). `optimalRowsPerRequest` computes, by dynamic programming over every
 *   rank of the history, the most new rows per request any sequence of such slices can average. The
 *   sequential baseline reads a full page per request and proves nothing.
 */
import { Agent } from 'node:http';
import { get } from './elastic-cel-baseline.ts';

/**
 * Most new rows per request, averaged over a walk from the oldest of `rows` events to the newest, of
 * slices [(j-1)q, jq) of any size q ≤ `pageSize` that each reach `reach` rows below the covered top (0: the
 * top row itself proves the overlap, as in the total order `-created,pk`; 1: a row strictly older is
 * needed, as the scan requires until ties showed the server honours `pk`).
 */
export function optimalRowsPerRequest(rows: number, pageSize: number, reach: number): number {
  if (rows <= 0) return pageSize;
  // steps[t]: fewest requests to cover everything newer than the covered top at rank t.
  const steps = new Int32Array(rows + 1);
  for (let t = 1; t <= rows; t++) {
    const end = t + reach + 1;
    let best = Number.MAX_SAFE_INTEGER;
    for (let q = pageSize; q >= 1; q--) {
      const s = (Math.ceil(end / q) - 1) * q;
      if (s >= t) continue;
      const v = s === 0 ? 1 : 1 + steps[s]!;
      if (v < best) best = v;
    }
    steps[t] = best;
  }
  return rows / steps[rows]!;
}

export interface ParallelRateOptions {
  url: string;
  token: string;
  /** Requests in flight. */
  n: number;
  /** Distinct pages read (1..pages). */
  pages: number;
  pageSize: number;
  /** `ordering` parameter (the receiver's). */
  ordering: string;
}

/** Events per second of the minimal client with `n` requests in flight. */
export async function parallelRate(o: ParallelRateOptions): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.n });
  const base = o.url.replace(/\/+$/, '');
  let next = 1;
  let records = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: o.n }, async () => {
        for (;;) {
          const page = next++;
          if (page > o.pages) return;
          const u = new URL(
            `${base}/api/v3/events/events/?ordering=${encodeURIComponent(o.ordering)}&page=${page}&page_size=${o.pageSize}`,
          );
          const a = await get(agent, u, o.token);
          if (a.status !== 200) throw new Error(`ceiling client: HTTP ${a.status}`);
          records += (JSON.parse(a.body.toString('utf8')) as { results: unknown[] }).results.length;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return records / ((performance.now() - t0) / 1000);
}
