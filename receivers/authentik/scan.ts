/**
 * Gap-free, oldest-first reading of authentik's event list with nothing but offset pagination.
 *
 * authentik has no time filter (spec §2), only `ordering=-created` pages whose offsets shift while
 * events are inserted (at the top) and deleted (retention at the bottom, GDPR cleanup anywhere). This
 * engine never trusts offsets; it trusts only the data each response contains:
 *
 * - A *frontier* F marks what is covered: every event older than F.c, and those at exactly F.c whose
 *   pk is in F.pks. The scan moves F upwards (towards newer events) and emits oldest first.
 * - A response is one contiguous slice of the current order. If it contains an event strictly older
 *   than F.c (or is the last page), it covers without a gap every event from F up to its top row: its
 *   rows newer than F are emitted (ascending) and F moves to its top. Otherwise (slice entirely newer
 *   than F) rows may be missing in between: that is a *gap*, and the engine re-locates F (galloping
 *   and bisecting over pages, using the fact that "strictly older than F.c" is monotone along the
 *   order) instead of guessing.
 * - Consecutive reads must overlap, which plain page numbers never do (page k+1 starts where page k
 *   ended). The planner therefore picks, per request, a page size Q in [P/2, P] and a page number j
 *   whose slice [(j-1)Q, jQ) ends just below the frontier's estimated rank plus a safety margin, and
 *   starts as high as possible. The margin adapts to the drift observed between planned and actual
 *   ranks (inserts while reading).
 * - Up to `concurrency` planned reads are on the wire and as many more wait for a connection; results
 *   are consumed in order.
 *
 * Duplicates cannot arise (rows at or below F are never emitted) and rows cannot be skipped (an
 * event is emitted unless a gap-free response showed it to be covered). Events inserted later with an
 * older `created` (commit lag) are the incremental poller's overlap window's business.
 *
 * Ties. Real servers return rows with equal `created` in a different order per request under
 * `-created`; `-created,pk` is a total, stable order (created descending, pk ascending). When the
 * caller says the order is total (`totalOrder()`: requested with `-created,pk` and verified from the
 * responses), F is a position (c, pk): the rows at c with pk >= F.pk are covered too, and a response
 * reaching F is any response holding a covered row, so a tie block of any size is walked like any
 * other rows. Otherwise F keeps the pks delivered at c and a response must reach a row strictly older
 * than c (exact with any tie order, but a tie block of about a page or more cannot be crossed).
 *
 * Ends and malformed rows. `next == 0` comes from a separate COUNT query (rows committed in between
 * are not counted), so a page is taken as the last one only when it is short of the size the server
 * served, or the page after it is 404 / empty (one confirming request). Rows the caller cannot parse
 * (no string pk, bad `created`) still occupy their positions: ranks are counted in page positions, and
 * their identities (pk, or the JSON text) let a response made only of them link to the next.
 */
import type { Page } from './client.ts';
import { ApiError, InvalidPageError, StoppedError } from './client.ts';

/** One event of a response: pk, created (µs) and the record as returned. */
export interface Row {
  pk: string;
  c: bigint;
  raw: Record<string, unknown>;
}

/**
 * What is covered: events older than `c`, those at `c` listed in `pks`, and those at `c` whose pk is
 * >= `pk` (a position in the total order `-created,pk`). `c === null`: nothing (but `bad` may name
 * malformed rows at the very end of the list that were taken).
 */
export interface Frontier {
  c: bigint | null;
  pks: ReadonlySet<string>;
  pk?: string | undefined;
  /** Identities of malformed rows known to lie at or below F (see `badId`). */
  bad?: ReadonlySet<string> | undefined;
}

/** Identity of a row the caller could not parse: its pk when it has one, else its JSON text. */
export function badId(raw: Record<string, unknown>): string {
  return typeof raw.pk === 'string' && raw.pk !== '' ? `pk:${raw.pk}` : `json:${JSON.stringify(raw)}`;
}

/** Evidence of how many rows the server serves per page (shared by the scans of one collector). */
export interface ServedSize {
  /** The server served at least this many rows to one request (a lower bound of its clamp). */
  atLeast: number;
}

