/**
 * HTTP client of the exporter: one undici Pool (keep-alive) per endpoint, round-robin over the endpoints,
 * failing over on connection errors and skipping an endpoint that refused connections.
 *
 * An endpoint is *down* from a failed connection until it gets an HTTP answer again. While it is down,
 * requests skip it (unless every endpoint is down) and it is probed every `cooldownMs` (`GET /`, any HTTP
 * status counts as reachable), so no request waits for a dead node and its state stays true even without
 * traffic.
 */
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

export interface TlsMaterial {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
  rejectUnauthorized: boolean;
  servername?: string | undefined;
}

export interface ClientOptions {
  endpoints: string[];
  timeoutMs: number;
  /** Connections per endpoint. */
  connections: number;
  cooldownMs: number;
  userAgent: string;
  /** Value of the Authorization header (revealed secret), or undefined. Called per request. */
  authorization?: (() => string | undefined) | undefined;
  tls?: TlsMaterial | undefined;
  /** Called when an endpoint is marked down or comes back. */
  onEndpointState?: ((endpoint: string, up: boolean, reason?: string) => void) | undefined;
  /** Deadline of a probe of a down endpoint (default: min(timeoutMs, 5 s)). */
  probeTimeoutMs?: number | undefined;
}

/** An endpoint that cannot be reached, since when and why (no credentials: endpoints carry none). */
export interface DownEndpoint {
  url: string;
  since: number;
  reason: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** Endpoint (base URL) that answered. */
  endpoint: string;
}

export interface RequestOptions {
  body?: Buffer | string | undefined;
  headers?: Record<string, string> | undefined;
  /** Aborts the request (shutdown). */
  signal?: AbortSignal | undefined;
  /** Overrides the client's timeout for this request. */
  timeoutMs?: number | undefined;
}

/** Why a request produced no HTTP response. */
export type TransportErrorKind = 'connect' | 'network' | 'timeout' | 'aborted';

/** A request that got no (complete) HTTP response. Messages carry no credentials. */
export class TransportError extends Error {
  readonly kind: TransportErrorKind;
  readonly endpoint: string;
  constructor(kind: TransportErrorKind, endpoint: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
    this.kind = kind;
    this.endpoint = endpoint;
  }
}

/** Error codes meaning "no connection could be made" (safe to fail over: nothing reached the server). */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
]);

function errCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(err: unknown): string {
  const code = errCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

interface Endpoint {
  url: string;
  origin: string;
  basePath: string;
  pool: Pool;
  /** Set from a failed connection until the next HTTP answer; requests skip it meanwhile. */
  down: { since: number; reason: string } | undefined;
  probe: NodeJS.Timeout | undefined;
}

export class EsClient {
  readonly #opts: ClientOptions;
  readonly #endpoints: Endpoint[];
  #next = 0;
  #closed = false;

  constructor(opts: ClientOptions) {
    this.#opts = opts;
    this.#endpoints = opts.endpoints.map((raw) => {
      const u = new URL(raw);
      const poolOpts: Pool.Options = {
        connections: opts.connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        connectTimeout: Math.min(opts.timeoutMs, 10_000),
      };
      if (u.protocol === 'https:' && opts.tls) {
        const t = opts.tls;
        poolOpts.connect = {
          rejectUnauthorized: t.rejectUnauthorized,
          ...(t.ca ? { ca: t.ca } : {}),
          ...(t.cert ? { cert: t.cert } : {}),
          ...(t.key ? { key: t.key } : {}),
          ...(t.servername ? { servername: t.servername } : {}),
        };
      }
      return {
        url: `${u.origin}${u.pathname.replace(/\/+$/, '')}`,
        origin: u.origin,
        basePath: u.pathname.replace(/\/+$/, ''),
        pool: new Pool(u.origin, poolOpts),
        down: undefined,
        probe: undefined,
      };
    });
  }

  /** Base URLs, as configured (no credentials). */
  get endpoints(): string[] {
    return this.#endpoints.map((e) => e.url);
  }

  /** Endpoints in the order to try for the next request: round-robin, healthy ones first. */
  #order(): Endpoint[] {
    const n = this.#endpoints.length;
    const start = this.#next;
    this.#next = (this.#next + 1) % n;
    const rotated = Array.from({ length: n }, (_, i) => this.#endpoints[(start + i) % n]!);
    const up = rotated.filter((e) => e.down === undefined);
    // Every endpoint down: try them all anyway, the one that failed longest ago first.
    const down = rotated.filter((e) => e.down !== undefined).sort((a, b) => a.down!.since - b.down!.since);
    return [...up, ...down];
  }

  /** Endpoints that cannot be reached right now (in configuration order). */
  downEndpoints(): DownEndpoint[] {
    return this.#endpoints.flatMap((e) => (e.down ? [{ url: e.url, ...e.down }] : []));
  }

  #markDown(e: Endpoint, reason: string): void {
    const wasUp = e.down === undefined;
    if (wasUp) e.down = { since: Date.now(), reason };
    this.#scheduleProbe(e);
    if (wasUp) this.#opts.onEndpointState?.(e.url, false, reason);
  }

  #markUp(e: Endpoint): void {
    if (e.probe) clearTimeout(e.probe);
    e.probe = undefined;
    if (e.down !== undefined) {
      e.down = undefined;
      this.#opts.onEndpointState?.(e.url, true);
    }
  }

  /** After the cool-down, `GET /` on a down endpoint: any HTTP answer marks it up, a failed connection re-arms. */
  #scheduleProbe(e: Endpoint): void {
    if (e.probe || this.#closed) return;
    e.probe = setTimeout(() => {
      e.probe = undefined;
      if (this.#closed || e.down === undefined) return;
      const timeoutMs = this.#opts.probeTimeoutMs ?? Math.min(this.#opts.timeoutMs, 5000);
      this.#send(e, 'GET', '/', { timeoutMs }).then(
        () => {
          if (!this.#closed) this.#markUp(e);
        },
        (err: unknown) => {
          if (this.#closed) return;
          if (err instanceof TransportError && err.kind === 'connect') this.#markDown(e, err.message);
          else this.#scheduleProbe(e);
        },
      );
    }, this.#opts.cooldownMs);
    e.probe.unref();
  }

  #stopProbes(): void {
    for (const e of this.#endpoints) {
      if (e.probe) clearTimeout(e.probe);
      e.probe = undefined;
    }
  }

  /**
   * Sends one request, failing over to the next endpoint when a connection cannot be made. Resolves with
   * any HTTP response (status not checked); rejects with {@link TransportError}.
   */
  async request(
    method: Dispatcher.HttpMethod,
    path: string,
    opts: RequestOptions = {},
  ): Promise<HttpResponse> {
    if (this.#closed) throw new TransportError('aborted', '', 'client is closed');
    const failures: string[] = [];
    let last: TransportError | undefined;
    for (const e of this.#order()) {
      try {
        const res = await this.#send(e, method, path, opts);
        this.#markUp(e);
        return res;
      } catch (err) {
        if (!(err instanceof TransportError)) throw err;
        last = err;
        if (err.kind !== 'connect') throw err;
        this.#markDown(e, err.message);
        failures.push(err.message);
        if (opts.signal?.aborted) throw err;
      }
    }
    if (this.#endpoints.length === 1 && last) throw last;
    throw new TransportError('connect', '', `no endpoint reachable: ${failures.join('; ')}`, { cause: last });
  }

  async #send(
    e: Endpoint,
    method: Dispatcher.HttpMethod,
    path: string,
    opts: RequestOptions,
  ): Promise<HttpResponse> {
    const timeoutMs = opts.timeoutMs ?? this.#opts.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const headers: Record<string, string> = {
      'user-agent': this.#opts.userAgent,
      accept: 'application/json',
      ...opts.headers,
    };
    const auth = this.#opts.authorization?.();
    if (auth !== undefined) headers['authorization'] = auth;
    let res: Dispatcher.ResponseData | undefined;
    try {
      res = await e.pool.request({
        path: `${e.basePath}${path}`,
        method,
        headers,
        body: opts.body ?? null,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      return { status: res.statusCode, headers: res.headers, body, endpoint: e.url };
    } catch (err) {
      if (res) res.body.destroy();
      const what = `${method} ${e.url}${path.split('?')[0]}`;
      if (opts.signal?.aborted)
        throw new TransportError('aborted', e.url, `${what}: aborted`, { cause: err });
      const code = errCode(err);
      if (timeout.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
        throw new TransportError('timeout', e.url, `${what}: no response within ${timeoutMs} ms`, {
          cause: err,
        });
      }
      if (res === undefined && code !== undefined && CONNECT_CODES.has(code)) {
        throw new TransportError('connect', e.url, `${what}: ${describe(err)}`, { cause: err });
      }
      throw new TransportError('network', e.url, `${what}: ${describe(err)}`, { cause: err });
    }
  }

  /** Waits for in-flight requests, then closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopProbes();
    await Promise.all(this.#endpoints.map((e) => e.pool.close().catch(() => undefined)));
  }

  /** Closes every connection at once, failing in-flight requests. */
  async destroy(): Promise<void> {
    this.#closed = true;
    this.#stopProbes();
    await Promise.all(this.#endpoints.map((e) => e.pool.destroy().catch(() => undefined)));
  }
}

/** `{type, reason}` of an Elasticsearch error body (`{"error": {...}, "status": n}`), best effort. */
export function parseEsError(body: Buffer | string): { type?: string; reason?: string; causedBy?: string } {
  try {
    const j = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as {
      error?: unknown;
      message?: unknown;
    };
    const e = j.error;
    if (typeof e === 'string') return { reason: e };
    if (e && typeof e === 'object') {
      const o = e as { type?: unknown; reason?: unknown; caused_by?: { type?: unknown; reason?: unknown } };
      const out: { type?: string; reason?: string; causedBy?: string } = {};
      if (typeof o.type === 'string') out.type = o.type;
      if (typeof o.reason === 'string') out.reason = o.reason;
      if (o.caused_by && typeof o.caused_by.reason === 'string') {
        out.causedBy = `${typeof o.caused_by.type === 'string' ? `${o.caused_by.type}: ` : ''}${o.caused_by.reason}`;
      }
      return out;
    }
    if (typeof j.message === 'string') return { reason: j.message };
  } catch {
    // not JSON
  }
  const text = (typeof body === 'string' ? body : body.toString('utf8')).trim().slice(0, 200);
  return text === '' ? {} : { reason: text };
}

/** One-line description of an error response: `type: reason (caused by ...)`. */
export function describeEsError(body: Buffer | string): string {
  const e = parseEsError(body);
  const main = [e.type, e.reason].filter((x) => x !== undefined).join(': ');
  return `${main || 'no error details'}${e.causedBy ? ` (caused by ${e.causedBy})` : ''}`;
}
