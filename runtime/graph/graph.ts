/**
 * Builds the pipeline graph from a validated configuration: creates every component, wires
 * receivers → processors → exporters, and wraps each edge for telemetry.
 *
 * - One exporter instance per exporter id, shared by every pipeline that lists it, wrapped in its
 *   sending queue.
 * - One processor instance per (pipeline, processor id), chained in the pipeline's order.
 * - One receiver instance per receiver id; a receiver listed in several pipelines fans out to each.
 * - A pipeline with several exporters fans out to them (see fanout.ts).
 * - Exporter isolation: an exporter that receives data from the same receiver as other exporters gets
 *   a persistent sending queue in the first storage extension of `service.extensions` when it has none
 *   configured (see runtime/README.md, "Exporter isolation"); a configuration in which one exporter
 *   can still stall another is logged as a warning (by `validate` and `run`).
 */
import type { Component, ComponentKind, ComponentSettings, Exporter, LogsConsumer } from '../component.ts';
import { isStorageExtension } from '../component.ts';
import { ConfigError, errorMessage, withTimeout } from '../errors.ts';
import type { ConfigProblem } from '../errors.ts';
import {
  IN_MEMORY_STORAGE,
  createSendingQueue as defaultCreateSendingQueue,
  persistentStorage,
  sendingQueueSchema,
} from '../exporterhelper/queue.ts';
import type { CreateSendingQueue, SendingQueueConfig } from '../exporterhelper/queue.ts';
import type { ComponentEntry, ResolvedConfig } from '../config/resolved.ts';
import { runAs } from '../telemetry/context.ts';
import {
  guardClosed,
  instrumentExporter,
  instrumentProcessor,
  instrumentProcessorOutput,
  instrumentReceiverOutput,
} from '../telemetry/instrument.ts';
import { componentSettings } from '../telemetry/settings.ts';
import type { SettingsDeps } from '../telemetry/settings.ts';
import { statusKey } from '../telemetry/status.ts';
import { createFanout } from './fanout.ts';
import { Inflight } from './inflight.ts';

/** One component instance in the graph. */
export interface GraphNode {
  kind: ComponentKind;
  id: string;
  /** Processors: the pipeline this instance belongs to. */
  pipeline?: string;
  /** Key on the status board (`processor:batch@logs`). */
  key: string;
  /** What the runtime starts and shuts down (an exporter's sending queue, not the bare exporter). */
  component: Component;
  settings: ComponentSettings;
  /** Receivers and processors: calls in flight on their output edge (drained at shutdown). */
  output?: Inflight;
  /** Set once the node is shut down; later calls into it reject with SHUTTING_DOWN. */
  closed: boolean;
  /** Receivers: when `closed`, the pipeline refuses new batches from it (SHUTTING_DOWN, retryable). */
  intake?: { closed: boolean };
}

/** The built graph. */
export interface Graph {
  /** Extensions in `service.extensions` order. */
  extensions: GraphNode[];
  exporters: GraphNode[];
  /** Processors per pipeline, in pipeline order. */
  processors: Map<string, GraphNode[]>;
  receivers: GraphNode[];
  /** Aborted by the service when the exporters are about to stop: fan-outs stop retrying branches. */
  stopping?: AbortController;
}

/** Dependencies of {@link buildGraph}. */
export interface GraphDeps extends SettingsDeps {
  /** The sending queue (injectable for tests; default: runtime/exporterhelper/queue.ts). */
  createSendingQueue?: CreateSendingQueue;
}

/** Nodes in start order: extensions, exporters, processors (last of each pipeline first), receivers. */
export function startOrder(g: Graph): GraphNode[] {
  const procs: GraphNode[] = [];
  const depth = Math.max(0, ...[...g.processors.values()].map((l) => l.length));
  for (let i = depth - 1; i >= 0; i--)
    for (const list of g.processors.values()) if (list[i]) procs.push(list[i]!);
  return [...g.extensions, ...g.exporters, ...procs, ...g.receivers];
}

