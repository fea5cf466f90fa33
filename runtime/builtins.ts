/**
 * Discovery of the built-in components: every `receivers/<type>/`, `processors/<type>/`,
 * `exporters/<type>/` and `runtime/extensions/<type>/` folder next to the runtime that has a
 * `factory.ts` (sources) or `factory.js` (compiled `dist/`) exporting `factory`. Folders without a
 * factory are skipped; a factory that fails to import or has the wrong shape stops the collector
 * with a clear message.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyFactory, ComponentKind } from './component.ts';
import { CollectorError, ErrorCode, errorMessage } from './errors.ts';
import { checkFactory, ComponentRegistry } from './plugins/registry.ts';

const HERE = fileURLToPath(import.meta.url);
/** The tree this module lives in: the repository root for sources, `dist/` when compiled. */
export const DEFAULT_ROOT = dirname(dirname(HERE));
/** `.ts` when running from sources, `.js` when running the compiled tree. */
const EXT = HERE.endsWith('.ts') ? '.ts' : '.js';

/** Component folders, relative to the root, with the kind they hold. */
export const COMPONENT_DIRS: readonly { dir: string; kind: ComponentKind }[] = [
  { dir: 'receivers', kind: 'receiver' },
  { dir: 'processors', kind: 'processor' },
  { dir: 'exporters', kind: 'exporter' },
  { dir: 'runtime/extensions', kind: 'extension' },
];

/** One factory file found on disk. */
export interface FactoryFile {
  kind: ComponentKind;
  /** Folder name = expected type. */
  type: string;
  file: string;
}

/** Lists the factory files under `root` (no import). */
export function findFactoryFiles(root = DEFAULT_ROOT, ext = EXT): FactoryFile[] {
  const out: FactoryFile[] = [];
  for (const { dir, kind } of COMPONENT_DIRS) {
    const base = join(root, dir);
    let names: string[];
    try {
      names = readdirSync(base, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch {
      continue;
    }
    for (const type of names) {
      const file = join(base, type, `factory${ext}`);
      if (existsSync(file)) out.push({ kind, type, file });
    }
  }
  return out;
}

/** Options of {@link loadBuiltins}. */
export interface LoadBuiltinsOptions {
  /** Tree to scan (default: the one this module lives in). */
  root?: string;
  /** Factory file extension (default: `.ts` from sources, `.js` from `dist/`). */
  ext?: string;
  /**
   * Import only the factories this returns true for (the others are registered as available names,
   * for suggestions). Default: all. Loading only what a config uses keeps start-up fast and keeps a
   * broken unused component from stopping the collector.
   */
  only?: (kind: ComponentKind, type: string) => boolean;
}

/**
 * Imports the built-in factories and returns them in a registry. Throws a {@link CollectorError}
 * (`PLUGIN_INVALID`) naming every factory that failed to import or is malformed.
 */
export async function loadBuiltins(opts: LoadBuiltinsOptions = {}): Promise<ComponentRegistry> {
  const root = opts.root ?? DEFAULT_ROOT;
  const registry = new ComponentRegistry();
  const files = findFactoryFiles(root, opts.ext ?? EXT).filter((f) => {
    if (!opts.only || opts.only(f.kind, f.type)) return true;
    registry.addAvailable(f.kind, f.type);
    return false;
  });
  const failures: string[] = [];
  const loaded = await Promise.all(
    files.map(async (f) => {
      const rel = relative(root, f.file);
      try {
        const mod = (await import(pathToFileURL(f.file).href)) as { factory?: unknown };
        if (mod.factory === undefined) {
          failures.push(`${rel}: does not export "factory"`);
          return undefined;
        }
        const wrong = checkFactory(mod.factory, { kind: f.kind, type: f.type });
        if (wrong.length > 0) {
          failures.push(`${rel}: factory ${wrong.join('; ')}`);
          return undefined;
        }
        return { factory: mod.factory as AnyFactory, rel };
      } catch (err) {
        failures.push(`${rel}: import failed: ${errorMessage(err)}`);
        return undefined;
      }
    }),
  );
  for (const l of loaded) {
    if (!l) continue;
    const clash = registry.add(l.factory, { kind: 'builtin', file: l.rel });
    if (clash) failures.push(`${l.rel}: ${clash}`);
  }
  if (failures.length > 0) {
    throw new CollectorError(
      ErrorCode.PLUGIN_INVALID,
      `built-in component${failures.length === 1 ? ' is' : 's are'} broken:\n${failures.map((f) => `  - ${f}`).join('\n')}`,
    );
  }
  return registry;
}
