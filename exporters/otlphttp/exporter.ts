/**
 * The `otlphttp` exporter: sends records as OTLP logs over HTTP (protobuf or JSON).
 *
 * Records are converted to the SDK's `ReadableLogRecord` shape (mapping.ts) and encoded by the same
 * serializers the SDK's OTLPLogExporter uses (`@opentelemetry/otlp-transformer`); the request itself is
 * sent here with undici. README.md ("Why not OTLPLogExporter.export()") explains why: the SDK exporter
 * hides the HTTP status, Retry-After and partial-success answers this component must act on, and it
 * merges OTEL_EXPORTER_OTLP_* environment variables into every request.
 */
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import type { IExportLogsServiceResponse, ISerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { ComponentSettings, Exporter, Host, Logger } from '../../runtime/component.ts';
import { once } from '../../runtime/component.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import {
  CollectorError,
  ErrorCode,
  PermanentError,
  RetryableError,
  errorMessage,
  isPermanent,
} from '../../runtime/errors.ts';
import {
  SinkUnusableError,
  classifyHttpStatus,
  httpKind,
  isSinkUnusable,
  isTlsError,
  sendFailedCounter,
} from '../../runtime/exporterhelper/failure.ts';
import { parseRetryAfter, retry } from '../../runtime/exporterhelper/retry.ts';
import type { Config } from './config.ts';
import { logsUrl } from './config.ts';
import { RecordMapper } from './mapping.ts';
import { OtlpMetrics } from './metrics.ts';
import type { RequestOutcome } from './metrics.ts';

const gzip = promisify(gzipCb);

/** Most of a response body read (error texts, partial-success answers are small). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export const CONTENT_TYPES = { proto: 'application/x-protobuf', json: 'application/json' } as const;

/** TLS material read from the files named in `tls` (done by the factory). */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** An export attempt failed; carries the outcome for metrics. */
class AttemptError extends Error {
  readonly outcome: RequestOutcome;
  readonly error: Error;
  constructor(outcome: RequestOutcome, error: Error) {
    super(error.message);
    this.outcome = outcome;
    this.error = error;
  }
}

/** Result of one successful request. */
interface Accepted {
  rejected: number;
  errorMessage: string;
}

export class OtlpHttpExporter implements Exporter {
  readonly capabilities = { mutatesData: false };
  readonly #settings: ComponentSettings;
  readonly #cfg: Config;
  readonly #log: Logger;
  readonly #url: URL;
  /** The URL as logged: no query string (it could carry a token). */
  readonly #urlForLogs: string;
  readonly #serializer: ISerializer<ReadableLogRecord[], IExportLogsServiceResponse>;
  readonly #mapper: RecordMapper;
  readonly #metrics: OtlpMetrics;
  readonly #dispatcher: Dispatcher;
  readonly #closing = new AbortController();
  readonly #inflight = new Set<Promise<unknown>>();
  /**
   * Records of a batch already accepted by the endpoint: skipped when the same batch comes back after
   * a failure of another part of it (the sending queue retries with the same objects), so a retry does
   * not send them twice.
   */
  readonly #delivered = new WeakSet<object>();
  readonly #sendFailed: (records: number, err?: unknown) => void;
  #degraded = false;
  #closed = false;

