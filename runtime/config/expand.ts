/**
 * `${...}` expansion of configuration values, in the OpenTelemetry Collector's syntax:
 *
 * - `${env:NAME}` and `${NAME}`: an environment variable; unset is an error.
 * - `${env:NAME:-default}` and `${NAME:-default}`: `default` when the variable is unset (a variable
 *   set to the empty string stays empty).
 * - `${file:path}`: the content of a file (relative paths resolve against the config file's folder),
 *   without its trailing newline.
 * - `$${`: a literal `${` (only in front of `{`; `$` elsewhere, and `pa$$word`, stay as written).
 *
 * A value that is exactly one reference is typed as a YAML scalar (`123` → number, `true` → bool);
 * a reference embedded in a longer string stays text.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Expansion } from './source.ts';

const ENV_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Inputs of {@link expandString}. */
export interface ExpandContext {
  env: Readonly<Record<string, string | undefined>>;
  /** Folder of the config file the value is in (for relative `${file:...}`). */
  baseDir: string;
}

/** Result of expanding one string. */
export interface ExpandResult {
  /** The expanded value: a string, or a typed scalar for a whole-value reference. */
  value: unknown;
  /** Set when `value` was typed from text: that text. */
  rawString?: string;
  expansions: Expansion[];
  /** Problems found (unset variable, unreadable file, bad syntax). Messages never contain values. */
  problems: string[];
}

/** True when the string contains something expansion would change. */
export function needsExpansion(s: string): boolean {
  return s.includes('${');
}

/**
 * Expands every reference in `text`. `quoted` is true for quoted or block YAML scalars: a whole-value
 * reference in those stays a string.
 */
export function expandString(text: string, ctx: ExpandContext, quoted = false): ExpandResult {
  const expansions: Expansion[] = [];
  const problems: string[] = [];
  let out = '';
  let refCount = 0;
  let onlyRef = true;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '$') {
      out += ch;
      onlyRef = false;
      i++;
      continue;
    }
    // A run of `$` followed by `{`: pairs are escapes (`$$` → `$`); an odd one starts a reference.
    let run = 0;
    while (text[i + run] === '$') run++;
    if (text[i + run] !== '{') {
      out += '$'.repeat(run);
      onlyRef = false;
      i += run;
      continue;
    }
    out += '$'.repeat(Math.floor(run / 2));
    if (run % 2 === 0) {
      out += '{';
      onlyRef = false;
      i += run + 1;
      continue;
    }
    if (run > 1) onlyRef = false;
    const start = i + run - 1; // index of the `$` that opens the reference
    const close = text.indexOf('}', start + 2);
    if (close < 0) {
      problems.push(
        `unterminated reference "${text.slice(start)}" (missing "}"; write "$\${" for a literal "\${")`,
      );
      out += text.slice(start);
      break;
    }
    const ref = text.slice(start, close + 1);
    const resolved = resolveRef(text.slice(start + 2, close), ref, ctx);
    refCount++;
    if (typeof resolved === 'string') {
      expansions.push({ ref, value: resolved });
      out += resolved;
    } else {
      problems.push(resolved.problem);
    }
    i = close + 1;
  }

  const result: ExpandResult = { value: out, expansions, problems };
  if (!quoted && onlyRef && refCount === 1 && problems.length === 0) {
    const typed = typeScalar(out);
    if (typed !== out) {
      result.value = typed;
      result.rawString = out;
    }
  }
  return result;
}

/** Resolves the inside of `${...}` to its text, or a problem. */
function resolveRef(inner: string, ref: string, ctx: ExpandContext): string | { problem: string } {
  const colon = inner.indexOf(':');
  const scheme = colon >= 0 && !inner.startsWith(':') ? inner.slice(0, colon) : '';
  if (scheme === 'file') {
    const p = inner.slice(colon + 1);
    if (p === '') return { problem: `${ref}: missing file path` };
    const full = isAbsolute(p) ? p : resolve(ctx.baseDir, p);
    try {
      return readFileSync(full, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return { problem: `cannot read file ${JSON.stringify(full)} referenced by ${ref} (${code})` };
    }
  }
  let rest = inner;
  if (scheme === 'env') rest = inner.slice(colon + 1);
  else if (scheme !== '' && ENV_NAME.test(scheme) && !inner.slice(colon).startsWith(':-')) {
    return { problem: `${ref}: unsupported reference scheme "${scheme}" (use env: or file:)` };
  }
  const dflt = rest.indexOf(':-');
  const name = dflt >= 0 ? rest.slice(0, dflt) : rest;
  if (!ENV_NAME.test(name)) {
    return {
      problem: `${ref}: ${JSON.stringify(name)} is not a valid environment variable name (letters, digits and _ only, not starting with a digit)`,
    };
  }
  const value = ctx.env[name];
  if (value !== undefined) return value;
  if (dflt >= 0) return rest.slice(dflt + 2);
  return {
    problem: `environment variable ${name} is not set (referenced as ${ref}; set it, or give a default with \${env:${name}:-value})`,
  };
}

/**
 * Types the text of a whole-value reference as YAML would: numbers and booleans, and `null`/`~`. Any
 * other text (including text that YAML would read as a map, a list or a quoted string) stays as is.
 */
function typeScalar(text: string): unknown {
  if (text.trim() === '') return text;
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    return text;
  }
  if (typeof parsed === 'number' || typeof parsed === 'boolean') return parsed;
  if (parsed === null && /^(null|Null|NULL|~)$/.test(text.trim())) return null;
  return text;
}
