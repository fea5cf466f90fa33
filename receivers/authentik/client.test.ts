import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import type { ComponentStatus } from '../../runtime/component.ts';
import { retrySchema, Secret } from '../../runtime/config/types.ts';
import { MemoryLogger } from '../../test/kit/index.ts';
import type { Dataset } from './client.ts';
import {
  ApiError,
  AuthentikClient,
  fileToken,
  Health,
  InvalidPageError,
  staticToken,
  StoppedError,
} from './client.ts';
import { ReceiverMetrics } from './metrics.ts';

const TOKEN = 'ak-test-token-0123456789abcdefghijklmnopqrstuvwxyz';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let handler: Handler = (_req, res) => res.end('{}');
const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
let server: http.Server;
let base = '';
const sockets = new Set<Socket>();

before(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

const envelope = (results: unknown[], next = 0) =>
  JSON.stringify({
    pagination: {
      next,
      previous: 0,
      count: results.length,
      current: 1,
      total_pages: 1,
      start_index: 1,
      end_index: results.length,
    },
    results,
  });

interface Rig {
  client: AuthentikClient;
  logger: MemoryLogger;
  registry: Registry;
  statuses: { s: ComponentStatus; m: string | undefined }[];
  signal: AbortSignal;
  abort: AbortController;
}

const allLogs: MemoryLogger[] = [];
const allRegistries: Registry[] = [];

function rig(over: Partial<ConstructorParameters<typeof AuthentikClient>[0]> = {}): Rig {
  const logger = new MemoryLogger();
  const registry = new Registry();
  allLogs.push(logger);
  allRegistries.push(registry);
  const statuses: Rig['statuses'] = [];
  const abort = new AbortController();
  const client = new AuthentikClient({
    endpoint: base,
    token: staticToken(new Secret(TOKEN)),
    timeoutMs: 2000,
    maxConcurrent: 2,
    tls: { insecure_skip_verify: false },
    proxyUrl: undefined,
    retry: retrySchema.parse({ initial_interval: '5ms', max_interval: '40ms' }),
    maxResponseSize: 1024 * 1024,
    userAgent: 'authentik-collector/9.9.9',
    configDir: process.cwd(),
    logger,
    metrics: new ReceiverMetrics(registry, 'authentik'),
    health: new Health((s, m) => statuses.push({ s, m }), logger),
    id: 'authentik',
    tokenFromFile: false,
    ...over,
  });
  return { client, logger, registry, statuses, signal: abort.signal, abort };
}

/** Answers the first `n` requests with `fail`, then a valid page. */
function failThenOk(n: number, fail: Handler): () => number {
  let calls = 0;
  handler = (req, res) => {
    calls++;
    if (calls <= n) fail(req, res);
    else {
      res.setHeader('content-type', 'application/json');
      res.end(envelope([{ pk: 'a' }]));
    }
  };
  return () => calls;
}

async function metricValue(reg: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await reg.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

const warnLines = (l: MemoryLogger) => l.lines.filter((x) => x.level === 'warn' || x.level === 'error');

describe('requests', () => {
  test('headers: bearer token, gzip accepted, user agent; gzip bodies are decoded', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(envelope([{ pk: 'x', n: 1 }])));
    };
    const r = rig();
    const page = await r.client.page(
      'events',
      '/api/v3/events/events/',
      { ordering: '-created', page: 1 },
      r.signal,
    );
    assert.deepEqual(page.results, [{ pk: 'x', n: 1 }]);
    const h = seen.at(-1)!;
    assert.equal(h.headers.authorization, `Bearer ${TOKEN}`);
    assert.match(String(h.headers['accept-encoding']), /gzip/);
    assert.equal(h.headers['user-agent'], 'authentik-collector/9.9.9');
    assert.equal(h.url, '/api/v3/events/events/?ordering=-created&page=1');
    await r.client.close();
  });

  test('404 Invalid page is reported, not retried', async () => {
    const calls = failThenOk(99, (_q, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"detail":"Invalid page."}');
    });
    const r = rig();
    await assert.rejects(r.client.page('events', '/p/', { page: 9 }, r.signal), InvalidPageError);
    assert.equal(calls(), 1);
    assert.equal(r.statuses.length, 0);
    await r.client.close();
  });

  test('400 is not retried and says why', async () => {
    failThenOk(99, (_q, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"last_updated__gt":["Enter a valid date/time."]}');
    });
    const r = rig();
    await assert.rejects(r.client.page('users', '/api/v3/core/users/', {}, r.signal), (e: unknown) => {
      return e instanceof ApiError && e.status === 400 && /valid date/.test(e.message);
    });
    await r.client.close();
  });

  test('shutdown aborts waiting and in-flight requests', async () => {
    failThenOk(99, () => undefined); // never answers
    const r = rig();
    const p = r.client.page('events', '/p/', {}, r.signal);
    setTimeout(() => r.abort.abort(), 50);
    await assert.rejects(p, StoppedError);
    await r.client.close();
  });
});

