/**
 * Loading and validating the collector configuration: read and expand every `--config` file, merge
 * them, load plugins, parse each component's options with its factory's schema, check the service
 * section and the pipeline wiring. Every problem is collected and reported at once in a
 * {@link ConfigError}, each with its dotted path and `file:line:column`.
 */
import { dirname } from 'node:path';
import type { ComponentKind } from '../component.ts';
import { ConfigError } from '../errors.ts';
import type { ConfigProblem } from '../errors.ts';
import { IN_MEMORY_STORAGE, sendingQueueSchema } from '../exporterhelper/queue.ts';
import type { SendingQueueConfig } from '../exporterhelper/queue.ts';
import { loadBuiltins } from '../builtins.ts';
import { loadPlugins } from '../plugins/load.ts';
import type { PluginInfo, PluginRequest } from '../plugins/load.ts';
import { COMPONENT_KINDS, SECTION_OF } from '../plugins/registry.ts';
import type { ComponentRegistry } from '../plugins/registry.ts';
import { checkPipelineId, parseComponentId } from './ids.ts';
import { mergeSourced } from './merge.ts';
import type { SourcedValue } from './merge.ts';
import { parseSection, scrubMessage } from './parse.ts';
import type { ComponentEntry, PipelineEntry, ResolvedConfig } from './resolved.ts';
import { pipelineSchema, serviceSchema } from './service.ts';
import { formatPath, isPlainMap, SourceMap, setOwn } from './source.ts';
import type { ConfigPath, Expansion } from './source.ts';
import { didYouMean } from './suggest.ts';
import { resolveSource, setSource } from './providers.ts';
import type { ConfigSource } from './providers.ts';
import { loadYamlFile } from './yaml.ts';
import type { LoadedFile, LoadYamlOptions } from './yaml.ts';

/** Top-level keys of a config file. */
export const TOP_LEVEL_KEYS = [
  'receivers',
  'processors',
  'exporters',
  'extensions',
  'service',
  'plugins',
] as const;

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Environment for `${env:...}` (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Base of relative config paths and of displayed file names (default `process.cwd()`). */
  cwd?: string;
  /** Built-in factories (default: discovered with `loadBuiltins()`). Plugins are added to a copy. */
  registry?: ComponentRegistry;
  /** `--set key=value` overrides, applied after every file (otelcol's `--set`). */
  set?: readonly string[];
}

/** Loads one resolved source (a file, `env:VAR`, `yaml:...`, `--set`) like a file. */
function loadSource(s: ConfigSource, env: LoadYamlOptions['env'], cwd: string): LoadedFile {
  if (s.problem !== undefined) {
    return {
      file: s.display,
      value: undefined,
      map: new SourceMap(),
      problems: [{ path: '', message: s.problem, location: s.display }],
      fatal: true,
    };
  }
  if (s.kind === 'file') return loadYamlFile(s.path, { env, cwd });
  const text = s.text ?? '';
  const l = loadYamlFile(s.display, { env, cwd, readFile: () => text });
  if (s.kind === 'yaml') {
    // The text was rebuilt from `a::b: v`: its lines mean nothing to the user, the source name does.
    const at = { file: s.display, line: 1, col: 1 };
    for (const e of [...l.map.entriesUnder([])]) {
      l.map.set(e.path, {
        ...e.info,
        ...(e.info.pos ? { pos: at } : {}),
        ...(e.info.keyPos ? { keyPos: at } : {}),
      });
    }
    for (const p of l.problems) if (p.location?.startsWith(s.display)) p.location = `${s.display}:1:1`;
  }
  return l;
}

/** Resolves the `--config` values and `--set` overrides; malformed `--set` values become problems. */
function resolveSources(
  files: readonly string[],
  opts: LoadConfigOptions,
  cwd: string,
  env: LoadYamlOptions['env'],
): { sources: ConfigSource[]; problems: ConfigProblem[] } {
  const sources = files.map((f) => resolveSource(f, cwd, env));
  const problems: ConfigProblem[] = [];
  for (const a of opts.set ?? []) {
    const r = setSource(a, cwd);
    if ('kind' in r) sources.push(r);
    else problems.push(r);
  }
  return { sources, problems };
}

/**
 * Loads `files` (merged in order, last wins) and validates everything. Throws {@link ConfigError}
 * with every problem found.
 */
