/**
 * Counts calls in flight on an edge of the graph, so shutdown can wait for batches already handed
 * downstream before stopping the components below.
 */
export class Inflight {
  #count = 0;
  #waiters: (() => void)[] = [];

  /** Calls in flight now. */
  get count(): number {
    return this.#count;
  }

  /** Runs `fn`, counting it as in flight until it settles. */
  async track<T>(fn: () => Promise<T>): Promise<T> {
    this.#count++;
    try {
      return await fn();
    } finally {
      this.#count--;
      if (this.#count === 0) {
        const w = this.#waiters;
        this.#waiters = [];
        for (const resolve of w) resolve();
      }
    }
  }

  /** Resolves when nothing is in flight. */
  idle(): Promise<void> {
    if (this.#count === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}