/**
 * Groups of nodes in shutdown order: receivers, then processors by position (first of each pipeline
 * first), exporters, then extensions one by one in reverse start order. Nodes within a group are
 * independent and shut down concurrently.
 */
export function shutdownStages(g: Graph): GraphNode[][] {
  const stages: GraphNode[][] = [];
  if (g.receivers.length) stages.push(g.receivers);
  const depth = Math.max(0, ...[...g.processors.values()].map((l) => l.length));
  for (let i = 0; i < depth; i++) {
    stages.push([...g.processors.values()].flatMap((l) => (l[i] ? [l[i]!] : [])));
  }
  if (g.exporters.length) stages.push(g.exporters);
  for (const e of [...g.extensions].reverse()) stages.push([e]);
  return stages;
}

/** Every node of the graph. */
export function allNodes(g: Graph): GraphNode[] {
  return [...g.extensions, ...g.exporters, ...[...g.processors.values()].flat(), ...g.receivers];
}

/**
 * Creates every component used by a pipeline (and every extension in `service.extensions`) and wires
 * them. A component whose `create` throws is a configuration problem; all are collected, the
 * components created so far are shut down, and a {@link ConfigError} is thrown.
 */
export async function buildGraph(config: ResolvedConfig, deps: GraphDeps): Promise<Graph> {
  const depsWithDir: SettingsDeps = { ...deps, configDir: config.configDir };
  const createQueue = deps.createSendingQueue ?? defaultCreateSendingQueue;
  const problems: ConfigProblem[] = [];
  const stopping = new AbortController();
  const graph: Graph = { extensions: [], exporters: [], processors: new Map(), receivers: [], stopping };
  const fanoutOptions = { signal: stopping.signal, logger: deps.logger };

  const node = (
    kind: ComponentKind,
    id: string,
    component: Component,
    settings: ComponentSettings,
    pipeline?: string,
  ): GraphNode => ({
    kind,
    id,
    key: statusKey(kind, id, pipeline),
    component,
    settings,
    closed: false,
    ...(pipeline === undefined ? {} : { pipeline }),
  });

  const create = async <T>(entry: ComponentEntry, pipeline: string | undefined, fn: () => T | Promise<T>) => {
    try {
      const c = await runAs({ kind: entry.kind, id: entry.id, ...(pipeline ? { pipeline } : {}) }, async () =>
        fn(),
      );
      if (!isComponent(c))
        throw new Error('create() did not return a component (start and shutdown are required)');
      if (
        (entry.kind === 'processor' || entry.kind === 'exporter') &&
        typeof (c as { consume?: unknown }).consume !== 'function'
      ) {
        throw new Error(`create() returned a ${entry.kind} without consume()`);
      }
      return c;
    } catch (err) {
      if (err instanceof ConfigError) {
        // A component that validates more at creation (files, certificates) reports config problems.
        for (const p of err.problems) {
          const path =
            p.path === '' ? entry.path : p.path.startsWith(entry.path) ? p.path : `${entry.path}.${p.path}`;
          const location = p.location ?? config.locate(path) ?? entry.location;
          problems.push({ path, message: p.message, ...(location === undefined ? {} : { location }) });
        }
        return undefined;
      }
      problems.push({
        path: entry.path,
        message: `cannot create ${entry.kind} "${entry.id}"${pipeline ? ` for pipeline "${pipeline}"` : ''}: ${errorMessage(err)}`,
        ...(entry.location === undefined ? {} : { location: entry.location }),
      });
      return undefined;
    }
  };

  // Extensions, in service.extensions order.
  for (const id of config.serviceExtensions) {
    const entry = config.extensions.get(id);
    if (!entry) continue;
    const settings = componentSettings(depsWithDir, 'extension', id);
    const ext = await create(entry, undefined, () => entry.factory.create(settings, entry.config));
    if (ext) graph.extensions.push(node('extension', id, ext, settings));
  }

  // Exporters: one per id used anywhere.
  const exporterConsumers = new Map<string, LogsConsumer>();
  const usedExporters = unique([...config.pipelines.values()].flatMap((p) => p.exporters));
  const storageId = graph.extensions.find((n) => isStorageExtension(n.component))?.id;
  const queueConfigs = isolateExporters(config, storageId, deps.logger);
  for (const id of usedExporters) {
    const entry = config.exporters.get(id);
    if (!entry) continue;
    const settings = componentSettings(depsWithDir, 'exporter', id);
    const exp = await create(entry, undefined, () => entry.factory.create(settings, entry.config));
    if (!exp) continue;
    const queueConfig = queueConfigs.get(id) ?? entry.sendingQueue ?? sendingQueueSchema.parse({});
    let queued: Exporter;
    try {
      queued = createQueue(settings, queueConfig, instrumentExporter(id, exp, deps.metrics));
    } catch (err) {
      problems.push({
        path: `${entry.path}.sending_queue`,
        message: `cannot create the sending queue: ${errorMessage(err)}`,
      });
      continue;
    }
    const n = node('exporter', id, queued, settings);
    graph.exporters.push(n);
    exporterConsumers.set(
      id,
      guardClosed(queued, () => n.closed, `exporter "${id}"`),
    );
  }

  // Pipelines: exporters fan-out, then processors from last to first.
  const pipelineEntry = new Map<string, LogsConsumer>();
  for (const p of config.pipelines.values()) {
    const targets = p.exporters.flatMap((id) => {
      const c = exporterConsumers.get(id);
      return c ? [{ id: `exporter "${id}"`, consumer: c }] : [];
    });
    // When an exporter could not be created the graph is discarded, but processors are still created
    // so that their problems are reported in the same run.
    let next: LogsConsumer =
      targets.length === p.exporters.length ? createFanout(targets, fanoutOptions) : unavailable;
    const nodes: GraphNode[] = [];
    for (const id of [...p.processors].reverse()) {
      const entry = config.processors.get(id);
      if (!entry) continue;
      const settings = componentSettings(depsWithDir, 'processor', id, p.id);
      const output = new Inflight();
      const out = instrumentProcessorOutput(id, p.id, next, deps.metrics, output);
      const proc = await create(entry, p.id, () => entry.factory.create(settings, entry.config, out));
      if (!proc) continue;
      const wrapped = instrumentProcessor(id, p.id, proc, deps.metrics);
      const n = node('processor', id, wrapped, settings, p.id);
      n.output = output;
      nodes.unshift(n);
      next = guardClosed(wrapped, () => n.closed, `processor "${id}" of pipeline "${p.id}"`);
    }
    graph.processors.set(p.id, nodes);
    pipelineEntry.set(p.id, next);
  }

  // Receivers: one per id, fanning out to every pipeline that lists it.
  const usedReceivers = unique([...config.pipelines.values()].flatMap((p) => p.receivers));
  for (const id of usedReceivers) {
    const entry = config.receivers.get(id);
    if (!entry) continue;
    const targets = [...config.pipelines.values()]
      .filter((p) => p.receivers.includes(id))
      .flatMap((p) => {
        const c = pipelineEntry.get(p.id);
        return c ? [{ id: `pipeline "${p.id}"`, consumer: c }] : [];
      });
    const settings = componentSettings(depsWithDir, 'receiver', id);
    const output = new Inflight();
    const intake = { closed: false };
    // Closed first at shutdown: new batches are refused (retryably) while those already handed over
    // drain and the receiver can still checkpoint them.
    const next = guardClosed(
      instrumentReceiverOutput(
        id,
        targets.length > 0 ? createFanout(targets, fanoutOptions) : unavailable,
        deps.metrics,
        output,
      ),
      () => intake.closed,
      `the pipeline of receiver "${id}" (the collector is stopping)`,
    );
    const rec = await create(entry, undefined, () => entry.factory.create(settings, entry.config, next));
    if (!rec) continue;
    const n = node('receiver', id, rec, settings);
    n.output = output;
    n.intake = intake;
    graph.receivers.push(n);
  }

  if (problems.length > 0) {
    // Release what was created (shutdown is safe without start).
    await Promise.allSettled(
      allNodes(graph).map((n) =>
        withTimeout(`shutdown of ${n.kind} "${n.id}"`, 5_000, () => runAs(n, () => n.component.shutdown())),
      ),
    );
    throw new ConfigError(problems);
  }
  return graph;
}

