/**
 * Deterministic, stateless randomness for the emulator: every generated value is a pure function of
 * (seed, index, salt), so a record can be re-materialised at any time without storing it.
 */

/** 32-bit avalanche mix (murmur3 finaliser). */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Hash of (seed, index, salt) to an unsigned 32-bit integer. */
export function h32(seed: number, index: number, salt: number): number {
  let x = mix32((seed ^ 0x9e3779b9) >>> 0);
  x = mix32((x ^ Math.imul(index >>> 0, 0x27d4eb2d)) >>> 0);
  x = mix32((x ^ Math.floor(index / 0x100000000)) >>> 0);
  return mix32((x ^ Math.imul(salt, 0x165667b1)) >>> 0);
}

/** Uniform float in [0, 1) from (seed, index, salt). */
export function rand(seed: number, index: number, salt: number): number {
  return h32(seed, index, salt) / 0x100000000;
}

/** Integer in [0, n) from (seed, index, salt). */
export function pick(seed: number, index: number, salt: number, n: number): number {
  return Math.floor(rand(seed, index, salt) * n);
}

/** A sequential PRNG (mulberry32) for places where a stream is natural (users, groups, faults). */
export class Stream {
  #s: number;
  constructor(seed: number) {
    this.#s = mix32(seed >>> 0) || 1;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(arr: readonly T[]): T {
    return arr[this.int(arr.length)]!;
  }
  hex(len: number): string {
    let s = '';
    while (s.length < len)
      s += Math.floor(this.next() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return s.slice(0, len);
  }
  uuid(): string {
    return formatUuid(this.hex(32));
  }
}

/** 32 hex digits → v4-shaped UUID with dashes (version nibble 4, variant 8..b). */
export function formatUuid(hex32: string): string {
  const v = '4' + hex32.slice(13, 16);
  const variant = ((parseInt(hex32[16] ?? '0', 16) & 0x3) | 0x8).toString(16) + hex32.slice(17, 20);
  return `${hex32.slice(0, 8)}-${hex32.slice(8, 12)}-${v}-${variant}-${hex32.slice(20, 32)}`;
}

/** Two lowercase hex digits per byte value. */
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const hex8 = (n: number): string =>
  HEX2[(n >>> 24) & 0xff]! + HEX2[(n >>> 16) & 0xff]! + HEX2[(n >>> 8) & 0xff]! + HEX2[n & 0xff]!;

/**
 * Keyed bijection on 32-bit integers (4-round Feistel on 16-bit halves). Used to embed an event's
 * generator index into its pk so a pk can be decoded back to the index without any lookup table.
 */
const feistelCache = new Map<number, readonly number[]>();
function feistelKeys(seed: number): readonly number[] {
  let ks = feistelCache.get(seed);
  if (!ks) {
    ks = [1, 2, 3, 4].map((r) => h32(seed, r, 0xfe157e1));
    feistelCache.set(seed, ks);
  }
  return ks;
}
function round(x: number, k: number): number {
  return mix32((x ^ k) >>> 0) & 0xffff;
}
export function permute32(seed: number, x: number): number {
  const ks = feistelKeys(seed);
  let l = (x >>> 16) & 0xffff;
  let r = x & 0xffff;
  for (const k of ks) {
    const nl = r;
    r = l ^ round(r, k);
    l = nl;
  }
  return ((l << 16) | r) >>> 0;
}
export function unpermute32(seed: number, y: number): number {
  const ks = [...feistelKeys(seed)].reverse();
  let l = (y >>> 16) & 0xffff;
  let r = y & 0xffff;
  for (const k of ks) {
    const pr = l;
    l = r ^ round(l, k);
    r = pr;
  }
  return ((l << 16) | r) >>> 0;
}

/** Deterministic v4-shaped event uuid for generator index `gi` (first 8 hex digits encode gi). */
export function eventUuid(seed: number, gi: number): string {
  const hex =
    hex8(permute32(seed, gi)) + hex8(h32(seed, gi, 11)) + hex8(h32(seed, gi, 12)) + hex8(h32(seed, gi, 13));
  return formatUuid(hex);
}

/** Inverse of eventUuid's index embedding; the caller must verify by regenerating the uuid. */
export function eventIndexOf(seed: number, uuid: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid)) return undefined;
  return unpermute32(seed, parseInt(uuid.slice(0, 8), 16));
}

/** 32 lowercase hex digits (a UUID.hex as authentik's sanitize_item renders ids inside context). */
export function hexId(seed: number, index: number, salt: number): string {
  return (
    hex8(h32(seed, index, salt)) +
    hex8(h32(seed, index, salt + 1)) +
    hex8(h32(seed, index, salt + 2)) +
    hex8(h32(seed, index, salt + 3))
  );
}
