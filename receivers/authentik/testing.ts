/**
 * Test doubles for the receiver's unit tests: an in-memory event list with authentik's pagination
 * and drift (inserts at the top, late inserts, deletes anywhere, ties), and an in-memory storage
 * extension that can simulate a crash. Not used at run time.
 */
import type { ComponentKind, StorageClient, StorageExtension } from '../../runtime/component.ts';
import type { Page } from './client.ts';
import { InvalidPageError } from './client.ts';
import { formatMicros } from './time.ts';

/** Small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FakeEvent {
  pk: string;
  c: bigint;
}

/** An event table read through `ordering=-created` offset pages. Ties are served in random order. */
export class FakeEvents {
  rows: FakeEvent[] = [];
  #n = 0;
  readonly #rand: () => number;
  maxPageSize: number | undefined;
  requests = 0;
  /** Called before each page is served (mutations between requests). */
  beforeServe: (() => void) | undefined;
  /** Shuffle rows that share `created` on every request (PostgreSQL gives no tie order). */
  shuffleTies = true;
  /** Whether `-created,pk` is honoured (ties by ascending pk); real 2023.10.7 and 2025.12.4 do. */
  honoursPk = true;
  /** Called between the COUNT and the rows of a page (Django's two queries). */
  betweenCountAndRows: (() => void) | undefined;
  /** Rows rendered without a valid `created` (malformed). */
  readonly malformed = new Set<string>();

  constructor(seed = 1) {
    this.#rand = prng(seed);
  }

  newPk(): string {
    const n = ++this.#n;
    const hex = n.toString(16).padStart(12, '0');
    return `00000000-0000-4000-8000-${hex}`;
  }

  /** Adds an event (kept sorted descending by created). */
  add(c: bigint, pk = this.newPk()): string {
    const row = { pk, c };
    let i = this.rows.findIndex((r) => r.c < c);
    if (i < 0) i = this.rows.length;
    this.rows.splice(i, 0, row);
    return pk;
  }

  /** Seeds n events spaced `stepUs` apart ending at `newest`, with some ties when `ties`. */
  seed(n: number, newest: bigint, stepUs = 1_000_000n, ties = false): void {
    let c = newest;
    for (let i = 0; i < n; i++) {
      this.rows.push({ pk: this.newPk(), c });
      if (!ties || this.#rand() < 0.7) c -= stepUs;
    }
  }

  top(): bigint | undefined {
    return this.rows[0]?.c;
  }

  deleteAt(i: number): FakeEvent | undefined {
    return this.rows.splice(i, 1)[0];
  }

  random(): number {
    return this.#rand();
  }

  #ordered(byPk: boolean): FakeEvent[] {
    if (byPk) {
      return this.rows.slice().sort((a, b) => (a.c > b.c ? -1 : a.c < b.c ? 1 : a.pk < b.pk ? -1 : 1));
    }
    if (!this.shuffleTies) return this.rows;
    const out = this.rows.slice();
    let i = 0;
    while (i < out.length) {
      let j = i + 1;
      while (j < out.length && out[j]!.c === out[i]!.c) j++;
      for (let k = j - 1; k > i; k--) {
        const x = i + Math.floor(this.#rand() * (k - i + 1));
        [out[k], out[x]] = [out[x]!, out[k]!];
      }
      i = j;
    }
    return out;
  }

  /** Serves a page like authentik (404 Invalid page past the end, clamp, 1-based pages). */
  page(size: number, page: number, ordering = '-created'): Page {
    this.requests++;
    this.beforeServe?.();
    const eff = this.maxPageSize !== undefined ? Math.min(size, this.maxPageSize) : size;
    const count = this.rows.length;
    const pages = count === 0 ? 1 : Math.ceil(count / eff);
    if (page < 1 || page > pages) throw new InvalidPageError(`page=${page}`);
    const race = this.betweenCountAndRows;
    this.betweenCountAndRows = undefined;
    race?.();
    const all = this.#ordered(this.honoursPk && ordering === '-created,pk');
    const slice = all.slice((page - 1) * eff, page * eff);
    const results = slice.map((r) => ({
      pk: r.pk,
      created: this.malformed.has(r.pk) ? 'not a date' : formatMicros(r.c),
      action: 'login',
    }));
    const text = JSON.stringify({ results });
    return {
      next: page < pages ? page + 1 : 0,
      previous: page > 1 ? page - 1 : 0,
      count,
      current: page,
      startIndex: count === 0 ? 0 : (page - 1) * eff + 1,
      endIndex: page === pages ? count : page * eff,
      results,
      envelope: { pagination: {} },
      text,
    };
  }
}

/** In-memory storage extension. `crash()` makes every later write fail (the process "died"). */
export class MemoryStorage implements StorageExtension {
  readonly data = new Map<string, Map<string, Buffer>>();
  writes = 0;
  crashed = false;
  /** When set, called on each write; throwing makes the write fail. */
  onWrite: ((key: string) => void) | undefined;

  start(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
  crash(): void {
    this.crashed = true;
  }
  /** A fresh "process" sees the same data. */
  revive(): void {
    this.crashed = false;
  }

  getClient(_kind: ComponentKind, id: string, stableKey?: string): Promise<StorageClient> {
    const key = stableKey ?? id;
    let m = this.data.get(key);
    if (!m) this.data.set(key, (m = new Map<string, Buffer>()));
    const map = m;
    let closed = false;
    return Promise.resolve({
      get: (k: string) => Promise.resolve(map.get(k)),
      set: (k: string, v: Buffer) => {
        if (this.crashed) return Promise.reject(new Error('storage unavailable (simulated crash)'));
        if (closed) return Promise.reject(new Error('storage client closed'));
        this.onWrite?.(k);
        this.writes++;
        map.set(k, Buffer.from(v));
        return Promise.resolve();
      },
      delete: (k: string) => {
        map.delete(k);
        return Promise.resolve();
      },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    });
  }

  getDirectory(): Promise<string> {
    return Promise.reject(new Error('not supported by MemoryStorage'));
  }
}
