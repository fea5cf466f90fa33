/**
 * Query semantics shared by the list endpoints: DRF ordering, DRF SearchFilter term splitting,
 * PostgreSQL jsonb text rendering (what `icontains` on a JSONField matches against) and the
 * enterprise QL (DjangoQL) subset authentik exposes for events.
 */
import { parseIsoMicros } from './data.ts';

// ---------------------------------------------------------------------------------------------
// Ordering (DRF OrderingFilter): comma-separated, '-' prefix, invalid terms silently dropped;
// nothing valid left → the view's default ordering.
// ---------------------------------------------------------------------------------------------

export interface OrderTerm {
  field: string;
  desc: boolean;
}

export function parseOrdering(
  raw: string | undefined,
  valid: readonly string[],
  def: readonly string[],
): OrderTerm[] {
  const terms = (raw ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '' && valid.includes(t.replace(/^-/, '')));
  const use = terms.length > 0 ? terms : def;
  return use.map((t) => ({ field: t.replace(/^-/, ''), desc: t.startsWith('-') }));
}

/** SQL-like comparison: NULLs sort last ascending and first descending (PostgreSQL). */
export function compareValues(a: unknown, b: unknown): number {
  const an = a === null || a === undefined;
  const bn = b === null || b === undefined;
  if (an || bn) return an && bn ? 0 : an ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  const as = typeof a === 'string' ? a : jsonbText(a);
  const bs = typeof b === 'string' ? b : jsonbText(b);
  return as < bs ? -1 : as > bs ? 1 : 0;
}

export function sortBy<T>(
  items: T[],
  terms: readonly OrderTerm[],
  get: (item: T, field: string) => unknown,
): T[] {
  return items.sort((x, y) => {
    for (const t of terms) {
      const c = compareValues(get(x, t.field), get(y, t.field));
      if (c !== 0) {
        // NULLS LAST for ASC and NULLS FIRST for DESC is exactly the reversal of the ASC order.
        return t.desc ? -c : c;
      }
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL jsonb text (`value::text`): object keys ordered by length then bytes, ", " and ": ".
// ---------------------------------------------------------------------------------------------

const keyOrderCache = new Map<string, string[]>();
function jsonbKeys(obj: object): string[] {
  const raw = Object.keys(obj);
  const sig = raw.join('\u0000');
  let keys = keyOrderCache.get(sig);
  if (!keys) {
    keys = raw.slice().sort((a, b) => {
      const la = Buffer.byteLength(a);
      const lb = Buffer.byteLength(b);
      return la !== lb ? la - lb : a < b ? -1 : a > b ? 1 : 0;
    });
    if (keyOrderCache.size < 10_000) keyOrderCache.set(sig, keys);
  }
  return keys;
}

export function jsonbText(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ', ') + jsonbText(v[i]);
    return s + ']';
  }
  let s = '{';
  let first = true;
  for (const k of jsonbKeys(v)) {
    s += (first ? '' : ', ') + JSON.stringify(k) + ': ' + jsonbText((v as Record<string, unknown>)[k]);
    first = false;
  }
  return s + '}';
}

// ---------------------------------------------------------------------------------------------
// DRF SearchFilter: terms split on whitespace and commas, quoted phrases kept together; every term
// must match (AND) at least one search field (OR), case-insensitively.
// ---------------------------------------------------------------------------------------------

export function searchTerms(raw: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\S+)/g;
  const s = raw.replace(/\0/g, '');
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    if (m[1] !== undefined) out.push(m[1].replace(/\\(.)/g, '$1'));
    else if (m[2] !== undefined) out.push(m[2].replace(/\\(.)/g, '$1'));
    else for (const sub of m[3]!.split(',')) if (sub.trim() !== '') out.push(sub.trim());
  }
  return out.filter((t) => t !== '');
}

