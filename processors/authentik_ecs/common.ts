/**
 * Building blocks that reproduce the semantics of the Elasticsearch ingest processors used by Elastic's
 * authentik integration: value rendering as Java would print it, `convert`, `append` (de-duplicating),
 * copy-with-`ignore_empty_value`, painless null-safe navigation (including the errors painless raises
 * when a path crosses a scalar), `error.message` entries and the final DROP-EMPTY script.
 *
 * Documents are plain JSON trees (objects, arrays, strings, numbers, booleans, null).
 */

/** A JSON object. */
export type JMap = Record<string, unknown>;

/** Version of the Elastic integration whose pipelines are reproduced (used in `error.message`). */
export const PACKAGE_VERSION = '1.10.0';
export const ECS_VERSION = '8.11.0';

export function isMap(v: unknown): v is JMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * A failure that Elastic's pipeline does not handle locally: processing stops and the pipeline-level
 * `on_failure` handler runs (ERR + `event.kind: pipeline_error` + tag `preserve_original_event`).
 */
export class PipelineFailure extends Error {
  readonly processorType: string;
  readonly tag: string;
  constructor(processorType: string, tag: string, message: string) {
    super(message);
    this.name = 'PipelineFailure';
    this.processorType = processorType;
    this.tag = tag;
  }
}

/** A runtime error raised by a painless expression (condition or script). */
export class PainlessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PainlessError';
  }
}

/** A failed conversion inside a processor (`convert`, `date`, ...); handled by the processor's on_failure. */
export class ConvertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConvertError';
  }
}

/** The error entry format of the integration (`_ingest.on_failure_*` rendered by mustache). */
export function errorText(processorType: string, tag: string, pipeline: string, message: string): string {
  return `Processor ${processorType} with tag ${tag} in pipeline ${pipeline} failed with message: ${message}`;
}

/** Appends one entry to `error.message` (created as a list, as the `append` processor does). */
export function appendError(doc: JMap, text: string): void {
  let err = doc['error'];
  if (!isMap(err)) {
    err = {};
    doc['error'] = err;
  }
  const e = err as JMap;
  const m = e['message'];
  if (m === undefined || m === null) e['message'] = [text];
  else if (Array.isArray(m)) m.push(text);
  else e['message'] = [m, text];
}

// ---------------------------------------------------------------------------------------------------
// Java rendering of values

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/**
 * The Java class name Elasticsearch would report for a parsed JSON value (Jackson: int-sized integers
 * are Integer, larger ones Long, fractions Double; objects HashMap, arrays ArrayList).
 */
export function javaClass(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return 'java.lang.String';
    case 'boolean':
      return 'java.lang.Boolean';
    case 'number':
      if (Number.isInteger(v) && !exponentForm(v)) {
        if (v >= INT_MIN && v <= INT_MAX) return 'java.lang.Integer';
        if (Math.abs(v) < 2 ** 63) return 'java.lang.Long';
        return 'java.math.BigInteger';
      }
      return 'java.lang.Double';
    default:
      if (Array.isArray(v)) return 'java.util.ArrayList';
      if (v instanceof Uint8Array) return '[B';
      return 'java.util.HashMap';
  }
}

/**
 * True for a whole number that reaches Elasticsearch in exponent form and is therefore parsed as a
 * Double: Go's encoder (Elastic's CEL input writes `event.original` with it) prints float64 values from
 * 1e21 up as `1e+21`, and Jackson reads any number with an exponent as a Double. Below 1e21 whole
 * numbers are written as digits and parsed as Integer/Long/BigInteger.
 */
function exponentForm(v: number): boolean {
  return v >= 1e21 || v <= -1e21;
}

