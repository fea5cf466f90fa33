/**
 * The pure decisions of the incremental poller (no I/O, unit-tested in events-parts.test.ts): how large
 * page 1 is, whether a poll ends after its new events (count check), verifies the region above the
 * verified edge E from page 1 or with one small probe, or re-reads it; and what a probe says.
 */
import { parseMicros } from './time.ts';

/** Smallest and largest page of a count verification (the boundary must fall inside it). */
export const PROBE_MIN = 10;
export const PROBE_MAX = 20;

/** What a plain poll does after reading the new events (see #decide). */
export type Outcome =
  | { kind: 'count'; count: number; verified: boolean }
  | { kind: 'verified'; countRef: number | null }
  | { kind: 'reread'; count: number | undefined }
  | { kind: 'mismatch'; rank: number | undefined; count: number | undefined };

/** Rank of the first event older than `x` in a `-created` slice starting at rank `s`; undefined if not on it. */
export function measure(
  results: Record<string, unknown>[],
  s: number,
  last: boolean,
  x: bigint | null,
): { rank: number; above: string[] } | undefined {
  const above: string[] = [];
  let prev: bigint | undefined;
  for (let i = 0; i < results.length; i++) {
    const raw = results[i]!;
    const c = parseMicros(raw.created);
    if (c === undefined || typeof raw.pk !== 'string' || (prev !== undefined && c > prev)) return undefined;
    prev = c;
    if (x !== null && c < x) return i === 0 && s > 0 ? undefined : { rank: s + i, above };
    above.push(raw.pk);
  }
  return last ? { rank: s + results.length, above } : undefined;
}

/**
 * Page size of the poll's first request: the new events expected since the previous poll (recent
 * rate × elapsed time), plus the largest recent excess over that rate, plus 2 known events (page 1
 * must reach an event strictly older than hw to prove it left no gap). Clamped to [10, P].
 */
export function firstPageSize(
  rates: readonly { ms: number; n: number }[],
  lastPollAt: number | undefined,
  now: number,
  P: number,
): number {
  if (lastPollAt === undefined || rates.length === 0) return P;
  let n = 0;
  let ms = 0;
  for (const x of rates) {
    n += x.n;
    ms += x.ms;
  }
  const rate = ms > 0 ? n / ms : 0;
  let excess = 0;
  for (const x of rates) excess = Math.max(excess, x.n - rate * x.ms);
  const k = Math.ceil(rate * (now - lastPollAt) + Math.max(2, excess)) + 2;
  return Math.max(Math.min(10, P), Math.min(P, k));
}

export interface AfterNew {
  /** pagination.count when the known events were last consistent with the list (null: unknown). */
  countRef: number | null;
  /** pagination.count of the read at the top. */
  count: number | undefined;
  /** New events of this poll. */
  n: number;
  /** verify_interval elapsed since the last verification. */
  due: boolean;
  verifyReread: boolean;
  /** Known events at or above E (window plus the fresh ones about to be delivered). */
  known: number;
  /** `measure` of page 1 against E, when page 1 reaches E. */
  top: { rank: number; above: string[] } | undefined;
  isKnown: (pk: string) => boolean;
}

/**
 * After the new events: the poll's outcome, or 'probe' (one small request must count the region).
 * `consistent`: the count grew by exactly the new events.
 */
export function decideAfterNew(a: AfterNew): { outcome: Outcome | 'probe'; consistent: boolean } {
  const { count } = a;
  const consistent = a.countRef !== null && count !== undefined && count === a.countRef + a.n;
  // When page 1 reaches E (a quiet list), verifying costs nothing: always do it then.
  const topAgrees = a.top === undefined ? undefined : a.top.rank === a.known && a.top.above.every(a.isKnown);
  if (consistent && !a.due && topAgrees !== false) {
    return { outcome: { kind: 'count', count, verified: topAgrees === true }, consistent };
  }
  if (a.due && a.verifyReread) return { outcome: { kind: 'reread', count }, consistent };
  if (a.top !== undefined) {
    return {
      outcome: topAgrees
        ? { kind: 'verified', countRef: count ?? null }
        : { kind: 'mismatch', rank: a.top.rank, count },
      consistent,
    };
  }
  return { outcome: 'probe', consistent };
}

/** What a count probe says: `m` its measure, `count` page 1's count, `pgCount` the probe's. */
export function judgeProbe(
  m: { rank: number; above: string[] } | undefined,
  known: number,
  isKnown: (pk: string) => boolean,
  count: number | undefined,
  pgCount: number,
): Outcome {
  if (m === undefined || !m.above.every(isKnown)) return { kind: 'mismatch', rank: m?.rank, count: pgCount };
  if (m.rank === known) return { kind: 'verified', countRef: pgCount };
  // Events inserted at the top between page 1 and this request: the region grew by exactly as much
  // as the whole list did. Consistent as of page 1 (count `count`), unless in those milliseconds
  // something changed below E too; the count check of the next poll expects the new ones.
  if (count !== undefined && m.rank > known && m.rank - known === pgCount - count) {
    return { kind: 'verified', countRef: count };
  }
  return { kind: 'mismatch', rank: m.rank, count: pgCount };
}

/**
 * Page of a count verification: a size in [10, 20] (at most the page size) and a page number such that
 * ranks `known − 1` and `known` (the last event expected at or above E and the first older one) are on
 * it, as far from its ends as possible.
 */
export function probePlan(known: number, maxSize: number): { size: number; page: number } {
  const lo = Math.max(1, Math.min(PROBE_MIN, maxSize));
  const hi = Math.max(lo, Math.min(PROBE_MAX, maxSize));
  if (known <= 0) return { size: lo, page: 1 };
  let best: { size: number; page: number; margin: number } | undefined;
  for (let q = lo; q <= hi; q++) {
    const page = Math.floor((known - 1) / q) + 1;
    const s = (page - 1) * q;
    if (known > s + q - 1) continue;
    const margin = Math.min(known - 1 - s, s + q - 1 - known);
    if (!best || margin > best.margin) best = { size: q, page, margin };
  }
  return best ? { size: best.size, page: best.page } : { size: hi, page: Math.floor(known / hi) + 1 };
}