export function matchesTerms(terms: readonly string[], fields: () => Iterable<string>): boolean {
  if (terms.length === 0) return true;
  const lowered = terms.map((t) => t.toLowerCase());
  const remaining = new Set(lowered);
  for (const f of fields()) {
    const lf = f.toLowerCase();
    for (const t of remaining) if (lf.includes(t)) remaining.delete(t);
    if (remaining.size === 0) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Enterprise QL (DjangoQL subset): comparisons joined by and/or with parentheses.
// ---------------------------------------------------------------------------------------------

export type QlValue = string | number | boolean | null | Array<string | number>;
export type QlNode =
  | { kind: 'cmp'; path: string[]; op: string; value: QlValue }
  | { kind: 'logic'; op: 'and' | 'or'; left: QlNode; right: QlNode };

export class QlError extends Error {}

interface Tok {
  t: 'name' | 'str' | 'num' | 'op' | 'lp' | 'rp' | 'comma' | 'kw';
  v: string;
}

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === ',') {
      toks.push({ t: c === '(' ? 'lp' : c === ')' ? 'rp' : 'comma', v: c });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      let v = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\' && j + 1 < src.length) {
          const n = src[j + 1]!;
          v += n === 'n' ? '\n' : n === 't' ? '\t' : n;
          j += 2;
        } else v += src[j++];
      }
      if (j >= src.length) throw new QlError('unterminated string');
      toks.push({ t: 'str', v });
      i = j + 1;
    } else if (/[<>=!~]/.test(c)) {
      const two = src.slice(i, i + 2);
      const op = ['>=', '<=', '!=', '!~'].includes(two)
        ? two
        : ['>', '<', '=', '~'].includes(c)
          ? c
          : undefined;
      if (op === undefined) throw new QlError(`unexpected ${c}`);
      toks.push({ t: 'op', v: op });
      i += op.length;
    } else if (/[-\d]/.test(c)) {
      const m = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(src.slice(i));
      if (!m) throw new QlError(`unexpected ${c}`);
      toks.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*/.exec(src.slice(i))!;
      const w = m[0];
      if (['and', 'or', 'in', 'not', 'True', 'False', 'None'].includes(w)) toks.push({ t: 'kw', v: w });
      else toks.push({ t: 'name', v: w });
      i += w.length;
    } else throw new QlError(`unexpected ${c}`);
  }
  return toks;
}

export function parseQl(src: string): QlNode {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const next = () => {
    const t = toks[p++];
    if (!t) throw new QlError('unexpected end of query');
    return t;
  };
  const value = (): QlValue => {
    const t = next();
    if (t.t === 'str') return t.v;
    if (t.t === 'num') return Number(t.v);
    if (t.t === 'kw' && t.v === 'True') return true;
    if (t.t === 'kw' && t.v === 'False') return false;
    if (t.t === 'kw' && t.v === 'None') return null;
    throw new QlError(`expected a value, got ${t.v}`);
  };
  const primary = (): QlNode => {
    const t = next();
    if (t.t === 'lp') {
      const e = orExpr();
      if (next().t !== 'rp') throw new QlError('expected )');
      return e;
    }
    if (t.t !== 'name') throw new QlError(`expected a field name, got ${t.v}`);
    let op: string;
    const o = next();
    if (o.t === 'op') op = o.v;
    else if (o.t === 'kw' && o.v === 'in') op = 'in';
    else if (o.t === 'kw' && o.v === 'not') {
      const n = next();
      if (n.t !== 'kw' || n.v !== 'in') throw new QlError('expected in');
      op = 'not in';
    } else throw new QlError(`expected an operator, got ${o.v}`);
    if (op === 'in' || op === 'not in') {
      if (next().t !== 'lp') throw new QlError('expected (');
      const list: Array<string | number> = [];
      for (;;) {
        const v = value();
        if (typeof v !== 'string' && typeof v !== 'number') throw new QlError('bad list item');
        list.push(v);
        const sep = next();
        if (sep.t === 'rp') break;
        if (sep.t !== 'comma') throw new QlError('expected , or )');
      }
      return { kind: 'cmp', path: t.v.split('.'), op, value: list };
    }
    return { kind: 'cmp', path: t.v.split('.'), op, value: value() };
  };
  const andExpr = (): QlNode => {
    let l = primary();
    while (peek()?.t === 'kw' && peek()?.v === 'and') {
      p++;
      l = { kind: 'logic', op: 'and', left: l, right: primary() };
    }
    return l;
  };
  const orExpr = (): QlNode => {
    let l = andExpr();
    while (peek()?.t === 'kw' && peek()?.v === 'or') {
      p++;
      l = { kind: 'logic', op: 'or', left: l, right: andExpr() };
    }
    return l;
  };
  const ast = orExpr();
  if (p !== toks.length) throw new QlError(`unexpected ${toks[p]!.v}`);
  return ast;
}

/** DjangoQL DateTimeField value: "YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS", naive UTC. */
export function qlDateTime(v: QlValue): number {
  if (typeof v !== 'string') throw new QlError('datetime field compared to a non-string');
  if (!/^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$/.test(v)) throw new QlError(`bad datetime ${v}`);
  const us = parseIsoMicros(v.replace(' ', 'T') + 'Z');
  if (Number.isNaN(us)) throw new QlError(`bad datetime ${v}`);
  return us;
}

/** The fields authentik's EventViewSet.get_ql_fields() exposes (QL schema validation). */
export const EVENT_QL_FIELDS = ['event_uuid', 'action', 'app', 'client_ip', 'created'];
export const EVENT_QL_JSON = ['user', 'brand', 'context'];

