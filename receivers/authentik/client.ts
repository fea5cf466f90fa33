/**
 * HTTP client for authentik's REST API (undici): keep-alive pool bounded to `max_concurrent_requests`,
 * gzip, per-request deadline, body-size limit, TLS and proxy options, and the fault handling every
 * dataset shares: classify, count, log once per episode, back off (honouring Retry-After), retry.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { gunzip, gunzipSync, inflate, brotliDecompress } from 'node:zlib';
import { promisify } from 'node:util';
import { Agent, ProxyAgent, request } from 'undici';
import type { Dispatcher } from 'undici';
import type { ComponentStatus, Logger } from '../../runtime/component.ts';
import type { RetryConfig, TlsConfig } from '../../runtime/config/types.ts';
import { Secret } from '../../runtime/config/types.ts';
import { backoffDelay, parseRetryAfter, sleep } from '../../runtime/exporterhelper/retry.ts';
import type { ReceiverMetrics } from './metrics.ts';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const brotliAsync = promisify(brotliDecompress);

/** What a request is for (metrics label, health episodes, 403 messages). */
export type Dataset = 'events' | 'users' | 'groups' | 'version';

/** The permission each dataset needs (spec authentik-api.md §1). */
export const PERMISSION: Record<Dataset, string> = {
  events: 'authentik_events.view_event',
  users: 'authentik_core.view_user',
  groups: 'authentik_core.view_group',
  version: 'authentik_rbac.view_system_info (or a superuser)',
};

/** The receiver is shutting down; the caller stops without advancing anything. */
export class StoppedError extends Error {
  constructor() {
    super('receiver is shutting down');
    this.name = 'StoppedError';
  }
}

/** `404 {"detail": "Invalid page."}`: the page is past the end (the result set shrank). Not retried. */
export class InvalidPageError extends Error {
  constructor(path: string) {
    super(`authentik answered 404 Invalid page for ${path}`);
    this.name = 'InvalidPageError';
  }
}

/** A request failed in a way retrying would not fix (400, other 4xx, retries exhausted). */
export class ApiError extends Error {
  readonly kind: string;
  readonly status: number | undefined;
  constructor(message: string, kind: string, status?: number) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
  }
}

/** One page of a paginated list (`PaginatedXList`). */
export interface Page {
  next: number;
  previous: number;
  count: number;
  current: number;
  startIndex: number;
  endIndex: number;
  results: Record<string, unknown>[];
  /** The envelope without `results` (for shape-based version detection). */
  envelope: Record<string, unknown>;
  /** The decoded body text, kept to rebuild records if the pipeline refuses a batch. */
  text: string;
}

/** Supplies the current token; `reload` re-reads token_file (after a 403) and says whether it changed. */
export interface TokenSource {
  current(): Secret;
  reload(): boolean;
}

export function staticToken(s: Secret): TokenSource {
  return { current: () => s, reload: () => false };
}