/** Java `Double.toString`: shortest digits; scientific notation below 1e-3 and from 1e7. */
export function javaDouble(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (d === 0) return Object.is(d, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(d);
  if (abs >= 1e-3 && abs < 1e7) {
    const s = String(d);
    return s.includes('.') ? s : `${s}.0`;
  }
  // Java renders at least two significant digits: with a one-digit shortest form it takes the
  // two-digit decimal closest to the value (1e21 → 1.0E21, but Double.MIN_VALUE → 4.9E-324).
  let [mant = '', exp = '0'] = d.toExponential().split('e');
  if (!mant.includes('.')) [mant = '', exp = '0'] = d.toExponential(1).split('e');
  return `${mant}E${exp.startsWith('+') ? exp.slice(1) : exp}`;
}

/** Java `Object.toString()` of a parsed JSON value (what `convert` to string and mustache produce). */
export function javaString(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (Number.isInteger(v) && !exponentForm(v))
        return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
      return javaDouble(v);
    case 'undefined':
      return 'null';
    default:
      if (v === null) return 'null';
      if (Array.isArray(v)) return `[${v.map(javaString).join(', ')}]`;
      if (v instanceof Uint8Array) return `[B@${v.length.toString(16)}`;
      return `{${Object.keys(v as JMap)
        .map((k) => `${k}=${javaString((v as JMap)[k])}`)
        .join(', ')}}`;
  }
}

/**
 * Mustache `{{{field}}}` rendering as Elasticsearch's template engine does it: null renders as the empty
 * string; a list is first wrapped in a map from index to element (so `{{x.0}}` works), which prints like
 * Java's `AbstractMap.toString`: `["a"]` → `{0=a}`, `["a", "b"]` → `{0=a, 1=b}`, `[]` → `{}`. Elements are
 * printed with their own `toString`, so a nested list shows as `[x, y]` and a nested map as `{k=v}`
 * (`[["x"]]` → `{0=[x]}`). Maps, strings, numbers and booleans print as `javaString` does.
 */
export function render(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) {
    let out = '{';
    for (let i = 0; i < v.length; i++) out += `${i > 0 ? ', ' : ''}${i}=${javaString(v[i])}`;
    return `${out}}`;
  }
  return javaString(v);
}

// ---------------------------------------------------------------------------------------------------
// Field access

/**
 * IngestDocument-style lookup with `ignore_missing`: walks objects only; any step that is absent or not
 * an object yields undefined. A present `null` is returned as null.
 */
