/**
 * `event.original` and the document id.
 *
 * Elastic's CEL input publishes each API record as `{"message": <record>.encode_json()}`. mito's
 * `encode_json` (elastic/mito `lib/json.go`) passes the decoded record (`map[string]any`) to Go's
 * `json.Marshal`, so the bytes are Go's default encoding:
 *   - object keys sorted by byte order of their UTF-8 form, no whitespace;
 *   - numbers are float64 (JSON decoding in Go yields float64) printed in the shortest form, plain
 *     between 1e-6 and 1e21 and with an exponent outside (`1e+21`, `1e-7`) — the same digits as
 *     JavaScript's `String(n)`, except that Go keeps the sign of negative zero;
 *   - strings with HTML escaping ON: `<` `>` `&` become `\u003c` `\u003e` `\u0026`, U+2028/U+2029 become
 *     `\u2028`/`\u2029`; `"` `\\` `\n` `\r` `\t` and (Go >= 1.22) `\b` `\f` use short escapes, other
 *     control characters `\u00XX` (lower-case hex); everything else, including non-ASCII, is raw UTF-8;
 *   - text that is not valid Unicode was already replaced by U+FFFD when Go decoded the API response,
 *     so a lone UTF-16 surrogate here is written as a raw U+FFFD.
 *
 * The document id is the Elasticsearch `fingerprint` processor over `event.original` with default
 * settings: base64(SHA-1(0x00 || UTF-8 bytes)).
 */
import { hash } from 'node:crypto';

// eslint-disable-next-line no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;
const HEX = '0123456789abcdef';

function escapeSlow(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    if (c < 0x20) {
      switch (c) {
        case 0x0a:
          rep = '\\n';
          break;
        case 0x0d:
          rep = '\\r';
          break;
        case 0x09:
          rep = '\\t';
          break;
        case 0x08:
          rep = '\\b';
          break;
        case 0x0c:
          rep = '\\f';
          break;
        default:
          rep = `\\u00${HEX[c >> 4]!}${HEX[c & 15]!}`;
      }
    } else if (c === 0x22) rep = '\\"';
    else if (c === 0x5c) rep = '\\\\';
    else if (c === 0x3c) rep = '\\u003c';
    else if (c === 0x3e) rep = '\\u003e';
    else if (c === 0x26) rep = '\\u0026';
    else if (c === 0x2028) rep = '\\u2028';
    else if (c === 0x2029) rep = '\\u2029';
    else if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair stays as it is
        continue;
      }
      rep = '\ufffd';
    }
    if (rep !== undefined) {
      out += s.slice(start, i) + rep;
      start = i + 1;
    }
  }
  return `${out}${s.slice(start)}"`;
}

/** A JSON string literal exactly as Go's `encoding/json` writes it (HTML-safe). */
export function goString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? escapeSlow(s) : `"${s}"`;
}

/** Replaces lone surrogates by U+FFFD (what a Go string holds after decoding). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\ufffd');
}

const HAS_HIGH = /[\ud800-\uffff]/;

/** Byte order of UTF-8 (= code point order) for well-formed strings. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

function goNumber(n: number): string {
  if (!Number.isFinite(n)) return 'null';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  return String(n);
}

function sortedKeys(o: Record<string, unknown>): { keys: string[]; source: string[] } {
  const raw = Object.keys(o);
  let special = false;
  for (const k of raw) {
    if (HAS_HIGH.test(k)) {
      special = true;
      break;
    }
  }
  if (!special) {
    const keys = raw.sort();
    return { keys, source: keys };
  }
  // Keys with surrogates: sanitise like Go's decoder (later duplicates win) and sort by code point.
  const byKey = new Map<string, string>();
  for (const k of raw) byKey.set(wellFormed(k), k);
  const keys = [...byKey.keys()].sort(compareCodePoints);
  return { keys, source: keys.map((k) => byKey.get(k)!) };
}

function encode(v: unknown, depth: number): string {
  if (depth > 10_000) throw new RangeError('value nested too deeply to encode');
  switch (typeof v) {
    case 'string':
      return goString(v);
    case 'number':
      return goNumber(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'object': {
      if (v === null) return 'null';
      if (Array.isArray(v)) {
        let out = '[';
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out += ',';
          out += encode(v[i], depth + 1);
        }
        return `${out}]`;
      }
      if (v instanceof Uint8Array)
        return `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`;
      const o = v as Record<string, unknown>;
      const { keys, source } = sortedKeys(o);
      let out = '{';
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const val = o[source[i]!];
        if (val === undefined || typeof val === 'function' || typeof val === 'symbol') continue;
        if (!first) out += ',';
        first = false;
        out += `${goString(keys[i]!)}:${encode(val, depth + 1)}`;
      }
      return `${out}}`;
    }
    default:
      // undefined / functions / symbols are not JSON values; Go would not see them at all.
      return 'null';
  }
}

const SLOW = Symbol('slow');
/** Canonical array-index keys: V8 orders them numerically before all others, whatever the insertion order. */
const SPECIAL_KEY = /^(?:0|[1-9]\d{0,9}|__proto__)$|[\ud800-\uffff]/;
type Copier = (o: Record<string, unknown>, depth: number) => unknown;

