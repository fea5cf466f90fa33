/**
 * Component contracts. Every receiver, processor, exporter and extension (built-in or plugin) is
 * created by a factory declared here and driven by the runtime through {@link Component}.
 */
import type * as z from 'zod';
import type { Registry } from 'prom-client';
import type { LogsBatch } from './model.ts';

/** Kinds of components. */
export type ComponentKind = 'receiver' | 'processor' | 'exporter' | 'extension';

/** Health of a component, as reported to the health endpoint (OTel component-status model). */
export type ComponentStatus =
  'starting' | 'ok' | 'recoverable_error' | 'permanent_error' | 'fatal_error' | 'stopping' | 'stopped';

/** Structured logger. Fields are redacted by the runtime before output; never pass secrets in messages. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
  /** True when `debug` lines are written (to skip building expensive debug fields). */
  readonly debugEnabled: boolean;
}

/** What the runtime hands a component at creation time. Config is separate (see factories). */
export interface ComponentSettings {
  /** Component id as written in the config: `type[/name]`. */
  id: string;
  kind: ComponentKind;
  /** For processors: the pipeline id this instance belongs to. */
  pipeline?: string;
  logger: Logger;
  /** Prometheus registry of the collector; components register their own metrics here. */
  metrics: Registry;
  /** Collector build info. */
  buildInfo: { name: string; version: string };
  /** Directory of the (first) config file; relative paths in config resolve against it. */
  configDir: string;
  /** Report a health change (shown on the health endpoint). */
  reportStatus(status: ComponentStatus, message?: string): void;
  /**
   * Count and log records that leave the system other than by delivery. Every drop goes through
   * here: it increments `otelcol_<kind>_dropped_log_records{reason}` and logs one line.
   */
  reportDropped(count: number, reason: string, fields?: Record<string, unknown>): void;
}

/** What a started component may use. */
export interface Host {
  /** An extension by id (`file_storage`, `file_storage/x`), or undefined if not configured/started. */
  getExtension(id: string): Extension | undefined;
}

/**
 * Lifecycle of every component.
 *
 * 1. `start(host)` returns quickly; long-running work moves to the background with its own
 *    cancellation. A rejection aborts collector start-up.
 * 2. `shutdown()` stops intake, flushes buffered data downstream, releases resources. It is safe to
 *    call without `start()` and safe to call twice (the second call waits for the first). It runs
 *    under the runtime's deadline. After it resolves nothing else is called on the component.
 */
export interface Component {
  start(host: Host): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * The pipeline contract. `consume(batch)` resolves only when the batch has been delivered downstream
 * or durably queued. It rejects with `PermanentError` (never retry this data) or `RetryableError` /
 * any other error (retry later, honouring `retryAfterMs`). After the call settles the caller must not
 * touch the batch.
 */
export interface LogsConsumer {
  /** True when `consume` modifies records in place; fan-out clones the batch for such consumers. */
  readonly capabilities: { mutatesData: boolean };
  consume(batch: LogsBatch): Promise<void>;
}

/** A receiver produces batches and pushes them to `next`. */
export interface Receiver extends Component {
  /**
   * Present on finite sources (e.g. a file read to its end): resolves when the receiver has emitted
   * everything it ever will and every batch was acknowledged. When all receivers are finished the
   * collector drains and exits 0.
   */
  readonly finished?: Promise<void>;
}

/** A processor is a consumer that forwards (possibly transformed) batches to `next`. */
export interface Processor extends Component, LogsConsumer {}

/** An exporter is a terminal consumer. */
export interface Exporter extends Component, LogsConsumer {}

/** Extensions provide services to other components (e.g. storage). */
export type Extension = Component;

/** Key/value client handed out by a storage extension. Missing key: `undefined`, never an error. */
export interface StorageClient {
  get(key: string): Promise<Buffer | undefined>;
  /** Atomically replaces the value (write-then-rename + fsync for `file_storage`). */
  set(key: string, value: Buffer): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

/** An extension that hands out durable storage to components. */
export interface StorageExtension extends Extension {
  /**
   * A client for one component. `stableKey` identifies the data independently of the component's id
   * (e.g. receiver type + endpoint) so renaming a component keeps its checkpoints; the extension
   * warns when a component id is seen with a different key than before.
   */
  getClient(kind: ComponentKind, id: string, stableKey?: string): Promise<StorageClient>;
  /** A private directory for one component (for append-only files such as a queue's write-ahead log). */
  getDirectory(kind: ComponentKind, id: string, stableKey?: string): Promise<string>;
}

export function isStorageExtension(e: Extension | undefined): e is StorageExtension {
  return !!e && typeof (e as Partial<StorageExtension>).getClient === 'function';
}

/** Fields every factory has. `C` is the validated (parsed) config type. */
export interface FactoryBase<K extends ComponentKind, C> {
  kind: K;
  /** The YAML type name: lower_snake_case. */
  type: string;
  /** One line shown by `authentik-collector components`. */
  description: string;
  /**
   * Schema of the user config: unknown keys rejected, defaults applied, cross-field rules in
   * `superRefine`. Parsing `{}` through it must give the default config when the component has no
   * required options.
   */
  configSchema: z.ZodType<C>;
  /** The default config as a user would write it (used for `components` and docs). Side-effect free. */
  createDefaultConfig(): Record<string, unknown>;
}

export interface ReceiverFactory<C = unknown> extends FactoryBase<'receiver', C> {
  create(settings: ComponentSettings, config: C, next: LogsConsumer): Receiver | Promise<Receiver>;
}

export interface ProcessorFactory<C = unknown> extends FactoryBase<'processor', C> {
  create(settings: ComponentSettings, config: C, next: LogsConsumer): Processor | Promise<Processor>;
}

export interface ExporterFactory<C = unknown> extends FactoryBase<'exporter', C> {
  create(settings: ComponentSettings, config: C): Exporter | Promise<Exporter>;
}

export interface ExtensionFactory<C = unknown> extends FactoryBase<'extension', C> {
  create(settings: ComponentSettings, config: C): Extension | Promise<Extension>;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- a registry holds factories of any config type */
export type AnyFactory =
  ReceiverFactory<any> | ProcessorFactory<any> | ExporterFactory<any> | ExtensionFactory<any>;
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * Makes `shutdown` idempotent: the first call runs `fn`, later calls return the same promise.
 */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}