export function getPath(root: unknown, path: readonly string[]): unknown {
  let cur = root;
  for (const k of path) {
    if (!isMap(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** The parent object of `path` (all but the last key), or undefined when a step is not an object. */
export function getParent(root: unknown, path: readonly string[]): JMap | undefined {
  let cur = root;
  for (let i = 0; i < path.length - 1; i++) {
    if (!isMap(cur)) return undefined;
    cur = cur[path[i]!];
  }
  return isMap(cur) ? cur : undefined;
}

/** Removes `path` if present (the `remove` processor with `ignore_missing`). */
export function removePath(root: unknown, path: readonly string[]): void {
  const parent = getParent(root, path);
  const k = path[path.length - 1]!;
  if (parent && Object.hasOwn(parent, k)) delete parent[k];
}

/**
 * `removePath` for a removal that DROP-EMPTY follows with nothing reading the field in between: the
 * entry is set to undefined, which DROP-EMPTY leaves out (rebuilding the object with its other keys in
 * their order), instead of deleted — a `delete` of a property that was not the last one added turns the
 * object into a slow dictionary-mode object.
 */
export function removeBeforeDropEmpty(root: unknown, path: readonly string[]): void {
  const parent = getParent(root, path);
  const k = path[path.length - 1]!;
  if (parent && Object.hasOwn(parent, k)) parent[k] = undefined;
}

/** One painless null-safe step `v?.key` as evaluated inside an ingest condition. */
export function painlessGet(v: unknown, key: string): unknown {
  if (v === null || v === undefined) return null;
  if (isMap(v)) {
    const r = v[key];
    return r === undefined ? null : r;
  }
  if (Array.isArray(v)) {
    if (/^\d+$/.test(key)) {
      const i = Number(key);
      if (i >= v.length) throw new PainlessError(`Index ${i} out of bounds for length ${v.length}`);
      return v[i];
    }
    throw new PainlessError(`Illegal list shortcut value [${key}].`);
  }
  throw new PainlessError(`dynamic getter [${javaClass(v)}, ${key}] not found`);
}

/** `start?.k1?.k2...` with painless semantics (throws PainlessError when crossing a scalar). */
export function painlessChain(start: unknown, ...keys: string[]): unknown {
  let cur = start;
  for (const k of keys) cur = painlessGet(cur, k);
  return cur;
}

/** Class name painless reports for a value seen through an ingest condition (maps are wrapped). */
export function conditionClass(v: unknown): string {
  // Painless reports the canonical class name (nested classes joined with a dot, not Java's `$`).
  if (isMap(v)) return 'org.elasticsearch.ingest.ConditionalProcessor.UnmodifiableIngestData';
  if (Array.isArray(v)) return 'org.elasticsearch.ingest.ConditionalProcessor.UnmodifiableIngestList';
  return javaClass(v);
}

/** Painless `v.contains('@')` inside a condition. */
export function painlessContains(v: unknown, needle: string): boolean {
  if (typeof v === 'string') return v.includes(needle);
  if (Array.isArray(v)) return v.includes(needle);
  throw new PainlessError(`dynamic method [${conditionClass(v)}, contains/1] not found`);
}

/** `set` with `copy_from` and `ignore_empty_value`: the value to copy, or undefined to skip. */
export function copyValue(v: unknown): unknown {
  return v === undefined || v === null || v === '' ? undefined : v;
}

/** `append` with `allow_duplicates: false` into `obj[key]`. */
export function appendUnique(obj: JMap, key: string, value: unknown): void {
  const cur = obj[key];
  if (cur === undefined || cur === null) {
    obj[key] = [value];
  } else if (Array.isArray(cur)) {
    if (!cur.includes(value)) cur.push(value);
  } else if (cur !== value) {
    obj[key] = [cur, value];
  }
}

/** Returns `obj[key]` as an object, creating it when absent (ECS parents such as `related`). */
export function child(obj: JMap, key: string): JMap {
  const cur = obj[key];
  if (isMap(cur)) return cur;
  const c: JMap = {};
  obj[key] = c;
  return c;
}

// ---------------------------------------------------------------------------------------------------
// convert processor

const NPE_MESSAGE = 'Cannot invoke "Object.toString()" because "value" is null';

function convertEach(v: unknown, one: (x: unknown) => unknown): unknown {
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x === null || x === undefined) throw new ConvertError(NPE_MESSAGE);
      out[i] = one(x);
    }
    return out;
  }
  return one(v);
}

export function toStringValue(v: unknown): unknown {
  return convertEach(v, javaString);
}

function booleanOne(x: unknown): boolean {
  if (typeof x === 'boolean') return x;
  const s = javaString(x);
  const l = s.toLowerCase();
  if (l === 'true') return true;
  if (l === 'false') return false;
  throw new ConvertError(`[${s}] is not a boolean value, cannot convert to boolean`);
}

export function toBooleanValue(v: unknown): unknown {
  return convertEach(v, booleanOne);
}

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

function longOne(x: unknown): number {
  const s = javaString(x);
  let big: bigint | undefined;
  if (/^[+-]?\d+$/.test(s)) big = BigInt(s);
  else if (/^-?0x[0-9a-fA-F]+$/.test(s)) big = s.startsWith('-') ? -BigInt(s.slice(1)) : BigInt(s);
  if (big === undefined || big < LONG_MIN || big > LONG_MAX) {
    throw new ConvertError(`For input string: "${s}"`);
  }
  return Number(big);
}

export function toLongValue(v: unknown): unknown {
  return convertEach(v, longOne);
}

// ---------------------------------------------------------------------------------------------------
// IP literals (convert type ip / geoip input)

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for an IPv4 or IPv6 literal (IPv6 may carry a `%scope` suffix, which is ignored). */
export function isIpLiteral(s: string): boolean {
  if (IPV4.test(s)) return true;
  if (!s.includes(':')) return false;
  const pct = s.indexOf('%');
  const addr = pct >= 0 ? s.slice(0, pct) : s;
  if (pct >= 0 && pct === s.length - 1) return false;
  return isIpv6(addr);
}

const HEX4 = /^[0-9a-fA-F]{1,4}$/;

function isIpv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  let str = s;
  const lastColon = str.lastIndexOf(':');
  const tail = str.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!IPV4.test(tail)) return false;
    str = `${str.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = str.indexOf('::');
  if (dbl < 0) {
    const g = str.split(':');
    return g.length === 8 && g.every((x) => HEX4.test(x));
  }
  if (str.indexOf('::', dbl + 1) >= 0) return false;
  const left = str.slice(0, dbl);
  const right = str.slice(dbl + 2);
  const groups = [...(left === '' ? [] : left.split(':')), ...(right === '' ? [] : right.split(':'))];
  return groups.length <= 7 && groups.every((x) => HEX4.test(x));
}

/** `convert` to type `ip`: the value must be a string literal; stays unchanged. */
export function toIpValue(v: unknown): unknown {
  const one = (x: unknown): unknown => {
    if (typeof x !== 'string') {
      const cls = javaClass(x);
      throw new ConvertError(
        `class ${cls} cannot be cast to class java.lang.String (${cls} and java.lang.String are in module java.base of loader 'bootstrap')`,
      );
    }
    if (!isIpLiteral(x)) throw new ConvertError(`'${x}' is not an IP string literal.`);
    return x;
  };
  if (Array.isArray(v)) return v.map(one);
  return one(v);
}

// ---------------------------------------------------------------------------------------------------
// DROP-EMPTY

const DROP = Symbol('drop');

function setOwn(o: JMap, k: string, v: unknown): void {
  if (k === '__proto__')
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

function clean(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return DROP;
  if (typeof v !== 'object') return v;
  return cleanContainer(v);
}

/** `clean` of a non-null object: a list, bytes or a map. */
function cleanContainer(v: object): unknown {
  if (Array.isArray(v)) {
    let w = 0;
    for (let r = 0; r < v.length; r++) {
      const x: unknown = v[r];
      // Scalars other than null and "" are kept as they are (no call).
      if (x === null || x === undefined || x === '') continue;
      const c = typeof x === 'object' ? cleanContainer(x) : x;
      if (c !== DROP) v[w++] = c;
    }
    if (w !== v.length) v.length = w;
    return w === 0 ? DROP : v;
  }
  if (v instanceof Uint8Array) return v;
  const o = v as JMap;
  let drops = 0;
  let kept = 0;
  for (const k in o) {
    const cur = o[k];
    // DROP: an entry marked by an earlier pass over the same object (values copied to ECS fields
    // share objects with authentik.*).
    if (cur === null || cur === undefined || cur === '' || cur === DROP) {
      drops++;
      continue;
    }
    if (typeof cur === 'object') {
      const c = cleanContainer(cur);
      if (c === DROP) {
        // Marked in place (same key, so the object keeps its shape); filtered out below.
        o[k] = DROP;
        drops++;
        continue;
      }
      if (c !== cur) o[k] = c;
    }
    kept++;
  }
  if (kept === 0) return DROP;
  if (drops === 0) return o;
  // Rebuilt instead of using `delete`, so the object keeps fast properties (cheaper to serialise later).
  const out: JMap = {};
  for (const k in o) {
    const c = o[k];
    if (c !== DROP && c !== null && c !== undefined && c !== '') setOwn(out, k, c);
  }
  return out;
}

/**
 * The integration's final script: recursively removes null and "" values, then every object or list that
 * is (or became) empty. Returns the cleaned root (a new object when something at the top level changed).
 */
export function dropEmpty(doc: JMap): JMap {
  const c = clean(doc);
  return c === DROP ? {} : (c as JMap);
}
