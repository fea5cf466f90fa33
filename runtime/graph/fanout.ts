/**
 * Fan-out: one consumer that forwards each batch to several consumers. Consumers are called
 * concurrently; every failure is collected into one {@link FanoutError} (permanent only when every
 * failure is), and the successful consumers' deliveries stand. Consumers that declare
 * `mutatesData` get their own deep copy; the others share the original, read-only.
 */
import type { LogsConsumer } from '../component.ts';
import { FanoutError } from '../errors.ts';
import { cloneRecord } from '../model.ts';
import type { LogsBatch } from '../model.ts';

/** One branch of a fan-out. */
export interface FanoutTarget {
  /** Shown in errors: `exporter "es"`, `pipeline "logs/audit"`. */
  id: string;
  consumer: LogsConsumer;
}

/** A deep copy of a batch, for a consumer that mutates it. */
export function cloneBatch(batch: LogsBatch): LogsBatch {
  return batch.map((r) => cloneRecord(r, true));
}

/**
 * A consumer that forwards to every target. With a single target it returns that target's consumer
 * unchanged (no copy, no wrapping).
 */
export function createFanout(targets: readonly FanoutTarget[]): LogsConsumer {
  if (targets.length === 0) throw new Error('fan-out needs at least one consumer');
  if (targets.length === 1) return targets[0]!.consumer;
  const list = [...targets];
  const mutating = list.filter((t) => t.consumer.capabilities.mutatesData);
  // When nobody reads the original, the last mutating consumer may take it instead of a copy.
  const ownerOfOriginal = mutating.length === list.length ? mutating[mutating.length - 1] : undefined;
  return {
    capabilities: { mutatesData: false },
    async consume(batch: LogsBatch): Promise<void> {
      const results = await Promise.allSettled(
        list.map(async (t) => {
          const input =
            t.consumer.capabilities.mutatesData && t !== ownerOfOriginal ? cloneBatch(batch) : batch;
          await t.consumer.consume(input);
        }),
      );
      const errors: { id: string; error: unknown }[] = [];
      results.forEach((r, i) => {
        if (r.status === 'rejected') errors.push({ id: list[i]!.id, error: r.reason });
      });
      if (errors.length > 0) throw new FanoutError(errors);
    },
  };
}