  constructor(settings: ComponentSettings, cfg: Config, tls?: TlsMaterial) {
    this.#settings = settings;
    this.#cfg = cfg;
    this.#log = settings.logger;
    this.#url = logsUrl(cfg);
    this.#urlForLogs = `${this.#url.origin}${this.#url.pathname}`;
    this.#serializer = cfg.encoding === 'proto' ? ProtobufLogsSerializer : JsonLogsSerializer;
    this.#mapper = new RecordMapper({
      body: cfg.body,
      resource: cfg.resource,
      defaultScope: { name: settings.buildInfo.name, version: settings.buildInfo.version },
    });
    this.#metrics = new OtlpMetrics(settings.metrics, settings.id);
    this.#sendFailed = sendFailedCounter(settings);
    const connect: Record<string, unknown> = {};
    if (tls) {
      connect['rejectUnauthorized'] = tls.rejectUnauthorized;
      if (tls.ca) connect['ca'] = tls.ca;
      if (tls.cert) connect['cert'] = tls.cert;
      if (tls.key) connect['key'] = tls.key;
      if (tls.servername) connect['servername'] = tls.servername;
    }
    this.#dispatcher = new Agent({
      connect,
      headersTimeout: cfg.timeout,
      bodyTimeout: cfg.timeout,
      keepAliveTimeout: 30_000,
    });
  }

  start(_host: Host): Promise<void> {
    this.#log.info('OTLP/HTTP exporter ready', {
      url: this.#urlForLogs,
      encoding: this.#cfg.encoding,
      compression: this.#cfg.compression,
      body: this.#cfg.body,
      headers: Object.keys(this.#cfg.headers),
    });
    if (this.#cfg.tls?.insecure_skip_verify) {
      this.#log.warn('TLS certificate verification is disabled (tls.insecure_skip_verify)');
    }
    return Promise.resolve();
  }

  consume(batch: LogsBatch): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new CollectorError(ErrorCode.SHUTTING_DOWN, `${this.#settings.id} is shut down`));
    }
    const p = this.#consume(batch);
    this.#inflight.add(p);
    const done = () => this.#inflight.delete(p);
    p.then(done, done);
    return p;
  }

  readonly shutdown = once(async () => {
    this.#closed = true;
    // Stop retry waits at once; requests on the wire finish (bounded by `timeout`).
    this.#closing.abort();
    await Promise.allSettled([...this.#inflight]);
    await this.#dispatcher.close();
  });

  async #consume(batch: LogsBatch): Promise<void> {
    if (batch.length === 0) return;
    const failures: { count: number; error: unknown }[] = [];
    const records: ReadableLogRecord[] = [];
    const sources: LogsBatch = [];
    let unmappable: unknown;
    let skipped = 0;
    for (const r of batch) {
      if (this.#delivered.has(r)) {
        skipped++;
        continue;
      }
      try {
        records.push(this.#mapper.map(r));
        sources.push(r);
      } catch (err) {
        unmappable ??= err;
        failures.push({ count: 1, error: new PermanentError(`cannot map record: ${errorMessage(err)}`) });
      }
    }
    if (unmappable !== undefined) {
      this.#log.error('records cannot be mapped to OTLP; dropping them', {
        count: failures.length,
        error: errorMessage(unmappable),
      });
    }
    this.#reportConvertedResources();
    const max = this.#cfg.max_batch_size;
    let delivered = skipped;
    for (let i = 0; i < records.length; i += max) {
      const whole = i === 0 && records.length <= max;
      const chunk = whole ? records : records.slice(i, i + max);
      const srcs = whole ? sources : sources.slice(i, i + max);
      try {
        delivered += await this.#sendChunk(chunk, srcs, failures);
      } catch (err) {
        // Shutdown, retry disabled, or the endpoint unusable (class 2: 401/403/404/3xx, TLS, 413 for a
        // single record): the caller keeps the batch; what was delivered is skipped when it comes back.
        if (!isPermanent(err) || isSinkUnusable(err)) throw err;
        this.#log.error('OTLP export failed permanently', {
          url: this.#urlForLogs,
          records: chunk.length,
          error: errorMessage(err),
        });
        failures.push({ count: chunk.length, error: err });
      }
    }
    if (failures.length === 0) return;
    const failed = failures.reduce((n, f) => n + f.count, 0);
    this.#metrics.records('failed', failed);
    if (delivered === 0) {
      // Nothing went out: the caller accounts for the whole batch.
      const first = failures[0]!.error;
      throw first instanceof PermanentError
        ? first
        : new PermanentError(errorMessage(first), { cause: first });
    }
    // Part of the batch was delivered: resolve (so it is not sent twice) and count what was lost here.
    for (const f of failures) {
      this.#settings.reportDropped(f.count, 'otlp_permanent_error', { error: errorMessage(f.error) });
    }
  }

  /**
   * Sends one chunk (retrying retryable failures per `retry`); a 413 splits it in halves. Resolves with
   * the records delivered; unencodable records are added to `failures`.
   */
  async #sendChunk(
    chunk: ReadableLogRecord[],
    srcs: LogsBatch,
    failures: { count: number; error: unknown }[],
  ): Promise<number> {
    const { payload, sent, unserializable } = this.#encode(chunk);
    if (unserializable.count > 0) failures.push(unserializable);
    if (!payload) return 0;
    const body = this.#cfg.compression === 'gzip' ? await gzip(payload) : payload;
    let res: Accepted;
    try {
      res = await retry(this.#cfg.retry, () => this.#post(body), {
        signal: this.#closing.signal,
        sinkUnusable: 'throw',
        onRetry: (attempt, err, delayMs) => {
          this.#metrics.retry();
          this.#sendFailed(sent, err);
          this.#log.warn('OTLP export failed, will retry', {
            url: this.#urlForLogs,
            records: sent,
            attempt,
            retry_in_ms: delayMs,
            error: errorMessage(err),
          });
        },
      });
    } catch (err) {
      if (err instanceof SinkUnusableError && err.kind === 'http_413') {
        if (chunk.length > 1 && unserializable.count === 0) {
          const mid = Math.ceil(chunk.length / 2);
          this.#log.warn('OTLP request too large for the endpoint (413); splitting it', {
            records: chunk.length,
            bytes: body.byteLength,
          });
          return (
            (await this.#sendChunk(chunk.slice(0, mid), srcs.slice(0, mid), failures)) +
            (await this.#sendChunk(chunk.slice(mid), srcs.slice(mid), failures))
          );
        }
        throw new SinkUnusableError(
          'too_large',
          `${err.message}: even a request of ${chunk.length} record(s) (${body.byteLength} bytes) is too large; raise the endpoint's (or proxy's) request size limit`,
          { cause: err },
        );
      }
      throw err;
    }
    // (Unencodable records of the chunk are accounted in `failures`; none is sent again.)
    for (const r of srcs) this.#delivered.add(r);
    this.#metrics.records('sent', sent - res.rejected);
    if (this.#degraded) {
      this.#degraded = false;
      this.#settings.reportStatus('ok');
    }
    if (res.rejected > 0) {
      this.#metrics.records('rejected', res.rejected);
      this.#settings.reportDropped(res.rejected, 'otlp_partial_success', {
        error_message: res.errorMessage,
        records_in_request: sent,
      });
    } else if (res.errorMessage !== '') {
      this.#log.warn('OTLP endpoint accepted the request with a warning', {
        error_message: res.errorMessage,
      });
    }
    return sent;
  }

  /** Serializes a chunk. A record that cannot be encoded is isolated and dropped, not the chunk. */
  #encode(chunk: ReadableLogRecord[]): {
    payload: Uint8Array | undefined;
    sent: number;
    unserializable: { count: number; error: unknown };
  } {
    try {
      return {
        payload: this.#serializer.serializeRequest(chunk),
        sent: chunk.length,
        unserializable: { count: 0, error: undefined },
      };
    } catch (err) {
      const good = chunk.filter((r) => {
        try {
          this.#serializer.serializeRequest([r]);
          return true;
        } catch {
          return false;
        }
      });
      const bad = chunk.length - good.length;
      this.#log.error('records cannot be encoded as OTLP; dropping them', {
        count: bad,
        error: errorMessage(err),
      });
      const payload = good.length > 0 ? this.#serializer.serializeRequest(good) : undefined;
      return {
        payload,
        sent: good.length,
        unserializable: {
          count: bad,
          error: new PermanentError(`cannot encode record: ${errorMessage(err)}`),
        },
      };
    }
  }

  #reportConvertedResources(): void {
    if (this.#mapper.converted.size === 0) return;
    this.#log.warn(
      'resource attributes with map values were sent as JSON strings (OTLP resources hold scalars)',
      {
        keys: [...this.#mapper.converted],
      },
    );
    this.#mapper.converted.clear();
  }

  /** One HTTP request with an encoded (and compressed) body. Resolves on 2xx; rejects with PermanentError or RetryableError. */
  async #post(body: Uint8Array): Promise<Accepted> {
    const started = performance.now();
    try {
      const res = await this.#request(body);
      this.#metrics.request(
        res.rejected > 0 ? 'partial_success' : 'success',
        elapsed(started),
        body.byteLength,
      );
      return res;
    } catch (err) {
      const a =
        err instanceof AttemptError
          ? err
          : new AttemptError(
              'network_error',
              new RetryableError(`OTLP request failed: ${errorMessage(err)}`),
            );
      // No connection (refused, DNS, TLS handshake): no body bytes went out.
      this.#metrics.request(a.outcome, elapsed(started), a.outcome === 'network_error' ? 0 : body.byteLength);
      if (a.error instanceof SinkUnusableError) {
        this.#degraded = true;
        this.#settings.reportStatus('permanent_error', a.error.message);
      } else if (a.outcome !== 'permanent_status' && !this.#degraded) {
        this.#degraded = true;
        this.#settings.reportStatus('recoverable_error', a.error.message);
      }
      throw a.error;
    }
  }

  async #request(body: Uint8Array): Promise<Accepted> {
    const headers: Record<string, string> = {
      'user-agent': `${this.#settings.buildInfo.name}/${this.#settings.buildInfo.version}`,
    };
    for (const [k, v] of Object.entries(this.#cfg.headers)) headers[k.toLowerCase()] = v.reveal();
    headers['content-type'] = CONTENT_TYPES[this.#cfg.encoding];
    if (this.#cfg.compression === 'gzip') headers['content-encoding'] = 'gzip';

    const deadline = AbortSignal.timeout(this.#cfg.timeout);
    let res: Dispatcher.ResponseData;
    let bytes: Buffer;
    try {
      res = await request(this.#url, {
        method: 'POST',
        headers,
        body,
        dispatcher: this.#dispatcher,
        signal: deadline,
      });
      bytes = await readLimited(res.body);
    } catch (err) {
      if (deadline.aborted || isUndiciTimeout(err)) {
        throw new AttemptError(
          'timeout',
          new RetryableError(`OTLP request to ${this.#urlForLogs} timed out after ${this.#cfg.timeout} ms`),
        );
      }
      const msg = `OTLP request to ${this.#urlForLogs} failed: ${networkErrorText(err)}`;
      throw new AttemptError(
        'network_error',
        isTlsError(err)
          ? new SinkUnusableError('tls', `${msg} (TLS failure)`, { cause: err })
          : new RetryableError(msg, { cause: err }),
      );
    }

    const status = res.statusCode;
    const contentType = String(res.headers['content-type'] ?? '');
    if (status >= 200 && status < 300) return this.#accepted(bytes, contentType);

    const detail = serverMessage(bytes, contentType);
    const text = `OTLP endpoint ${this.#urlForLogs} answered ${status}${detail ? `: ${detail}` : ''}`;
    const structured = isOtlpStatusBody(bytes, contentType);
    const cls = classifyHttpStatus(status, structured);
    if (cls === 'sink_unusable') {
      throw new AttemptError(
        'permanent_status',
        new SinkUnusableError(
          httpKind(status, structured),
          `${text}${structured ? '' : ' (not an OTLP answer: check the endpoint URL, credentials and any proxy)'}`,
        ),
      );
    }
    if (cls === 'retryable') {
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      throw new AttemptError(
        status === 429 ? 'throttled' : 'retryable_status',
        new RetryableError(text + (retryAfterMs !== undefined ? ` (retry after ${retryAfterMs} ms)` : ''), {
          retryAfterMs,
        }),
      );
    }
    throw new AttemptError('permanent_status', new PermanentError(text));
  }

  /** Reads a 2xx answer: an ExportLogsServiceResponse, possibly with a partial success. */
  #accepted(bytes: Buffer, contentType: string): Accepted {
    if (bytes.byteLength === 0) return { rejected: 0, errorMessage: '' };
    const serializer = contentType.includes('json')
      ? JsonLogsSerializer
      : contentType.includes('protobuf')
        ? ProtobufLogsSerializer
        : this.#serializer;
    let parsed: IExportLogsServiceResponse;
    try {
      parsed = serializer.deserializeResponse(bytes);
    } catch (err) {
      this.#log.debug('could not decode the OTLP response; treating it as full success', {
        error: errorMessage(err),
      });
      return { rejected: 0, errorMessage: '' };
    }
    const ps = parsed.partialSuccess;
    const rejected = Number(ps?.rejectedLogRecords ?? 0);
    return {
      rejected: Number.isFinite(rejected) && rejected > 0 ? rejected : 0,
      errorMessage: typeof ps?.errorMessage === 'string' ? ps.errorMessage : '',
    };
  }
}

