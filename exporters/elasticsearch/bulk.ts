/**
 * Sending one group of items through `_bulk` until each item is delivered (201), already there (409), or
 * permanently rejected. 429/5xx items are re-sent alone; request-level 429/5xx, timeouts and network errors
 * re-send the whole remaining group, honouring `Retry-After`. Answers that say the sink itself is unusable
 * (401/403, 404/3xx, a 4xx without an Elasticsearch JSON error, TLS failures, 413 for a single document)
 * reject with a `SinkUnusableError` (runtime/exporterhelper/failure.ts): nothing is rejected or dropped,
 * the sending queue retries the batch slowly until the sink is fixed. A 4xx with an Elasticsearch error
 * body for the whole request rejects its documents (content, class 1: dead letter).
 */
import { promisify } from 'node:util';
import { gzip as gzipCb, constants as zlibConstants } from 'node:zlib';
import type { Logger } from '../../runtime/component.ts';
import type { RetryConfig } from '../../runtime/config/types.ts';
import { RetryableError, errorMessage } from '../../runtime/errors.ts';
import {
  SinkUnusableError,
  classifyHttpStatus,
  httpKind,
  isTlsError,
} from '../../runtime/exporterhelper/failure.ts';
import { parseRetryAfter, retry } from '../../runtime/exporterhelper/retry.ts';
import type { EsClient, HttpResponse } from './client.ts';
import { TransportError, describeEsError, parseEsError } from './client.ts';
import type { BulkItem } from './document.ts';
import type { EsMetrics } from './metrics.ts';

const gzip = promisify(gzipCb);

/** Query string of every `_bulk` request: keep the response small. */
export const BULK_PATH = '/_bulk?filter_path=errors,items.*.status,items.*.error';

/** Error object of a rejected item (as Elasticsearch returns it, or made up for request-level failures). */
export type ItemError = Record<string, unknown> & { type?: string; reason?: string };

/** Where a sender reports the final state of each item. */
export interface ItemSink {
  /** 201 (indexed) or 409 (already there). */
  delivered(item: BulkItem, status: number): void;
  /** Permanently rejected: never retried. */
  rejected(item: BulkItem, status: number, error: ItemError): void;
}

/**
 * Credentials refused (401/403 on `_bulk`): the sink is unusable until the credentials or privileges are
 * fixed (class 2: nothing is dropped, the batch is retried slowly).
 */
export class AuthFailure extends SinkUnusableError {
  readonly status: number;
  constructor(status: number, message: string) {
    super(`http_${status}`, message);
    this.name = 'AuthFailure';
    this.status = status;
  }
}

/** True when an Elasticsearch error body (`{"error": ..., "status": n}`) came back. */
function isEsErrorBody(res: HttpResponse): boolean {
  const ct = String(res.headers['content-type'] ?? '');
  if (ct !== '' && !ct.includes('json')) return false;
  try {
    const j = JSON.parse(res.body.toString('utf8')) as unknown;
    return j !== null && typeof j === 'object' && 'error' in j;
  } catch {
    return false;
  }
}

export interface BulkSenderOptions {
  client: EsClient;
  compression: 'gzip' | 'none';
  retry: RetryConfig;
  metrics: EsMetrics;
  logger: Logger;
  /** Called when a request failed in a way that is retried (for health reporting). */
  onRequestFailure?: (message: string) => void;
  /** Called when a request got a 2xx answer. */
  onRequestSuccess?: () => void;
  /** Called with the number of documents of a failed attempt that is retried here. */
  onAttemptFailed?: (documents: number, err?: unknown) => void;
}

function isRetryableItemStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

function isRetryableRequestStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

interface BulkResponse {
  errors?: boolean;
  items?: Record<string, { status?: number; error?: ItemError }>[];
}

export class BulkSender {
  readonly #o: BulkSenderOptions;
  constructor(opts: BulkSenderOptions) {
    this.#o = opts;
  }

