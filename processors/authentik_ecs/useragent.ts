/**
 * User-agent parsing with the same results as Elasticsearch's `user_agent` processor.
 *
 * Patterns come from the installed `uap-core` package (`regexes.yaml`), compiled once per process. They
 * are evaluated the way Elasticsearch's `UserAgentParser` does it (which is the uap reference algorithm
 * with Elasticsearch's replacement rules):
 * - each list (user agents, operating systems, devices) is tried in order, the first regex that matches
 *   anywhere in the string wins; `regex_flag: 'i'` means case-insensitive;
 * - name: `*_replacement` with the first `$1` replaced by capture group 1 (kept literally when group 1 did
 *   not participate), otherwise group 1; a pattern whose name comes out empty (null) does not count as a
 *   match and the search continues;
 * - versions: `v1..v4_replacement` taken literally when present (Elasticsearch does not substitute `$N`
 *   there), otherwise capture groups 2..5.
 * ECS output: `name` (`Other` when no user-agent pattern matched), `version` = major[.minor[.patch[.build]]]
 * (only with a major), `os.name`, `os.version`, `os.full` = `name version` (version parts only when the OS
 * has a major), `device.name` (`Other` when no device pattern matched), `original`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parse as parseYaml } from 'yaml';
import type { JMap } from './common.ts';
import { Lru } from './lru.ts';

interface Subpattern {
  re: RegExp;
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

/**
 * Elastic compatibility. The installed uap-core (0.18) is newer than the pattern set Elasticsearch bundles
 * with its `user_agent` processor. Two generic uap-core rules ("Downloader" and "headless user-agents")
 * learned client names since; Elasticsearch's versions of the same rules do not list them, so
 * Elasticsearch reports e.g. `PostmanRuntime/7.41.0` as `Other` (Elastic's own pipeline test expects
 * this). A user-agent match whose name is one of these is ignored and the search continues, which gives
 * Elasticsearch's result.
 */
export const ELASTIC_UNKNOWN_UA_FAMILIES: ReadonlySet<string> = new Set([
  // uap-core "Downloader" rule additions
  'PostmanRuntime',
  'axios',
  'unirest-java',
  'unirest-python',
  'unirest-ruby',
  'unirest-nodejs',
  'unirest-php',
  'unirest-net',
  // uap-core "headless user-agents" rule additions
  'WindowsPowerShell',
  'wget2',
  'fetch libfetch',
  'akka-http',
  'got',
  'CloudCockpitBackend',
  'ReactorNetty',
  'Jersey',
  'Vert.x-WebClient',
  'Apache-CXF',
  'Go-CF-client',
  'go-resty',
  'AHC',
  'HTTPie',
]);

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

function compile(list: unknown, names: [string, string, string, string, string]): Subpattern[] {
  if (!Array.isArray(list)) return [];
  const out: Subpattern[] = [];
  for (const e of list as Record<string, unknown>[]) {
    const regex = str(e['regex']);
    if (regex === undefined) continue;
    out.push({
      re: new RegExp(regex, str(e['regex_flag']) === 'i' ? 'i' : ''),
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

function matchOne(p: Subpattern, s: string, skip?: ReadonlySet<string>): VersionedName | null {
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
  if (skip !== undefined && p.name === undefined && skip.has(name)) return null;
  return {
    name,
    major: p.v1 ?? group(m, 2),
    minor: p.v2 ?? group(m, 3),
    patch: p.v3 ?? group(m, 4),
    build: p.v4 ?? group(m, 5),
  };
}

function findMatch(list: Subpattern[], s: string, skip?: ReadonlySet<string>): VersionedName | null {
  for (const p of list) {
    const r = matchOne(p, s, skip);
    if (r !== null) return r;
  }
  return null;
}

/** Parses one user-agent string (uncached). */
export function parseUserAgent(s: string, patterns: Patterns = loadPatterns()): UaDetails {
  return {
    userAgent: findMatch(patterns.ua, s, ELASTIC_UNKNOWN_UA_FAMILIES),
    os: findMatch(patterns.os, s),
    device: findMatch(patterns.device, s),
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
