/**
 * Where every configuration value came from. Loading a YAML file yields a plain JS value plus a
 * {@link SourceMap} from each value's path to its file, line and column, so every problem found later
 * (by the runtime or by a component's schema) can point at the offending YAML node.
 */

/** One step of a path into the configuration: a map key or a list index. */
export type PathSegment = string | number;
export type ConfigPath = readonly PathSegment[];

/** A position in a config file (1-based line and column). */
export interface Position {
  file: string;
  line: number;
  col: number;
}

/** One `${...}` reference that was replaced while loading (kept to scrub its value from messages). */
export interface Expansion {
  /** The reference as written, e.g. `${env:AUTHENTIK_TOKEN}`. */
  ref: string;
  /** The text it expanded to. Never printed. */
  value: string;
}

/** What is known about one value of the configuration. */
export interface NodeInfo {
  /** Position of the value node (for an absent value: of its key). */
  pos?: Position;
  /** Position of the map key that holds the value. */
  keyPos?: Position;
  /** References expanded inside this (scalar) value. */
  expansions?: Expansion[];
  /**
   * Set when a whole-value reference (`key: ${env:X}`) was typed as a YAML scalar (number, bool,
   * null): the text before typing, used when the schema wants a string after all.
   */
  rawString?: string;
}

/** Formats a position as `file:line:column`. */
export function formatPosition(p: Position): string {
  return `${p.file}:${p.line}:${p.col}`;
}

/**
 * Formats a path as the dotted form used in messages: `service.pipelines.logs.exporters[0]`.
 * Keys are printed as written (a key may itself contain dots, e.g. `data_stream.dataset`).
 */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

function keyOf(path: ConfigPath): string {
  return JSON.stringify(path);
}

/** Path → {@link NodeInfo} for every value of a loaded configuration. */
export class SourceMap {
  readonly #nodes = new Map<string, { path: ConfigPath; info: NodeInfo }>();

  set(path: ConfigPath, info: NodeInfo): void {
    this.#nodes.set(keyOf(path), { path: [...path], info });
  }

  get(path: ConfigPath): NodeInfo | undefined {
    return this.#nodes.get(keyOf(path))?.info;
  }

  /**
   * `file:line:column` of the value at `path`, or of its nearest ancestor that has a position (a
   * missing key is reported at the map that should contain it).
   */
  locate(path: ConfigPath): string | undefined {
    for (let n = path.length; n >= 0; n--) {
      const info = this.get(path.slice(0, n));
      const pos = info?.pos ?? info?.keyPos;
      if (pos) return formatPosition(pos);
    }
    return undefined;
  }

  /** Like {@link locate} but prefers the position of the key (for "unknown key" problems). */
  locateKey(path: ConfigPath): string | undefined {
    const keyPos = this.get(path)?.keyPos;
    return keyPos ? formatPosition(keyPos) : this.locate(path);
  }

  /** Every entry at or below `path`. */
  *entriesUnder(path: ConfigPath): Generator<{ path: ConfigPath; info: NodeInfo }> {
    for (const e of this.#nodes.values()) {
      if (isPrefix(path, e.path)) yield e;
    }
  }

  /** Every expansion at or below `path` (to scrub expanded values from messages about it). */
  expansionsUnder(path: ConfigPath): Expansion[] {
    const out: Expansion[] = [];
    for (const e of this.entriesUnder(path)) if (e.info.expansions) out.push(...e.info.expansions);
    return out;
  }

  /** Removes `path` and everything below it. */
  deleteUnder(path: ConfigPath): void {
    for (const [k, e] of this.#nodes) if (isPrefix(path, e.path)) this.#nodes.delete(k);
  }

  /** Copies `path` and everything below it from `other`. */
  copyUnder(other: SourceMap, path: ConfigPath): void {
    for (const e of other.entriesUnder(path)) this.set(e.path, e.info);
  }

  clone(): SourceMap {
    const c = new SourceMap();
    for (const e of this.#nodes.values()) c.set(e.path, e.info);
    return c;
  }
}

function isPrefix(prefix: ConfigPath, path: ConfigPath): boolean {
  if (prefix.length > path.length) return false;
  return prefix.every((seg, i) => path[i] === seg);
}

/** A plain (non-array) object as produced from a YAML map. */
export function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets a key on a plain object, safe for keys such as `__proto__`. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