/** Reads the token from a file now and again on `reload()`. Throws with a clear message when unreadable. */
export function fileToken(path: string): TokenSource {
  const read = (): Secret => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new Error(
        `cannot read token_file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { cause: e },
      );
    }
    const t = text.trim();
    if (t === '') throw new Error(`token_file ${path} is empty`);
    return new Secret(t);
  };
  let cur = read();
  return {
    current: () => cur,
    reload: () => {
      try {
        const next = read();
        if (next.reveal() === cur.reveal()) return false;
        cur = next;
        return true;
      } catch {
        return false;
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Health: one episode per dataset; the receiver is degraded while any episode is open.
// ---------------------------------------------------------------------------------------------

interface Episode {
  kind: string;
  since: number;
  failures: number;
  permanent: boolean;
  message: string;
}

/** Tracks failure episodes per dataset and reports the receiver's health on changes only. */
export class Health {
  readonly #episodes = new Map<string, Episode>();
  readonly #report: (s: ComponentStatus, msg?: string) => void;
  readonly #logger: Logger;
  #last: string | undefined;

  constructor(report: (s: ComponentStatus, msg?: string) => void, logger: Logger) {
    this.#report = report;
    this.#logger = logger;
  }

  /**
   * Records a failure. Logs the message when an episode starts or its kind changes (once per
   * episode, not per retry); later retries of the same kind are debug lines.
   */
  fail(
    scope: string,
    kind: string,
    message: string,
    permanent: boolean,
    fields: Record<string, unknown> = {},
  ): void {
    const ep = this.#episodes.get(scope);
    if (!ep || ep.kind !== kind) {
      const line = `${message}; retrying with backoff`;
      // `fault`, not `kind`: log lines carry the component's own `kind` (receiver).
      if (permanent) this.#logger.error(line, { dataset: scope, fault: kind, ...fields });
      else this.#logger.warn(line, { dataset: scope, fault: kind, ...fields });
      this.#episodes.set(scope, {
        kind,
        since: ep?.since ?? Date.now(),
        failures: (ep?.failures ?? 0) + 1,
        permanent,
        message,
      });
    } else {
      ep.failures++;
      this.#logger.debug('request failed again', {
        dataset: scope,
        fault: kind,
        failures: ep.failures,
        ...fields,
      });
    }
    this.#update();
  }

  /** Closes the dataset's episode (logs the recovery). */
  ok(scope: string): void {
    const ep = this.#episodes.get(scope);
    if (!ep) return;
    this.#episodes.delete(scope);
    this.#logger.info('authentik API requests succeed again', {
      dataset: scope,
      failures: ep.failures,
      durationMs: Date.now() - ep.since,
      lastFault: ep.kind,
    });
    this.#update();
  }

  /**
   * Sets (message) or clears (undefined) a condition that is not a failed request, such as a scan
   * that makes no progress: recoverable_error while set. Logs a warning when it starts and an info
   * line when it clears.
   */
  condition(scope: string, message: string | undefined, fields: Record<string, unknown> = {}): void {
    const ep = this.#episodes.get(scope);
    if (message === undefined) {
      if (!ep) return;
      this.#episodes.delete(scope);
      this.#logger.info(`${scope}: resolved`, { durationMs: Date.now() - ep.since, ...fields });
    } else {
      if (ep) return;
      this.#logger.warn(message, { dataset: scope, ...fields });
      this.#episodes.set(scope, {
        kind: 'condition',
        since: Date.now(),
        failures: 1,
        permanent: false,
        message,
      });
    }
    this.#update();
  }

  /** True when some dataset is in a failure episode. */
  get degraded(): boolean {
    return this.#episodes.size > 0;
  }

  #update(): void {
    let status: ComponentStatus = 'ok';
    let msg: string | undefined;
    for (const [scope, ep] of this.#episodes) {
      if (ep.permanent) {
        status = 'permanent_error';
        msg = `${scope}: ${ep.message}`;
        break;
      }
      status = 'recoverable_error';
      msg ??= `${scope}: ${ep.message}`;
    }
    const key = `${status}|${msg ?? ''}`;
    if (key === this.#last) return;
    this.#last = key;
    this.#report(status, msg);
  }
}

// ---------------------------------------------------------------------------------------------
// Concurrency bound shared by every dataset.
// ---------------------------------------------------------------------------------------------

class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new StoppedError();
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((res, rej) => {
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        rej(new StoppedError());
      };
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        res();
      };
      this.#waiters.push(grant);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
  release(): void {
    const w = this.#waiters.shift();
    if (w) w();
    else this.#free++;
  }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

export interface ClientOptions {
  /** Base URL without trailing slash. */
  endpoint: string;
  token: TokenSource;
  timeoutMs: number;
  maxConcurrent: number;
  tls: TlsConfig;
  proxyUrl: string | undefined;
  retry: RetryConfig;
  maxResponseSize: number;
  userAgent: string;
  configDir: string;
  logger: Logger;
  metrics: ReceiverMetrics;
  health: Health;
  /** Receiver id, for messages that name the config keys. */
  id: string;
  /** Whether the token came from token_file (for messages). */
  tokenFromFile: boolean;
}

/** A failed attempt, classified. */
interface Failure {
  kind: string;
  status: number | undefined;
  message: string;
  retryAfterMs: number | undefined;
  /** A 403: needs a human; retried slowly. */
  forbidden: boolean;
  /** Retrying will not help (400, 405, …). */
  fatal: boolean;
}

function readTlsFile(configDir: string, p: string | undefined, what: string): Buffer | undefined {
  if (p === undefined) return undefined;
  const full = isAbsolute(p) ? p : resolve(configDir, p);
  try {
    return readFileSync(full);
  } catch (e) {
    throw new Error(
      `cannot read tls.${what} ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      { cause: e },
    );
  }
}

