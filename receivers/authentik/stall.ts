/**
 * Stall detection for the event scan: when many requests (or much time spent requesting) bring no
 * progress (no event delivered, no frontier moved, no poll finished), the receiver is going round in
 * circles. It then reports `recoverable_error` with the reason, logs one warning, counts it, and caps
 * its request rate against authentik until progress resumes. Pure state plus an injected clock, so
 * it is unit-tested on its own.
 */

export interface StallOptions {
  /** Requests without progress that make a stall. */
  maxRequests: number;
  /** Time (ms) of requesting without progress that makes a stall. */
  maxMs: number;
  /** Smallest time (ms) between two requests while stalled (the rate cap). */
  stalledIntervalMs: number;
  /** The stall began (reason) or ended (undefined). */
  onChange(reason: string | undefined, fields: Record<string, unknown>): void;
  now?: () => number;
}

export const STALL_DEFAULTS = { maxRequests: 200, maxMs: 30_000, stalledIntervalMs: 1_000 } as const;

export class StallDetector {
  readonly #o: StallOptions;
  readonly #now: () => number;
  #since: number;
  #requests = 0;
  #stalled = false;
  #lastRequestAt = -Infinity;
  #what = 'reading events';
  /** Stalls detected since start. */
  stalls = 0;

  constructor(o: StallOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#since = this.#now();
  }

  get stalled(): boolean {
    return this.#stalled;
  }

  /** What the scan is doing (named in the reason). */
  doing(what: string): void {
    this.#what = what;
  }

  /**
   * Called before each request. Returns how long (ms) to wait first: 0 normally, the rest of the
   * rate-cap interval while stalled.
   */
  beforeRequest(): number {
    const now = this.#now();
    this.#requests++;
    const idleMs = now - this.#since;
    if (
      !this.#stalled &&
      (this.#requests > this.#o.maxRequests || (idleMs > this.#o.maxMs && this.#requests > 1))
    ) {
      this.#stalled = true;
      this.stalls++;
      this.#o.onChange(
        `events: no progress while ${this.#what}: ${this.#requests - 1} requests in ${Math.round(idleMs / 1000)} s delivered nothing and moved nothing (events changing faster than they are read, or a server that does not page consistently); requests are capped at one per ${this.#o.stalledIntervalMs / 1000} s until progress resumes`,
        { requests: this.#requests - 1, seconds: Math.round(idleMs / 1000) },
      );
    }
    let wait = 0;
    if (this.#stalled) wait = Math.max(0, this.#lastRequestAt + this.#o.stalledIntervalMs - now);
    this.#lastRequestAt = now + wait;
    return wait;
  }

  /** Events were delivered, the scan position moved, or a poll ended normally. */
  progress(): void {
    this.#since = this.#now();
    this.#requests = 0;
    if (this.#stalled) {
      this.#stalled = false;
      this.#o.onChange(undefined, {});
    }
  }

  /** Between polls (sleeping is not stalling): restarts the time window, keeps the request count. */
  idle(): void {
    this.#since = this.#now();
  }
}
