/**
 * Parses one section of the configuration with a zod schema and reports problems located in the
 * YAML, with expanded values (`${env:...}`, `${file:...}`) scrubbed from every message.
 */
import type * as z from 'zod';
import type { ConfigProblem } from '../errors.ts';
import { isPlainMap, setOwn } from './source.ts';
import type { ConfigPath, Expansion, PathSegment, SourceMap } from './source.ts';
import { configErrorMap, issuesToProblems } from './zod-issues.ts';

/** Result of {@link parseSection}. */
export type ParseResult<T> = { ok: true; data: T } | { ok: false; problems: ConfigProblem[] };

/**
 * Parses `value` (found at `base`) with `schema`. A whole-value reference that was typed as a number
 * or boolean (`${env:PORT}` → 8080) goes back to its text when the schema wants a string there, as
 * the OTel Collector does.
 */
export function parseSection<T>(
  schema: z.ZodType<T>,
  value: unknown,
  base: ConfigPath,
  map: SourceMap,
): ParseResult<T> {
  let input = value;
  for (let attempt = 0; attempt < 32; attempt++) {
    const r = schema.safeParse(input, { error: configErrorMap });
    if (r.success) return { ok: true, data: r.data };
    let retyped = false;
    for (const iss of r.error.issues) {
      if (iss.code !== 'invalid_type' || iss.expected !== 'string') continue;
      const rel = iss.path.map((k) => (typeof k === 'number' ? k : String(k)));
      const raw = map.get([...base, ...rel])?.rawString;
      if (raw === undefined) continue;
      input = replaceAt(input, rel, raw);
      retyped = true;
    }
    if (!retyped) {
      const problems = issuesToProblems(r.error.issues, base, map, schema);
      return { ok: false, problems: scrubProblems(problems, map.expansionsUnder(base)) };
    }
  }
  return { ok: false, problems: [{ path: '', message: 'configuration could not be parsed' }] };
}

/** A copy of `root` with the value at `path` replaced. */
function replaceAt(root: unknown, path: readonly PathSegment[], v: unknown): unknown {
  if (path.length === 0) return v;
  const [head, ...rest] = path;
  if (Array.isArray(root) && typeof head === 'number') {
    const copy = [...(root as unknown[])];
    copy[head] = replaceAt(copy[head], rest, v);
    return copy;
  }
  if (isPlainMap(root) && head !== undefined) {
    const copy: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(root)) setOwn(copy, k, val);
    setOwn(copy, String(head), replaceAt(root[String(head)], rest, v));
    return copy;
  }
  return root;
}

/**
 * Replaces every expanded value in `message` by the reference it came from, so neither an env var's
 * value nor a file's content is ever printed. Very short values (under 3 characters) are replaced
 * only where quoted, to keep the rest of the message readable.
 */
export function scrubMessage(message: string, expansions: readonly Expansion[]): string {
  const sorted = [...expansions]
    .filter((e) => e.value !== '')
    .sort((a, b) => b.value.length - a.value.length);
  let out = message;
  for (const e of sorted) {
    const quoted = JSON.stringify(e.value);
    out = out.replaceAll(quoted, JSON.stringify(e.ref));
    if (e.value.length >= 3) {
      out = out.replaceAll(e.value, e.ref);
      const escaped = quoted.slice(1, -1);
      if (escaped !== e.value) out = out.replaceAll(escaped, e.ref);
    }
  }
  return out;
}

/** {@link scrubMessage} over a list of problems. */
export function scrubProblems(problems: ConfigProblem[], expansions: readonly Expansion[]): ConfigProblem[] {
  if (expansions.length === 0) return problems;
  return problems.map((p) => ({ ...p, message: scrubMessage(p.message, expansions) }));
}
