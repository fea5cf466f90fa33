/**
 * The delivery failure taxonomy shared by every exporter, the sending queue, the fan-out and the
 * receivers' delivery loops. Three classes:
 *
 * 1. `rejected` — the sink refused a record (or a whole request) **for its content**: a per-item
 *    mapping error, an OTLP partial-success rejection, a JSON 400 naming a parse error. The same data
 *    will always fail. The exporter dead-letters it when configured and counts it; the batch is then
 *    acknowledged (`PermanentError` when the whole batch is affected). Receivers drop and move on only
 *    for this class.
 * 2. `sink_unusable` — the sink cannot take *anything* until someone fixes it: 401/403 (credentials,
 *    privileges), 404 and 3xx (wrong URL, a proxy's error page), a 4xx whose body is not the sink's
 *    own JSON error, a TLS failure, 413 for a request that cannot be split further. The data is fine.
 *    Never acknowledged, never dropped: retried with a slow, capped backoff for as long as it takes
 *    (`max_elapsed_time` does not apply), health `permanent_error` with the reason, one log line when
 *    the episode starts and one when it ends ({@link SinkHealth}).
 * 3. `retryable` — everything else (5xx, 429, timeouts, resets): retried as configured.
 *
 * Class 2 is a {@link RetryableError} subclass, so code that only knows "permanent or not" retries it.
 */
import type { ComponentSettings } from '../component.ts';
import { collectorMetrics } from '../telemetry/metrics.ts';
import {
  CollectorError,
  ErrorCode,
  FanoutError,
  RetryableError,
  errorMessage,
  isPermanent,
} from '../errors.ts';

export type FailureClass = 'rejected' | 'sink_unusable' | 'retryable';

/** The sink cannot take anything until it is fixed (class 2). Retryable, never dropped. */
export class SinkUnusableError extends RetryableError {
  /** Short machine-readable cause: `http_401`, `http_404`, `tls`, `too_large`, `non_json_4xx`, ... */
  readonly kind: string;
  constructor(
    kind: string,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined },
  ) {
    super(message, options);
    this.name = 'SinkUnusableError';
    this.kind = kind;
  }
}

/** True for a class-2 error, also inside a {@link FanoutError} (any branch) or as a `cause`. */
export function isSinkUnusable(err: unknown): boolean {
  if (err instanceof SinkUnusableError) return true;
  if (err instanceof FanoutError) return err.errors.some((e) => isSinkUnusable(e.error));
  return false;
}

/** The class of a failure. Unknown errors are retryable. */
export function failureClass(err: unknown): FailureClass {
  if (isPermanent(err)) return 'rejected';
  if (isSinkUnusable(err)) return 'sink_unusable';
  return 'retryable';
}

/**
 * Classifies a non-2xx HTTP answer to a whole request.
 *
 * - 429, 408 and 5xx: retryable.
 * - 401, 403, 404, 405, 407, 415, 3xx and any 4xx whose body is not the sink's own structured error
 *   (`structured: false`, e.g. a proxy's HTML page): sink unusable.
 * - 413: sink unusable (the caller splits first; this is what remains when it cannot).
 * - other 4xx with a structured body (the sink parsed the request and refused its content): rejected.
 */
export function classifyHttpStatus(status: number, structured: boolean): FailureClass {
  if (status === 429 || status === 408 || status >= 500) return 'retryable';
  if (status >= 300 && status < 400) return 'sink_unusable';
  if ([401, 403, 404, 405, 407, 413, 415].includes(status)) return 'sink_unusable';
  if (status >= 400 && status < 500) return structured ? 'rejected' : 'sink_unusable';
  // 1xx or anything odd: not a verdict about the data.
  return 'retryable';
}

/** Short reason of a class-2 HTTP status, for `SinkUnusableError.kind`. */
export function httpKind(status: number, structured: boolean): string {
  if (status >= 400 && status < 500 && !structured && ![401, 403, 404, 405, 407, 413, 415].includes(status))
    return 'non_json_4xx';
  return `http_${status}`;
}

/** Error codes of TLS failures (Node / OpenSSL / undici), anywhere in the `cause` chain. */
const TLS_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);