/** The proxy URL with credentials masked, for logs. */
export function redactUrl(u: string): string {
  try {
    const p = new URL(u);
    if (p.username || p.password) {
      p.username = '***';
      p.password = '';
    }
    return p.toString();
  } catch {
    return '[invalid URL]';
  }
}

function errCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

const TLS_CODES = /^(ERR_TLS|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_SSL|HOSTNAME_MISMATCH|ERR_TLS_CERT)/;

export class AuthentikClient {
  readonly #o: ClientOptions;
  readonly #dispatcher: Dispatcher;
  readonly #sem: Semaphore;
  readonly #host: string;

  constructor(o: ClientOptions) {
    this.#o = o;
    this.#sem = new Semaphore(o.maxConcurrent);
    this.#host = new URL(o.endpoint).host;
    const tls = {
      ca: readTlsFile(o.configDir, o.tls.ca_file, 'ca_file'),
      cert: readTlsFile(o.configDir, o.tls.cert_file, 'cert_file'),
      key: readTlsFile(o.configDir, o.tls.key_file, 'key_file'),
      rejectUnauthorized: !o.tls.insecure_skip_verify,
      ...(o.tls.server_name !== undefined ? { servername: o.tls.server_name } : {}),
    };
    const connect = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
    const common = {
      connections: o.maxConcurrent,
      keepAliveTimeout: 30_000,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
    };
    this.#dispatcher =
      o.proxyUrl !== undefined
        ? new ProxyAgent({ uri: o.proxyUrl, requestTls: connect, ...common })
        : new Agent({ ...common, connect });
  }

  /** Host (and port) of the endpoint, for resource attributes. */
  get host(): string {
    return this.#host;
  }

  async close(): Promise<void> {
    await this.#dispatcher.destroy().catch(() => undefined);
  }

  /**
   * GETs one page of a list. Retries transient failures until success (or api_retry.max_elapsed_time);
   * throws InvalidPageError on 404 Invalid page, ApiError on failures retrying cannot fix,
   * StoppedError on shutdown.
   */
  async page(
    dataset: Dataset,
    path: string,
    query: Record<string, string | number>,
    signal: AbortSignal,
  ): Promise<Page> {
    const { text, body } = await this.#get(dataset, path, query, signal, true, true);
    return toPage(body, text)!;
  }

  /**
   * GETs a JSON document once, without retrying (version probe). Returns the body, or the failure
   * kind (`http_403`, `http_404`, `reset`, …) so the caller can decide whether to try again.
   */
  async tryJson(
    dataset: Dataset,
    path: string,
    signal: AbortSignal,
  ): Promise<{ body: unknown } | { kind: string; message?: string }> {
    try {
      const { body } = await this.#get(dataset, path, {}, signal, false, false);
      return { body };
    } catch (e) {
      if (e instanceof StoppedError) throw e;
      if (e instanceof ApiError) return { kind: e.kind, message: e.message };
      if (e instanceof InvalidPageError) return { kind: 'http_404' };
      return { kind: 'other' };
    }
  }

