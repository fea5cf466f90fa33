/**
 * User-agent parsing with the same results as Elasticsearch's `user_agent` processor.
 *
 * Patterns come from the installed `uap-core` package pinned at 0.10.0: the pattern data Elasticsearch
 * bundles as `modules/ingest-user-agent/src/main/resources/regexes.yml` is uap-core's `regexes.yaml` of
 * July 2020 (commit e9fd8c68, the 0.10.0 release data) behind a licence header. They are compiled once
 * per process (Java's ASCII-only `\s` kept) and evaluated the way Elasticsearch's `UserAgentParser` does
 * it (the uap reference algorithm with Elasticsearch's replacement rules):
 * - each list (user agents, operating systems, devices) is tried in order, the first regex that matches
 *   anywhere in the string wins; `regex_flag: 'i'` means case-insensitive;
 * - name: `*_replacement` with the first `$1` replaced by capture group 1 (kept literally when group 1 did
 *   not participate), otherwise group 1; a pattern whose name comes out empty (null) does not count as a
 *   match and the search continues;
 * - versions: `v1..v4_replacement` taken literally when present (Elasticsearch does not substitute `$N`
 *   there), otherwise capture groups 2..5.
 * ECS output: `name` (`Other` when no user-agent pattern matched), `version` = major[.minor[.patch[.build]]]
 * (only with a major; a part is appended whenever it is not null, so a group that matched the empty string
 * still adds its dot: `Firefox/128.0` gives `128.0.`), `os.name`, `os.version`, `os.full` = `name version` (version parts only when the OS
 * has a major), `device.name` (`Other` when no device pattern matched), `original`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parse as parseYaml } from 'yaml';
import type { JMap } from './common.ts';
import { Lru } from './lru.ts';

interface Subpattern {
  re: RegExp;
  /**
   * A literal every match must contain (lower case when `ci`), or undefined. Checked with `includes`
   * before the regex runs: most patterns cannot match most strings, and several of Elasticsearch's
   * patterns are quadratic on long strings (`([A-Za-z0-9]+);FOMA`), so this avoids nearly all regex work
   * without changing any result.
   */
  lit: string | undefined;
  ci: boolean;
  name: string | undefined;
  v1: string | undefined;
  v2: string | undefined;
  v3: string | undefined;
  v4: string | undefined;
}

export interface VersionedName {
  name: string;
  major: string | null;
  minor: string | null;
  patch: string | null;
  build: string | null;
}

export interface UaDetails {
  userAgent: VersionedName | null;
  os: VersionedName | null;
  device: VersionedName | null;
}

interface Patterns {
  ua: Subpattern[];
  os: Subpattern[];
  device: Subpattern[];
}

let shared: Patterns | undefined;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

/** Java's `\s` is ASCII whitespace; JavaScript's also matches Unicode spaces. */
const JAVA_SPACE = ' \\t\\n\\x0B\\f\\r';

/** The regex source with `\s` narrowed to Java's meaning (inside and outside character classes). */
export function javaRegexSource(src: string): string {
  if (!src.includes('\\s')) return src;
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      i++;
      if (n === 's') out += inClass ? JAVA_SPACE : `[${JAVA_SPACE}]`;
      else out += c + n;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return out;
}

const ESCAPED_LITERAL = new Set([...'.\\/-()[]{}+*?|^$ :;,!_#&%=\'"<>@~`']);

/**
 * The longest literal that every match of `src` must contain, or undefined when none is certain.
 * Conservative: only the top level of the pattern is read (any group, class, escape class or anchor
 * ends a run), a top-level `|` gives undefined, and a character made optional by a quantifier is not
 * part of a run.
 */