/** Validates the AST against the event QL schema; throws QlError (→ silent fallback to plain search). */
export function validateEventQl(n: QlNode): void {
  if (n.kind === 'logic') {
    validateEventQl(n.left);
    validateEventQl(n.right);
    return;
  }
  const [head, ...rest] = n.path;
  if (head === undefined) throw new QlError('empty field');
  if (EVENT_QL_JSON.includes(head)) {
    if (rest.length === 0) throw new QlError(`${head} needs a key`);
    return;
  }
  if (!EVENT_QL_FIELDS.includes(head) || rest.length > 0)
    throw new QlError(`Unknown field: ${n.path.join('.')}`);
  if (head === 'created') {
    if (n.op === '~' || n.op === '!~') return;
    if (Array.isArray(n.value)) n.value.forEach((v) => qlDateTime(v));
    else qlDateTime(n.value);
  }
}

/**
 * If the query is only `created` comparisons joined by `and`, returns the bounds as epoch µs
 * (lower inclusive flag, upper inclusive flag); otherwise undefined.
 */
export interface CreatedRange {
  lo: number;
  loIncl: boolean;
  hi: number;
  hiIncl: boolean;
}
export function createdRangeOf(n: QlNode): CreatedRange | undefined {
  const r: CreatedRange = { lo: -Infinity, loIncl: true, hi: Infinity, hiIncl: true };
  const visit = (x: QlNode): boolean => {
    if (x.kind === 'logic') return x.op === 'and' && visit(x.left) && visit(x.right);
    if (x.path.length !== 1 || x.path[0] !== 'created') return false;
    if (Array.isArray(x.value)) return false;
    const v = qlDateTime(x.value);
    const setLo = (val: number, incl: boolean) => {
      if (val > r.lo || (val === r.lo && !incl)) {
        r.lo = val;
        r.loIncl = incl;
      }
    };
    const setHi = (val: number, incl: boolean) => {
      if (val < r.hi || (val === r.hi && !incl)) {
        r.hi = val;
        r.hiIncl = incl;
      }
    };
    switch (x.op) {
      case '>=':
        setLo(v, true);
        return true;
      case '>':
        setLo(v, false);
        return true;
      case '<=':
        setHi(v, true);
        return true;
      case '<':
        setHi(v, false);
        return true;
      case '=':
        setLo(v, true);
        setHi(v, true);
        return true;
      default:
        return false;
    }
  };
  return visit(n) ? r : undefined;
}

function getPath(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Timestamp text as PostgreSQL renders timestamptz (for `created ~ "2026-01-30"`). */
function pgTimestampText(iso: string): string {
  return iso.replace('T', ' ').replace('Z', '+00');
}

/** Evaluates a validated event QL AST against a materialised event. */
export function evalEventQl(n: QlNode, ev: Record<string, unknown>): boolean {
  if (n.kind === 'logic')
    return n.op === 'and'
      ? evalEventQl(n.left, ev) && evalEventQl(n.right, ev)
      : evalEventQl(n.left, ev) || evalEventQl(n.right, ev);
  const [head] = n.path;
  let actual: unknown;
  if (head === 'event_uuid') actual = ev.pk;
  else if (head === 'created') {
    const iso = String(ev.created);
    if (n.op === '~' || n.op === '!~') {
      const has = pgTimestampText(iso).toLowerCase().includes(String(n.value).toLowerCase());
      return n.op === '~' ? has : !has;
    }
    const us = parseIsoMicros(iso);
    const vals = Array.isArray(n.value) ? n.value.map(qlDateTime) : [qlDateTime(n.value)];
    return cmp(us, n.op, vals);
  } else if (EVENT_QL_JSON.includes(head!)) actual = getPath(ev[head!], n.path.slice(1));
  else actual = ev[head!];
  if (n.op === '~' || n.op === '!~') {
    const has =
      actual !== null &&
      actual !== undefined &&
      scalarText(actual).toLowerCase().includes(String(n.value).toLowerCase());
    return n.op === '~' ? has : !has;
  }
  if (head === 'event_uuid' && typeof n.value === 'string') {
    const norm = (s: string) => s.replace(/-/g, '').toLowerCase();
    const vals = Array.isArray(n.value) ? n.value : [n.value];
    const eq = vals.some((v) => norm(String(v)) === norm(String(actual)));
    return n.op === '=' || n.op === 'in' ? eq : n.op === '!=' || n.op === 'not in' ? !eq : false;
  }
  return cmp(actual, n.op, Array.isArray(n.value) ? n.value : [n.value]);
}

function scalarText(v: unknown): string {
  return typeof v === 'string'
    ? v
    : typeof v === 'number' || typeof v === 'boolean'
      ? String(v)
      : jsonbText(v);
}

function cmp(actual: unknown, op: string, vals: readonly unknown[]): boolean {
  const v = vals[0];
  switch (op) {
    case '=':
      return v === null ? actual === null || actual === undefined : actual === v;
    case '!=':
      return v === null ? !(actual === null || actual === undefined) : actual !== v;
    case 'in':
      return vals.includes(actual);
    case 'not in':
      return !vals.includes(actual);
  }
  if (actual === null || actual === undefined || v === null || v === undefined) return false;
  const a = actual as number | string;
  const b = v as number | string;
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
  }
  return false;
}