  async #get(
    dataset: Dataset,
    path: string,
    query: Record<string, string | number>,
    signal: AbortSignal,
    retrying: boolean,
    paginated: boolean,
  ): Promise<{ text: string; body: unknown }> {
    const qs = new URLSearchParams(
      Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
    const shown = qs ? `${path}?${qs}` : path;
    const url = `${this.#o.endpoint}${shown}`;
    const startedAt = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (signal.aborted) throw new StoppedError();
      await this.#sem.acquire(signal);
      let outcome: { ok: true; text: string; body: unknown } | { ok: false; f: Failure };
      // The slot is given back as soon as the body is in: decoding and parsing it need no connection.
      let held = true;
      const release = () => {
        if (held) {
          held = false;
          this.#sem.release();
        }
      };
      try {
        outcome = await this.#once(dataset, url, path, signal, paginated, release);
      } finally {
        release();
      }
      if (outcome.ok) {
        this.#o.health.ok(dataset);
        return { text: outcome.text, body: outcome.body };
      }
      const f = outcome.f;
      if (f.kind === 'invalid_page') throw new InvalidPageError(shown);
      this.#o.metrics.requestError(dataset, f.kind);
      if (!retrying) {
        this.#o.logger.debug('request failed (not retried)', {
          dataset,
          path: shown,
          fault: f.kind,
          reason: f.message,
        });
        throw new ApiError(f.message, f.kind, f.status);
      }
      if (f.fatal) {
        this.#o.health.fail(dataset, f.kind, f.message, true, { path: shown });
        throw new ApiError(f.message, f.kind, f.status);
      }
      let delay: number;
      if (f.forbidden) {
        // A human has to act; poll slowly. A changed token_file is picked up at once.
        if (this.#o.token.reload()) {
          this.#o.logger.info('token_file changed; retrying with the new token', { dataset });
          delay = 0;
        } else delay = this.#o.retry.max_interval;
      } else {
        delay = Math.max(backoffDelay(this.#o.retry, attempt), Math.min(f.retryAfterMs ?? 0, 300_000));
      }
      this.#o.health.fail(dataset, f.kind, f.message, f.forbidden, { path: shown });
      if (
        this.#o.retry.max_elapsed_time > 0 &&
        Date.now() - startedAt + delay > this.#o.retry.max_elapsed_time
      ) {
        throw new ApiError(
          `${f.message} (gave up after ${attempt} attempts: api_retry.max_elapsed_time)`,
          f.kind,
          f.status,
        );
      }
      if (await sleep(delay, signal)) throw new StoppedError();
    }
  }

  async #once(
    dataset: Dataset,
    url: string,
    path: string,
    outer: AbortSignal,
    paginated: boolean,
    bodyRead: () => void,
  ): Promise<{ ok: true; text: string; body: unknown } | { ok: false; f: Failure }> {
    const o = this.#o;
    const timeout = AbortSignal.timeout(o.timeoutMs);
    const signal = AbortSignal.any([outer, timeout]);
    const t0 = performance.now();
    const fail = (kind: string, message: string, extra: Partial<Failure> = {}) => {
      o.metrics.request(dataset, extra.status ?? kind, (performance.now() - t0) / 1000);
      return {
        ok: false as const,
        f: {
          kind,
          message,
          status: undefined,
          retryAfterMs: undefined,
          forbidden: false,
          fatal: false,
          ...extra,
        },
      };
    };
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        signal,
        headers: {
          authorization: `Bearer ${o.token.current().reveal()}`,
          accept: 'application/json',
          'accept-encoding': 'gzip',
          'user-agent': o.userAgent,
        },
      });
    } catch (e) {
      if (outer.aborted) throw new StoppedError();
      return fail(...this.#transport(e, timeout.aborted, path));
    }
    const status = res.statusCode;
    let raw: Buffer;
    try {
      raw = await readBody(res.body, o.maxResponseSize);
    } catch (e) {
      if (outer.aborted) throw new StoppedError();
      if (e instanceof TooLarge) {
        return fail(
          'too_large',
          `authentik's response for ${path} exceeds max_response_size (${o.maxResponseSize} bytes); lower page_size`,
          { status },
        );
      }
      const [kind, msg] = this.#transport(e, timeout.aborted, path);
      // A body cut short after the headers arrived is a truncated response.
      return fail(
        kind === 'reset' ? 'truncated' : kind,
        kind === 'reset' ? `response body for ${path} was cut off (connection closed mid-body)` : msg,
        { status },
      );
    }
    bodyRead();
    const encoding = String(res.headers['content-encoding'] ?? '')
      .toLowerCase()
      .trim();
    let buf: Buffer;
    try {
      buf = await decode(raw, encoding, o.maxResponseSize);
    } catch (e) {
      if (e instanceof TooLarge) {
        return fail(
          'too_large',
          `authentik's response for ${path} exceeds max_response_size (${o.maxResponseSize} bytes) once decompressed`,
          { status },
        );
      }
      return fail(
        'truncated',
        `response body for ${path} could not be decompressed (${encoding}: ${(e as Error).message}); truncated?`,
        { status },
      );
    }
    const text = buf.toString('utf8');
    const ctype = String(res.headers['content-type'] ?? '').toLowerCase();
    const isJsonType = ctype.includes('json');
    let body: unknown;
    let parsed = false;
    if (isJsonType || /^\s*[[{]/.test(text)) {
      try {
        body = JSON.parse(text);
        parsed = true;
      } catch {
        parsed = false;
      }
    }
    const seconds = (performance.now() - t0) / 1000;

    if (status >= 200 && status < 300) {
      if (!parsed) {
        o.metrics.request(dataset, status, seconds);
        const kind = isJsonType ? 'truncated' : 'non_json';
        const msg = isJsonType
          ? `response body for ${path} is not valid JSON (truncated?)`
          : `authentik answered ${path} with ${ctype || 'no content type'} instead of JSON (a proxy or login page in between?)`;
        return {
          ok: false,
          f: { kind, message: msg, status, retryAfterMs: undefined, forbidden: false, fatal: false },
        };
      }
      o.metrics.request(dataset, status, seconds);
      if (paginated && !toPage(body, text)) {
        return {
          ok: false,
          f: {
            kind: 'non_json',
            message: `authentik answered ${path} with JSON that is not a paginated list (wrong endpoint or a proxy in between?)`,
            status,
            retryAfterMs: undefined,
            forbidden: false,
            fatal: false,
          },
        };
      }
      return { ok: true, text, body };
    }

    o.metrics.request(dataset, status, seconds);
    const detail =
      parsed && body && typeof body === 'object' ? (body as Record<string, unknown>).detail : undefined;
    const detailText = typeof detail === 'string' ? detail : undefined;
    const base = { status, retryAfterMs: undefined, forbidden: false, fatal: false };
    if (status === 404 && detailText !== undefined && /invalid page/i.test(detailText)) {
      return { ok: false, f: { ...base, kind: 'invalid_page', message: 'Invalid page' } };
    }
    if (status === 403) {
      return {
        ok: false,
        f: { ...base, kind: 'http_403', forbidden: true, message: this.#forbidden(dataset, detailText) },
      };
    }
    if (status === 401) {
      return {
        ok: false,
        f: {
          ...base,
          kind: 'http_401',
          forbidden: true,
          message: `HTTP 401 from ${path}: a proxy in front of authentik demands authentication (authentik itself answers 403)`,
        },
      };
    }
    if (status === 429 || status >= 500 || status === 408) {
      const ra = parseRetryAfter(res.headers['retry-after']);
      const what =
        status === 429
          ? 'authentik (or a proxy) throttled the request (HTTP 429)'
          : `authentik answered HTTP ${status} for ${path}`;
      return {
        ok: false,
        f: {
          ...base,
          kind: `http_${status}`,
          retryAfterMs: ra,
          message: ra !== undefined ? `${what}, Retry-After ${Math.round(ra / 1000)}s` : what,
        },
      };
    }
    if (status >= 300 && status < 400) {
      return {
        ok: false,
        f: {
          ...base,
          kind: `http_${status}`,
          fatal: false,
          message: `authentik redirected ${path} (HTTP ${status}) to ${String(res.headers.location ?? '?')}: check endpoint (it must be the base URL of authentik)`,
        },
      };
    }
    if (status === 404) {
      return {
        ok: false,
        f: {
          ...base,
          kind: 'http_404',
          message: `${path} not found (HTTP 404): check endpoint (base URL of authentik, without /api/v3)`,
        },
      };
    }
    const snippet = detailText ?? (parsed ? JSON.stringify(body).slice(0, 300) : text.slice(0, 200));
    return {
      ok: false,
      f: {
        ...base,
        kind: `http_${status}`,
        fatal: true,
        message: `authentik rejected ${path} with HTTP ${status}: ${scrub(snippet, o.token.current())}`,
      },
    };
  }

  #forbidden(dataset: Dataset, detail: string | undefined): string {
    const where = this.#o.tokenFromFile
      ? `receivers.${this.#o.id}.token_file`
      : `receivers.${this.#o.id}.token`;
    if (detail !== undefined && /token invalid|expired/i.test(detail)) {
      return (
        `authentik rejected the API token (403 "${detail}") reading ${dataset}: check ${where}. ` +
        'It must be an API token (Directory > Tokens and App passwords, intent "API Token"); app passwords, ' +
        'including the password shown by "Create Service Account", are not API tokens. Tokens with an expiry are ' +
        'rotated by authentik when they expire; use a non-expiring token'
      );
    }
    if (detail !== undefined && /permission/i.test(detail)) {
      return (
        `the token's user lacks permission to read ${dataset} (403 "${detail}"): grant it ${PERMISSION[dataset]} ` +
        `(or disable ${dataset} in receivers.${this.#o.id})`
      );
    }
    if (detail !== undefined && /credentials were not provided|malformed/i.test(detail)) {
      return `authentik did not see a usable Authorization header (403 "${detail}"): check ${where} (a proxy may strip the header)`;
    }
    return `authentik answered 403 Forbidden reading ${dataset}${detail ? ` ("${scrub(detail.slice(0, 200), this.#o.token.current())}")` : ''}: check ${where} and that the user has ${PERMISSION[dataset]}`;
  }

  #transport(e: unknown, timedOut: boolean, path: string): [string, string] {
    const code = errCode(e);
    const msg = scrub(e instanceof Error ? e.message : String(e), this.#o.token.current());
    if (
      timedOut ||
      code === 'UND_ERR_HEADERS_TIMEOUT' ||
      code === 'UND_ERR_BODY_TIMEOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT'
    ) {
      return ['timeout', `request for ${path} timed out after ${this.#o.timeoutMs} ms (timeout)`];
    }
    if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      return ['truncated', `response body for ${path} is shorter than its Content-Length (truncated)`];
    }
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
      return ['reset', `connection to authentik was reset during ${path} (${code})`];
    }
    if (code && TLS_CODES.test(code)) {
      return [
        'tls',
        `TLS handshake with authentik failed (${code}: ${msg}): check tls.ca_file / server_name`,
      ];
    }
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH'
    ) {
      return ['connect', `cannot connect to authentik at ${this.#host} (${code})`];
    }
    return ['other', `request for ${path} failed: ${msg}${code ? ` (${code})` : ''}`];
  }
}