/** True when an error answer is the endpoint's own OTLP `Status` (protobuf or JSON), not e.g. a proxy page. */
function isOtlpStatusBody(bytes: Buffer, contentType: string): boolean {
  if (contentType.includes('protobuf'))
    return bytes.byteLength === 0 || protoStatusMessage(bytes) !== undefined;
  if (contentType.includes('json')) {
    try {
      const j = JSON.parse(bytes.toString('utf8')) as unknown;
      return j !== null && typeof j === 'object' && !Array.isArray(j);
    } catch {
      return false;
    }
  }
  return false;
}

function elapsed(started: number): number {
  return (performance.now() - started) / 1000;
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) {
      body.destroy();
      break;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function isUndiciTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    (err instanceof Error && err.name === 'TimeoutError')
  );
}

function networkErrorText(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown; message?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  const msg = errorMessage(err);
  const causeMsg = typeof e?.cause?.message === 'string' ? e.cause.message : '';
  const parts = [typeof code === 'string' ? code : '', msg, causeMsg && causeMsg !== msg ? causeMsg : ''];
  return parts.filter((p) => p !== '').join(': ');
}

/**
 * The message of an OTLP error answer: a `google.rpc.Status` (protobuf: field 2 = message; JSON:
 * `message`), or the start of a text body. At most 500 characters.
 */
