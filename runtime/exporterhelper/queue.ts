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
  if (config.storage !== undefined && config.storage !== 'none') {
    return new PersistentQueue(settings, config, exporter);
  }
  return new MemoryQueue(settings, config, exporter);
};
