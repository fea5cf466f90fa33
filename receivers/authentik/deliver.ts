/**
 * Hands a batch to the pipeline and waits for the verdict, following the failure taxonomy of
 * runtime/exporterhelper/failure.ts. Retryable refusals (class 3) are retried with exponential backoff
 * (honouring `retryAfterMs`), offering freshly built records each time (the pipeline may have mutated
 * the previous ones). A sink that is unusable until fixed (class 2: 401/403, 404, TLS, ...) is retried
 * with the slow capped backoff for as long as it takes, whatever `retry_on_failure` says: that data is
 * fine and is never dropped. Only a PermanentError (class 1: the data itself is bad) is counted
 * through `reportDropped` and skipped, otherwise one bad record would stall the whole source forever.
 */
import type { ComponentSettings, LogsConsumer } from '../../runtime/component.ts';
import type { RetryConfig } from '../../runtime/config/types.ts';
import { errorMessage, isPermanent } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { retry } from '../../runtime/exporterhelper/retry.ts';
import { StoppedError } from './client.ts';
import type { ReceiverMetrics } from './metrics.ts';

export interface Delivery {
  next: LogsConsumer;
  retry: RetryConfig;
  settings: ComponentSettings;
  metrics: ReceiverMetrics;
  signal: AbortSignal;
}

export type Dataset = 'events' | 'users' | 'groups';

/**
 * Delivers one batch. Resolves `true` when the pipeline accepted it, `false` when it refused it
 * permanently (counted as dropped). Rejects with StoppedError on shutdown (nothing delivered may be
 * assumed then).
 */
export async function deliver(
  d: Delivery,
  dataset: Dataset,
  size: number,
  make: (attempt: number) => LogsBatch,
): Promise<boolean> {
  if (size === 0) return true;
  let refusals = 0;
  try {
    await retry(d.retry, (attempt) => d.next.consume(make(attempt)), {
      signal: d.signal,
      onRetry: (attempt, err, delayMs) => {
        refusals++;
        d.metrics.deliveryRetry(dataset);
        const fields = { dataset, records: size, attempt, delayMs, reason: errorMessage(err) };
        if (attempt === 1)
          d.settings.logger.warn('pipeline refused a batch; offering it again with backoff', fields);
        else d.settings.logger.debug('pipeline refused the batch again', fields);
      },
    });
  } catch (err) {
    if (d.signal.aborted && !isPermanent(err)) throw new StoppedError();
    if (isPermanent(err)) {
      d.settings.reportDropped(size, `pipeline refused the batch permanently: ${errorMessage(err)}`, {
        dataset,
      });
      return false;
    }
    // retry() only rethrows class-3 errors when retrying is disabled (class 2 is always retried).
    d.settings.reportDropped(
      size,
      `pipeline refused the batch and retry_on_failure is disabled: ${errorMessage(err)}`,
      {
        dataset,
      },
    );
    return false;
  }
  if (refusals > 0)
    d.settings.logger.info('pipeline accepted the batch after refusals', {
      dataset,
      records: size,
      refusals,
    });
  return true;
}
