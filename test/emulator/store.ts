/**
 * Compact event table. Per generated event it keeps 8 bytes of `created` (epoch µs, by generator
 * index), 1 byte of liveness, and 4 bytes of position in the `created` order: about 13 bytes per
 * event, so 1,000,000 events take ~13 MB. Everything else is materialised on demand from
 * (seed, generator index). Generated and inserted `created` values are unique; `insertTied` adds
 * blocks of identical `created` (imports, restores, bulk database work), kept in insertion order
 * here. The server arranges tied rows per request (unstable under `-created`, by pk under
 * `-created,pk`, like PostgreSQL). A page is offset math over the current table state, exactly like
 * `ORDER BY created LIMIT n OFFSET k` on a live database.
 */

export class EventStore {
  /** created (epoch µs) by generator index */
  #created: Float64Array;
  /** 1 = alive, by generator index */
  #alive: Uint8Array;
  /** number of generator indexes handed out */
  #n = 0;
  /** alive generator indexes in ascending `created` order: #order[#head .. #head+#len) */
  #order: Int32Array;
  #head = 0;
  #len = 0;
  /** bumps on every mutation (cache key for derived views) */
  version = 0;

  constructor(capacity = 1024) {
    const cap = Math.max(16, capacity);
    this.#created = new Float64Array(cap);
    this.#alive = new Uint8Array(cap);
    this.#order = new Int32Array(cap);
  }

  get size(): number {
    return this.#len;
  }
  /** number of generator indexes ever handed out */
  get generated(): number {
    return this.#n;
  }

  createdOf(gi: number): number {
    return this.#created[gi]!;
  }
  isAlive(gi: number): boolean {
    return gi >= 0 && gi < this.#n && this.#alive[gi] === 1;
  }

  /** generator index at ascending position k (0 = oldest alive) */
  at(k: number): number {
    return this.#order[this.#head + k]!;
  }

  /** first ascending position whose created >= us (strict: > us) */
  lowerBound(us: number, strict = false): number {
    let lo = 0;
    let hi = this.#len;
    const o = this.#order;
    const c = this.#created;
    const h = this.#head;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = c[o[h + mid]!]!;
      if (strict ? v <= us : v < us) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get newestCreated(): number {
    return this.#len === 0 ? -Infinity : this.#created[this.at(this.#len - 1)]!;
  }
  get oldestCreated(): number {
    return this.#len === 0 ? Infinity : this.#created[this.at(0)]!;
  }

  #ensureGi(extra: number): void {
    const need = this.#n + extra;
    if (need <= this.#created.length) return;
    let cap = this.#created.length;
    while (cap < need) cap *= 2;
    const c = new Float64Array(cap);
    c.set(this.#created.subarray(0, this.#n));
    this.#created = c;
    const a = new Uint8Array(cap);
    a.set(this.#alive.subarray(0, this.#n));
    this.#alive = a;
  }

  #ensureOrder(extra: number): void {
    if (this.#head + this.#len + extra <= this.#order.length) return;
    if (this.#len + extra <= this.#order.length && this.#head > 0) {
      this.#order.copyWithin(0, this.#head, this.#head + this.#len);
      this.#head = 0;
      if (this.#len + extra <= this.#order.length) return;
    }
    let cap = this.#order.length;
    while (cap < this.#len + extra) cap *= 2;
    const o = new Int32Array(cap);
    o.set(this.#order.subarray(this.#head, this.#head + this.#len));
    this.#order = o;
    this.#head = 0;
  }

  /** Appends events with the given (strictly increasing, > newest) created values. Returns their gis. */
  appendSorted(createdUs: ArrayLike<number>): number[] {
    const k = createdUs.length;
    this.#ensureGi(k);
    this.#ensureOrder(k);
    const out: number[] = [];
    let last = this.newestCreated;
    for (let i = 0; i < k; i++) {
      let us = createdUs[i]!;
      if (us <= last) us = last + 1;
      last = us;
      const gi = this.#n++;
      this.#created[gi] = us;
      this.#alive[gi] = 1;
      this.#order[this.#head + this.#len++] = gi;
      out.push(gi);
    }
    this.version++;
    return out;
  }

  /** Inserts one event at an arbitrary created time (bumped by 1 µs while it collides). */
  insertAt(us: number): number {
    us = Math.floor(us);
    if (us > this.newestCreated) return this.appendSorted([us])[0]!;
    let pos = this.lowerBound(us);
    while (pos < this.#len && this.#created[this.at(pos)] === us) {
      us++;
      pos++;
    }
    this.#ensureGi(1);
    this.#ensureOrder(1);
    const gi = this.#n++;
    this.#created[gi] = us;
    this.#alive[gi] = 1;
    const at = this.#head + pos;
    this.#order.copyWithin(at + 1, at, this.#head + this.#len);
    this.#order[at] = gi;
    this.#len++;
    this.version++;
    return gi;
  }

  /**
   * Inserts n events that all have `created` = us (a tie block), after any alive event with the same
   * `created`. Returns their gis.
   */
  insertTied(us: number, n: number): number[] {
    us = Math.floor(us);
    const k = Math.max(0, Math.floor(n));
    if (k === 0) return [];
    this.#ensureGi(k);
    this.#ensureOrder(k);
    const pos = this.lowerBound(us, true);
    const at = this.#head + pos;
    this.#order.copyWithin(at + k, at, this.#head + this.#len);
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const gi = this.#n++;
      this.#created[gi] = us;
      this.#alive[gi] = 1;
      this.#order[at + i] = gi;
      out.push(gi);
    }
    this.#len += k;
    this.version++;
    return out;
  }

  /** Removes the n oldest alive events (retention). Returns their gis, oldest first. */
  deleteOldest(n: number): number[] {
    const k = Math.max(0, Math.min(n, this.#len));
    const out: number[] = [];
    for (let i = 0; i < k; i++) {
      const gi = this.#order[this.#head + i]!;
      this.#alive[gi] = 0;
      out.push(gi);
    }
    this.#head += k;
    this.#len -= k;
    if (k > 0) this.version++;
    return out;
  }

  /** Removes every alive event matching pred (GDPR cleanup). Returns the number removed. */
  deleteWhere(pred: (gi: number) => boolean): number {
    let w = this.#head;
    const end = this.#head + this.#len;
    let removed = 0;
    for (let r = this.#head; r < end; r++) {
      const gi = this.#order[r]!;
      if (pred(gi)) {
        this.#alive[gi] = 0;
        removed++;
      } else this.#order[w++] = gi;
    }
    this.#len -= removed;
    if (removed > 0) this.version++;
    return removed;
  }

  /** Removes one event by gi; false if not alive. */
  deleteOne(gi: number): boolean {
    if (!this.isAlive(gi)) return false;
    return this.deleteWhere((x) => x === gi) === 1;
  }

  /** Approximate bytes held by the typed arrays. */
  get bytes(): number {
    return this.#created.byteLength + this.#alive.byteLength + this.#order.byteLength;
  }
}
