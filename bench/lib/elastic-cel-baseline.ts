/**
 * A client that reproduces the collection algorithm of Elastic's authentik integration (the CEL program
 * of the `event` data stream, /work/shared/spec/elastic-authentik.md §b), used as the baseline of the
 * polling and backfill benchmarks:
 *
 * - `GET <url>/api/v3/events/events/?page=<page>&page_size=<page_size>` (Go `url.Values.Encode`: keys
 *   sorted), header `Authorization: Bearer <token>`, no ordering (server default `-created`), no time
 *   filter, no cursor; `page_size` defaults to the integration's 1000, which authentik 2025.12+ clamps
 *   to 100;
 * - status 200: every record of `results` is published, then `page = pagination.next`, and the program
 *   runs again at once while `next != 0`; after the last page `page` goes back to 1, so the next
 *   interval (5 minutes) re-reads everything from page 1;
 * - any other status: one error event, the run ends, the same page is retried at the next interval.
 *
 * Like Go's `http.Transport` (which the CEL input uses), requests carry `Accept-Encoding: gzip` and
 * connections are kept alive. Published records are only parsed here (Elastic's program also re-encodes
 * each record with sorted keys): the client side is a lower bound of the real one, which makes every
 * comparison against this baseline conservative.
 */
import { Agent, request } from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface CelRunOptions {
  /** Base URL of authentik (a trailing slash is stripped, as the integration does). */
  url: string;
  token: string;
  /** The integration's `page_size` variable (default 1000). */
  pageSize?: number;
  /** Stop after this many pages (to measure a prefix of a cycle). Default: the whole cycle. */
  maxPages?: number;
  /** Called with the published records of each page. */
  onRecords?: (records: unknown[], atMs: number) => void;
  signal?: AbortSignal;
}

export interface CelRunResult {
  requests: number;
  /** Response body bytes as received (compressed size when gzip). */
  wireBytes: number;
  /** Records published. */
  records: number;
  /** Error events published (non-200 answers). */
  errors: number;
  /** Wall time of the run (ms). */
  ms: number;
  /** `pagination.count` of the first page (retained events). */
  count: number;
  /** Records per page the server actually served (after its clamp). */
  servedPageSize: number;
  /** Whether the run reached the last page (`next == 0`). */
  complete: boolean;
}

export interface Answer {
  status: number;
  body: Buffer;
  wire: number;
}

/** One GET as Go's transport does it (gzip accepted, body inflated); shared with ceiling.ts. */
export function get(agent: Agent, url: URL, token: string, signal?: AbortSignal): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        agent,
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' },
        ...(signal ? { signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          try {
            const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
            resolve({ status: res.statusCode ?? 0, body, wire: raw.length });
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * One run of the CEL program from `page = 1` (what every 5-minute interval does), following
 * `pagination.next` until it is 0 (or `maxPages`).
 */
export async function celRun(o: CelRunOptions): Promise<CelRunResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const base = o.url.replace(/\/+$/, '');
  const pageSize = o.pageSize ?? 1000;
  const out: CelRunResult = {
    requests: 0,
    wireBytes: 0,
    records: 0,
    errors: 0,
    ms: 0,
    count: 0,
    servedPageSize: 0,
    complete: false,
  };
  const t0 = performance.now();
  let page = 1;
  try {
    for (;;) {
      if (o.signal?.aborted) break;
      // url.Values.Encode sorts the keys: page, page_size.
      const u = new URL(`${base}/api/v3/events/events/?page=${page}&page_size=${pageSize}`);
      const a = await get(agent, u, o.token, o.signal);
      out.requests++;
      out.wireBytes += a.wire;
      if (a.status !== 200) {
        out.errors++;
        break;
      }
      const body = JSON.parse(a.body.toString('utf8')) as {
        pagination: { next: number; count: number };
        results: unknown[];
      };
      if (out.requests === 1) {
        out.count = body.pagination.count;
        out.servedPageSize = body.results.length;
      }
      out.records += body.results.length;
      o.onRecords?.(body.results, Date.now());
      const next = body.pagination.next;
      if (!next) {
        out.complete = true;
        break;
      }
      page = next;
      if (o.maxPages !== undefined && out.requests >= o.maxPages) break;
    }
  } finally {
    out.ms = performance.now() - t0;
    agent.destroy();
  }
  return out;
}

/** The integration's default interval of the `event` stream. */
export const CEL_INTERVAL_MS = 5 * 60_000;

/**
 * Creation-to-publication delay of a new event under the CEL algorithm, from the model (not measured
 * per event): a new event is on page 1 (default `-created` order), which a run reads first; runs start
 * on a 5-minute ticker, and a run longer than the interval starts the next one right after it (Go's
 * ticker keeps one pending tick). So the period is T = max(interval, D) for a full re-read duration D,
 * an event waits uniformly in [0, T] for the next run, plus the time of the first page.
 */
export function celDelayModel(fullRunMs: number, firstPageMs: number, intervalMs = CEL_INTERVAL_MS) {
  const period = Math.max(intervalMs, fullRunMs);
  return {
    periodMs: period,
    medianMs: period / 2 + firstPageMs,
    p99Ms: period * 0.99 + firstPageMs,
    maxMs: period + firstPageMs,
  };
}