/**
 * Object shapes (the keys in insertion order) as a trie walked with `for…in`, so finding an object's
 * shape allocates nothing. A shape seen twice gets a generated copier: it reads the keys in Go's order and
 * returns an object literal with them in that order — one allocation with the final hidden class and
 * monomorphic property access instead of a generic loop of keyed loads and stores. Records of one kind
 * repeat the same few dozen shapes. Keys are embedded as JSON string literals (valid JavaScript string
 * literals); `__proto__` and index-like keys never get here (SPECIAL_KEY sends them to the hand-written
 * encoder). Shapes seen once, and any shape once the trie is full, take the generic copy.
 */
interface ShapeNode {
  next: Map<string, ShapeNode> | undefined;
  /** undefined: not seen as a complete shape yet; null: needs the hand-written encoder. */
  copier: Copier | null | undefined;
  seen: number;
}
const root: ShapeNode = { next: undefined, copier: undefined, seen: 0 };
let nodes = 0;
const MAX_NODES = 50_000;

/**
 * `inOrder`: the object's keys are already in Go's order, so when no value below needed a copy the
 * object itself is returned (a plain object: its own keys are all JSON.stringify looks at).
 */
function makeCopier(sorted: readonly string[], inOrder: boolean): Copier {
  const lines: string[] = [];
  const fields: string[] = [];
  const same: string[] = [];
  sorted.forEach((k, i) => {
    const lit = JSON.stringify(k);
    // Leaves are checked inline (no call): only objects, -0 and bigints need `sortedCopy`.
    lines.push(
      `let v${i} = o[${lit}];`,
      `if (typeof v${i} === 'object' ? v${i} !== null : v${i} === 0 || typeof v${i} === 'bigint') {`,
      `v${i} = copy(v${i}, d); if (v${i} === SLOW) return SLOW; }`,
    );
    fields.push(`${lit}: v${i}`);
    same.push(`v${i} === o[${lit}]`);
  });
  const reuse = inOrder && same.length > 0 ? `if (${same.join(' && ')}) return o;` : '';
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from JSON-quoted keys only
  const make = new Function(
    'copy',
    'SLOW',
    `return function copyShape(o, depth) { const d = depth + 1; ${lines.join(' ')} ${reuse} return { ${fields.join(', ')} }; };`,
  ) as (copy: (v: unknown, depth: number) => unknown, slow: symbol) => Copier;
  return make(sortedCopy, SLOW);
}

/** The generic copy (no generated code): keys sorted per call. */
function genericCopy(o: Record<string, unknown>, depth: number): unknown {
  const keys = Object.keys(o);
  if (keys.some((k) => SPECIAL_KEY.test(k))) return SLOW;
  keys.sort();
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const c = sortedCopy(o[k], depth + 1);
    if (c === SLOW) return SLOW;
    out[k] = c;
  }
  return out;
}

function copyObject(o: Record<string, unknown>, depth: number): unknown {
  const proto: unknown = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) return genericCopy(o, depth);
  let node = root;
  for (const k in o) {
    let n = node.next?.get(k);
    if (n === undefined) {
      if (nodes >= MAX_NODES) return genericCopy(o, depth);
      n = { next: undefined, copier: undefined, seen: 0 };
      (node.next ??= new Map()).set(k, n);
      nodes++;
    }
    node = n;
  }
  let c = node.copier;
  if (c === undefined) {
    if (++node.seen < 2) return genericCopy(o, depth);
    const keys = Object.keys(o);
    if (keys.some((k) => SPECIAL_KEY.test(k))) c = null;
    else {
      const sorted = [...keys].sort();
      c = makeCopier(
        sorted,
        sorted.every((k, i) => k === keys[i]),
      );
    }
    node.copier = c;
  }
  return c === null ? SLOW : c(o, depth);
}

