/**
 * A minimal Elasticsearch-like `_bulk` endpoint for the chaos suite.
 *
 * - `POST /_bulk` and `POST /<index>/_bulk` with NDJSON bodies (gzip accepted). Actions `create`
 *   and `index`; `create` with an `_id` that already exists answers 409 `version_conflict_engine_exception`
 *   for that item (what Elasticsearch does), `index` overwrites (counted). Items without `_id` get a
 *   generated one.
 * - `GET /` answers like Elasticsearch 8 (with `X-Elastic-Product`); `PUT` of templates and other
 *   setup calls answer `{"acknowledged":true}`; other `GET`s answer 404.
 * - Faults for a period: `refuse` (the listening socket is closed and open connections destroyed, so
 *   clients get ECONNREFUSED), a fixed request-level status (`503`, `429` with `Retry-After`, `401`,
 *   `500`, ...), or a share of items failing with a status.
 * - Optional authentication: when `auth` is set, requests without exactly that `Authorization` header
 *   get 401.
 *
 * It keeps one small entry per stored document (index, id, event pk extracted from the source), not
 * the documents themselves, so 100,000s of documents fit in a test process.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type SinkMode =
  | { kind: 'ok' }
  | { kind: 'refuse' }
  /** Every request answered with `status`; `body` (with `contentType`) replaces the Elasticsearch error (e.g. a proxy's HTML page). */
  | { kind: 'status'; status: number; retryAfterSeconds?: number; body?: string; contentType?: string }
  /** `_bulk` bodies larger than `bytes` (uncompressed) answered 413, like `http.max_content_length`. */
  | { kind: 'max_body'; bytes: number };

export interface BulkSinkOptions {
  port?: number;
  /** Accepted `Authorization` header value(s) (e.g. `ApiKey xyz`); absent = no auth. */
  auth?: string | string[];
  /** Extracts the authentik pk from a document source (default: see {@link defaultPk}). */
  pkOf?: (doc: unknown, index: string) => string | undefined;
}

export interface SinkStats {
  requests: number;
  /** Request-level answers by status (`refused` connections are not requests). */
  byStatus: Record<string, number>;
  /** Bulk items received. */
  items: number;
  /** Documents stored (distinct `_index` + `_id`). */
  stored: number;
  /** `create` of an existing `_id`: answered 409, i.e. a duplicate absorbed by idempotency. */
  conflicts: number;
  /** `index` of an existing `_id`: overwritten. */
  overwrites: number;
  /** Items answered with an injected item-level failure. */
  itemFailures: number;
  /** Connections refused/destroyed while in `refuse` mode. */
  refusedConnections: number;
}

/**
 * The authentik pk of a document: for ECS documents `event.id` (events), `user.id` (users), `group.id`
 * (groups), chosen by `data_stream.dataset` / `event.dataset` or else the index name; for raw API
 * records, `pk`. Returned as `<dataset>:<pk>` so pks of different datasets never collide.
 */
export function defaultPk(doc: unknown, index = ''): string | undefined {
  if (!doc || typeof doc !== 'object') return undefined;
  const d = doc as Record<string, unknown>;
  const obj = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  const str = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
  const ds =
    str(obj(d['data_stream'])['dataset']) ??
    str(obj(d['event'])['dataset']) ??
    /authentik\.(event|user|group)/.exec(index)?.[0] ??
    '';
  const kind = ds.replace(/^authentik\./, '');
  const field = kind === 'event' || kind === 'user' || kind === 'group' ? str(obj(d[kind])['id']) : undefined;
  const pk = field ?? str(d['pk']);
  return pk === undefined ? undefined : `${kind || 'raw'}:${pk}`;
}

export class BulkSink {
  readonly #opts: BulkSinkOptions;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #port = 0;
  #mode: SinkMode = { kind: 'ok' };
  #itemFault: { rate: number; status: number } | undefined;
  #rng = 1;
  /** `index\0id` → pk. */
  readonly docs = new Map<string, string | undefined>();
  /** `index|pk` → number of distinct documents carrying it (>1 = duplicate documents). */
  readonly pks = new Map<string, number>();
  readonly stats: SinkStats = {
    requests: 0,
    byStatus: {},
    items: 0,
    stored: 0,
    conflicts: 0,
    overwrites: 0,
    itemFailures: 0,
    refusedConnections: 0,
  };
  /** Every Authorization header value seen (to check what clients send). */
  readonly authHeaders = new Set<string>();