export async function loadConfig(
  files: readonly string[],
  opts: LoadConfigOptions = {},
): Promise<ResolvedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  if (files.length === 0)
    throw new ConfigError([{ path: '', message: 'no configuration file given (use --config)' }]);

  const { sources, problems: setProblems } = resolveSources(files, opts, cwd, env);
  const absolute = sources.map((s) => s.path);
  const loaded = sources.map((s) => loadSource(s, env, cwd));
  const fileIndex = new Map(loaded.map((l, i) => [l.file, i]));
  const absOf = new Map(loaded.map((l, i) => [l.file, absolute[i]!]));
  const v = new Validator(fileIndex);
  v.addAll(setProblems);
  for (const l of loaded) v.addAll(l.problems);
  if (loaded.some((l) => l.fatal)) throw v.error();
  // Problems found while expanding (unset variables...) hide follow-up problems at the same path.
  for (const p of v.problems) v.suppress(p.path);

  let merged: SourcedValue = { value: {}, map: new SourceMap() };
  for (const l of loaded) {
    if (l.value === null || l.value === undefined) continue;
    if (!isPlainMap(l.value)) {
      v.add({
        path: '',
        message: 'the configuration must be a map (receivers:, exporters:, service: ...)',
        location: `${l.file}:1:1`,
      });
      continue;
    }
    merged = mergeSourced(merged, { value: l.value, map: l.map });
  }
  const root = merged.value as Record<string, unknown>;
  const map = merged.map;
  // Problems about something missing altogether point at the start of the first file.
  if (!map.get([])?.pos) map.set([], { pos: { file: loaded[0]!.file, line: 1, col: 1 } });
  const at = (path: ConfigPath) => map.locate(path);
  const atKey = (path: ConfigPath) => map.locateKey(path);

  for (const key of Object.keys(root)) {
    if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      v.add({
        path: key,
        message: `unknown top-level key "${key}"${didYouMean(key, TOP_LEVEL_KEYS) || ` (valid keys: ${TOP_LEVEL_KEYS.join(', ')})`}`,
        location: atKey([key]),
      });
    }
  }

  // Plugins first: they add component types.
  const registry = (opts.registry ?? (await loadBuiltins({ only: usedTypes(root) }))).clone();
  let plugins: PluginInfo[] = [];
  const pluginList = root.plugins;
  if (pluginList !== undefined && pluginList !== null) {
    if (!Array.isArray(pluginList)) {
      v.add({
        path: 'plugins',
        message: 'expected a list of npm package names or module paths',
        location: at(['plugins']),
      });
    } else {
      const requests: PluginRequest[] = [];
      pluginList.forEach((spec, i) => {
        const path = ['plugins', i];
        if (typeof spec !== 'string') {
          v.add({
            path: formatPath(path),
            message: 'expected a package name or a module path',
            location: at(path),
          });
          return;
        }
        const file = map.get(path)?.pos?.file;
        const baseDir = dirname((file !== undefined ? absOf.get(file) : undefined) ?? absolute[0]!);
        requests.push({ spec, baseDir, path: formatPath(path), ...opt('location', at(path)) });
      });
      const r = await loadPlugins(requests, registry);
      plugins = r.plugins;
      v.addAll(r.problems);
    }
  }

  const components = {
    receiver: new Map<string, ComponentEntry<'receiver'>>(),
    processor: new Map<string, ComponentEntry<'processor'>>(),
    exporter: new Map<string, ComponentEntry<'exporter'>>(),
    extension: new Map<string, ComponentEntry<'extension'>>(),
  };
  // Ids present in the config (even when their config is invalid), to check references.
  const configured = new Map<ComponentKind, Set<string>>(COMPONENT_KINDS.map((k) => [k, new Set()]));

  for (const kind of COMPONENT_KINDS) {
    const section = SECTION_OF[kind];
    const raw = root[section];
    if (raw === undefined || raw === null) continue;
    if (!isPlainMap(raw)) {
      v.add({
        path: section,
        message: `expected a map of ${kind} id to its options`,
        location: at([section]),
      });
      continue;
    }
    for (const [id, rawConfig] of Object.entries(raw)) {
      configured.get(kind)!.add(id);
      const entry = parseComponent(kind, id, rawConfig, registry, map, v);
      if (entry) (components[kind] as Map<string, ComponentEntry>).set(id, entry);
    }
  }

  // Service. The section is parsed once for its problems; extensions and each pipeline are then
  // read on their own, so one bad option does not hide wiring problems elsewhere.
  const pipelines = new Map<string, PipelineEntry>();
  let serviceExtensions: string[] = [];
  const rawService = root.service ?? {};
  const service = parseSection(serviceSchema, rawService, ['service'], map);
  if (!service.ok) v.addAll(service.problems);
  const svc = isPlainMap(rawService) ? rawService : {};
  const exts = serviceSchema.shape.extensions.safeParse(svc.extensions);
  if (exts.success) {
    serviceExtensions = exts.data;
    checkRefs(v, map, ['service', 'extensions'], exts.data, 'extension', configured.get('extension')!);
  }
  const rawPipelines = isPlainMap(svc.pipelines) ? svc.pipelines : {};
  if (Object.keys(rawPipelines).length === 0 && (svc.pipelines ?? null) === null) {
    v.add({
      path: 'service.pipelines',
      message: 'at least one pipeline is required, e.g. logs: { receivers: [file], exporters: [file] }',
      location: at(['service', 'pipelines']),
    });
  }
  for (const [id, raw] of Object.entries(rawPipelines)) {
    const base = ['service', 'pipelines', id];
    const idProblem = checkPipelineId(id);
    if (idProblem) {
      v.add({ path: formatPath(base), message: idProblem, location: atKey(base) });
      continue;
    }
    const parsed = pipelineSchema.nullable().safeParse(raw);
    if (!parsed.success) continue; // reported by the section parse above
    const pl = parsed.data ?? { receivers: [], processors: [], exporters: [] };
    for (const [list, kind] of [
      ['receivers', 'receiver'],
      ['exporters', 'exporter'],
    ] as const) {
      if (pl[list].length === 0) {
        v.add({
          path: formatPath([...base, list]),
          message: `a pipeline needs at least one ${kind}`,
          location: at([...base, list]),
        });
      }
    }
    checkRefs(v, map, [...base, 'receivers'], pl.receivers, 'receiver', configured.get('receiver')!);
    checkRefs(v, map, [...base, 'processors'], pl.processors, 'processor', configured.get('processor')!);
    checkRefs(v, map, [...base, 'exporters'], pl.exporters, 'exporter', configured.get('exporter')!);
    pipelines.set(id, {
      id,
      receivers: pl.receivers,
      processors: pl.processors,
      exporters: pl.exporters,
      path: formatPath(base),
      ...opt('location', atKey(base)),
    });
  }

  // Extension references (`storage: file_storage`, `sending_queue.storage`) of the components that
  // will be created: what `run` would only find at start, when the component asks the host for it.
  const inPipelines = new Set(
    [...pipelines.values()].flatMap((p) => [...p.receivers, ...p.processors, ...p.exporters]),
  );
  const enabled = new Set(serviceExtensions);
  for (const kind of ['receiver', 'processor', 'exporter'] as const) {
    for (const entry of components[kind].values()) {
      if (!inPipelines.has(entry.id)) continue;
      const refs = extensionRefs(entry.config, []);
      if (entry.sendingQueue) {
        // `sending_queue.storage: none` opts out of the automatic persistent queue: not a reference.
        refs.push(
          ...extensionRefs({ sending_queue: entry.sendingQueue }, []).filter(
            (r) => r.id !== IN_MEMORY_STORAGE,
          ),
        );
      }
      for (const ref of refs) {
        const path = [SECTION_OF[kind], entry.id, ...ref.path];
        if (enabled.has(ref.id)) continue;
        const configuredExt = configured.get('extension')!.has(ref.id);
        v.add({
          path: formatPath(path),
          message: configuredExt
            ? `extension "${ref.id}" is configured but not listed in service.extensions, so it is not started; add it there`
            : `references extension "${ref.id}" which is not configured${didYouMean(ref.id, configured.get('extension')!)} (declare it under extensions and list it in service.extensions)`,
          ...opt('location', map.locate(path)),
        });
      }
    }
  }

  // Unused components: a warning, they are not created.
  const warnings: ConfigProblem[] = [];
  const used = {
    receiver: new Set([...pipelines.values()].flatMap((p) => p.receivers)),
    processor: new Set([...pipelines.values()].flatMap((p) => p.processors)),
    exporter: new Set([...pipelines.values()].flatMap((p) => p.exporters)),
    extension: new Set(serviceExtensions),
  };
  for (const kind of COMPONENT_KINDS) {
    for (const id of configured.get(kind)!) {
      if (used[kind].has(id)) continue;
      const path = [SECTION_OF[kind], id];
      warnings.push({
        path: formatPath(path),
        message:
          kind === 'extension'
            ? 'is configured but not listed in service.extensions; it will not be started'
            : 'is configured but not used in any pipeline; it will not be created',
        ...opt('location', atKey(path)),
      });
    }
  }

  const expansions: Expansion[] = [...map.expansionsUnder([])];
  if (v.problems.length > 0) throw v.error(expansions);
  const telemetry = service.ok ? service.data.telemetry : serviceSchema.parse({}).telemetry;
  return {
    files: absolute,
    configDir: dirname(absolute[0]!),
    receivers: components.receiver,
    processors: components.processor,
    exporters: components.exporter,
    extensions: components.extension,
    pipelines,
    serviceExtensions,
    telemetry,
    shutdownTimeoutMs: service.ok ? service.data.shutdown_timeout : 30_000,
    startTimeoutMs: service.ok ? service.data.start_timeout : 30_000,
    plugins,
    registry,
    warnings: warnings.map((w) => ({ ...w, message: scrubMessage(w.message, expansions) })),
    locate: (path) => locateDotted(map, path),
  };
}