/** A response positioned in the order. */
export interface Read {
  /** 0-based rank of the first row (0 = newest event). */
  s: number;
  /** Rows in response order (descending `created`). */
  rows: Row[];
  count: number;
  /** pagination.next == 0 */
  last: boolean;
  /** The page as received (for rebuilding records). */
  page: Page | undefined;
  /** The page was past the end (404 Invalid page). */
  invalid: boolean;
  /** The requested slice, for diagnostics. */
  size: number;
  pageNo: number;
  /** Rows in the response, parseable or not (positions). */
  n?: number;
  /** Position in the response of each row of `rows` (default: its index). */
  at?: number[];
  /** Identities and positions of the rows the caller could not parse. */
  bad?: { id: string; at: number }[];
}

export type Classification = 'found' | 'above' | 'below' | 'end';

/** Strictly older than the frontier's `created`: covered, and proves a response reaches F. */
export function olderThan(r: Row, f: Frontier): boolean {
  return f.c !== null && r.c < f.c;
}

/** Covered by the frontier (already delivered or out of range). */
export function covered(r: Row, f: Frontier): boolean {
  return (
    f.c !== null && (r.c < f.c || (r.c === f.c && (f.pks.has(r.pk) || (f.pk !== undefined && r.pk >= f.pk))))
  );
}

/**
 * Whether a row proves that a response holding it reaches down to F (every uncovered event of the
 * list between it and the response's top is in the response). In the total order any covered row
 * does, as long as F is a position; otherwise only a row strictly older than F.c.
 */
export function reaches(r: Row, f: Frontier, total: boolean): boolean {
  if (f.c === null) return false;
  if (r.c < f.c) return true;
  return total && r.c === f.c && f.pk !== undefined && r.pk >= f.pk;
}

/** Strictly below F in the total order (or older than F.c otherwise). */
function strictlyBelow(r: Row, f: Frontier, total: boolean): boolean {
  if (f.c === null) return false;
  if (r.c < f.c) return true;
  return total && r.c === f.c && f.pk !== undefined && r.pk > f.pk;
}

function badReaches(read: Read, f: Frontier, total: boolean): boolean {
  // Under an unstable tie order a malformed row's neighbours are not fixed: only with a total order
  // (or at the very end of the list, before any valid row was taken) does it link two responses.
  if (!(total || f.c === null) || !f.bad || f.bad.size === 0 || !read.bad) return false;
  return read.bad.some((b) => f.bad!.has(b.id));
}

/**
 * Where a response lies relative to the frontier:
 * - found: contains the frontier edge (a row proving it reaches F, or the confirmed end of the list)
 *   and its top is not below F: usable.
 * - below: even its newest event is below F (covered entirely; the edge is higher up).
 * - above: reaches nothing of F and not the last page (the edge is further down).
 * - end: past the end of the list.
 */
export function classify(read: Read, f: Frontier, total = false): Classification {
  if (read.invalid) return 'end';
  const n = read.n ?? read.rows.length;
  if (n === 0) return read.s === 0 || read.last ? 'found' : 'end';
  if (read.rows.length === 0) {
    // Only malformed rows: usable at the end of the list, or linked to F through their identities.
    return read.last || badReaches(read, f, total) ? 'found' : 'above';
  }
  let top = read.rows[0]!;
  let hasReach = false;
  for (const r of read.rows) {
    if (r.c > top.c || (r.c === top.c && r.pk < top.pk)) top = r;
    if (reaches(r, f, total)) hasReach = true;
  }
  if (strictlyBelow(top, f, total)) return 'below';
  if (hasReach || read.last || badReaches(read, f, total)) return 'found';
  return 'above';
}

/** A planned request: page size and 1-based page number, covering ranks [s, s+size). */
export interface Plan {
  size: number;
  page: number;
  s: number;
}

/**
 * Picks the request that contains rank `need + margin` (so it reaches `margin` rows below the
 * frontier's estimated edge) and starts as high (small rank) as possible, with a page size in
 * [ceil(P/2), P]. `count`, when known, caps the target at the last row.
 */
