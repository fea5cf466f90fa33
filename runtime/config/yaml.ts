/**
 * Reads one YAML config file into a plain value plus a {@link SourceMap}, expanding `${...}`
 * references in scalar values on the way. Syntax errors and expansion problems become
 * {@link ConfigProblem}s with `file:line:column`.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, isAbsolute } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar } from 'yaml';
import type { Document, Node as YamlNode, ParsedNode } from 'yaml';
import type { ConfigProblem } from '../errors.ts';
import { expandString, needsExpansion } from './expand.ts';
import type { ExpandContext } from './expand.ts';
import { formatPath, formatPosition, SourceMap, setOwn } from './source.ts';
import type { ConfigPath, Position } from './source.ts';

/** One loaded file. */
export interface LoadedFile {
  /** Path as given (used in locations). */
  file: string;
  value: unknown;
  map: SourceMap;
  /** Problems found in this file. `fatal` ones (unreadable, bad syntax) stop loading. */
  problems: ConfigProblem[];
  fatal: boolean;
}

/** Options of {@link loadYamlFile}. */
export interface LoadYamlOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** Base for displaying file names (locations show paths relative to it when shorter). */
  cwd?: string;
  /** Reads the file (tests inject text). */
  readFile?: (path: string) => string;
}

/** Display form of a config file name: relative to `cwd` when inside it. */
export function displayName(file: string, cwd = process.cwd()): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(cwd, file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/** Loads, parses and expands one YAML file. Never throws: failures are problems. */
export function loadYamlFile(path: string, opts: LoadYamlOptions): LoadedFile {
  const file = displayName(path, opts.cwd);
  const map = new SourceMap();
  const problems: ConfigProblem[] = [];
  let text: string;
  try {
    text = (opts.readFile ?? ((p) => readFileSync(p, 'utf8')))(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : `cannot read file (${code ?? String(err)})`;
    problems.push({ path: '', message: why, location: file });
    return { file, value: undefined, map, problems, fatal: true };
  }

  const lineCounter = new LineCounter();
  // Duplicate keys are found below with their dotted path and both lines; the parser's own check
  // would only say "Map keys must be unique".
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    // The first error is the real one; the rest usually cascade from it.
    const e = doc.errors[0]!;
    const pos = lineCounter.linePos(e.pos[0]);
    const line = text.split(/\r?\n/)[pos.line - 1] ?? '';
    const hint = /[{[].*\$\{/.test(line)
      ? ' (inside { } or [ ], write references quoted: "${env:X}"; or use block style)'
      : '';
    const more = doc.errors.length > 1 ? ` (${doc.errors.length - 1} more error(s) follow from it)` : '';
    const what =
      e.code === 'MULTIPLE_DOCS'
        ? 'a config file holds one YAML document (remove the extra "---", or split it into several --config files)'
        : firstLine(e.message);
    problems.push({
      path: '',
      message: `YAML syntax error: ${what}${hint}${more}`,
      location: `${file}:${pos.line}:${pos.col}`,
    });
    return { file, value: undefined, map, problems, fatal: true };
  }

  const posOf = (
    node: { range?: [number, number, number] | null } | null | undefined,
  ): Position | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const p = lineCounter.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const duplicates = duplicateKeys(doc.contents, [], posOf);
  if (duplicates.length > 0) {
    problems.push(...duplicates);
    return { file, value: undefined, map, problems, fatal: true };
  }
  const ctx: ExpandContext = { env: opts.env, baseDir: dirname(path) };
  const walker = new Walker(doc, map, problems, posOf, ctx);
  const value = walker.walk(doc.contents, [], posOf(doc.contents) ?? { file, line: 1, col: 1 });
  return { file, value, map, problems, fatal: false };
}

/** Every key defined twice in one mapping, reported at its second definition with the first one's line. */
function duplicateKeys(
  node: unknown,
  path: ConfigPath,
  posOf: (node: YamlNode | null | undefined) => Position | undefined,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (isMap(node)) {
    const seen = new Map<string, Position | undefined>();
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : undefined;
      if (key !== undefined) {
        const here = posOf(keyNode);
        if (seen.has(key)) {
          const first = seen.get(key);
          out.push({
            path: formatPath([...path, key]),
            message: `duplicate key "${key}"${first ? ` (first defined at line ${first.line})` : ''}: a key may appear only once in a mapping; merge the two definitions`,
            ...(here ? { location: formatPosition(here) } : {}),
          });
        } else {
          seen.set(key, here);
        }
      }
      out.push(...duplicateKeys(pair.value, key === undefined ? path : [...path, key], posOf));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => out.push(...duplicateKeys(item, [...path, i], posOf)));
  }
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

class Walker {
  readonly #doc: Document.Parsed;
  readonly #map: SourceMap;
  readonly #problems: ConfigProblem[];
  readonly #posOf: (node: YamlNode | null | undefined) => Position | undefined;
  readonly #ctx: ExpandContext;
  #aliasDepth = 0;

  constructor(
    doc: Document.Parsed,
    map: SourceMap,
    problems: ConfigProblem[],
    posOf: (node: YamlNode | null | undefined) => Position | undefined,
    ctx: ExpandContext,
  ) {
    this.#doc = doc;
    this.#map = map;
    this.#problems = problems;
    this.#posOf = posOf;
    this.#ctx = ctx;
  }

  /** Converts `node` to a plain value, recording positions (`fallback` for absent values). */
  walk(node: ParsedNode | YamlNode | null | undefined, path: ConfigPath, fallback: Position): unknown {
    const pos = this.#posOf(node) ?? fallback;
    const info = this.#map.get(path) ?? {};
    info.pos = pos;
    this.#map.set(path, info);
    if (node === null || node === undefined) return null;

    if (isAlias(node)) {
      // Aliases are rare in collector configs; report positions at the alias itself.
      const target = node.resolve(this.#doc);
      if (!target || this.#aliasDepth > 50) return null;
      this.#aliasDepth++;
      try {
        return this.walk(target, path, pos);
      } finally {
        this.#aliasDepth--;
      }
    }
    if (isMap(node)) {
      const obj: Record<string, unknown> = {};
      for (const pair of node.items) {
        const keyNode = pair.key as YamlNode | null;
        let key: string;
        if (keyNode === null || isScalar(keyNode)) {
          const kv: unknown = keyNode?.value ?? '';
          key = typeof kv === 'string' ? kv : JSON.stringify(kv);
        } else {
          this.#problems.push({
            path: formatPath(path),
            message: 'map keys must be plain strings',
            location: formatPosition(this.#posOf(keyNode) ?? pos),
          });
          continue;
        }
        const childPath = [...path, key];
        const keyPos = this.#posOf(keyNode) ?? pos;
        this.#map.set(childPath, { keyPos });
        setOwn(obj, key, this.walk(pair.value as YamlNode | null, childPath, keyPos));
      }
      return obj;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => this.walk(item as YamlNode | null, [...path, i], pos));
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v !== 'string' || !needsExpansion(v)) return v;
      const quoted = node.type !== undefined && node.type !== Scalar.PLAIN;
      const r = expandString(v, this.#ctx, quoted);
      for (const message of r.problems) {
        this.#problems.push({ path: formatPath(path), message, location: formatPosition(pos) });
      }
      if (r.expansions.length) info.expansions = r.expansions;
      if (r.rawString !== undefined) info.rawString = r.rawString;
      return r.value;
    }
    return null;
  }
}
