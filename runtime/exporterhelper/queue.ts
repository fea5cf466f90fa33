/**
 * `sending_queue`: the runtime wraps every exporter in one. This file fixes the contract; the
 * implementation (bounded in-memory queue, persistent write-ahead log through `file_storage`) lives
 * beside it.
 *
 * Semantics:
 * - In-memory (default): bounds the number of batches in flight (`num_consumers`) and waiting
 *   (`queue_size`); when full, `consume` blocks (`block_on_overflow: true`, default) or rejects with a
 *   RetryableError. `consume` resolves only when the exporter delivered the batch (wait-for-result),
 *   so a receiver's checkpoint never passes undelivered data.
 * - Persistent (`storage: file_storage[/name]`): `consume` resolves once the batch is fsynced to the
 *   queue's log; background consumers deliver with retry; a batch is deleted only after delivery or a
 *   permanent failure (counted and logged). Undelivered batches are replayed on the next start.
 */
import * as z from 'zod';
import { byteSize, positiveInt } from '../config/types.ts';
import type { ComponentSettings, Exporter, Host } from '../component.ts';

export const sendingQueueSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Batches delivered concurrently. */
  num_consumers: positiveInt().default(2),
  /** Batches that may wait (in memory) or be stored (persistent) before backpressure. */
  queue_size: positiveInt().default(100),
  /** When full: block the caller (true) or reject with a retryable error (false). */
  block_on_overflow: z.boolean().default(true),
  /** Storage extension id for a persistent queue; absent means in-memory. */
  storage: z.string().optional(),
  /** Persistent queue: bytes on disk before backpressure. */
  max_size_mib: positiveInt().default(256),
  /** Persistent queue: bytes of one stored batch before it is split (0 = no limit). */
  max_batch_bytes: byteSize().default(0),
});
export type SendingQueueConfig = z.output<typeof sendingQueueSchema>;
export const sendingQueueDefaults = {
  enabled: true,
  num_consumers: 2,
  queue_size: 100,
  block_on_overflow: true,
  max_size_mib: 256,
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

/** Placeholder until the queue lands: passes batches straight through. */
export const createSendingQueue: CreateSendingQueue = (_settings, _config, exporter) => ({
  capabilities: exporter.capabilities,
  start: (host: Host) => exporter.start(host),
  shutdown: () => exporter.shutdown(),
  consume: (batch) => exporter.consume(batch),
});
