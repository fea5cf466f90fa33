/**
 * The shared retry loop of exporters: exponential backoff with jitter, honouring a peer's
 * `Retry-After`, stopping at once on permanent errors, and cut short by shutdown.
 */
import { isPermanent, PermanentError, retryAfterOf, errorMessage } from '../errors.ts';
import type { RetryConfig } from '../config/types.ts';
import { isSinkUnusable, sinkUnusableDelay } from './failure.ts';

/** Why a retry loop gave up. */
export class RetriesExhaustedError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetriesExhaustedError';
  }
}

export interface RetryHooks {
  /** Called before each wait with the failed attempt's error and the delay chosen. */
  onRetry?(attempt: number, error: unknown, delayMs: number): void;
  /** Aborts waiting (shutdown). When aborted the last error is rethrown as is (retryable). */
  signal?: AbortSignal;
  /**
   * What to do with a class-2 failure (`SinkUnusableError`, see failure.ts). `retry` (default): retry
   * it forever with the slow capped backoff, whatever `enabled` and `max_elapsed_time` say (such data
   * is never dropped). `throw`: rethrow at once, so the layer above (the sending queue) owns the
   * episode: used by exporters' own retry loops.
   */
  sinkUnusable?: 'retry' | 'throw';
}

/** Backoff delay for the given attempt (1-based), with randomisation. */
export function backoffDelay(cfg: RetryConfig, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(cfg.max_interval, cfg.initial_interval * cfg.multiplier ** (attempt - 1));
  const delta = cfg.randomization_factor * base;
  return Math.max(0, Math.round(base - delta + random() * 2 * delta));
}

/**
 * Calls `fn` until it resolves. Permanent errors are rethrown immediately. Retryable errors are
 * retried after `max(backoff, retryAfter)`. When `max_elapsed_time` > 0 and the next wait would pass
 * it, rejects with {@link RetriesExhaustedError}. When `signal` aborts, the last error is rethrown.
 */
export async function retry<T>(
  cfg: RetryConfig,
  fn: (attempt: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<T> {
  const startedAt = Date.now();
  let sinkAttempts = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (isPermanent(err)) throw err;
      if (hooks.signal?.aborted) throw err;
      if (isSinkUnusable(err)) {
        if (hooks.sinkUnusable === 'throw') throw err;
        const delay = Math.max(sinkUnusableDelay(++sinkAttempts, cfg), retryAfterOf(err) ?? 0);
        hooks.onRetry?.(attempt, err, delay);
        if (await sleep(delay, hooks.signal)) throw err;
        continue;
      }
      sinkAttempts = 0;
      if (!cfg.enabled) throw err;
      const delay = Math.max(backoffDelay(cfg, attempt), retryAfterOf(err) ?? 0);
      if (cfg.max_elapsed_time > 0 && Date.now() - startedAt + delay > cfg.max_elapsed_time) {
        throw new RetriesExhaustedError(
          `gave up after ${attempt} attempts in ${Date.now() - startedAt} ms (max_elapsed_time): ${errorMessage(err)}`,
          { cause: err },
        );
      }
      hooks.onRetry?.(attempt, err, delay);
      const aborted = await sleep(delay, hooks.signal);
      if (aborted) throw err;
    }
  }
}

/** Sleeps `ms`; resolves true if `signal` aborted the wait. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(true);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Parses an HTTP `Retry-After` header (delta seconds or HTTP date) into milliseconds.
 */
export function parseRetryAfter(
  value: string | string[] | undefined | null,
  now = Date.now(),
): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === null || v.trim() === '') return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/**
 * Classifies an HTTP status the way OTLP does: 429/502/503/504 (and 408) retryable, other 4xx
 * permanent, other 5xx retryable.
 */
export function isRetryableStatus(status: number): boolean {
  if (status === 429 || status === 408 || status === 502 || status === 503 || status === 504) return true;
  if (status >= 400 && status < 500) return false;
  return status >= 500;
}
