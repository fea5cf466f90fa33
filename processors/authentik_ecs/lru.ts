/**
 * A bounded cache with least-recently-used-style eviction (the CLOCK / second-chance approximation):
 * a hit only sets a flag, so reads cost one Map lookup; when the cache is full, the oldest entries
 * that were not used since they were last passed are evicted, used ones get a second chance.
 * `max <= 0` disables caching.
 */
interface Entry<V> {
  value: V;
  used: boolean;
}

export class Lru<K, V> {
  readonly max: number;
  readonly #map = new Map<K, Entry<V>>();

  constructor(max: number) {
    this.max = max;
  }

  get(key: K): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    e.used = true;
    return e.value;
  }

  set(key: K, value: V): void {
    if (this.max <= 0) return;
    const existing = this.#map.get(key);
    if (existing !== undefined) {
      existing.value = value;
      existing.used = true;
      return;
    }
    while (this.#map.size >= this.max) this.#evictOne();
    this.#map.set(key, { value, used: false });
  }

  #evictOne(): void {
    // Bounded: every entry passed over loses its flag, so at most `size` moves precede an eviction.
    for (;;) {
      const first = this.#map.entries().next();
      if (first.done) return;
      const [k, e] = first.value;
      this.#map.delete(k);
      if (!e.used) return;
      e.used = false;
      this.#map.set(k, e);
    }
  }

  get size(): number {
    return this.#map.size;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }
}