/** True when `err` (or one of its causes) is a TLS handshake or certificate failure. */
export function isTlsError(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 6 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (TLS_CODES.has(code) || /^ERR_SSL_|^ERR_TLS_/.test(code))) return true;
    const msg = e instanceof Error ? e.message : '';
    if (/\b(ssl|tls)\b.*(alert|handshake|routines)|handshake failure|wrong version number/i.test(msg))
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Backoff of class-2 retries: twice the configured `initial_interval` (at least 100 ms), doubling per
 * attempt, capped at `max(max_interval, 5 s)`, ±20 % jitter. With the defaults: 2 s, 4 s, ... 30 s.
 */
export function sinkUnusableDelay(
  attempt: number,
  cfg: { initial_interval: number; max_interval: number },
  random: () => number = Math.random,
): number {
  const cap = Math.max(cfg.max_interval, 5000);
  const first = Math.max(100, 2 * cfg.initial_interval);
  const base = Math.min(cap, first * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(base * (0.8 + random() * 0.4));
}

/**
 * Health of one exporter's deliveries: turns class-2 failures into an episode with one error log line
 * and `permanent_error` on the health endpoint, and its end into one info line and `ok`. Shared by the
 * sending queue's delivery loops (one instance per exporter).
 */
export class SinkHealth {
  readonly #settings: ComponentSettings;
  #episode: { since: number; kind: string; attempts: number } | undefined;

  constructor(settings: ComponentSettings) {
    this.#settings = settings;
  }

  /** True while the sink is known unusable. */
  get unusable(): boolean {
    return this.#episode !== undefined;
  }

  /** Milliseconds since the current episode started (0 when none). */
  get unusableForMs(): number {
    return this.#episode ? Date.now() - this.#episode.since : 0;
  }

  /** Records a failed delivery attempt; only class-2 failures open an episode. */
  failed(err: unknown, nextRetryMs?: number): void {
    const sink = findSinkUnusable(err);
    if (!sink) return;
    if (this.#episode) {
      this.#episode.attempts++;
      return;
    }
    this.#episode = { since: Date.now(), kind: sink.kind, attempts: 1 };
    const msg = errorMessage(sink);
    this.#settings.reportStatus('permanent_error', msg);
    this.#settings.logger.error(
      'sink cannot accept data until it is fixed; nothing is dropped: batches stay queued and are retried with a slow backoff',
      { reason: sink.kind, error: msg, ...(nextRetryMs === undefined ? {} : { retry_in_ms: nextRetryMs }) },
    );
  }

  /** Records a successful delivery: ends an episode. */
  succeeded(): void {
    const ep = this.#episode;
    if (!ep) return;
    this.#episode = undefined;
    this.#settings.reportStatus('ok');
    this.#settings.logger.info('sink accepts data again; delivering the queued batches', {
      reason: ep.kind,
      unusable_for_ms: Date.now() - ep.since,
      failed_attempts: ep.attempts,
    });
  }
}

function findSinkUnusable(err: unknown): SinkUnusableError | undefined {
  if (err instanceof SinkUnusableError) return err;
  if (err instanceof FanoutError) {
    for (const e of err.errors) {
      const f = findSinkUnusable(e.error);
      if (f) return f;
    }
  }
  return undefined;
}

/** True for the runtime's "component is shut down" error. */
export function isShuttingDown(err: unknown): boolean {
  return err instanceof CollectorError && err.code === ErrorCode.SHUTTING_DOWN;
}

/**
 * Counts records of a failed delivery attempt that an exporter retries itself (its own `retry` loop),
 * in `otelcol_exporter_send_failed_log_records`: the runtime counts the attempts that reject `consume`,
 * this counts the ones before them, so a sink that is down shows up in the metric at once.
 */
export function sendFailedCounter(settings: ComponentSettings): (records: number, err?: unknown) => void {
  const m = collectorMetrics(settings.metrics);
  return (records, err) => {
    if (records > 0) m.exporterSendFailed.inc({ exporter: settings.id, ...sendFailedLabels(err) }, records);
  };
}

/**
 * `error_permanent` and `error_type` of a failed send, as OTel's exporterhelper labels them
 * (`error_type`: the HTTP status code when known, else `_OTHER`).
 */
export function sendFailedLabels(err: unknown): { error_permanent: string; error_type: string } {
  const permanent = err instanceof CollectorError && err.code === ErrorCode.CONSUME_PERMANENT;
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status;
  return {
    error_permanent: String(permanent),
    error_type: typeof status === 'number' && status >= 100 && status < 600 ? String(status) : '_OTHER',
  };
}