/** Lower bound of `queue_size` of an automatic persistent queue (see isolateExporters). */
export const AUTO_QUEUE_SIZE = 10_000;

/** For each receiver id: the exporters its data reaches (through every pipeline that lists it). */
export function exportersByReceiver(config: ResolvedConfig): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of config.pipelines.values()) {
    for (const r of p.receivers) out.set(r, unique([...(out.get(r) ?? []), ...p.exporters]));
  }
  return out;
}

/**
 * Exporter isolation. Every exporter that shares a receiver's data with other exporters needs its
 * own durable queue, otherwise a down exporter holds back the receiver and so every other exporter
 * (an in-memory queue resolves only after delivery). Returns the sending-queue configs to use instead
 * of the configured ones: such exporters without `sending_queue.storage` get a persistent queue in
 * `storageId` (the first storage extension of `service.extensions`). Logs one info line per exporter
 * switched, and one warning per exporter that can still stall others (queue disabled,
 * `storage: none`, or no storage extension to use).
 */
export function isolateExporters(
  config: ResolvedConfig,
  storageId: string | undefined,
  logger: {
    info(msg: string, f?: Record<string, unknown>): void;
    warn(msg: string, f?: Record<string, unknown>): void;
  },
): Map<string, SendingQueueConfig> {
  const shared = new Map<string, Set<string>>();
  for (const exporters of exportersByReceiver(config).values()) {
    if (exporters.length < 2) continue;
    for (const e of exporters) {
      const others = shared.get(e) ?? new Set<string>();
      for (const o of exporters) if (o !== e) others.add(o);
      shared.set(e, others);
    }
  }
  const out = new Map<string, SendingQueueConfig>();
  for (const [id, others] of shared) {
    const entry = config.exporters.get(id);
    if (!entry) continue;
    const q = entry.sendingQueue ?? sendingQueueSchema.parse({});
    const list = [...others].map((o) => `"${o}"`).join(', ');
    const where = entry.location ? { location: entry.location } : {};
    if (q.enabled && persistentStorage(q) !== undefined) continue;
    if (q.enabled && q.storage === undefined && storageId !== undefined) {
      // queue_size bounds waiting batches in memory; on disk `max_size_mib` is the real bound, so the
      // automatic queue holds at least AUTO_QUEUE_SIZE batches (an outage then rides on the disk bound).
      out.set(id, { ...q, storage: storageId, queue_size: Math.max(q.queue_size, AUTO_QUEUE_SIZE) });
      logger.info(
        `exporter "${id}" shares its data with ${list}: using a persistent sending queue in "${storageId}" so that one exporter being down does not hold back the others (set sending_queue.storage to choose another extension, or "none" to keep it in memory)`,
        where,
      );
      continue;
    }
    const why = !q.enabled
      ? 'its sending_queue is disabled'
      : q.storage === IN_MEMORY_STORAGE
        ? 'its sending_queue.storage is "none" (in memory)'
        : 'no storage extension is listed in service.extensions for a persistent sending queue';
    logger.warn(
      `${entry.path}: while this exporter cannot deliver it stalls ${list} (same receiver): ${why}. Add a file_storage extension to service.extensions (exporters sharing data then get persistent queues), or set sending_queue.storage`,
      where,
    );
  }
  return out;
}

/** Placeholder consumer when a pipeline could not be built (the graph is discarded anyway). */
const unavailable: LogsConsumer = {
  capabilities: { mutatesData: false },
  consume: () => Promise.reject(new Error('pipeline unavailable')),
};

function isComponent(c: unknown): c is Component {
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof (c as Component).start === 'function' &&
    typeof (c as Component).shutdown === 'function'
  );
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}
