/**
 * Bookkeeping of re-reads of the region above the verified edge E (the scan itself is scan.ts, driven
 * by events.ts): which known events are gone, and how many delivered events were late commits. Pure;
 * unit-tested in events-parts.test.ts.
 */
import type { Row } from './scan.ts';

/**
 * A re-read saw every event alive at or above `x` (null: all): known events at or above it that it did
 * not see were deleted (retention, GDPR) and are forgotten. Returns how many.
 */
export function forgetUnseen(
  window: Map<string, bigint>,
  x: bigint | null,
  seen: ReadonlySet<string>,
): number {
  let gone = 0;
  for (const [pk, c] of window) {
    if ((x === null || c >= x) && !seen.has(pk)) {
      window.delete(pk);
      gone++;
    }
  }
  return gone;
}

/** Delivered events of a re-read that are not newer than the high-water mark at its start: late commits. */
export function countLate(rows: readonly Row[], hwStart: bigint | null): number {
  if (hwStart === null) return 0;
  let n = 0;
  for (const r of rows) if (r.c <= hwStart) n++;
  return n;
}