  constructor(opts: BulkSinkOptions = {}) {
    this.#opts = opts;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get mode(): SinkMode {
    return this.#mode;
  }

  async start(): Promise<this> {
    await this.#listen(this.#opts.port ?? 0);
    return this;
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.keepAliveTimeout = 5000;
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const addr = server.address();
    this.#port = typeof addr === 'object' && addr ? addr.port : port;
  }

  async #unlisten(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) {
      s.destroy();
      this.stats.refusedConnections++;
    }
    this.#sockets.clear();
    await closed;
  }

  /** Switches the fault mode (takes effect for new requests; `refuse` closes the port at once). */
  async setMode(mode: SinkMode): Promise<void> {
    const was = this.#mode.kind;
    this.#mode = mode;
    if (mode.kind === 'refuse' && was !== 'refuse') await this.#unlisten();
    if (mode.kind !== 'refuse' && was === 'refuse') await this.#listen(this.#port);
  }

  /** A share of items (0..1) fails with `status` (e.g. 429, 500); undefined turns it off. */
  setItemFaults(f: { rate: number; status: number } | undefined): void {
    this.#itemFault = f;
  }

  /** Distinct pks (`<dataset>:<pk>`, see {@link defaultPk}) of one kind (`event`, `user`, `group`). */
  pksOf(kind: string): Set<string> {
    const out = new Set<string>();
    for (const k of this.pks.keys()) {
      const pk = k.slice(k.indexOf('|') + 1);
      if (pk.startsWith(`${kind}:`)) out.add(pk);
    }
    return out;
  }

  /**
   * Runs fault phases one after the other (e.g. refuse 20 s, 503 20 s, 429 20 s), then returns to `ok`.
   * Resolves when the last phase ended.
   */
  async outage(phases: { mode: SinkMode; ms: number }[]): Promise<void> {
    for (const p of phases) {
      await this.setMode(p.mode);
      await new Promise((r) => setTimeout(r, p.ms));
    }
    await this.setMode({ kind: 'ok' });
  }

  /** Pks stored in more than one document (should be 0 with create + `_id`). */
  duplicatePks(): number {
    let n = 0;
    for (const c of this.pks.values()) if (c > 1) n += c - 1;
    return n;
  }

  async close(): Promise<void> {
    await this.#unlisten();
  }

  #random(): number {
    // xorshift32: deterministic fault decisions.
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    return this.#rng / 0x1_0000_0000;
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-elastic-product': 'Elasticsearch',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return;
    }
    const auth = req.headers.authorization;
    if (auth) this.authHeaders.add(auth);
    const mode = this.#mode;
    if (mode.kind === 'status' && mode.body !== undefined) {
      this.stats.byStatus[mode.status] = (this.stats.byStatus[mode.status] ?? 0) + 1;
      res.writeHead(mode.status, { 'content-type': mode.contentType ?? 'text/html' });
      res.end(mode.body);
      return;
    }
    if (mode.kind === 'status') {
      const headers: Record<string, string> = {};
      if (mode.retryAfterSeconds !== undefined) headers['retry-after'] = String(mode.retryAfterSeconds);
      this.#send(res, mode.status, errorBody(mode.status, 'injected fault'), headers);
      return;
    }
    const accepted = this.#opts.auth === undefined ? undefined : [this.#opts.auth].flat();
    if (accepted !== undefined && (auth === undefined || !accepted.includes(auth))) {
      this.#send(
        res,
        401,
        errorBody(401, 'missing authentication credentials for REST request', 'security_exception'),
        { 'www-authenticate': 'ApiKey' },
      );
      return;
    }
    const url = new URL(req.url ?? '/', 'http://sink');
    const path = url.pathname;
    if (req.method === 'GET' && (path === '/' || path === '')) {
      this.#send(res, 200, {
        name: 'bulk-sink',
        cluster_name: 'chaos',
        version: { number: '8.17.0', build_flavor: 'default', distribution: undefined },
        tagline: 'You Know, for Search',
      });
      return;
    }
    if (req.method === 'HEAD') {
      this.#send(res, 200, {});
      return;
    }
    if (req.method === 'POST' && /(^|\/)_bulk$/.test(path)) {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') {
        try {
          body = gunzipSync(body);
        } catch {
          this.#send(res, 400, errorBody(400, 'bad gzip body', 'parse_exception'));
          return;
        }
      }
      if (mode.kind === 'max_body' && body.length > mode.bytes) {
        this.stats.byStatus[413] = (this.stats.byStatus[413] ?? 0) + 1;
        res.writeHead(413, { 'content-type': 'text/html' });
        res.end('<html><body>413 Request Entity Too Large</body></html>');
        return;
      }
      const defaultIndex = path.split('/').filter(Boolean).length === 2 ? path.split('/')[1] : undefined;
      this.#bulk(res, body.toString('utf8'), defaultIndex);
      return;
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      this.#send(res, 200, { acknowledged: true });
      return;
    }
    this.#send(
      res,
      404,
      errorBody(404, `no handler for ${req.method} ${path}`, 'resource_not_found_exception'),
    );
  }

  #bulk(res: ServerResponse, text: string, defaultIndex: string | undefined): void {
    const t0 = Date.now();
    const lines = text.split('\n');
    const items: unknown[] = [];
    let errors = false;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() === '') continue;
      let action: Record<string, { _index?: string; _id?: string }>;
      try {
        action = JSON.parse(line) as typeof action;
      } catch {
        this.#send(
          res,
          400,
          errorBody(400, `malformed action/metadata line [${i + 1}]`, 'illegal_argument_exception'),
        );
        return;
      }
      const op = Object.keys(action)[0] ?? '';
      const meta = action[op] ?? {};
      const source = lines[++i] ?? '';
      this.stats.items++;
      const index = meta._index ?? defaultIndex ?? '';
      if ((op !== 'create' && op !== 'index') || index === '') {
        errors = true;
        items.push({
          [op || 'index']: {
            _index: index,
            status: 400,
            error: {
              type: 'illegal_argument_exception',
              reason: `unsupported action [${op}] or missing index`,
            },
          },
        });
        continue;
      }
      if (this.#itemFault && this.#random() < this.#itemFault.rate) {
        errors = true;
        this.stats.itemFailures++;
        const status = this.#itemFault.status;
        items.push({
          [op]: {
            _index: index,
            _id: meta._id,
            status,
            error: {
              type: status === 429 ? 'es_rejected_execution_exception' : 'injected_exception',
              reason: 'injected item fault',
            },
          },
        });
        continue;
      }
      const id = meta._id ?? `auto-${this.docs.size + 1}-${Math.random().toString(36).slice(2)}`;
      const key = `${index}\u0000${id}`;
      if (this.docs.has(key)) {
        if (op === 'create') {
          errors = true;
          this.stats.conflicts++;
          items.push({
            create: {
              _index: index,
              _id: id,
              status: 409,
              error: {
                type: 'version_conflict_engine_exception',
                reason: `[${id}]: version conflict, document already exists`,
              },
            },
          });
        } else {
          this.stats.overwrites++;
          items.push({ index: { _index: index, _id: id, status: 200, result: 'updated' } });
        }
        continue;
      }
      let doc: unknown;
      try {
        doc = JSON.parse(source);
      } catch {
        errors = true;
        items.push({
          [op]: {
            _index: index,
            _id: id,
            status: 400,
            error: { type: 'document_parsing_exception', reason: 'failed to parse' },
          },
        });
        continue;
      }
      const pk = (this.#opts.pkOf ?? defaultPk)(doc, index);
      this.docs.set(key, pk);
      this.stats.stored++;
      if (pk !== undefined) this.pks.set(`${index}|${pk}`, (this.pks.get(`${index}|${pk}`) ?? 0) + 1);
      items.push({ [op]: { _index: index, _id: id, status: 201, result: 'created' } });
    }
    this.#send(res, 200, { took: Date.now() - t0, errors, items });
  }
}

function errorBody(status: number, reason: string, type = 'injected_exception'): unknown {
  return { error: { root_cause: [{ type, reason }], type, reason }, status };
}

/** Starts a sink (port 0 unless given). */
export function startBulkSink(opts: BulkSinkOptions = {}): Promise<BulkSink> {
  return new BulkSink(opts).start();
}