/** Finds the position of a dotted path (as printed by `formatPath`), or of its nearest ancestor. */
function locateDotted(map: SourceMap, dotted: string): string | undefined {
  const byText = new Map<string, ConfigPath>();
  for (const e of map.entriesUnder([])) byText.set(formatPath(e.path), e.path);
  for (let p = dotted; p !== ''; p = p.replace(/(\[\d+\]|\.?[^.[]*)$/, '')) {
    const path = byText.get(p);
    if (path) return map.locate(path);
  }
  return undefined;
}

/** Which built-in types a config mentions (only those are imported). */
function usedTypes(root: Record<string, unknown>): (kind: ComponentKind, type: string) => boolean {
  const used = new Set<string>();
  for (const kind of COMPONENT_KINDS) {
    const section = root[SECTION_OF[kind]];
    if (!isPlainMap(section)) continue;
    for (const id of Object.keys(section)) used.add(`${kind}:${id.split('/')[0]}`);
  }
  return (kind, type) => used.has(`${kind}:${type}`);
}

/** Parses one component's id and options; records problems and returns the entry when valid. */
function parseComponent<K extends ComponentKind>(
  kind: K,
  id: string,
  rawConfig: unknown,
  registry: ComponentRegistry,
  map: SourceMap,
  v: Validator,
): ComponentEntry<K> | undefined {
  const section = SECTION_OF[kind];
  const path = [section, id];
  const parsedId = parseComponentId(id);
  if ('problem' in parsedId) {
    v.add({ path: formatPath(path), message: parsedId.problem, location: map.locateKey(path) });
    return undefined;
  }
  const factory = registry.get(kind, parsedId.type);
  if (!factory) {
    const known = registry.types(kind);
    v.add({
      path: formatPath(path),
      message:
        `unknown ${kind} type "${parsedId.type}"${didYouMean(parsedId.type, known)}` +
        (known.length > 0 ? ` (available: ${known.join(', ')})` : ` (no ${kind} types are available)`),
      location: map.locateKey(path),
    });
    return undefined;
  }
  if (rawConfig !== null && rawConfig !== undefined && !isPlainMap(rawConfig)) {
    v.add({
      path: formatPath(path),
      message: 'expected a map of options (or nothing for the defaults)',
      location: map.locate(path),
    });
    return undefined;
  }
  let input: Record<string, unknown> = rawConfig ?? {};
  let sendingQueue: SendingQueueConfig | undefined;
  let ok = true;
  if (kind === 'exporter') {
    // `sending_queue` is common to every exporter: the runtime owns it, the factory never sees it.
    const sq = parseSection(sendingQueueSchema, input.sending_queue ?? {}, [...path, 'sending_queue'], map);
    if (sq.ok) sendingQueue = sq.data;
    else {
      v.addAll(sq.problems);
      ok = false;
    }
    if (Object.hasOwn(input, 'sending_queue')) {
      const rest: Record<string, unknown> = {};
      for (const [k, val] of Object.entries(input)) if (k !== 'sending_queue') setOwn(rest, k, val);
      input = rest;
    }
  }
  const r = parseSection(factory.configSchema, input, path, map);
  if (!r.ok) {
    v.addAll(r.problems);
    return undefined;
  }
  if (!ok) return undefined;
  return {
    kind,
    id,
    type: parsedId.type,
    ...opt('name', parsedId.name),
    factory,
    config: r.data,
    ...opt('sendingQueue', sendingQueue),
    path: formatPath(path),
    ...opt('location', map.locateKey(path)),
  };
}

/** Checks a list of component references: configured, and none listed twice. */
function checkRefs(
  v: Validator,
  map: SourceMap,
  base: ConfigPath,
  ids: readonly string[],
  kind: ComponentKind,
  configured: ReadonlySet<string>,
): void {
  const seen = new Set<string>();
  ids.forEach((id, i) => {
    const path = [...base, i];
    if (!configured.has(id)) {
      v.add({
        path: formatPath(path),
        message: `references ${kind} "${id}" which is not configured${didYouMean(id, configured)}`,
        location: map.locate(path),
      });
    }
    if (seen.has(id)) {
      v.add({
        path: formatPath(path),
        message: `${kind} "${id}" is listed twice`,
        location: map.locate(path),
      });
    }
    seen.add(id);
  });
}

/** Every `storage: <extension id>` option at any depth of a parsed component config. */
function extensionRefs(cfg: unknown, path: string[]): { path: string[]; id: string }[] {
  if (!isPlainMap(cfg)) return [];
  const out: { path: string[]; id: string }[] = [];
  for (const [k, val] of Object.entries(cfg)) {
    if (k === 'storage' && typeof val === 'string' && val !== '') out.push({ path: [...path, k], id: val });
    else if (isPlainMap(val)) out.push(...extensionRefs(val, [...path, k]));
  }
  return out;
}

function opt<K extends string, T>(key: K, value: T | undefined): { [P in K]?: T } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: T };
}

