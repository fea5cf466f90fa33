/**
 * Third-party plugins: the top-level `plugins:` list names npm packages or module paths (relative to
 * the config file) whose modules export `factories` (an array) or `factory`. Each factory is checked
 * like a built-in one and added to the registry. Any failure (module not found, import throws,
 * malformed factory, type already taken) is a configuration problem naming the plugin.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyFactory, ComponentKind } from '../component.ts';
import type { ConfigProblem } from '../errors.ts';
import { errorMessage } from '../errors.ts';
import { checkFactory } from './registry.ts';
import type { ComponentRegistry } from './registry.ts';

/** One `plugins:` entry to load. */
export interface PluginRequest {
  /** As written: `my-plugin`, `@scope/x`, `./plugins/x.ts`. */
  spec: string;
  /** Folder of the config file that lists it. */
  baseDir: string;
  /** Dotted config path (`plugins[0]`) and location, for problems. */
  path: string;
  location?: string;
}

/** A loaded plugin, as listed by `components`. */
export interface PluginInfo {
  spec: string;
  /** Resolved module file (or the package name when resolved by the runtime's own node_modules). */
  module: string;
  factories: { kind: ComponentKind; type: string }[];
}

/** Loads every plugin into `registry`. Never throws: failures are returned as problems. */
export async function loadPlugins(
  requests: readonly PluginRequest[],
  registry: ComponentRegistry,
): Promise<{ plugins: PluginInfo[]; problems: ConfigProblem[] }> {
  const plugins: PluginInfo[] = [];
  const problems: ConfigProblem[] = [];
  for (const req of requests) {
    const fail = (message: string) =>
      problems.push({
        path: req.path,
        message: `plugin "${req.spec}": ${message}`,
        ...(req.location === undefined ? {} : { location: req.location }),
      });
    let target: string;
    try {
      target = resolvePlugin(req.spec, req.baseDir);
    } catch (err) {
      fail(errorMessage(err));
      continue;
    }
    let mod: Record<string, unknown>;
    try {
      mod = (await import(target)) as Record<string, unknown>;
    } catch (err) {
      fail(`import failed: ${firstLine(errorMessage(err))}`);
      continue;
    }
    let found: unknown[];
    try {
      found = factoriesOf(mod);
    } catch (err) {
      fail(`reading its factories failed: ${firstLine(errorMessage(err))}`);
      continue;
    }
    if (found.length === 0) {
      fail('exports neither "factories" (an array) nor "factory"');
      continue;
    }
    const info: PluginInfo = { spec: req.spec, module: target, factories: [] };
    found.forEach((f, i) => {
      const what = found.length === 1 ? 'factory' : `factories[${i}]`;
      const wrong = checkFactory(f);
      if (wrong.length > 0) {
        fail(`${what} ${wrong.join('; ')}`);
        return;
      }
      const factory = f as AnyFactory;
      const clash = registry.add(factory, { kind: 'plugin', plugin: req.spec, file: target });
      if (clash) {
        fail(clash);
        return;
      }
      info.factories.push({ kind: factory.kind, type: factory.type });
    });
    plugins.push(info);
  }
  return { plugins, problems };
}

function factoriesOf(mod: Record<string, unknown>): unknown[] {
  for (const source of [mod, mod.default as Record<string, unknown> | undefined]) {
    if (typeof source !== 'object' || source === null) continue;
    if (Array.isArray(source.factories)) return source.factories as unknown[];
    if (source.factory !== undefined) return [source.factory];
  }
  return [];
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

const isPathSpec = (s: string) => s.startsWith('.') || isAbsolute(s) || /^[a-zA-Z]:[\\/]/.test(s);

/**
 * Resolves a plugin spec to an importable URL or specifier: paths against `baseDir`, package names
 * from `baseDir`'s node_modules first, then from the collector's own.
 */
export function resolvePlugin(spec: string, baseDir: string): string {
  if (spec.trim() === '') throw new Error('empty plugin name');
  if (isPathSpec(spec)) {
    const full = resolve(baseDir, spec);
    if (!existsSync(full)) throw new Error(`module not found at ${full}`);
    if (statSync(full).isDirectory()) {
      try {
        return pathToFileURL(createRequire(join(full, 'noop.js')).resolve(full)).href;
      } catch {
        throw new Error(`${full} is a folder without a package.json "main" or index.js`);
      }
    }
    return pathToFileURL(full).href;
  }
  const req = createRequire(join(baseDir, 'noop.js'));
  try {
    return pathToFileURL(req.resolve(spec)).href;
  } catch {
    // ESM-only packages (no "require" export) are not found by require.resolve: read "exports".
  }
  const viaExports = resolveEsmPackage(spec, baseDir);
  if (viaExports) return viaExports;
  // Last resort: the collector's own dependencies.
  return spec;
}

function resolveEsmPackage(spec: string, baseDir: string): string | undefined {
  const parts = spec.split('/');
  const pkgName = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const subpath = `.${spec.slice(pkgName.length)}`;
  for (let dir = baseDir; ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', pkgName);
    const pj = join(pkgDir, 'package.json');
    if (existsSync(pj)) {
      const json = JSON.parse(readFileSync(pj, 'utf8')) as { exports?: unknown; main?: string };
      const target =
        pickExport(json.exports, subpath) ?? (subpath === '.' ? (json.main ?? 'index.js') : subpath);
      return pathToFileURL(join(pkgDir, target)).href;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

function pickExport(exports: unknown, subpath: string): string | undefined {
  if (exports === undefined || exports === null) return undefined;
  if (typeof exports === 'string') return subpath === '.' ? exports : undefined;
  if (typeof exports !== 'object') return undefined;
  const e = exports as Record<string, unknown>;
  const keys = Object.keys(e);
  if (keys.some((k) => k.startsWith('.'))) return pickCondition(e[subpath]);
  return subpath === '.' ? pickCondition(e) : undefined;
}

function pickCondition(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v !== 'object' || v === null) return undefined;
  const c = v as Record<string, unknown>;
  for (const k of ['import', 'node', 'default']) {
    const r = pickCondition(c[k]);
    if (r) return r;
  }
  return undefined;
}
