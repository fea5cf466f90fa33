/**
 * A minimal in-process Elasticsearch `_bulk` endpoint for the benchmarks: it answers the exporter's
 * start-up calls (`GET /` as Elasticsearch 8, `GET /_nodes/_local`, template `PUT`s) and acknowledges
 * every `_bulk` item with 201, counting items without parsing documents (so 1,000,000 documents cost
 * little). Optionally hands the document lines to a callback (the polling benchmark reads `created`
 * and the pk from them to time each event's arrival).
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { sleep } from './stats.ts';

const gunzipAsync = promisify(gunzip);
const NL = 0x0a;

export interface BulkSinkOptions {
  /** Called with the document (source) lines of each `_bulk` request and the arrival time (ms epoch). */
  onDocs?: (docs: string[], atMs: number) => void;
}

export interface BulkSink {
  url: string;
  /** Documents acknowledged. */
  readonly items: number;
  /** `_bulk` requests. */
  readonly requests: number;
  /** Request body bytes on the wire (compressed size when gzip). */
  readonly wireBytes: number;
  /** Arrival (performance.now()) of the first and the latest document since the last reset; 0 = none. */
  readonly firstAt: number;
  readonly lastAt: number;
  /** Resolves once `n` documents arrived; rejects after `timeoutMs`, or as soon as `abort()` returns a reason. */
  waitForItems(n: number, timeoutMs: number, abort?: () => string | undefined): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

function countLines(b: Buffer): number {
  let n = 0;
  let i = -1;
  while ((i = b.indexOf(NL, i + 1)) !== -1) n++;
  // A body without a trailing newline still ends with a line.
  if (b.length > 0 && b[b.length - 1] !== NL) n++;
  return n;
}

const answers = new Map<number, string>();
function bulkAnswer(n: number): string {
  let a = answers.get(n);
  if (a === undefined) {
    a = `{"errors":false,"items":[${Array.from({ length: n }, () => '{"create":{"status":201}}').join(',')}]}`;
    if (answers.size < 2000) answers.set(n, a);
  }
  return a;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-elastic-product': 'Elasticsearch',
  });
  res.end(text);
}

export async function startBulkSink(opts: BulkSinkOptions = {}): Promise<BulkSink> {
  let items = 0;
  let requests = 0;
  let wireBytes = 0;
  let firstAt = 0;
  let lastAt = 0;
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'POST' && path.endsWith('/_bulk')) {
      requests++;
      wireBytes += raw.length;
      const body = req.headers['content-encoding'] === 'gzip' ? await gunzipAsync(raw) : raw;
      const at = Date.now();
      const lines = countLines(body);
      const n = Math.floor(lines / 2);
      if (opts.onDocs) {
        const all = body.toString('utf8').split('\n');
        const docs: string[] = [];
        for (let i = 1; i < all.length; i += 2) if (all[i]) docs.push(all[i]!);
        opts.onDocs(docs, at);
      }
      items += n;
      if (n > 0) {
        lastAt = performance.now();
        if (firstAt === 0) firstAt = lastAt;
      }
      const text = bulkAnswer(n);
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        'x-elastic-product': 'Elasticsearch',
      });
      res.end(text);
      return;
    }
    if (req.method === 'GET' && path === '/') {
      json(res, 200, {
        name: 'bench-sink',
        cluster_name: 'bench',
        version: { number: '8.19.0', build_flavor: 'default' },
        tagline: 'You Know, for Search',
      });
      return;
    }
    if (req.method === 'GET' && path.startsWith('/_nodes')) {
      json(res, 200, { nodes: { n1: { version: '8.19.0', modules: [], plugins: [] } } });
      return;
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      json(res, 200, { acknowledged: true });
      return;
    }
    json(res, 404, {
      error: { type: 'resource_not_found_exception', reason: `${path} not found` },
      status: 404,
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((e: unknown) => {
        json(res, 400, { error: { type: 'parse_exception', reason: String(e) }, status: 400 });
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get items() {
      return items;
    },
    get requests() {
      return requests;
    },
    get wireBytes() {
      return wireBytes;
    },
    get firstAt() {
      return firstAt;
    },
    get lastAt() {
      return lastAt;
    },
    async waitForItems(n, timeoutMs, abort) {
      const until = Date.now() + timeoutMs;
      while (items < n) {
        const why = abort?.();
        if (why !== undefined) throw new Error(why);
        if (Date.now() > until)
          throw new Error(`only ${items} of ${n} documents arrived within ${timeoutMs} ms`);
        await sleep(20);
      }
    },
    reset() {
      items = 0;
      requests = 0;
      wireBytes = 0;
      firstAt = 0;
      lastAt = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
