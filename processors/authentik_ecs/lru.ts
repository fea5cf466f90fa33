/** A small least-recently-used cache on top of Map insertion order. `max <= 0` disables caching. */
export class Lru<K, V> {
  readonly max: number;
  readonly #map = new Map<K, V>();
  constructor(max: number) {
    this.max = max;
  }

  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined && this.#map.size > 1) {
      // Refresh recency.
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    if (this.max <= 0) return;
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }

  get size(): number {
    return this.#map.size;
  }
}