export function requiredLiteral(src: string): string | undefined {
  let best = '';
  let run = '';
  let depth = 0;
  let inClass = false;
  const flush = (): void => {
    if (run.length > best.length) best = run;
    run = '';
  };
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (inClass) {
      if (c === '\\') i++;
      else if (c === ']') inClass = false;
      continue;
    }
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      i++;
      if (depth === 0 && ESCAPED_LITERAL.has(n)) {
        run += n;
        i = quantified(src, i, () => (run = run.slice(0, -1)), flush);
      } else flush();
      continue;
    }
    if (c === '[') {
      inClass = true;
      flush();
      continue;
    }
    if (c === '(') {
      depth++;
      flush();
      continue;
    }
    if (c === ')') {
      depth--;
      flush();
      i = quantified(src, i, () => undefined, flush);
      continue;
    }
    if (c === '|') {
      if (depth === 0) return undefined;
      continue;
    }
    if (depth > 0) continue;
    if ('.^$'.includes(c)) {
      flush();
      continue;
    }
    if ('?*+{'.includes(c)) {
      // A quantifier not directly after a literal (handled by quantified()): be safe.
      flush();
      continue;
    }
    run += c;
    i = quantified(src, i, () => (run = run.slice(0, -1)), flush);
  }
  flush();
  return best.length > 0 ? best : undefined;
}

/**
 * After the atom ending at `i`: when a quantifier follows, `optional()` drops the atom if it may occur
 * zero times, the run ends (`flush`), and the index of the quantifier's last character is returned.
 */
function quantified(src: string, i: number, optional: () => void, flush: () => void): number {
  const q = src[i + 1];
  if (q === '?' || q === '*' || q === '+') {
    if (q !== '+') optional();
    flush();
    let j = i + 1;
    if (src[j + 1] === '?' || src[j + 1] === '+') j++;
    return j;
  }
  if (q === '{') {
    const m = /^\{(\d*)(,\d*)?\}/.exec(src.slice(i + 1));
    if (m) {
      if ((m[1] ?? '') === '' || Number(m[1]) === 0) optional();
      flush();
      let j = i + m[0].length;
      if (src[j + 1] === '?' || src[j + 1] === '+') j++;
      return j;
    }
  }
  return i;
}

function compile(list: unknown, names: [string, string, string, string, string]): Subpattern[] {
  if (!Array.isArray(list)) return [];
  const out: Subpattern[] = [];
  for (const e of list as Record<string, unknown>[]) {
    const regex = str(e['regex']);
    if (regex === undefined) continue;
    const ci = str(e['regex_flag']) === 'i';
    let lit = requiredLiteral(regex);
    // Case-insensitive prefilter only for ASCII literals (lower-casing both sides is then exact).
    if (lit !== undefined && ci)
      lit = [...lit].every((ch) => ch.charCodeAt(0) < 128) ? lit.toLowerCase() : undefined;
    out.push({
      re: new RegExp(javaRegexSource(regex), ci ? 'i' : ''),
      lit,
      ci,
      name: str(e[names[0]]),
      v1: str(e[names[1]]),
      v2: str(e[names[2]]),
      v3: str(e[names[3]]),
      v4: str(e[names[4]]),
    });
  }
  return out;
}

/** Path of the installed uap-core `regexes.yaml`. */
export function regexesPath(): string {
  return createRequire(import.meta.url).resolve('uap-core/regexes.yaml');
}

/** Loads and compiles the uap-core patterns (once per process). */
export function loadPatterns(): Patterns {
  if (shared) return shared;
  const doc = parseYaml(readFileSync(regexesPath(), 'utf8')) as Record<string, unknown>;
  shared = {
    ua: compile(doc['user_agent_parsers'], [
      'family_replacement',
      'v1_replacement',
      'v2_replacement',
      'v3_replacement',
      'v4_replacement',
    ]),
    os: compile(doc['os_parsers'], [
      'os_replacement',
      'os_v1_replacement',
      'os_v2_replacement',
      'os_v3_replacement',
      'os_v4_replacement',
    ]),
    device: compile(doc['device_parsers'], ['device_replacement', '', '', '', '']),
  };
  if (shared.ua.length === 0 && shared.os.length === 0 && shared.device.length === 0) {
    shared = undefined;
    throw new Error(`${regexesPath()} holds no user-agent patterns`);
  }
  return shared;
}

