/**
 * Turns zod validation issues into {@link ConfigProblem}s: dotted paths, `file:line:column` of the
 * offending YAML node, one problem per unknown key (with a "did you mean"), readable messages that
 * never echo a value (values may be secrets).
 */
import type * as z from 'zod';
import type { ConfigProblem } from '../errors.ts';
import { formatPath } from './source.ts';
import type { ConfigPath, PathSegment, SourceMap } from './source.ts';
import { didYouMean } from './suggest.ts';

/**
 * Error map passed to `safeParse`: default messages in this project's wording. A schema's own
 * `error:` messages take precedence (zod's rule), so components keep theirs.
 */
export const configErrorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'is required';
      return `expected ${article(iss.expected)}, got ${typeName(iss.input)}`;
    case 'too_small':
      return sizeMessage('at least', iss.origin, iss.minimum, iss.inclusive !== false, iss.exact === true);
    case 'too_big':
      return sizeMessage('at most', iss.origin, iss.maximum, iss.inclusive !== false, iss.exact === true);
    case 'invalid_value':
      return iss.values.length === 1
        ? `must be ${JSON.stringify(iss.values[0])}`
        : `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return iss.format === 'regex'
        ? `must match ${iss.pattern ?? 'the expected pattern'}`
        : `must be a valid ${iss.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${iss.divisor}`;
    case 'unrecognized_keys':
      return `unknown key${iss.keys.length === 1 ? '' : 's'} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
    case 'invalid_key':
      return 'invalid key';
    case 'invalid_union': {
      const expected = unionExpectations(iss.errors);
      if (expected.length > 0) return `expected ${expected.join(' or ')}, got ${typeName(iss.input)}`;
      return 'does not match any allowed form';
    }
    default:
      return undefined;
  }
};

function unionExpectations(
  errors: readonly (readonly { code?: string; expected?: string; path?: unknown[] }[])[],
): string[] {
  const out: string[] = [];
  for (const branch of errors) {
    const first = branch[0];
    if (branch.length !== 1 || first?.code !== 'invalid_type' || (first.path?.length ?? 0) > 0) return [];
    const e = article(first.expected ?? 'value');
    if (!out.includes(e)) out.push(e);
  }
  return out;
}

function sizeMessage(
  bound: 'at least' | 'at most',
  origin: string,
  limit: number | bigint,
  inclusive: boolean,
  exact: boolean,
): string {
  const n = Number(limit);
  const what =
    origin === 'string'
      ? ' character'
      : origin === 'array' || origin === 'set'
        ? ' item'
        : origin === 'file'
          ? ' byte'
          : '';
  const unit = what === '' ? '' : `${what}${n === 1 ? '' : 's'}`;
  if (origin === 'string' && bound === 'at least' && n === 1) return 'must not be empty';
  if (exact) return `must have exactly ${n}${unit}`;
  if (!inclusive) return `must be ${bound === 'at least' ? 'greater' : 'less'} than ${n}${unit}`;
  return `must be ${bound} ${n}${unit}`;
}

function article(t: string): string {
  const map: Record<string, string> = {
    object: 'a map',
    record: 'a map',
    array: 'a list',
    tuple: 'a list',
    string: 'a string',
    number: 'a number',
    int: 'an integer',
    boolean: 'a boolean (true or false)',
    null: 'null',
  };
  return map[t] ?? t;
}

/** A readable name for the type of a YAML value (never the value itself). */
export function typeName(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'string') return 'a string';
  return typeof v;
}

/**
 * Converts zod issues of a value found at `base` into problems. `schema` is used to suggest the
 * intended key for unknown keys.
 */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  base: ConfigPath,
  map: SourceMap,
  schema?: z.ZodType,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const iss of issues) {
    const path = [...base, ...iss.path.map(toSegment)];
    if (iss.code === 'unrecognized_keys') {
      const known = schema ? objectKeysAt(schema, iss.path.map(toSegment)) : undefined;
      for (const key of iss.keys) {
        const keyPath = [...path, key];
        const hint = known ? didYouMean(key, known) : '';
        const valid = known && !hint && known.length <= 12 ? ` (valid keys: ${known.join(', ')})` : '';
        out.push({
          path: formatPath(keyPath),
          message: `unknown key "${key}"${hint}${valid}`,
          ...loc(map.locateKey(keyPath)),
        });
      }
      continue;
    }
    out.push({ path: formatPath(path), message: iss.message, ...loc(map.locate(path)) });
  }
  return out;
}

function toSegment(k: PropertyKey): PathSegment {
  return typeof k === 'number' ? k : String(k);
}

function loc(location: string | undefined): { location?: string } {
  return location === undefined ? {} : { location };
}

interface ZodDefLike {
  type?: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
  element?: unknown;
  valueType?: unknown;
  options?: unknown[];
  left?: unknown;
  right?: unknown;
  getter?: () => unknown;
}

function defOf(schema: unknown): ZodDefLike | undefined {
  return (schema as { _zod?: { def?: ZodDefLike } } | undefined)?._zod?.def;
}

/** The key names of the object schema found at `path` inside `schema` (best effort). */
export function objectKeysAt(schema: unknown, path: readonly PathSegment[]): string[] | undefined {
  const found = new Set<string>();
  collect(schema, path, found, 0);
  return found.size > 0 ? [...found] : undefined;
}

function collect(schema: unknown, path: readonly PathSegment[], found: Set<string>, depth: number): void {
  const def = defOf(schema);
  if (!def || depth > 64) return;
  switch (def.type) {
    case 'object':
      if (path.length === 0) {
        for (const k of Object.keys(def.shape ?? {})) found.add(k);
      } else if (typeof path[0] === 'string' && def.shape && Object.hasOwn(def.shape, path[0])) {
        collect(def.shape[path[0]], path.slice(1), found, depth + 1);
      }
      return;
    case 'array':
      if (typeof path[0] === 'number') collect(def.element, path.slice(1), found, depth + 1);
      return;
    case 'record':
      if (path.length > 0) collect(def.valueType, path.slice(1), found, depth + 1);
      return;
    case 'pipe':
      collect(def.in, path, found, depth + 1);
      return;
    case 'union':
      for (const o of def.options ?? []) collect(o, path, found, depth + 1);
      return;
    case 'intersection':
      collect(def.left, path, found, depth + 1);
      collect(def.right, path, found, depth + 1);
      return;
    case 'lazy':
      collect(def.getter?.(), path, found, depth + 1);
      return;
    default:
      if (def.innerType !== undefined) collect(def.innerType, path, found, depth + 1);
  }
}