/** Collects problems; sorts them by file and position for the final report. */
class Validator {
  readonly problems: ConfigProblem[] = [];
  readonly #suppressed = new Set<string>();
  readonly #fileIndex: ReadonlyMap<string, number>;

  constructor(fileIndex: ReadonlyMap<string, number>) {
    this.#fileIndex = fileIndex;
  }

  suppress(path: string): void {
    if (path !== '') this.#suppressed.add(path);
  }

  add(p: { path: string; message: string; location?: string | undefined }): void {
    for (const s of this.#suppressed) {
      if (p.path === s || p.path.startsWith(`${s}.`) || p.path.startsWith(`${s}[`)) return;
    }
    this.problems.push({ path: p.path, message: p.message, ...opt('location', p.location) });
  }

  addAll(ps: readonly ConfigProblem[]): void {
    for (const p of ps) this.add(p);
  }

  error(expansions: readonly Expansion[] = []): ConfigError {
    const keyed = this.problems.map((p, i) => ({ p, i, k: this.#sortKey(p.location) }));
    keyed.sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || a.k[2] - b.k[2] || a.i - b.i);
    return new ConfigError(keyed.map(({ p }) => ({ ...p, message: scrubMessage(p.message, expansions) })));
  }

  #sortKey(location: string | undefined): [number, number, number] {
    if (location === undefined) return [Infinity, 0, 0];
    const m = /^(.*):(\d+):(\d+)$/.exec(location);
    if (!m) return [this.#fileIndex.get(location) ?? Infinity, 0, 0];
    return [this.#fileIndex.get(m[1]!) ?? Infinity, Number(m[2]), Number(m[3])];
  }
}

/**
 * Reads only the `plugins:` lists of `files` and loads them into a copy of `registry` (for the
 * `components` command, which lists plugin types without validating the rest). Throws
 * {@link ConfigError} when a file cannot be read or a plugin fails.
 */
export async function loadPluginsFromFiles(
  files: readonly string[],
  registry: ComponentRegistry,
  opts: Omit<LoadConfigOptions, 'registry'> = {},
): Promise<{ registry: ComponentRegistry; plugins: PluginInfo[] }> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const out = registry.clone();
  const problems: ConfigProblem[] = [];
  const requests: PluginRequest[] = [];
  const { sources, problems: setProblems } = resolveSources(files, opts, cwd, env);
  problems.push(...setProblems);
  for (const s of sources) {
    const abs = s.path;
    const l = loadSource(s, env, cwd);
    problems.push(...l.problems);
    if (l.fatal || !isPlainMap(l.value) || !Array.isArray(l.value.plugins)) continue;
    requests.length = 0; // lists are replaced by later files, as in a full load
    l.value.plugins.forEach((spec, i) => {
      if (typeof spec !== 'string') return;
      requests.push({
        spec,
        baseDir: dirname(abs),
        path: `plugins[${i}]`,
        ...opt('location', l.map.locate(['plugins', i])),
      });
    });
  }
  const r = await loadPlugins(requests, out);
  problems.push(...r.problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return { registry: out, plugins: r.plugins };
}
