/**
 * An in-process fake of the parts of the Elasticsearch HTTP API the exporter uses (`GET /`, node info,
 * component/index templates, `_bulk` with `create` semantics), with fault injection. For tests and the
 * benchmark's in-process bulk sink; not a search engine.
 */
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface BulkDoc {
  index: string;
  id: string | undefined;
  source: Record<string, unknown>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** Bytes received on the wire. */
  wireBytes: number;
  /** Decoded body text. */
  body: string;
  at: number;
}

/** What to do with a whole request instead of answering normally. */
export type RequestFault =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** Destroy the socket before answering. */
  | { reset: 'before' }
  /** Process the request (index the documents), then destroy the socket in the middle of the answer. */
  | { reset: 'mid-response' }
  /** Wait before handling (beyond the client's timeout to simulate a slow server). */
  | { delayMs: number };

export interface FakeOptions {
  flavor?: 'elasticsearch' | 'opensearch';
  version?: string;
  /** Keep documents (default true); the benchmark sink turns it off. */
  store?: boolean;
  /**
   * Benchmark sink: do not parse documents, answer every item with 201 (counts lines only). Implies
   * store: false; fault hooks are not consulted for items.
   */
  minimal?: boolean;
  /** Modules reported by the node info (default: a full Elasticsearch distribution). */
  modules?: string[];
  /** Field types the fake refuses in templates, as a core-only server would. */
  unknownTypes?: string[];
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: Buffer; cert: Buffer };
}

const CREATED = { create: { status: 201 } };

export class FakeElasticsearch {
  readonly opts: FakeOptions;
  readonly docs = new Map<string, BulkDoc>();
  readonly requests: RecordedRequest[] = [];
  readonly templates = new Map<string, Record<string, unknown>>();
  /** Every `_bulk` item seen, in order (including refused ones). */
  readonly bulkItems: BulkDoc[] = [];
  /** Per-request fault hook: `n` counts requests to `_bulk` from 1. */
  bulkFault: ((n: number, req: RecordedRequest) => RequestFault | undefined) | undefined;
  /** Per-item status hook: return a status to refuse an item (429/5xx/4xx); `seen` counts its deliveries. */
  itemFault: ((doc: BulkDoc, seen: number) => number | undefined) | undefined;
  /** Fault for non-bulk requests (templates, GET /). */
  otherFault: ((req: RecordedRequest) => RequestFault | undefined) | undefined;
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #bulkCount = 0;
  #seen = new Map<string, number>();
  #autoId = 0;
  url = '';

  constructor(opts: FakeOptions = {}) {
    this.opts = opts;
  }