  /**
   * Sends `items` until none is left pending. Resolves when every item reached the sink. Rejects with
   * {@link AuthFailure}, `RetriesExhaustedError` (retry budget spent; items still pending were not
   * delivered) or, when `signal` aborts, the last retryable error.
   */
  async send(items: BulkItem[], sink: ItemSink, signal: AbortSignal): Promise<void> {
    let pending = items;
    let split: [BulkItem[], BulkItem[]] | undefined;
    await retry(
      this.#o.retry,
      async (attempt) => {
        if (attempt > 1) {
          for (const it of pending) it.attempts++;
          this.#o.metrics.docs('retried', pending.length);
        }
        const outcome = await this.#attempt(pending, sink, signal);
        if (outcome.kind === 'split') {
          split = outcome.halves;
          return;
        }
        pending = outcome.retry;
        if (pending.length > 0) {
          throw new RetryableError(
            `${pending.length} of the documents were refused for now (${outcome.reason}); re-sending them`,
            { retryAfterMs: outcome.retryAfterMs },
          );
        }
      },
      {
        signal,
        sinkUnusable: 'throw',
        onRetry: (attempt, err, delayMs) => {
          this.#o.onAttemptFailed?.(pending.length, err);
          this.#o.logger.debug('retrying _bulk', {
            attempt,
            delay_ms: delayMs,
            documents: pending.length,
            error: errorMessage(err),
          });
        },
      },
    );
    if (split) {
      // 413: the server wants smaller requests; each half gets its own retry budget.
      await this.send(split[0], sink, signal);
      await this.send(split[1], sink, signal);
    }
  }

  async #attempt(
    items: BulkItem[],
    sink: ItemSink,
    signal: AbortSignal,
  ): Promise<
    | { kind: 'done'; retry: BulkItem[]; reason: string; retryAfterMs: number | undefined }
    | { kind: 'split'; halves: [BulkItem[], BulkItem[]] }
  > {
    let raw = '';
    for (const it of items) raw += it.lines;
    const rawBuf = Buffer.from(raw, 'utf8');
    const body =
      this.#o.compression === 'gzip' ? await gzip(rawBuf, { level: zlibConstants.Z_BEST_SPEED }) : rawBuf;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' };
    if (this.#o.compression === 'gzip') headers['content-encoding'] = 'gzip';
    const t0 = performance.now();
    let res: HttpResponse;
    try {
      res = await this.#o.client.request('POST', BULK_PATH, { body, headers, signal });
    } catch (err) {
      const seconds = (performance.now() - t0) / 1000;
      const status =
        err instanceof TransportError ? (err.kind === 'timeout' ? 'timeout' : 'network_error') : 'error';
      this.#o.metrics.request(status, seconds, body.length, rawBuf.length);
      const msg = `_bulk of ${items.length} documents failed: ${errorMessage(err)}`;
      this.#o.onRequestFailure?.(msg);
      if (isTlsError(err)) throw new SinkUnusableError('tls', `${msg} (TLS failure)`, { cause: err });
      throw new RetryableError(msg, { cause: err });
    }
    this.#o.metrics.request(String(res.status), (performance.now() - t0) / 1000, body.length, rawBuf.length);

    if (res.status === 401 || res.status === 403) {
      const what = res.status === 401 ? 'rejected the credentials' : 'denied indexing (missing privilege)';
      throw new AuthFailure(
        res.status,
        `${res.endpoint} ${what}: ${res.status} ${describeEsError(res.body)}; check the exporter's auth settings and the user's privileges (create_doc on logs-*)`,
      );
    }
    if (res.status === 413) {
      if (items.length > 1) {
        const mid = Math.ceil(items.length / 2);
        this.#o.logger.warn('_bulk request too large for the server (413); splitting it', {
          documents: items.length,
          bytes: rawBuf.length,
        });
        return { kind: 'split', halves: [items.slice(0, mid), items.slice(mid)] };
      }
      // One document and still too large: the server (or a proxy in front of it) must accept larger
      // requests (http.max_content_length, client_max_body_size). Not the document's fault: keep it.
      throw new SinkUnusableError(
        'too_large',
        `${res.endpoint} answered 413 for a _bulk request of a single document (${rawBuf.length} bytes); raise the request size limit of the server or proxy`,
      );
    }
    if (isRetryableRequestStatus(res.status)) {
      const msg = `_bulk answered ${res.status}: ${describeEsError(res.body)}`;
      this.#o.onRequestFailure?.(msg);
      throw new RetryableError(msg, { retryAfterMs: parseRetryAfter(res.headers['retry-after']) });
    }
    if (res.status < 200 || res.status >= 300) {
      const structured = isEsErrorBody(res);
      if (classifyHttpStatus(res.status, structured) !== 'rejected') {
        // 404/3xx/405/415 or a 4xx page that is not Elasticsearch's (a proxy, a wrong URL): the sink is
        // unusable; the documents are fine and are kept.
        const msg = `${res.endpoint} answered ${res.status} to _bulk${structured ? `: ${describeEsError(res.body)}` : ' with a body that is not an Elasticsearch error'}; check the endpoint URL and any proxy in front of it`;
        this.#o.onRequestFailure?.(msg);
        throw new SinkUnusableError(httpKind(res.status, structured), msg);
      }
      // Any other 4xx for the whole request with Elasticsearch's own error (e.g. 400 illegal_argument):
      // the same request will fail again, so every document of it is rejected with that error.
      const e = parseEsError(res.body);
      const error: ItemError = {
        type: e.type ?? `http_${res.status}`,
        reason: e.reason ?? 'request rejected',
      };
      if (e.causedBy !== undefined) error['caused_by'] = e.causedBy;
      for (const it of items) sink.rejected(it, res.status, error);
      return { kind: 'done', retry: [], reason: '', retryAfterMs: undefined };
    }

    let parsed: BulkResponse;
    try {
      parsed = JSON.parse(res.body.toString('utf8')) as BulkResponse;
    } catch {
      throw new RetryableError(`_bulk answered ${res.status} with a body that is not JSON; re-sending`);
    }
    const results = parsed.items;
    if (!Array.isArray(results) || results.length !== items.length) {
      throw new RetryableError(
        `_bulk answered with ${Array.isArray(results) ? results.length : 'no'} items for ${items.length} documents; re-sending`,
      );
    }
    this.#o.onRequestSuccess?.();
    const retryItems: BulkItem[] = [];
    let reason = '';
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const r = results[i] ? Object.values(results[i]!)[0] : undefined;
      const status = typeof r?.status === 'number' ? r.status : 0;
      if (status >= 200 && status < 300) sink.delivered(it, status);
      else if (status === 409) sink.delivered(it, 409);
      else if (isRetryableItemStatus(status) || status === 0) {
        retryItems.push(it);
        if (reason === '') {
          reason = `${status || 'no status'}${r?.error ? ` ${String(r.error.type)}: ${String(r.error.reason)}` : ''}`;
        }
      } else {
        sink.rejected(it, status, r?.error ?? { type: `http_${status}`, reason: 'rejected' });
      }
    }
    return {
      kind: 'done',
      retry: retryItems,
      reason,
      retryAfterMs: parseRetryAfter(res.headers['retry-after']),
    };
  }
}
