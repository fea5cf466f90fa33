/**
 * Backfill bookkeeping: the progress line (`events backfill: done/total pages, events, events/s, ETA`)
 * and its cadence. Pure apart from the injected logger and clock; unit-tested in events-parts.test.ts.
 */
import type { Logger } from '../../runtime/component.ts';
import type { BackfillState } from './checkpoint.ts';

/** Progress log cadence of the backfill. */
export const PROGRESS_PAGES = 50;
export const PROGRESS_MS = 30_000;

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Logs backfill progress every PROGRESS_PAGES pages or PROGRESS_MS, and on demand. */
export class BackfillProgress {
  readonly #bf: BackfillState;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #t0: number;
  readonly #emittedAtStart: number;
  readonly #pagesAtStart: number;
  #lastPages: number;
  #lastAt: number;

  constructor(bf: BackfillState, log: Logger, now: () => number = Date.now) {
    this.#bf = bf;
    this.#log = log;
    this.#now = now;
    this.#t0 = now();
    this.#emittedAtStart = bf.emitted;
    this.#pagesAtStart = bf.pagesDone;
    this.#lastPages = bf.pagesDone;
    this.#lastAt = this.#t0;
  }

  /** Records a delivered batch of `pages` pages and `events` events; `hint`: estimated rank left. */
  delivered(pages: number, events: number, hint: number, pageSize: number, atTop: boolean): void {
    const bf = this.#bf;
    bf.pagesDone += pages;
    bf.emitted += events;
    bf.pagesTotal = Math.max(bf.pagesTotal, bf.pagesDone + Math.ceil(hint / Math.max(1, pageSize)));
    if (atTop) bf.pagesTotal = bf.pagesDone;
  }

  /** Logs a progress line when due (or when forced). Returns whether it logged. */
  report(force: boolean): boolean {
    const bf = this.#bf;
    const now = this.#now();
    if (!force && bf.pagesDone - this.#lastPages < PROGRESS_PAGES && now - this.#lastAt < PROGRESS_MS)
      return false;
    this.#lastPages = bf.pagesDone;
    this.#lastAt = now;
    const secs = (now - this.#t0) / 1000;
    const rate = secs > 0 ? (bf.emitted - this.#emittedAtStart) / secs : 0;
    const pageRate = secs > 0 ? (bf.pagesDone - this.#pagesAtStart) / secs : 0;
    const remaining = Math.max(0, bf.pagesTotal - bf.pagesDone);
    const eta = pageRate > 0 ? (remaining / pageRate) * 1000 : NaN;
    this.#log.info(
      `events backfill: ${bf.pagesDone}/${bf.pagesTotal} pages, ${bf.emitted} events, ${Math.round(rate)} events/s, ETA ${fmtDuration(eta)}`,
      {
        pagesDone: bf.pagesDone,
        pagesTotal: bf.pagesTotal,
        events: bf.emitted,
        eventsPerSecond: Math.round(rate),
        etaSeconds: Number.isFinite(eta) ? Math.round(eta / 1000) : null,
      },
    );
    return true;
  }
}