  get bulkRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/_bulk'));
  }

  async start(port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      void this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { type: 'fake_error', reason: String(err) }, status: 500 }));
        }
      });
    };
    this.#server = this.opts.tls ? createHttpsServer(this.opts.tls, handler) : createServer(handler);
    this.#server.keepAliveTimeout = 60_000;
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', resolve));
    const scheme = this.opts.tls ? 'https' : 'http';
    this.url = `${scheme}://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }

  /** Documents stored under `_id`, by id. */
  ids(): string[] {
    return [...this.docs.values()].map((d) => d.id ?? '').sort();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const wire = Buffer.concat(chunks);
    const raw = req.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire;
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      wireBytes: wire.length,
      body: raw.toString('utf8'),
      at: Date.now(),
    };
    const keep = this.opts.store !== false && !this.opts.minimal;
    if (keep || !rec.path.startsWith('/_bulk')) this.requests.push(rec);
    const isBulk = rec.path.startsWith('/_bulk');
    const fault = isBulk ? this.bulkFault?.(++this.#bulkCount, rec) : this.otherFault?.(rec);
    if (fault && 'delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (res.destroyed || req.socket.destroyed) return;
    if (fault && 'reset' in fault && fault.reset === 'before') {
      req.socket.destroy();
      return;
    }
    if (fault && 'status' in fault && typeof fault.body === 'string') {
      // A raw body (e.g. a proxy's HTML error page); set its content-type in `headers`.
      res.writeHead(fault.status, { 'content-type': 'text/html', ...fault.headers });
      res.end(fault.body);
      return;
    }
    if (fault && 'status' in fault) {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(
        JSON.stringify(
          fault.body ?? {
            error: { type: 'injected', reason: `status ${fault.status}` },
            status: fault.status,
          },
        ),
      );
      return;
    }
    const [status, body] = isBulk ? this.#bulk(rec.body) : this.#api(rec);
    const text = JSON.stringify(body);
    if (fault && 'reset' in fault && fault.reset === 'mid-response') {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(text.length) });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      setTimeout(() => req.socket.destroy(), 5);
      return;
    }
    res.writeHead(status, {
      'content-type': 'application/json',
      ...(this.opts.flavor === 'opensearch' ? {} : { 'x-elastic-product': 'Elasticsearch' }),
    });
    res.end(text);
  }

  #api(rec: RecordedRequest): [number, unknown] {
    const path = rec.path.split('?')[0]!;
    const flavor = this.opts.flavor ?? 'elasticsearch';
    if (rec.method === 'GET' && path === '/') {
      return [
        200,
        {
          name: 'fake',
          version: {
            number: this.opts.version ?? (flavor === 'opensearch' ? '2.19.6' : '8.19.0'),
            ...(flavor === 'opensearch' ? { distribution: 'opensearch' } : { build_flavor: 'default' }),
          },
        },
      ];
    }
    if (rec.method === 'GET' && path === '/_nodes/_local') {
      const modules = this.opts.modules ?? ['constant-keyword', 'wildcard', 'mapper-extras', 'x-pack-core'];
      return [
        200,
        {
          nodes: {
            n1: { version: this.opts.version ?? '8.19.0', modules: modules.map((name) => ({ name })) },
          },
        },
      ];
    }
    const m = /^\/(_component_template|_index_template)\/([^/]+)$/.exec(path);
    if (m) {
      const key = `${m[1]}/${decodeURIComponent(m[2]!)}`;
      if (rec.method === 'GET') {
        const t = this.templates.get(key);
        if (!t)
          return [
            404,
            { error: { type: 'resource_not_found_exception', reason: `${key} missing` }, status: 404 },
          ];
        return m[1] === '_component_template'
          ? [200, { component_templates: [{ name: m[2], component_template: t }] }]
          : [200, { index_templates: [{ name: m[2], index_template: t }] }];
      }
      if (rec.method === 'PUT') {
        const body = JSON.parse(rec.body) as Record<string, unknown>;
        for (const t of this.opts.unknownTypes ?? []) {
          if (rec.body.includes(`"type":"${t}"`)) {
            return [
              400,
              {
                error: {
                  type: 'mapper_parsing_exception',
                  reason: `Failed to parse mapping: The mapper type [${t}] declared on field [x] does not exist.`,
                },
                status: 400,
              },
            ];
          }
        }
        this.templates.set(key, body);
        return [200, { acknowledged: true }];
      }
    }
    return [404, { error: { type: 'fake_unsupported', reason: `${rec.method} ${path}` }, status: 404 }];
  }

  /** Documents received by a minimal sink. */
  received = 0;

  #minimalBulk(text: string): [number, unknown] {
    let lines = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
    const n = Math.floor(lines / 2);
    this.received += n;
    return [200, { errors: false, items: new Array<unknown>(n).fill(CREATED) }];
  }

  #bulk(text: string): [number, unknown] {
    if (this.opts.minimal) return this.#minimalBulk(text);
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const items: unknown[] = [];
    let errors = false;
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const action = JSON.parse(lines[i]!) as { create?: { _index?: string; _id?: string } };
      if (!action.create) throw new Error(`fake supports create only, got ${lines[i]}`);
      const doc: BulkDoc = {
        index: action.create._index ?? '',
        id: action.create._id,
        source: JSON.parse(lines[i + 1]!) as Record<string, unknown>,
      };
      if (this.opts.store !== false) this.bulkItems.push(doc);
      const key = `${doc.index}/${doc.id ?? `auto-${++this.#autoId}`}`;
      const seen = (this.#seen.get(key) ?? 0) + 1;
      if (this.opts.store !== false) this.#seen.set(key, seen);
      const injected = this.itemFault?.(doc, seen);
      let status: number;
      let error: unknown;
      if (injected !== undefined) {
        status = injected;
        error = {
          type:
            injected === 429
              ? 'es_rejected_execution_exception'
              : injected >= 500
                ? 'unavailable_shards_exception'
                : 'document_parsing_exception',
          reason: `injected ${injected}`,
        };
      } else if (doc.id !== undefined && this.docs.has(key)) {
        status = 409;
        error = {
          type: 'version_conflict_engine_exception',
          reason: `[${doc.id}]: version conflict, document already exists`,
        };
      } else {
        status = 201;
        if (this.opts.store !== false) this.docs.set(key, doc);
      }
      if (status !== 201) errors = true;
      items.push({ create: status === 201 ? { status } : { status, error } });
    }
    return [200, { errors, items }];
  }
}
