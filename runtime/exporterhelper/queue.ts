/**
 * `sending_queue`: the runtime wraps every exporter in one. This file fixes the contract; the
 * implementation (bounded in-memory queue, persistent write-ahead log through `file_storage`) lives
 * beside it in queue/.
 *
 * Semantics:
 * - In-memory (default): bounds the number of batches in flight (`num_consumers`) and waiting
 *   (`queue_size`); when full, `consume` blocks (`block_on_overflow: true`, default) or rejects with a
 *   RetryableError. `consume` resolves only when the exporter delivered the batch (wait-for-result),
 *   so a receiver's checkpoint never passes undelivered data.
 * - Persistent (`storage: file_storage[/name]`, and by default for an exporter that shares a receiver's
 *   data with other exporters when a storage extension is configured): `consume` resolves once the batch is fsynced to the
 *   queue's log; background consumers deliver with retry; a batch is deleted only after delivery or a
 *   permanent failure (counted and logged). Undelivered batches are replayed on the next start.
 *
 * Both kinds retry a failed delivery per `retry_on_failure` (on top of the exporter's own retries;
 * forever by default). Stored batches are JSON (see queue/codec.ts); the log format is described in
 * queue/wal.ts.
 */
import * as z from 'zod';
import { byteSize, positiveInt, retryDefaults, retrySchema } from '../config/types.ts';
import type { ComponentSettings, Exporter, Host } from '../component.ts';
import { MemoryQueue } from './queue/memory.ts';
import { PersistentQueue } from './queue/persistent.ts';
import { documentOptions } from '../config/docs.ts';

export const sendingQueueSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Batches delivered concurrently. */
  num_consumers: positiveInt().default(2),
  /** Batches that may wait (in memory) or be stored (persistent) before backpressure. */
  queue_size: positiveInt().default(100),
  /** When full: block the caller (true) or reject with a retryable error (false). */
  block_on_overflow: z.boolean().default(true),
  /**
   * Storage extension id for a persistent queue; `none`: in memory. Absent: in memory, except for an
   * exporter that shares a receiver's data with other exporters, which gets a persistent queue in the
   * first storage extension of `service.extensions` (exporter isolation, see runtime/graph/graph.ts).
   */
  storage: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_]*(\/\S+)?$/, {
      error: 'expected a storage extension id such as "file_storage"',
    })
    .optional(),
  /** Persistent queue: bytes on disk before backpressure. */
  max_size_mib: positiveInt().default(256),
  /** Persistent queue: bytes of one stored batch before it is split (0 = no limit). */
  max_batch_bytes: byteSize().default(0),
  /**
   * Retries of a failed delivery by the queue (after the exporter's own retries gave up). Default:
   * forever (`max_elapsed_time: 0`), so a retryable error never drops data.
   */
  retry_on_failure: retrySchema.prefault({}),
});
export type SendingQueueConfig = z.output<typeof sendingQueueSchema>;
export const sendingQueueDefaults = {
  enabled: true,
  num_consumers: 2,
  queue_size: 100,
  block_on_overflow: true,
  max_size_mib: 256,
  max_batch_bytes: 0,
  retry_on_failure: { ...retryDefaults },
};

/** An exporter wrapped in its sending queue. The runtime starts and shuts it down instead of the exporter. */
export type QueuedExporter = Exporter;

/**
 * Wraps `exporter` in a sending queue. The returned component's `start` starts the exporter first,
 * `shutdown` drains (in-memory) or persists (persistent) and then shuts the exporter down.
 */
export type CreateSendingQueue = (
  settings: ComponentSettings,
  config: SendingQueueConfig,
  exporter: Exporter,
) => QueuedExporter;

/** `sending_queue.storage: none`: keep the queue in memory, also where the runtime would make it persistent. */
export const IN_MEMORY_STORAGE = 'none';

/** The storage extension a queue persists in; undefined for an in-memory queue. */
export function persistentStorage(q: Pick<SendingQueueConfig, 'storage'>): string | undefined {
  return q.storage === IN_MEMORY_STORAGE ? undefined : q.storage;
}

export const createSendingQueue: CreateSendingQueue = (settings, config, exporter) => {
  if (!config.enabled) {
    // No queue: the caller talks to the exporter directly (still wait-for-result).
    return {
      capabilities: exporter.capabilities,
      start: (host: Host) => exporter.start(host),
      shutdown: () => exporter.shutdown(),
      consume: (batch) => exporter.consume(batch),
    };
  }
  if (persistentStorage(config) !== undefined) {
    return new PersistentQueue(settings, config, exporter);
  }
  return new MemoryQueue(settings, config, exporter);
};

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and runtime/exporterhelper/queue/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(sendingQueueSchema, [
  {
    names: ['enabled'],
    type: 'bool',
    default: '`true`',
    description: '`false`: no queue, the pipeline calls the exporter directly (still wait-for-result).',
  },
  { names: ['num_consumers'], type: 'int', default: '`2`', description: 'Batches delivered concurrently.' },
  {
    names: ['queue_size'],
    type: 'int',
    default: '`100`',
    description:
      'In-memory: batches that may wait for a consumer. Persistent: batches stored on disk (waiting or being delivered).',
  },
  {
    names: ['block_on_overflow'],
    type: 'bool',
    default: '`true`',
    description:
      'When full: block the caller until there is room (backpressure), or (`false`) refuse at once with a retryable "sending queue is full" error counted in `otelcol_exporter_enqueue_failed_log_records`. The receiver keeps its checkpoint and retries either way.',
  },
  {
    names: ['storage'],
    type: 'string',
    default: '—',
    description:
      'Id of a storage extension (`file_storage`, `file_storage/queues`). Set: persistent queue. Unset: in-memory. The extension must be listed in `service.extensions`.',
  },
  {
    names: ['max_size_mib'],
    type: 'int',
    default: '`256`',
    description:
      'Persistent: disk space of the log (segments and acknowledgement files) before the pipeline blocks (or refuses, see `block_on_overflow`). An empty queue always accepts one batch, even a larger one.',
  },
  {
    names: ['max_batch_bytes'],
    type: 'byte size',
    default: '`0`',
    description:
      'Persistent: a batch whose serialised size exceeds this is split in halves (recursively) into several stored batches. `0`: never split.',
  },
  {
    names: ['retry_on_failure.enabled'],
    type: 'bool',
    default: '`true`',
    description:
      'Retry failed deliveries. `false`: a batch whose delivery fails with a retryable error is dropped (persistent, counted with reason `retry_disabled`) or handed back to the caller (in-memory).',
  },
  {
    names: ['retry_on_failure.initial_interval'],
    type: 'duration',
    default: '`1s`',
    description: 'First backoff.',
  },
  {
    names: ['retry_on_failure.max_interval'],
    type: 'duration',
    default: '`30s`',
    description: "Backoff ceiling. A peer's `Retry-After` wins when longer.",
  },
  {
    names: ['retry_on_failure.max_elapsed_time'],
    type: 'duration',
    default: '`0s`',
    description:
      '`0`: retry forever (nothing is dropped on retryable errors). Otherwise a batch still failing after this long is given up: persistent queue drops it (counted, reason `retries_exhausted`), in-memory queue rejects the caller permanently.',
  },
  {
    names: ['retry_on_failure.multiplier'],
    type: 'number',
    default: '`1.5`',
    description: 'Backoff growth.',
  },
  {
    names: ['retry_on_failure.randomization_factor'],
    type: 'number',
    default: '`0.5`',
    description: 'Jitter (±50 %).',
  },
]);