/** Replaces the token with [REDACTED] in text from the outside world (error messages, bodies). */
function scrub(text: string, token: Secret): string {
  const t = token.reveal();
  return t.length >= 4 ? text.split(t).join('[REDACTED]') : text;
}

class TooLarge extends Error {}

async function readBody(body: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) throw new TooLarge('too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

/** Compressed bodies up to this size are inflated synchronously (see decode). */
const SYNC_INFLATE_MAX = 256 * 1024;

async function decode(raw: Buffer, encoding: string, max: number): Promise<Buffer> {
  const opts = { maxOutputLength: max };
  try {
    if (encoding === '' || encoding === 'identity') return raw;
    if (encoding === 'gzip' || encoding === 'x-gzip') {
      // A page (tens of kB) inflates in well under a millisecond: in this thread that costs less than the
      // stream machinery and the thread-pool hop of the asynchronous form, which stays for large bodies.
      return raw.length <= SYNC_INFLATE_MAX ? gunzipSync(raw, opts) : await gunzipAsync(raw, opts);
    }
    if (encoding === 'deflate') return await inflateAsync(raw, opts);
    if (encoding === 'br') return await brotliAsync(raw, opts);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new TooLarge('too large');
    throw e;
  }
  throw new Error(`unsupported content-encoding ${encoding}`);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Validates a paginated envelope; undefined when the body is not one. */
export function toPage(body: unknown, text: string): Page | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  const p = b.pagination;
  const results = b.results;
  if (p === null || typeof p !== 'object' || !Array.isArray(results)) return undefined;
  const pg = p as Record<string, unknown>;
  const count = num(pg.count);
  if (count === undefined) return undefined;
  const rows = results.filter(
    (r): r is Record<string, unknown> => r !== null && typeof r === 'object' && !Array.isArray(r),
  );
  if (rows.length !== results.length) return undefined;
  const envelope: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(b)) if (k !== 'results') envelope[k] = v;
  return {
    next: num(pg.next) ?? 0,
    previous: num(pg.previous) ?? 0,
    count,
    current: num(pg.current) ?? 1,
    startIndex: num(pg.start_index) ?? 0,
    endIndex: num(pg.end_index) ?? 0,
    results: rows,
    envelope,
    text,
  };
}