describe('faults: classified, counted, logged once per episode, retried, health', () => {
  const cases: { name: string; kind: string; fail: Handler }[] = [
    { name: 'HTTP 500', kind: 'http_500', fail: (_q, res) => res.writeHead(500).end('<html>boom</html>') },
    { name: 'HTTP 502', kind: 'http_502', fail: (_q, res) => res.writeHead(502).end('bad gateway') },
    { name: 'HTTP 503', kind: 'http_503', fail: (_q, res) => res.writeHead(503).end() },
    { name: 'HTTP 504', kind: 'http_504', fail: (_q, res) => res.writeHead(504).end() },
    {
      name: 'connection reset',
      kind: 'reset',
      fail: (req) => {
        const s = req.socket as Socket & { resetAndDestroy?: () => void };
        if (s.resetAndDestroy) s.resetAndDestroy();
        else s.destroy();
      },
    },
    {
      name: 'truncated body (Content-Length)',
      kind: 'truncated',
      fail: (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 500 });
        res.write('{"pagination":{"next":0', () => res.destroy());
      },
    },
    {
      name: 'truncated gzip body',
      kind: 'truncated',
      fail: (_q, res) => {
        const z = gzipSync(envelope([{ pk: 'a' }]));
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(z.subarray(0, z.length - 8));
      },
    },
    {
      name: 'truncated JSON (chunked, ended cleanly)',
      kind: 'truncated',
      fail: (_q, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"pagination": {"next": 0, "count": 1}, "results": [{"pk": "a"');
      },
    },
    {
      name: 'non-JSON 200 (HTML)',
      kind: 'non_json',
      fail: (_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'),
    },
    {
      name: 'JSON that is not a page',
      kind: 'non_json',
      fail: (_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":1}'),
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const calls = failThenOk(3, c.fail);
      const r = rig();
      const page = await r.client.page('events', '/api/v3/events/events/', {}, r.signal);
      assert.equal(page.results.length, 1);
      assert.equal(calls(), 4);
      assert.equal(
        await metricValue(r.registry, 'otelcol_receiver_authentik_request_errors', {
          dataset: 'events',
          kind: c.kind,
        }),
        3,
      );
      const warns = warnLines(r.logger);
      assert.equal(warns.length, 1, `one line per episode, got ${warns.map((w) => w.msg).join(' | ')}`);
      assert.equal(warns[0]!.fields.fault, c.kind);
      assert.ok(r.logger.lines.some((l) => l.level === 'info' && /succeed again/.test(l.msg)));
      assert.deepEqual(
        r.statuses.map((s) => s.s),
        ['recoverable_error', 'ok'],
      );
      await r.client.close();
    });
  }

  test('timeout', async () => {
    failThenOk(1, () => undefined);
    const r = rig({ timeoutMs: 150 });
    const page = await r.client.page('events', '/p/', {}, r.signal);
    assert.equal(page.results.length, 1);
    assert.equal(
      await metricValue(r.registry, 'otelcol_receiver_authentik_request_errors', { kind: 'timeout' }),
      1,
    );
    assert.match(warnLines(r.logger)[0]!.msg, /timed out after 150 ms/);
    await r.client.close();
  });

  test('429 honours Retry-After', async () => {
    failThenOk(1, (_q, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end('{"detail":"Request was throttled. Expected available in 1 second."}');
    });
    const r = rig();
    const t0 = Date.now();
    await r.client.page('events', '/p/', {}, r.signal);
    assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms`);
    assert.match(warnLines(r.logger)[0]!.msg, /HTTP 429.*Retry-After 1s/);
    await r.client.close();
  });

  test('oversized bodies are refused (max_response_size)', async () => {
    failThenOk(1, (_q, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('x'.repeat(5000)),
    );
    const r = rig({ maxResponseSize: 1000 });
    await r.client.page('events', '/p/', {}, r.signal);
    assert.match(warnLines(r.logger)[0]!.msg, /max_response_size/);
    await r.client.close();
  });

  test('api_retry.max_elapsed_time bounds the retrying', async () => {
    failThenOk(999, (_q, res) => res.writeHead(503).end());
    const r = rig({
      retry: retrySchema.parse({ initial_interval: '10ms', max_interval: '20ms', max_elapsed_time: '100ms' }),
    });
    await assert.rejects(
      r.client.page('events', '/p/', {}, r.signal),
      (e: unknown) => e instanceof ApiError && /max_elapsed_time/.test(e.message),
    );
    await r.client.close();
  });
});

describe('403', () => {
  const forbid = (detail: string) =>
    failThenOk(1, (_q, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ detail }));
    });

  test('Token invalid/expired: check the token; app passwords are not API tokens; expiring tokens rotate', async () => {
    forbid('Token invalid/expired');
    const r = rig();
    await r.client.page('events', '/p/', {}, r.signal);
    const line = warnLines(r.logger)[0]!;
    assert.equal(line.level, 'error');
    assert.match(line.msg, /rejected the API token \(403 "Token invalid\/expired"\)/);
    assert.match(line.msg, /check receivers\.authentik\.token/);
    assert.match(line.msg, /app passwords.*are not API tokens/);
    assert.match(line.msg, /rotated by authentik when they expire/);
    assert.equal(r.statuses[0]!.s, 'permanent_error');
    assert.equal(r.statuses.at(-1)!.s, 'ok');
    await r.client.close();
  });

  const perms: [Dataset, string][] = [
    ['events', 'authentik_events.view_event'],
    ['users', 'authentik_core.view_user'],
    ['groups', 'authentik_core.view_group'],
  ];
  for (const [dataset, perm] of perms) {
    test(`no permission for ${dataset}: names ${perm}`, async () => {
      forbid('You do not have permission to perform this action.');
      const r = rig();
      await r.client.page(dataset, '/p/', {}, r.signal);
      const line = warnLines(r.logger)[0]!;
      assert.match(
        line.msg,
        new RegExp(`lacks permission to read ${dataset}.*grant it ${perm.replace(/\./g, '\\.')}`),
      );
      await r.client.close();
    });
  }

  test('a changed token_file is picked up after a 403', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ak-tok-'));
    try {
      const path = join(dir, 'token');
      await writeFile(path, 'old-token-value\n');
      const tokens: string[] = [];
      handler = (req, res) => {
        tokens.push(String(req.headers.authorization));
        if (req.headers.authorization === 'Bearer new-token-value') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(envelope([]));
        } else
          res
            .writeHead(403, { 'content-type': 'application/json' })
            .end('{"detail":"Token invalid/expired"}');
      };
      const src = fileToken(path);
      const r = rig({
        token: src,
        tokenFromFile: true,
        retry: retrySchema.parse({ initial_interval: '10ms', max_interval: '200ms' }),
      });
      const p = r.client.page('events', '/p/', {}, r.signal);
      await new Promise((res) => setTimeout(res, 100));
      await writeFile(path, 'new-token-value\n');
      await p;
      assert.equal(tokens.at(-1), 'Bearer new-token-value');
      assert.match(warnLines(r.logger)[0]!.msg, /token_file/);
      await r.client.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('proxy and TLS', () => {
  test('proxy_url: requests go through the proxy (with credentials), which are never logged', async () => {
    const proxied: { url: string; auth: string | undefined }[] = [];
    const proxy = http.createServer((req, res) => {
      proxied.push({ url: req.url ?? '', auth: req.headers['proxy-authorization'] });
      const u = new URL(req.url ?? '');
      const up = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          headers: { ...req.headers, host: u.host },
        },
        (r2) => {
          res.writeHead(r2.statusCode ?? 502, r2.headers);
          r2.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      up.end();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      handler = (_req, res) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(envelope([{ pk: 'p' }]));
      const port = (proxy.address() as AddressInfo).port;
      const r = rig({ proxyUrl: `http://proxyuser:proxypass@127.0.0.1:${port}` });
      const page = await r.client.page('groups', '/api/v3/core/groups/', { page: 1 }, r.signal);
      assert.equal(page.results.length, 1);
      assert.equal(proxied.length, 1);
      assert.match(proxied[0]!.url, /^http:\/\/127\.0\.0\.1:\d+\/api\/v3\/core\/groups\/\?page=1$/);
      assert.equal(proxied[0]!.auth, `Basic ${Buffer.from('proxyuser:proxypass').toString('base64')}`);
      assert.ok(!r.logger.text().includes('proxypass'));
      await r.client.close();
    } finally {
      proxy.closeAllConnections();
      await new Promise((res) => proxy.close(res));
    }
  });

  const haveOpenssl = spawnSync('openssl', ['version']).status === 0;
  test(
    'tls.ca_file and server_name; an unknown CA is a clear tls error',
    { skip: !haveOpenssl && 'no openssl' },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ak-tls-'));
      // prettier-ignore
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=authentik.test',
      '-addext', 'subjectAltName=DNS:authentik.test', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
      const srv = https.createServer(
        { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
        (_req, res) =>
          res.writeHead(200, { 'content-type': 'application/json' }).end(envelope([{ pk: 't' }])),
      );
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      const url = `https://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      try {
        const ok = rig({
          endpoint: url,
          configDir: dir,
          tls: { ca_file: 'cert.pem', server_name: 'authentik.test', insecure_skip_verify: false },
        });
        assert.equal((await ok.client.page('events', '/p/', {}, ok.signal)).results.length, 1);
        await ok.client.close();

        const bad = rig({
          endpoint: url,
          retry: retrySchema.parse({
            initial_interval: '10ms',
            max_interval: '10ms',
            max_elapsed_time: '50ms',
          }),
        });
        await assert.rejects(
          bad.client.page('events', '/p/', {}, bad.signal),
          (e: unknown) => e instanceof ApiError && e.kind === 'tls',
        );
        assert.match(warnLines(bad.logger)[0]!.msg, /TLS handshake with authentik failed/);
        await bad.client.close();
      } finally {
        srv.closeAllConnections();
        await new Promise((r) => srv.close(r));
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('secrets', () => {
  test('the token never appears in logs, statuses or metrics', async () => {
    const text = allLogs.map((l) => l.text()).join('\n');
    assert.ok(text.length > 0);
    assert.ok(!text.includes(TOKEN), 'token in logs');
    for (const reg of allRegistries) assert.ok(!(await reg.metrics()).includes(TOKEN), 'token in metrics');
  });
});