function group(m: RegExpExecArray, i: number): string | null {
  return i < m.length ? (m[i] ?? null) : null;
}

function matchOne(p: Subpattern, s: string, lower: string, prefilter: boolean): VersionedName | null {
  if (prefilter && p.lit !== undefined && !(p.ci ? lower : s).includes(p.lit)) return null;
  const m = p.re.exec(s);
  if (!m) return null;
  const groups = m.length - 1;
  let name: string | null;
  if (p.name !== undefined) {
    const g1 = groups >= 1 ? (m[1] ?? null) : null;
    name = p.name.includes('$1') && g1 !== null ? p.name.replace('$1', () => g1) : p.name;
  } else {
    name = groups >= 1 ? (m[1] ?? null) : null;
  }
  if (name === null) return null;
  return {
    name,
    major: p.v1 ?? group(m, 2),
    minor: p.v2 ?? group(m, 3),
    patch: p.v3 ?? group(m, 4),
    build: p.v4 ?? group(m, 5),
  };
}

function findMatch(list: Subpattern[], s: string, lower: string, prefilter: boolean): VersionedName | null {
  for (const p of list) {
    const r = matchOne(p, s, lower, prefilter);
    if (r !== null) return r;
  }
  return null;
}

/**
 * Parses one user-agent string (uncached). `prefilter: false` runs every regex (for tests: the results
 * must be the same).
 */
export function parseUserAgent(s: string, patterns: Patterns = loadPatterns(), prefilter = true): UaDetails {
  // ASCII-only lower casing, as the literals are ASCII (keeps indexes aligned, unlike toLowerCase).
  const lower = s.replace(/[A-Z]+/g, (x) => x.toLowerCase());
  return {
    userAgent: findMatch(patterns.ua, s, lower, prefilter),
    os: findMatch(patterns.os, s, lower, prefilter),
    device: findMatch(patterns.device, s, lower, prefilter),
  };
}

function joinVersion(v: VersionedName): string {
  let out = v.major!;
  if (v.minor !== null) {
    out += `.${v.minor}`;
    if (v.patch !== null) {
      out += `.${v.patch}`;
      if (v.build !== null) out += `.${v.build}`;
    }
  }
  return out;
}

interface UaTemplate {
  name: string;
  version: string | undefined;
  osName: string | undefined;
  osVersion: string | undefined;
  osFull: string | undefined;
  deviceName: string;
}

function toTemplate(d: UaDetails): UaTemplate {
  const ua = d.userAgent;
  const os = d.os;
  const t: UaTemplate = {
    name: ua?.name ?? 'Other',
    version: ua && ua.major !== null ? joinVersion(ua) : undefined,
    osName: os?.name,
    osVersion: os && os.major !== null ? joinVersion(os) : undefined,
    osFull: undefined,
    deviceName: d.device?.name ?? 'Other',
  };
  if (t.osName !== undefined && t.osVersion !== undefined) t.osFull = `${t.osName} ${t.osVersion}`;
  return t;
}

/** Parser with an LRU cache; produces the ECS `user_agent` object. */
export class UserAgentParser {
  readonly #patterns: Patterns;
  readonly #cache: Lru<string, UaTemplate>;

  constructor(cacheSize: number) {
    this.#patterns = loadPatterns();
    this.#cache = new Lru(cacheSize);
  }

  /** The ECS `user_agent` object for `s` (a fresh object every call). */
  ecs(s: string): JMap {
    let t = this.#cache.get(s);
    if (t === undefined) {
      t = toTemplate(parseUserAgent(s, this.#patterns));
      this.#cache.set(s, t);
    }
    const out: JMap = { device: { name: t.deviceName }, name: t.name, original: s };
    if (t.osName !== undefined) {
      const osObj: JMap = { name: t.osName };
      if (t.osVersion !== undefined) {
        osObj['full'] = t.osFull;
        osObj['version'] = t.osVersion;
      }
      out['os'] = osObj;
    }
    if (t.version !== undefined) out['version'] = t.version;
    return out;
  }
}
