/**
 * The collector's own metrics, in the OpenTelemetry Collector's naming, registered on one
 * prom-client Registry. Components add theirs on `settings.metrics`; use {@link counter} /
 * {@link gauge} / {@link histogram} (get-or-create) so that two instances of the same component type
 * share one metric instead of failing on a duplicate registration.
 */
import { randomUUID } from 'node:crypto';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { ComponentKind } from '../component.ts';

interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

/** A counter by name: the registered one if it exists (and is a counter), else a new one. */
export function counter<L extends string>(registry: Registry, o: MetricOptions<L>): Counter<L> {
  const existing = registry.getSingleMetric(o.name);
  if (existing instanceof Counter) return existing;
  if (existing) throw new Error(`metric ${o.name} is already registered with another type`);
  return new Counter<L>({
    name: o.name,
    help: o.help,
    labelNames: o.labelNames ?? [],
    registers: [registry],
  });
}

/** A gauge by name (get-or-create, see {@link counter}). */
export function gauge<L extends string>(
  registry: Registry,
  o: MetricOptions<L> & { collect?: (this: Gauge<L>) => void },
): Gauge<L> {
  const existing = registry.getSingleMetric(o.name);
  if (existing instanceof Gauge) return existing;
  if (existing) throw new Error(`metric ${o.name} is already registered with another type`);
  return new Gauge<L>({
    name: o.name,
    help: o.help,
    labelNames: o.labelNames ?? [],
    registers: [registry],
    ...(o.collect ? { collect: o.collect } : {}),
  });
}

/** A histogram by name (get-or-create, see {@link counter}). */
export function histogram<L extends string>(
  registry: Registry,
  o: MetricOptions<L> & { buckets?: number[] },
): Histogram<L> {
  const existing = registry.getSingleMetric(o.name);
  if (existing instanceof Histogram) return existing;
  if (existing) throw new Error(`metric ${o.name} is already registered with another type`);
  return new Histogram<L>({
    name: o.name,
    help: o.help,
    labelNames: o.labelNames ?? [],
    registers: [registry],
    ...(o.buckets ? { buckets: o.buckets } : {}),
  });
}

/** Label name each kind uses for the component id (`receiver="file"`). */
export const KIND_LABEL: Record<ComponentKind, ComponentKind> = {
  receiver: 'receiver',
  processor: 'processor',
  exporter: 'exporter',
  extension: 'extension',
};

/** The runtime's per-component metrics. */
export interface CollectorMetrics {
  receiverAccepted: Counter<'receiver' | 'transport'>;
  receiverRefused: Counter<'receiver' | 'transport'>;
  processorIncoming: Counter<'processor' | 'pipeline'>;
  processorOutgoing: Counter<'processor' | 'pipeline'>;
  exporterSent: Counter<'exporter'>;
  exporterSendFailed: Counter<'exporter' | 'error_permanent' | 'error_type'>;
  /** Export requests currently in flight (including retry backoff). */
  exporterInFlight: Gauge<'exporter' | 'data_type'>;
  /** Incremented by the sending queue when it rejects a batch (queue full, storage failure). */
  exporterEnqueueFailed: Counter<'exporter'>;
  /** Set by the sending queue: batches currently queued. */
  exporterQueueSize: Gauge<'exporter' | 'data_type'>;
  /** Set by the sending queue: its capacity in batches. */
  exporterQueueCapacity: Gauge<'exporter' | 'data_type'>;
  receiverDropped: Counter<'receiver' | 'reason'>;
  processorDropped: Counter<'processor' | 'pipeline' | 'reason'>;
  exporterDropped: Counter<'exporter' | 'reason'>;
  extensionDropped: Counter<'extension' | 'reason'>;
  /** 1 for the current status of each component, 0 for the others. */
  componentStatus: Gauge<'kind' | 'id' | 'pipeline' | 'status'>;
}

const cache = new WeakMap<Registry, CollectorMetrics>();

/**
 * The runtime metrics on `registry` (created on first call). The sending queue reaches the
 * exporter queue metrics through here (or by name on `settings.metrics`).
 */