export function plan(need: number, margin: number, maxSize: number, count: number | undefined): Plan {
  const P = Math.max(1, maxSize);
  const best = (m: number, minSize: number): Plan => {
    let eMin = need + 1 + Math.max(0, m);
    if (count !== undefined && count > 0) eMin = Math.min(eMin, count);
    eMin = Math.max(1, eMin);
    let b: Plan | undefined;
    for (let q = P; q >= Math.max(1, Math.min(P, minSize)); q--) {
      const page = Math.ceil(eMin / q);
      const s = (page - 1) * q;
      if (!b || s < b.s) b = { size: q, page, s };
      if (s === 0) break;
    }
    return b!;
  };
  // The previous response started at rank need-1 (its top); a useful request starts above it.
  const prevTop = need - 1;
  const p = best(margin, Math.ceil(P / 2));
  if (p.s < prevTop || p.s === 0) return p;
  // Rare: every size in [P/2, P] has a multiple right at the edge. Drop the margin and allow
  // smaller pages; as a last resort read the page just above (the response check finds any gap).
  const q = best(0, 2);
  if (q.s < prevTop || q.s === 0) return q;
  // Trap: a useful slice must hold ranks need-2..need, and need-1 or need is a multiple of every size
  // in [2, P] (e.g. need 1800 with P 10: 1800 = 0 mod 2..6, 8..10 and 1799 = 0 mod 7). No page of at
  // most P rows can then cross the edge, and reading the page just above classifies as a gap forever.
  // A slightly larger page always works: P is either the configured size (the server serves more) or
  // the server's clamp (>= 100 on real servers, where the trap needs astronomically large ranks).
  for (let size = P + 1; size <= 2 * P + 2; size++) {
    const page = Math.ceil((need + 1) / size);
    const s = (page - 1) * size;
    if (s < prevTop) return { size, page, s };
  }
  const page = Math.floor(Math.max(0, need - 2) / P) + 1;
  return { size: P, page, s: (page - 1) * P };
}

export interface ScanEmit {
  /** New events of one response, oldest first (may be empty when only the frontier moved). */
  rows: Row[];
  read: Read;
  /** The frontier once these rows are delivered. */
  frontier: Frontier;
  /** Estimated rank of the new frontier's edge (for resuming) and the count it was measured at. */
  hint: number;
  count: number;
  /**
   * The pages whose rows these are (oldest first): deliveries queued behind a slow one are merged into
   * one batch (ordered, one checkpoint), so `read` is the newest of them. Absent: just `read.page`.
   */
  pages?: (Page | undefined)[];
}

/**
 * Largest merged delivery: `concurrency` pages (and at most this many rows). Beyond it the reads wait
 * for the delivery in progress. This bounds both memory and what a crash can deliver twice (the batch
 * whose checkpoint was not written).
 */
const MAX_MERGED_ROWS = 5_000;

export interface ScanParams {
  /**
   * Fetches page `page` of size `size` in `-created` order (`-created,pk` while the caller asks for the
   * total order). May throw InvalidPageError.
   */
  fetch(size: number, page: number, signal: AbortSignal): Promise<Page>;
  /**
   * Whether responses are interpreted in the total order (created desc, pk asc). Asked per response;
   * default false. The scan reports what it sees through `ties`.
   */
  totalOrder?(): boolean;
  /**
   * Runs of tied rows seen in a response: `sorted` when every run was in ascending pk order, with the
   * run lengths. Lets the caller verify that the server honours `-created,pk`.
   */
  ties?(runs: number[], sorted: boolean): void;
  /** Shared evidence of the served page size (for proving a short last page). */
  served?: ServedSize;
  /** Reports the page size the server served: exactly (from start_index) or from a short page. */
  servedSize?(requested: number, served: number, exact: boolean): void;
  /** Turns a page into rows (drops and reports malformed records). */
  parse(page: Page): Row[];
  /** Largest page size to request (the server's clamp, once known). */
  pageSize(): number;
  concurrency: number;
  frontier: Frontier;
  /** Newest `created` to emit (inclusive); null = up to the newest event. */
  upper: bigint | null;
  /** Estimated rank of the frontier's edge (0 = start at page 1), and the count it was measured at. */
  hint: number;
  hintCount: number | undefined;
  /**
   * Page size of the first request only (the incremental poller sizes page 1 to the events it expects);
   * later requests use `pageSize()`. Default: `pageSize()`.
   */
  firstSize?: number;
  /** Extra filter for emission (incremental: not already delivered within the overlap window). */
  accept(r: Row): boolean;
  /** Delivers rows and persists the new frontier; the scan continues only after it resolves. */
  emit(e: ScanEmit): Promise<void>;
  /** Observes every response (progress, metrics). */
  onRead?(read: Read, cls: Classification): void;
  /** A gap was found: pages shifted under the scan. */
  onResync?(reason: string): void;
  signal: AbortSignal;
}

