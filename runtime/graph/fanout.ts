/**
 * Fan-out: one consumer that forwards each batch to several consumers. Consumers are called
 * concurrently. A branch that fails with a retryable error (class 2 or 3 of
 * runtime/exporterhelper/failure.ts) is **retried alone**, with backoff, until it takes the batch:
 * branches that already delivered it never see it again (no duplicates there, nor in their dead-letter
 * files). A branch that refuses it permanently (class 1) is not retried. The call resolves when every
 * branch has taken the batch, and rejects with a permanent {@link FanoutError} holding the permanent
 * failures when some branch refused it for good (the caller then drops it and moves on, while the
 * other branches' deliveries stand). When `signal` aborts (shutdown) the retries stop and the call
 * rejects with the retryable failures of that moment.
 *
 * Consumers that declare `mutatesData` get their own deep copy, made afresh for each attempt, so the
 * original stays intact for retries; the others share the original, read-only.
 */
import type { LogsConsumer } from '../component.ts';
import type { RetryConfig } from '../config/types.ts';
import { retryDefaults, retrySchema } from '../config/types.ts';
import { FanoutError, errorMessage, isPermanent, retryAfterOf } from '../errors.ts';
import { isSinkUnusable, sinkUnusableDelay } from '../exporterhelper/failure.ts';
import { backoffDelay, sleep } from '../exporterhelper/retry.ts';
import type { Logger } from '../component.ts';
import { cloneRecord } from '../model.ts';
import type { LogsBatch } from '../model.ts';

/** One branch of a fan-out. */
export interface FanoutTarget {
  /** Shown in errors: `exporter "es"`, `pipeline "logs/audit"`. */
  id: string;
  consumer: LogsConsumer;
}

/** Options of {@link createFanout}. */
export interface FanoutOptions {
  /** Backoff of branch retries (default: 1 s doubling ×1.5 to 30 s, forever). */
  retry?: RetryConfig;
  /** Stops retrying (shutdown). */
  signal?: AbortSignal;
  /** Where a retried branch is logged (debug; first retry of a branch at info). */
  logger?: Logger;
}

const DEFAULT_RETRY = retrySchema.parse(retryDefaults);

/** A deep copy of a batch, for a consumer that mutates it. */
export function cloneBatch(batch: LogsBatch): LogsBatch {
  return batch.map((r) => cloneRecord(r, true));
}

/**
 * A consumer that forwards to every target. With a single target it returns that target's consumer
 * unchanged (no copy, no wrapping).
 */
export function createFanout(targets: readonly FanoutTarget[], opts: FanoutOptions = {}): LogsConsumer {
  if (targets.length === 0) throw new Error('fan-out needs at least one consumer');
  if (targets.length === 1) return targets[0]!.consumer;
  const list = [...targets];
  const cfg = opts.retry ?? DEFAULT_RETRY;
  const send = async (t: FanoutTarget, batch: LogsBatch): Promise<void> => {
    await t.consumer.consume(t.consumer.capabilities.mutatesData ? cloneBatch(batch) : batch);
  };
  return {
    capabilities: { mutatesData: false },
    async consume(batch: LogsBatch): Promise<void> {
      let pending = list;
      const permanent: { id: string; error: unknown }[] = [];
      let sinkAttempts = 0;
      for (let attempt = 1; ; attempt++) {
        const results = await Promise.allSettled(pending.map((t) => send(t, batch)));
        const retryable: { t: FanoutTarget; error: unknown }[] = [];
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') return;
          if (isPermanent(r.reason)) permanent.push({ id: pending[i]!.id, error: r.reason });
          else retryable.push({ t: pending[i]!, error: r.reason });
        });
        if (retryable.length === 0) break;
        const errors = () => [...permanent, ...retryable.map((f) => ({ id: f.t.id, error: f.error }))];
        if (opts.signal?.aborted) throw new FanoutError(errors());
        const sink = retryable.some((f) => isSinkUnusable(f.error));
        const delay = Math.max(
          sink ? sinkUnusableDelay(++sinkAttempts, cfg) : backoffDelay(cfg, attempt),
          ...retryable.map((f) => retryAfterOf(f.error) ?? 0),
        );
        const fields = {
          branches: retryable.map((f) => f.t.id),
          delivered_to: list.length - retryable.length - permanent.length,
          attempt,
          delay_ms: delay,
          error: errorMessage(retryable[0]!.error),
          records: batch.length,
        };
        if (attempt === 1) opts.logger?.info('fan-out: retrying only the branches that failed', fields);
        else opts.logger?.debug('fan-out: branches failed again', fields);
        if (await sleep(delay, opts.signal)) throw new FanoutError(errors());
        pending = retryable.map((f) => f.t);
      }
      if (permanent.length > 0) throw new FanoutError(permanent);
    },
  };
}