export function collectorMetrics(registry: Registry): CollectorMetrics {
  const hit = cache.get(registry);
  if (hit) return hit;
  const m: CollectorMetrics = {
    receiverAccepted: counter(registry, {
      name: 'otelcol_receiver_accepted_log_records',
      help: 'Number of log records successfully pushed into the pipeline.',
      labelNames: ['receiver', 'transport'],
    }),
    receiverRefused: counter(registry, {
      name: 'otelcol_receiver_refused_log_records',
      help: 'Number of log records that could not be pushed into the pipeline.',
      labelNames: ['receiver', 'transport'],
    }),
    processorIncoming: counter(registry, {
      name: 'otelcol_processor_incoming_log_records',
      help: 'Log records passed to the processor.',
      labelNames: ['processor', 'pipeline'],
    }),
    processorOutgoing: counter(registry, {
      name: 'otelcol_processor_outgoing_log_records',
      help: 'Log records the processor passed on to the next consumer.',
      labelNames: ['processor', 'pipeline'],
    }),
    exporterSent: counter(registry, {
      name: 'otelcol_exporter_sent_log_records',
      help: 'Log records the exporter delivered.',
      labelNames: ['exporter'],
    }),
    exporterSendFailed: counter(registry, {
      name: 'otelcol_exporter_send_failed_log_records',
      help: 'Number of log records in failed attempts to send to destination (the exporter gave up on them).',
      labelNames: ['exporter', 'error_permanent', 'error_type'],
    }),
    exporterInFlight: gauge(registry, {
      name: 'otelcol_exporter_in_flight_requests',
      help: 'Number of export requests currently in-flight (including retry backoff).',
      labelNames: ['exporter', 'data_type'],
    }),
    exporterEnqueueFailed: counter(registry, {
      name: 'otelcol_exporter_enqueue_failed_log_records',
      help: 'Log records the sending queue could not accept.',
      labelNames: ['exporter'],
    }),
    exporterQueueSize: gauge(registry, {
      name: 'otelcol_exporter_queue_size',
      help: 'Batches currently in the sending queue.',
      labelNames: ['exporter', 'data_type'],
    }),
    exporterQueueCapacity: gauge(registry, {
      name: 'otelcol_exporter_queue_capacity',
      help: 'Capacity of the sending queue, in batches.',
      labelNames: ['exporter', 'data_type'],
    }),
    receiverDropped: counter(registry, {
      name: 'otelcol_receiver_dropped_log_records',
      help: 'Log records a receiver dropped, by reason.',
      labelNames: ['receiver', 'reason'],
    }),
    processorDropped: counter(registry, {
      name: 'otelcol_processor_dropped_log_records',
      help: 'Log records a processor dropped, by reason.',
      labelNames: ['processor', 'pipeline', 'reason'],
    }),
    exporterDropped: counter(registry, {
      name: 'otelcol_exporter_dropped_log_records',
      help: 'Log records an exporter dropped, by reason.',
      labelNames: ['exporter', 'reason'],
    }),
    extensionDropped: counter(registry, {
      name: 'otelcol_extension_dropped_log_records',
      help: 'Log records an extension dropped, by reason.',
      labelNames: ['extension', 'reason'],
    }),
    componentStatus: gauge(registry, {
      name: 'otelcol_component_status',
      help: 'Component status: 1 for the current status, 0 for the others.',
      labelNames: ['kind', 'id', 'pipeline', 'status'],
    }),
  };
  cache.set(registry, m);
  return m;
}

/** A counter whose value is read at scrape time (a total kept elsewhere, e.g. CPU time). */
function observedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  if (registry.getSingleMetric(name)) return;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/**
 * Process metrics as the OTel Collector exposes them (same names, types and units): uptime and CPU
 * seconds are counters, memory figures gauges.
 */
export function registerProcessMetrics(registry: Registry, startedAt = Date.now()): void {
  observedCounter(
    registry,
    'otelcol_process_uptime',
    'Uptime of the process, in seconds.',
    () => (Date.now() - startedAt) / 1000,
  );
  gauge(registry, {
    name: 'otelcol_process_memory_rss',
    help: 'Total physical memory (resident set size), in bytes.',
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  gauge(registry, {
    name: 'otelcol_process_runtime_heap_alloc_bytes',
    help: 'Bytes of JavaScript heap in use.',
    collect() {
      this.set(process.memoryUsage().heapUsed);
    },
  });
  observedCounter(
    registry,
    'otelcol_process_cpu_seconds',
    'Total CPU user and system time, in seconds.',
    () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
  );
}

/**
 * The build-info metric, as the OTel Collector exposes its resource: `target_info` = 1 with
 * `service_name`, `service_version` and `service_instance_id` (new for every process start).
 */
export function registerBuildInfo(
  registry: Registry,
  info: { name: string; version: string },
  instanceId: string = randomUUID(),
): void {
  gauge(registry, {
    name: 'target_info',
    help: 'Target metadata',
    labelNames: ['service_name', 'service_version', 'service_instance_id'],
  }).set({ service_name: info.name, service_version: info.version, service_instance_id: instanceId }, 1);
}
