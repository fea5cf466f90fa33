/**
 * Config providers, as the OpenTelemetry Collector names them: a `--config` value is a file path
 * (`file:` optional), `env:VAR` (the YAML text in an environment variable) or `yaml:<inline YAML>`
 * (keys may be `::`-separated paths: `yaml:processors::batch::timeout: 2s`). `--set key=value` is
 * sugar for `yaml:key: value` (keys `::`-separated as in otelcol; `.` is accepted when no `::` is
 * used). Later sources win (deep merge).
 */
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import type { ConfigProblem } from '../errors.ts';
import { isPlainMap, setOwn } from './source.ts';

/** One `--config` / `--set` value, resolved to where its text comes from. */
export interface ConfigSource {
  /** As given on the command line. */
  spec: string;
  kind: 'file' | 'env' | 'yaml';
  /** Absolute path of a file; for `env:` / `yaml:` a name inside `cwd` (relative paths resolve there). */
  path: string;
  /** Name shown in locations: the file path as given, `env:VAR`, `--set …` or `yaml:…`. */
  display: string;
  /** The YAML text of an `env:` / `yaml:` source. */
  text?: string;
  /** Why the source has no text (unset variable, malformed inline YAML). */
  problem?: string;
}

/** Resolves one `--config` value. */
export function resolveSource(
  spec: string,
  cwd: string,
  env: Readonly<Record<string, string | undefined>>,
): ConfigSource {
  if (spec.startsWith('env:')) {
    const name = spec.slice(4);
    const text = env[name];
    const base = { spec, kind: 'env' as const, path: join(cwd, spec), display: spec };
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
      return { ...base, problem: `"${name}" is not an environment variable name` };
    if (text === undefined) return { ...base, problem: `environment variable ${name} is not set` };
    return { ...base, text };
  }
  if (spec.startsWith('yaml:')) {
    const display = spec.length > 60 ? `${spec.slice(0, 57)}...` : spec;
    const base = { spec, kind: 'yaml' as const, path: join(cwd, 'yaml:'), display };
    try {
      return { ...base, text: inlineYaml(spec.slice(5), '::') };
    } catch (err) {
      return { ...base, problem: `inline YAML: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  const file = spec.startsWith('file:') ? spec.slice(5) : spec;
  return { spec, kind: 'file', path: resolve(cwd, file), display: file };
}

/** `--set key=value` → a `yaml:` source (otelcol's `--set`). */
export function setSource(assignment: string, cwd: string): ConfigSource | ConfigProblem {
  const eq = assignment.indexOf('=');
  if (eq <= 0) {
    return {
      path: '',
      message: `--set "${assignment}": expected key=value (e.g. --set processors::batch::timeout=2s)`,
    };
  }
  const key = assignment.slice(0, eq).trim();
  const value = assignment.slice(eq + 1);
  const sep = key.includes('::') ? '::' : '.';
  const display = `--set ${key}`;
  try {
    const parsed: unknown = value === '' ? '' : parse(value);
    const text = stringify(nest({ [key]: parsed }, sep));
    return { spec: assignment, kind: 'yaml', path: join(cwd, 'set:'), display, text };
  } catch (err) {
    return {
      path: key,
      message: `--set ${key}: the value is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    };
  }
}

/** Inline YAML with `sep`-separated keys turned into nested maps, as YAML text. */
function inlineYaml(text: string, sep: string): string {
  const value: unknown = parse(text);
  return stringify(isPlainMap(value) ? nest(value, sep) : value);
}

/** `{ "a::b": 1 }` → `{ a: { b: 1 } }`, merging siblings. */
function nest(obj: Record<string, unknown>, sep: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    const parts = key.split(sep).filter((p) => p !== '');
    if (parts.length === 0) continue;
    let cur = out;
    for (const p of parts.slice(0, -1)) {
      if (!isPlainMap(cur[p])) setOwn(cur, p, {});
      cur = cur[p] as Record<string, unknown>;
    }
    const last = parts[parts.length - 1]!;
    const val = isPlainMap(v) ? nest(v, sep) : v;
    if (isPlainMap(cur[last]) && isPlainMap(val)) Object.assign(cur[last], val);
    else setOwn(cur, last, val);
  }
  return out;
}