/**
 * A copy of `v` whose objects have their keys in Go's order, for the native JSON.stringify; SLOW when
 * the value needs the hand-written encoder (index-like or surrogate keys, bytes, -0, deep nesting).
 */
function sortedCopy(v: unknown, depth: number): unknown {
  if (typeof v !== 'object' || v === null) {
    if (typeof v === 'number' && v === 0 && Object.is(v, -0)) return SLOW;
    if (typeof v === 'bigint') return SLOW;
    return v;
  }
  if (depth > 1000) return SLOW;
  if (Array.isArray(v)) {
    // Unchanged elements: the array itself (no allocation until an element needed a copy).
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      // Strings, booleans, null and non-zero numbers are their own copy (checked without a call).
      const c =
        typeof x === 'object'
          ? x === null
            ? x
            : sortedCopy(x, depth + 1)
          : x === 0 || typeof x === 'bigint'
            ? sortedCopy(x, depth + 1)
            : x;
      if (c === SLOW) return SLOW;
      if (out === undefined && c !== x) out = v.slice(0, i);
      if (out !== undefined) out.push(c);
    }
    return out ?? v;
  }
  if (v instanceof Uint8Array) return SLOW;
  return copyObject(v as Record<string, unknown>, depth);
}

const HTML_OR_SEPARATOR = /[<>&\u2028\u2029]/;
const HTML_OR_SEPARATOR_G = /[<>&\u2028\u2029]/g;
const HTML_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};

/**
 * Compact JSON with keys sorted at every level, byte-compatible with mito's `encode_json` (Go
 * `json.Marshal` of the decoded record). Non-finite numbers, which Go refuses to encode, become null.
 *
 * Fast path: a key-sorted copy serialised by the native JSON.stringify, whose escaping equals Go's
 * except for the HTML characters and U+2028/U+2029 (patched afterwards) and lone surrogates (written as
 * `\udXXX`; any `\ud` in the output falls back to the hand-written encoder, which is always exact).
 */
export function goJson(v: unknown): string {
  const copy = sortedCopy(v, 0);
  if (copy === SLOW) return encode(v, 0);
  const out = JSON.stringify(copy);
  if (out === undefined) return 'null';
  if (out.includes('\\ud')) return encode(v, 0);
  return HTML_OR_SEPARATOR.test(out) ? out.replace(HTML_OR_SEPARATOR_G, (c) => HTML_ESCAPES[c]!) : out;
}

/** The hand-written encoder alone (used by tests to cross-check the fast path). */
export function goJsonSlow(v: unknown): string {
  return encode(v, 0);
}

/**
 * Scratch buffer for `fingerprint`: the 0x00 prefix and the UTF-8 bytes are written into it, so hashing
 * allocates neither the prefixed string (a flat copy of the text) nor a byte buffer per call.
 */
let scratch = Buffer.alloc(64 * 1024);

/** Elasticsearch `fingerprint` of one string field: base64(SHA-1(0x00 || UTF-8(text))). */
export function fingerprint(original: string): string {
  // One UTF-16 unit becomes at most 3 UTF-8 bytes (a surrogate pair: 4 bytes for 2 units; a lone
  // surrogate: the 3 bytes of U+FFFD, as the string conversion writes it). `write` stops before a
  // character that does not fit, so the buffer must hold the worst case.
  const max = original.length * 3 + 1;
  if (max > scratch.length) {
    // Texts of more than ~350k characters are hashed without the buffer (it is not kept that large).
    if (max > 1024 * 1024) return hash('sha1', `\u0000${original}`, 'base64');
    scratch = Buffer.alloc(2 ** Math.ceil(Math.log2(max)));
  }
  scratch[0] = 0;
  const n = scratch.write(original, 1, 'utf8');
  return hash('sha1', scratch.subarray(0, n + 1), 'base64');
}
