/**
 * The validated configuration the runtime builds its graph from. Produced by `loadConfig`; every
 * component config in it has already been parsed by its factory's schema.
 */
import type { ComponentKind } from '../component.ts';
import type { ConfigProblem } from '../errors.ts';
import type { SendingQueueConfig } from '../exporterhelper/queue.ts';
import type { PluginInfo } from '../plugins/load.ts';
import type { ComponentRegistry, FactoryByKind } from '../plugins/registry.ts';
import type { TelemetryConfig } from './service.ts';

/** One configured component. */
export interface ComponentEntry<K extends ComponentKind = ComponentKind> {
  kind: K;
  /** `type[/name]`. */
  id: string;
  type: string;
  name?: string;
  factory: FactoryByKind[K];
  /** The config as parsed by the factory's schema (defaults applied). */
  config: unknown;
  /** Exporters only: the common `sending_queue` option, parsed. */
  sendingQueue?: SendingQueueConfig;
  /** Dotted path (`exporters.file`) and `file:line:column`, for messages about this component. */
  path: string;
  location?: string;
}

/** One pipeline (`logs` or `logs/<name>`). */
export interface PipelineEntry {
  id: string;
  receivers: string[];
  processors: string[];
  exporters: string[];
  path: string;
  location?: string;
}

/** A fully validated configuration. */
export interface ResolvedConfig {
  /** The files it was loaded from, in merge order. */
  files: string[];
  /** Folder of the first config file: relative paths in component configs resolve against it. */
  configDir: string;
  receivers: Map<string, ComponentEntry<'receiver'>>;
  processors: Map<string, ComponentEntry<'processor'>>;
  exporters: Map<string, ComponentEntry<'exporter'>>;
  extensions: Map<string, ComponentEntry<'extension'>>;
  pipelines: Map<string, PipelineEntry>;
  /** `service.extensions`: the extensions to start, in order. */
  serviceExtensions: string[];
  telemetry: TelemetryConfig;
  shutdownTimeoutMs: number;
  startTimeoutMs: number;
  plugins: PluginInfo[];
  /** Factories available (built-ins plus plugins). */
  registry: ComponentRegistry;
  /** Non-fatal findings (e.g. a configured component no pipeline uses). */
  warnings: ConfigProblem[];
  /**
   * `file:line:column` of a dotted config path (`exporters.elasticsearch.tls.ca_file`), or of its
   * nearest configured ancestor. For problems found after loading (e.g. when a component is created).
   */
  locate(path: string): string | undefined;
}