export function serverMessage(bytes: Buffer, contentType: string): string {
  if (bytes.byteLength === 0) return '';
  let msg: string | undefined;
  if (contentType.includes('protobuf')) msg = protoStatusMessage(bytes);
  else if (contentType.includes('json')) {
    try {
      const j = JSON.parse(bytes.toString('utf8')) as { message?: unknown } | null;
      if (typeof j?.message === 'string') msg = j.message;
    } catch {
      // fall through to text
    }
  }
  if (msg === undefined) {
    const text = bytes.subarray(0, 2000).toString('utf8');
    // eslint-disable-next-line no-control-regex -- binary bodies are not worth showing
    msg = /[\u0000-\u0008\u000e-\u001f]/.test(text) ? `<${bytes.byteLength} bytes>` : text;
  }
  msg = msg.replace(/\s+/g, ' ').trim();
  return msg.length > 500 ? `${msg.slice(0, 500)}…` : msg;
}

/** Field 2 (message) of a protobuf `google.rpc.Status`, or undefined when the bytes are not one. */
function protoStatusMessage(b: Buffer): string | undefined {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= b.length) throw new Error('truncated');
      const byte = b[pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('bad varint');
    }
  };
  try {
    let message: string | undefined;
    while (pos < b.length) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (wire === 0) varint();
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const len = varint();
        if (pos + len > b.length) return undefined;
        if (field === 2) message = b.toString('utf8', pos, pos + len);
        pos += len;
      } else return undefined;
    }
    return message;
  } catch {
    return undefined;
  }
}