export interface ScanResult {
  frontier: Frontier;
  /** The first response of the scan (the incremental poller's page 1). */
  firstRead: Read | undefined;
  /**
   * The last response the scan used (classified): when the scan reached the top, the one read at the
   * top, whose `count` is the list's size at the moment the scan's coverage was completed.
   */
  lastRead: Read | undefined;
  requests: number;
}

const MAX_LOCATE_PROBES = 200;
/** Reads planned ahead of the one being taken, per allowed concurrent request (see pipeline()). */
const LOOKAHEAD = 2;

/** Runs a scan to the top (or to `upper`). Rejects with StoppedError on shutdown. */
export async function scan(p: ScanParams): Promise<ScanResult> {
  let f: Frontier = p.frontier;
  let lastCount: number | undefined = p.hintCount;
  let requests = 0;
  let firstRead: Read | undefined;
  let lastRead: Read | undefined;
  let firstSize = p.firstSize;
  const drifts: number[] = [];
  let margin = 2;
  /** `count` of the last response taken. */
  let takenCount: number | undefined;
  /** Records how far a read's proof row was from where it was planned, and sizes the margin from it. */
  const noteDrift = (d: number): void => {
    drifts.push(d);
    if (drifts.length > 8) drifts.shift();
    // No drift seen: no margin (each slice reaches just the row that proves it gap-free).
    margin = Math.min(2 * Math.max(0, ...drifts), Math.max(2, Math.floor(p.pageSize() / 2)));
  };
  const served: ServedSize = p.served ?? { atLeast: 0 };
  const total = () => p.totalOrder?.() ?? false;

  const toRead = (page: Page, size: number, pageNo: number): Read => {
    const rows = p.parse(page);
    const pos = new Map<Record<string, unknown>, number>();
    page.results.forEach((raw, i) => pos.set(raw, i));
    const at = rows.map((r, i) => pos.get(r.raw) ?? i);
    const parsed = new Set(at);
    const bad: { id: string; at: number }[] = [];
    page.results.forEach((raw, i) => {
      if (!parsed.has(i)) bad.push({ id: badId(raw), at: i });
    });
    const runs: number[] = [];
    let sorted = true;
    let run = 1;
    for (let i = 1; i < rows.length; i++) {
      const a = rows[i - 1]!;
      const b = rows[i]!;
      if (b.c > a.c) {
        throw new ApiError(
          'authentik did not return events in ordering=-created order; cannot page safely',
          'bad_order',
        );
      }
      if (b.c === a.c) {
        run++;
        if (b.pk <= a.pk) sorted = false;
      } else {
        if (run > 1) runs.push(run);
        run = 1;
      }
    }
    if (run > 1) runs.push(run);
    if (runs.length > 0) p.ties?.(runs, sorted);
    const n = page.results.length;
    const s = n > 0 && page.startIndex > 0 ? page.startIndex - 1 : (pageNo - 1) * size;
    // The size the server served: exact from start_index on pages after the first (Django computes it
    // from its per_page), else a short page that is not the last one (weak: rows may have been deleted
    // between the COUNT and the rows).
    let exact: number | undefined;
    if (pageNo > 1 && n > 0 && page.startIndex > 1 && (page.startIndex - 1) % (pageNo - 1) === 0)
      exact = (page.startIndex - 1) / (pageNo - 1);
    if (exact !== undefined) {
      served.atLeast = Math.max(served.atLeast, Math.min(exact, size));
      p.servedSize?.(size, exact, true);
    } else if (page.next !== 0 && n > 0 && n < size) p.servedSize?.(size, n, false);
    served.atLeast = Math.max(served.atLeast, n);
    lastCount = page.count;
    return {
      s,
      rows,
      count: page.count,
      last: page.next === 0,
      page,
      invalid: false,
      size,
      pageNo,
      n,
      at,
      bad,
    };
  };

  /** Whether a response is certainly short of what the server serves (so it holds the end of the list). */
  const short = (read: Read, page: Page): boolean => {
    const n = read.n ?? read.rows.length;
    if (read.pageNo > 1 && page.startIndex > 1) {
      const per = (page.startIndex - 1) / (read.pageNo - 1);
      if (Number.isInteger(per)) return n < per;
    }
    return n < read.size && n < served.atLeast;
  };

  const get = async (size: number, pageNo: number, signal: AbortSignal): Promise<Read> => {
    requests++;
    try {
      const page = await p.fetch(size, pageNo, signal);
      const r = toRead(page, size, pageNo);
      if (r.last && (r.n ?? 0) > 0 && !short(r, page)) {
        // `next == 0` comes from the COUNT; rows committed after it may sit on the next page.
        requests++;
        try {
          const more = await p.fetch(size, pageNo + 1, signal);
          if (more.results.length > 0) {
            r.last = false;
            lastCount = Math.max(more.count, r.s + (r.n ?? 0) + more.results.length);
            r.count = lastCount;
          }
        } catch (e) {
          if (!(e instanceof InvalidPageError)) throw e;
        }
      }
      firstRead ??= r;
      return r;
    } catch (e) {
      if (e instanceof InvalidPageError) {
        // Past the end: the list is shorter than (pageNo-1)*size now.
        const s = (pageNo - 1) * size;
        if (lastCount === undefined || lastCount > s) lastCount = s;
        return { s, rows: [], count: lastCount, last: true, page: undefined, invalid: true, size, pageNo };
      }
      throw e;
    }
  };

  const posOf = (read: Read, k: number): number => read.at?.[k] ?? k;

  // Deliveries run in order, behind the reads: while page k is delivered, pages k+1.. are fetched.
  // At most `concurrency` deliveries wait; `drain()` waits for all of them (and rethrows a failure).
  let emitChain: Promise<void> = Promise.resolve();
  let emitError: { e: unknown } | undefined;
  const failure = (): { e: unknown } | undefined => emitError;
  const waiters: (() => void)[] = [];
  // A delivery waiting behind the one in progress absorbs the next ones (one batch, one checkpoint).
  let waiting: ScanEmit | undefined;
  const queueEmit = async (e: ScanEmit): Promise<void> => {
    if (emitError) throw emitError.e;
    const w = waiting;
    const merged = w ? (w.pages?.length ?? 1) : 0;
    if (
      pipelined &&
      w &&
      merged < Math.max(1, p.concurrency) &&
      w.rows.length + e.rows.length <= MAX_MERGED_ROWS
    ) {
      waiting = {
        ...e,
        rows: [...w.rows, ...e.rows],
        pages: [...(w.pages ?? [w.read.page]), e.read.page],
      };
    } else {
      while (waiting && !emitError) await new Promise<void>((r) => waiters.push(r));
      waiting = { ...e, pages: [e.read.page] };
      emitChain = emitChain.then(async () => {
        const job = waiting!;
        waiting = undefined;
        waiters.shift()?.();
        try {
          if (!emitError) await p.emit(job);
        } catch (err) {
          emitError ??= { e: err };
        } finally {
          waiters.shift()?.();
        }
      });
    }
    if (!pipelined) await emitChain;
    const err = failure();
    if (err) throw err.e;
  };
  const drain = async (): Promise<void> => {
    await emitChain;
    const err = failure();
    if (err) throw err.e;
  };
  /** Deliveries overlap reads only in the pipelined phase (the first take is awaited in full). */
  let pipelined = false;

  /** Emits the rows of a usable response and advances the frontier. True when the scan is complete. */
  const take = async (read: Read): Promise<{ done: boolean; need: number }> => {
    const tot = total();
    const n = read.n ?? read.rows.length;
    const inRange: { r: Row; at: number }[] = [];
    read.rows.forEach((r, k) => {
      if (p.upper === null || r.c <= p.upper) inRange.push({ r, at: posOf(read, k) });
    });
    const reachedTop = read.s === 0 || inRange.length < read.rows.length;
    const fresh = inRange.map((x) => x.r).filter((r) => !covered(r, f) && p.accept(r));
    // Oldest first: the reverse of the list order (created desc, then pk asc in the total order).
    fresh.sort((a, b) =>
      a.c < b.c ? -1 : a.c > b.c ? 1 : tot ? (a.pk > b.pk ? -1 : a.pk < b.pk ? 1 : 0) : a.pk < b.pk ? -1 : 1,
    );
    let next = f;
    let need = read.s + n;
    if (inRange.length > 0) {
      let top = inRange[0]!;
      for (const x of inRange) if (x.r.c > top.r.c || (x.r.c === top.r.c && x.r.pk < top.r.pk)) top = x;
      const t = top.r;
      if (f.c === null || t.c >= f.c) {
        const same = f.c === t.c;
        if (tot) {
          // A position: everything at t.c with pk >= t.pk is now covered.
          const pk = same && f.pk !== undefined && f.pk < t.pk ? f.pk : t.pk;
          next = { c: t.c, pks: same ? f.pks : new Set(), pk };
        } else {
          const pks = new Set(inRange.filter((x) => x.r.c === t.c).map((x) => x.r.pk));
          if (same) for (const pk of f.pks) pks.add(pk);
          next = { c: t.c, pks, pk: same ? f.pk : undefined };
        }
      }
      // Malformed rows of a usable response are covered (dropped and counted when parsed). With a
      // total order (or at the end of the list) their identities link this response to the next one,
      // and those above the new top move the planning edge up with them.
      const bad = read.bad ?? [];
      let topAt = top.at;
      if ((tot || f.c === null) && inRange.length === read.rows.length) {
        const ids = new Set(next === f && f.bad ? f.bad : []);
        for (const b of bad) {
          ids.add(b.id);
          topAt = Math.min(topAt, b.at);
        }
        if (ids.size > 10_000) ids.clear();
        next = { ...next, bad: ids };
      } else if (next !== f) next = { ...next, bad: undefined };
      // Rank of the first row below the new frontier (for planning the next request).
      if (tot) need = read.s + topAt + 1;
      else {
        let last = top.at;
        for (const x of inRange) if (next.c !== null && x.r.c >= next.c) last = Math.max(last, x.at);
        need = read.s + Math.min(last, topAt) + 1;
      }
    } else if ((tot || f.c === null) && read.rows.length === 0 && n > 0) {
      // Only malformed rows (the end of the list, or linked to F by identity): covered from now on.
      const ids = new Set(f.bad ?? []);
      for (const b of read.bad ?? []) ids.add(b.id);
      next = { ...f, bad: ids };
      need = read.s + 1;
    }
    f = next;
    takenCount = read.count;
    await queueEmit({ rows: fresh, read, frontier: next, hint: need, count: read.count });
    return { done: reachedTop, need };
  };

  /**
   * Finds a usable response by probing pages: gallop from the hint, then bisect between a response
   * known to be above the edge and one known to be below it.
   */
  const locate = async (hint: number, hintCount: number | undefined): Promise<Read | 'done'> => {
    let lo = -1; // the edge's rank is >= lo (end of a response found entirely above)
    let hi = Number.POSITIVE_INFINITY; // the edge's rank is <= hi
    let step = Math.max(1, p.pageSize());
    let r = Math.max(0, hint);
    let corrected = hintCount === undefined;
    for (let probe = 0; probe < MAX_LOCATE_PROBES; probe++) {
      if (p.signal.aborted) break;
      const P = Math.max(1, p.pageSize());
      let read: Read;
      if (lo >= 0 && hi !== Number.POSITIVE_INFINITY && hi - lo < P - 1) {
        const pl = plan(hi, 0, P, lastCount);
        read = await get(pl.size, pl.page, p.signal);
      } else {
        const size = firstSize !== undefined ? Math.max(1, Math.min(firstSize, P)) : P;
        read = await get(size, Math.floor(r / size) + 1, p.signal);
      }
      firstSize = undefined;
      const cls = classify(read, f, total());
      lastRead = read;
      p.onRead?.(read, cls);
      if (cls === 'found') return read;
      if (cls === 'below') {
        if (read.s === 0) return 'done';
        hi = Math.min(hi, read.s);
      } else if (cls === 'above') {
        lo = Math.max(lo, read.s + (read.n ?? read.rows.length));
      } else {
        hi = Math.min(hi, Math.max(0, Math.min(read.s, lastCount ?? read.s) - 1));
        if (lastCount === 0) return 'done';
      }
      if (lo >= 0 && hi !== Number.POSITIVE_INFINITY && hi < lo) {
        // The order moved under the probes: keep the newest bound, drop the contradicted older one.
        if (cls === 'above') hi = Number.POSITIVE_INFINITY;
        else lo = -1;
        step = P;
      }
      if (!corrected && hintCount !== undefined && read.count !== hintCount) {
        // Inserts (or deletes) since the hint was measured move the edge by about the difference.
        corrected = true;
        const guess = Math.max(0, hint + (read.count - hintCount));
        if (guess >= lo && guess <= hi) {
          r = guess;
          continue;
        }
      }
      corrected = true;
      // Gallop: the adjacent page first, then skipping 1, 3, 7, … pages.
      if (hi === Number.POSITIVE_INFINITY) {
        r = lo + (step - P);
        step *= 2;
      } else if (lo < 0) {
        r = Math.max(0, hi - 1 - (step - P));
        step *= 2;
      } else {
        r = Math.floor((lo + hi) / 2);
      }
    }
    if (p.signal.aborted) throw new StoppedError();
    throw new ApiError(
      `could not find the scan position after ${MAX_LOCATE_PROBES} probes (events change faster than they can be read?)`,
      'locate_failed',
    );
  };

  // ---- initial position ----
  const start = await locate(p.hint, p.hintCount);
  if (start === 'done') return { frontier: f, firstRead, lastRead, requests };
  let res = await take(start);
  if (res.done) return { frontier: f, firstRead, lastRead, requests };
  pipelined = p.concurrency > 1;
  try {
    const r = await pipeline();
    await drain();
    return r;
  } finally {
    await emitChain;
  }

  async function pipeline(): Promise<ScanResult> {
    // ---- pipelined reads upwards ----
    let cursor = res.need;
    // Reads planned ahead: twice the connections. The client's semaphore keeps `concurrency` requests
    // on the wire and frees a connection as soon as a body is in, so the next planned read starts at
    // once while earlier responses are still decoded, parsed and taken in order.
    const lookahead = LOOKAHEAD * Math.max(1, p.concurrency);
    // Below `upper` the reads beyond it are wasted: once the rows left to it look few (from the density
    // of `created` in the last response taken), plan only about as many reads as they fill.
    let rowsToUpper: number | undefined;
    const ahead = (): number => {
      if (rowsToUpper === undefined) return lookahead;
      const pages = Math.ceil(rowsToUpper / Math.max(1, p.pageSize())) + 1;
      return Math.max(Math.max(1, p.concurrency), Math.min(lookahead, pages));
    };
    const estimateToUpper = (read: Read): void => {
      if (p.upper === null || read.rows.length < 2) return;
      let lo = read.rows[0]!.c;
      let hi = lo;
      for (const r of read.rows) {
        if (r.c < lo) lo = r.c;
        if (r.c > hi) hi = r.c;
      }
      if (hi >= p.upper) return;
      const span = Number(hi - lo);
      rowsToUpper = span > 0 ? (Number(p.upper - hi) * (read.rows.length - 1)) / span : undefined;
    };
    for (;;) {
      if (p.signal.aborted) throw new StoppedError();
      const chain = new AbortController();
      const signal = AbortSignal.any([p.signal, chain.signal]);
      const pending: {
        need: number;
        plan: Plan;
        result: Promise<{ ok: true; read: Read } | { ok: false; err: unknown }>;
      }[] = [];
      let topDispatched = false;
      let gap: { hint: number; reason: string } | undefined;
      let finished = false;
      const dispatch = () => {
        while (!topDispatched && pending.length < ahead()) {
          // In the total order the frontier's own row (rank cursor-1) proves the reach; otherwise a row
          // strictly older than its `created` must be in the slice.
          const pl = plan(total() ? cursor - 1 : cursor, margin, p.pageSize(), lastCount);
          const result = get(pl.size, pl.page, signal).then(
            (read) => ({ ok: true as const, read }),
            (err: unknown) => ({ ok: false as const, err }),
          );
          pending.push({ need: cursor, plan: pl, result });
          if (pl.s === 0) topDispatched = true;
          cursor = pl.s + 1;
        }
      };
      /**
       * Reads the slice between the frontier and `read` (found entirely above it) and takes it when it
       * reaches the frontier. `need` is the rank the frontier was planned at (its row + 1).
       */
      const bridge = async (
        read: Read,
        need: number,
        sig: AbortSignal,
      ): Promise<'done' | 'taken' | 'failed'> => {
        const tot = total();
        const n = read.n ?? read.rows.length;
        if (n === 0 || read.invalid || takenCount === undefined) return 'failed';
        const oldest = read.s + n - 1;
        // Net inserts between the previous response and this one moved the frontier's proof row.
        const shift = Math.max(1, read.count - takenCount);
        const proof = (tot ? need - 1 : need) + shift;
        const pl = plan(proof, 1, p.pageSize(), read.count + shift);
        if (pl.s > oldest) return 'failed';
        const b = await get(pl.size, pl.page, sig);
        const cls = classify(b, f, tot);
        lastRead = b;
        p.onRead?.(b, cls);
        if (cls !== 'found') return 'failed';
        noteDrift(shift);
        res = await take(b);
        return res.done ? 'done' : 'taken';
      };
      try {
        dispatch();
        while (pending.length > 0) {
          const head = pending.shift()!;
          const out = await head.result;
          if (!out.ok) throw out.err;
          const read = out.read;
          let cls = classify(read, f, total());
          lastRead = read;
          p.onRead?.(read, cls);
          if (cls === 'above') {
            // Inserts between two reads pushed the frontier below this slice. One slice spanning the
            // frontier and this one's oldest row closes the gap; the reads planned behind this one
            // still chain to it, so they are kept (re-locating would abandon them all).
            const b = await bridge(read, head.need, signal);
            if (b === 'done') {
              finished = true;
              break;
            }
            if (b === 'taken') cls = classify(read, f, total());
          }
          if (cls === 'found') {
            const tot = total();
            const k = read.rows.findIndex((r) => reaches(r, f, tot));
            if (k >= 0) noteDrift(read.s + posOf(read, k) + (tot ? 1 : 0) - head.need);
            estimateToUpper(read);
            res = await take(read);
            if (res.done) {
              finished = true;
              break;
            }
            if (read.s !== head.plan.s || (!read.last && (read.n ?? read.rows.length) !== head.plan.size)) {
              // The server did not serve the planned slice (clamp): re-plan from what it served.
              cursor = res.need;
              break;
            }
            dispatch();
          } else if (cls === 'below') {
            if (read.s === 0) {
              finished = true;
              break;
            }
            dispatch();
          } else {
            gap =
              cls === 'above'
                ? {
                    hint: read.s + read.rows.length + margin,
                    reason: 'events inserted while paging shifted the pages',
                  }
                : {
                    hint: Math.max(0, (lastCount ?? 1) - 1),
                    reason: 'the list shrank while paging (404 Invalid page)',
                  };
            break;
          }
        }
      } finally {
        chain.abort();
        // Settle abandoned requests (their results are not needed).
        await Promise.all(pending.map((x) => x.result));
      }
      if (finished) return { frontier: f, firstRead, lastRead, requests };
      if (gap) {
        p.onResync?.(gap.reason);
        drifts.length = 0;
        margin = Math.min(Math.max(2, margin * 2), Math.max(2, Math.floor(p.pageSize() / 2)));
        const again = await locate(gap.hint, undefined);
        if (again === 'done') return { frontier: f, firstRead, lastRead, requests };
        res = await take(again);
        if (res.done) return { frontier: f, firstRead, lastRead, requests };
        cursor = res.need;
      }
    }
  }
}
