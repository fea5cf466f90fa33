import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AUTHENTIK_DATASETS } from './mappings.ts';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PermanentError, RetryableError } from '../../runtime/errors.ts';
import { SinkUnusableError, failureClass } from '../../runtime/exporterhelper/failure.ts';
import { hrTimeFromMillis } from '../../runtime/model.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { nopHost, nopSettings, waitFor } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import type { ElasticsearchExporter } from './exporter.ts';
import { factory } from './factory.ts';
import { FakeElasticsearch } from './testing.ts';

const FAST_RETRY = { initial_interval: '10ms', max_interval: '40ms', randomization_factor: 0 };

function records(
  n: number,
  from = 0,
  extra: (i: number) => Record<string, unknown> = () => ({}),
): LogRecord[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      timestamp: hrTimeFromMillis(Date.UTC(2024, 7, 7, 6, 28, 59) + i),
      observedTimestamp: hrTimeFromMillis(Date.now()),
      attributes: { 'data_stream.dataset': 'authentik.event', 'elasticsearch.document_id': `id-${i}` },
      body: { event: { action: 'login', id: `e${i}` }, user: { name: `u${i % 7}` }, ...extra(i) },
    };
  });
}

interface Ctx {
  fake: FakeElasticsearch;
  settings: TestSettings;
  exp: ElasticsearchExporter;
  dir: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(
  cfg: Record<string, unknown> = {},
  fakeOpts = {},
  endpoints?: (url: string) => string[],
): Promise<Ctx> {
  const fake = new FakeElasticsearch(fakeOpts);
  await fake.start();
  const dir = await mkdtemp(join(tmpdir(), 'es-exp-'));
  const settings = nopSettings('elasticsearch/test', 'exporter', dir);
  const config = factory.configSchema.parse({
    endpoints: endpoints ? endpoints(fake.url) : [fake.url],
    retry: FAST_RETRY,
    dead_letter: { path: 'dlq/rejected.ndjson' },
    ...cfg,
  });
  const exp = (await factory.create(settings, config)) as ElasticsearchExporter;
  cleanups.push(async () => {
    await exp.shutdown();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });
  await exp.start(nopHost());
  return { fake, settings, exp, dir };
}

interface DeadLetterLine {
  '@timestamp': string;
  index: string;
  document_id: string | null;
  status: number;
  error: { type: string; reason: string };
  document: { event: { action: string } };
}

async function deadLetters(ctx: Ctx): Promise<DeadLetterLine[]> {
  const text = await readFile(join(ctx.dir, 'dlq/rejected.ndjson'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DeadLetterLine);
}

async function metric(ctx: Ctx, name: string, labels: Record<string, string>): Promise<number> {
  const m = await ctx.settings.metrics.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('elasticsearch exporter against a fake _bulk endpoint', () => {
  test('delivers a batch: templates first, gzip body, create actions with _id, data stream routing', async () => {
    const ctx = await setup();
    await ctx.exp.consume(records(5));
    assert.deepEqual(ctx.fake.ids(), ['id-0', 'id-1', 'id-2', 'id-3', 'id-4']);
    const firstBulk = ctx.fake.requests.findIndex((r) => r.path.startsWith('/_bulk'));
    const lastPut = ctx.fake.requests.findLastIndex((r) => r.method === 'PUT');
    assert.ok(lastPut >= 0 && lastPut < firstBulk, 'templates are installed before the first _bulk');
    const bulk = ctx.fake.bulkRequests[0]!;
    assert.equal(bulk.headers['content-encoding'], 'gzip');
    assert.equal(bulk.headers['content-type'], 'application/x-ndjson');
    assert.match(String(bulk.headers['user-agent']), /^authentik-collector\/0\.0\.0-test$/);
    assert.ok(bulk.wireBytes < Buffer.byteLength(bulk.body), 'the body was compressed');
    const doc = ctx.fake.docs.get('logs-authentik.event-default/id-3')!;
    assert.equal(doc.source['@timestamp'], '2024-08-07T06:28:59.003Z');
    assert.deepEqual(doc.source['data_stream'], {
      type: 'logs',
      dataset: 'authentik.event',
      namespace: 'default',
    });
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'indexed' }), 5);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_bulk_requests', { status: '200' }), 1);
    assert.ok(
      (await metric(ctx, 'otelcol_exporter_elasticsearch_bulk_sent_bytes', { encoding: 'wire' })) > 0,
    );
  });

  test('compression none sends plain NDJSON', async () => {
    const ctx = await setup({ compression: 'none' });
    await ctx.exp.consume(records(2));
    const bulk = ctx.fake.bulkRequests[0]!;
    assert.equal(bulk.headers['content-encoding'], undefined);
    assert.equal(bulk.wireBytes, Buffer.byteLength(bulk.body));
  });

  test('splits a batch by flush.max_documents and flush.max_bytes', async () => {
    const ctx = await setup({ flush: { max_documents: 40 }, max_in_flight: 3 });
    await ctx.exp.consume(records(100));
    assert.deepEqual(ctx.fake.bulkRequests.map((r) => r.body.split('\n').length >> 1).sort(), [20, 40, 40]);
    assert.equal(ctx.fake.docs.size, 100);
    const ctx2 = await setup({ flush: { max_bytes: '2KiB' } });
    await ctx2.exp.consume(records(30));
    assert.ok(ctx2.fake.bulkRequests.length > 1);
    for (const r of ctx2.fake.bulkRequests) assert.ok(Buffer.byteLength(r.body) <= 2048);
    assert.equal(ctx2.fake.docs.size, 30);
  });

  test('the same batch twice: second time every item is a 409, counted as duplicate, no error', async () => {
    const ctx = await setup();
    await ctx.exp.consume(records(10));
    await ctx.exp.consume(records(10));
    assert.equal(ctx.fake.docs.size, 10);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'duplicate' }), 10);
    assert.equal(ctx.settings.drops.length, 0);
  });

  test('partial item failures (429/500/400 mix): each document accepted exactly once, 400s dead-lettered', async () => {
    const ctx = await setup({ flush: { max_documents: 25 } });
    // Every request also fails at request level now and then (500), to mix both retry paths.
    ctx.fake.bulkFault = (n) => (n % 4 === 2 ? { status: 500 } : undefined);
    ctx.fake.itemFault = (doc, seen) => {
      const i = Number(doc.id!.slice(3));
      if (i % 10 === 7) return 400; // permanent
      if (i % 3 === 0 && seen <= 2) return 429; // refused twice, then accepted
      if (i % 5 === 1 && seen === 1) return 503;
      return undefined;
    };
    const batch = records(100);
    await ctx.exp.consume(batch); // resolves: nothing finally delivered is reported as failed
    const permanent = batch
      .filter((_, i) => i % 10 === 7)
      .map((r) => r.attributes['elasticsearch.document_id'] as string);
    const expected = batch
      .map((r) => r.attributes['elasticsearch.document_id'] as string)
      .filter((id) => !permanent.includes(id));
    assert.deepEqual(ctx.fake.ids(), expected.sort());
    // exactly once: no id was created twice (the fake answers 409 on a second create)
    const created = ctx.fake.bulkItems.filter((d) => d.id && !permanent.includes(d.id));
    assert.ok(created.length > expected.length, 'some documents were sent more than once');
    assert.equal(
      await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'indexed' }),
      expected.length,
    );
    // 400s are never retried
    for (const id of permanent)
      assert.equal(ctx.fake.bulkItems.filter((d) => d.id === id).length, 1, `${id} sent once`);
    const dlq = await deadLetters(ctx);
    assert.deepEqual(dlq.map((d) => d.document_id).sort(), [...permanent].sort());
    for (const d of dlq) {
      assert.equal(d.status, 400);
      assert.equal(d.index, 'logs-authentik.event-default');
      assert.equal(d.error.type, 'document_parsing_exception');
      assert.equal(d.document.event.action, 'login');
      assert.ok(!Number.isNaN(Date.parse(d['@timestamp'])));
    }
    assert.deepEqual(ctx.settings.drops, [{ count: 10, reason: 'permanent_rejected_by_elasticsearch' }]);
    assert.equal(
      await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'dead_lettered' }),
      10,
    );
    assert.ok((await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'retried' })) > 0);
  });

  test('only the refused items are re-sent', async () => {
    const ctx = await setup();
    ctx.fake.itemFault = (doc, seen) => (doc.id === 'id-2' && seen === 1 ? 429 : undefined);
    await ctx.exp.consume(records(5));
    const bulks = ctx.fake.bulkRequests;
    assert.equal(bulks.length, 2);
    const second = bulks[1]!.body.split('\n').filter(Boolean);
    assert.equal(second.length, 2);
    assert.equal(JSON.parse(second[0]!).create._id, 'id-2');
  });

  test('request-level 429 honours Retry-After', async () => {
    const ctx = await setup();
    ctx.fake.bulkFault = (n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : undefined);
    await ctx.exp.whenSetUp();
    const t0 = Date.now();
    await ctx.exp.consume(records(3));
    const [a, b] = ctx.fake.bulkRequests;
    assert.ok(b!.at - a!.at >= 950, `waited ${b!.at - a!.at} ms between attempts`);
    assert.ok(Date.now() - t0 >= 950);
    assert.equal(ctx.fake.docs.size, 3);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_bulk_requests', { status: '429' }), 1);
  });

  test('connection reset mid-response: re-sent, the already indexed documents come back as 409', async () => {
    const ctx = await setup();
    ctx.fake.bulkFault = (n) => (n === 1 ? { reset: 'mid-response' } : undefined);
    await ctx.exp.consume(records(4));
    assert.equal(ctx.fake.docs.size, 4);
    assert.equal(ctx.fake.bulkRequests.length, 2);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'duplicate' }), 4);
    assert.equal(
      await metric(ctx, 'otelcol_exporter_elasticsearch_bulk_requests', { status: 'network_error' }),
      1,
    );
  });

  test('connection reset before an answer is retried', async () => {
    const ctx = await setup();
    ctx.fake.bulkFault = (n) => (n <= 2 ? { reset: 'before' } : undefined);
    await ctx.exp.consume(records(3));
    assert.equal(ctx.fake.docs.size, 3);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'duplicate' }), 0);
  });

  test('a server slower than timeout: the attempt is abandoned and retried', async () => {
    const ctx = await setup({ timeout: '200ms' });
    ctx.fake.bulkFault = (n) => (n === 1 ? { delayMs: 600 } : undefined);
    await ctx.exp.whenSetUp();
    const t0 = Date.now();
    await ctx.exp.consume(records(2));
    assert.ok(Date.now() - t0 >= 200);
    assert.equal(ctx.fake.docs.size, 2);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_bulk_requests', { status: 'timeout' }), 1);
  });

  test('401 makes the sink unusable (class 2): retryable SinkUnusableError, nothing dropped, health permanent_error, no secret anywhere', async () => {
    const ctx = await setup({ auth: { api_key: 'id-1:very-secret-key' } });
    await ctx.exp.whenSetUp();
    ctx.fake.bulkFault = () => ({
      status: 401,
      body: {
        error: { type: 'security_exception', reason: 'unable to authenticate with provided credentials' },
        status: 401,
      },
    });
    const err = await ctx.exp.consume(records(2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof SinkUnusableError, String(err));
    assert.ok(!(err instanceof PermanentError));
    assert.equal(failureClass(err), 'sink_unusable');
    assert.match(err.message, /401 security_exception: unable to authenticate/);
    assert.equal(ctx.fake.bulkRequests.length, 1, 'not retried inside the exporter (the queue retries)');
    assert.equal(ctx.settings.statuses.at(-1)?.status, 'permanent_error');
    assert.deepEqual(ctx.settings.drops, [], 'nothing dropped');
    assert.equal((await deadLetters(ctx)).length, 0, 'nothing dead-lettered');
    // the key went on the wire, encoded
    assert.equal(
      ctx.fake.bulkRequests[0]!.headers['authorization'],
      `ApiKey ${Buffer.from('id-1:very-secret-key').toString('base64')}`,
    );
    const everything = ctx.settings.logger.text() + err.message + JSON.stringify(ctx.settings.statuses);
    assert.ok(!everything.includes('very-secret-key'));
    assert.ok(!everything.includes(Buffer.from('id-1:very-secret-key').toString('base64')));
    // fixed: the same batch goes through
    ctx.fake.bulkFault = undefined;
    await ctx.exp.consume(records(2));
    assert.equal(ctx.fake.docs.size, 2);
  });

  for (const [what, fault] of [
    ['403', { status: 403, body: { error: { type: 'security_exception', reason: 'action unauthorized' } } }],
    ['a proxy’s HTML 404', { status: 404, body: '<html><body><h1>404 Not Found</h1></body></html>' }],
    ['a 302 redirect', { status: 302, headers: { location: 'https://login.example/' }, body: '' }],
    ['a non-JSON 400 (proxy)', { status: 400, body: '<html>400 Bad Request</html>' }],
    ['a JSON 404 (wrong path)', { status: 404, body: { error: 'no handler found for uri [/x/_bulk]' } }],
  ] as const) {
    test(`${what} on _bulk is class 2: kept, not dead-lettered, retried once fixed`, async () => {
      const ctx = await setup();
      await ctx.exp.whenSetUp();
      ctx.fake.bulkFault = () => fault;
      const err = await ctx.exp.consume(records(3)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof SinkUnusableError, String(err));
      assert.deepEqual(ctx.settings.drops, []);
      assert.equal((await deadLetters(ctx)).length, 0);
      ctx.fake.bulkFault = undefined;
      await ctx.exp.consume(records(3));
      assert.equal(ctx.fake.docs.size, 3);
    });
  }

  test('413 for a single document is class 2 (raise the limit), not a dead letter', async () => {
    const ctx = await setup();
    await ctx.exp.whenSetUp();
    ctx.fake.bulkFault = () => ({ status: 413, body: '<html>413 Request Entity Too Large</html>' });
    const err = await ctx.exp.consume(records(4)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof SinkUnusableError, String(err));
    assert.match(String(err), /single document/);
    assert.deepEqual(ctx.settings.drops, []);
    assert.equal((await deadLetters(ctx)).length, 0);
  });

  test('basic and bearer auth headers', async () => {
    const a = await setup({ auth: { username: 'elastic', password: 'pw' } });
    await a.exp.consume(records(1));
    assert.equal(
      a.fake.bulkRequests[0]!.headers['authorization'],
      `Basic ${Buffer.from('elastic:pw').toString('base64')}`,
    );
    const b = await setup({ auth: { bearer_token: 'tok' } });
    await b.exp.consume(records(1));
    assert.equal(b.fake.bulkRequests[0]!.headers['authorization'], 'Bearer tok');
  });

  test('round-robin with failover when one endpoint refuses connections', async () => {
    // A port that refuses: bind, note the port, close.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const dead = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    await new Promise<void>((r) => srv.close(() => r()));
    const ctx = await setup({ flush: { max_documents: 5 } }, {}, (url) => [dead, url]);
    await ctx.exp.consume(records(30));
    assert.equal(ctx.fake.docs.size, 30);
    assert.ok(
      ctx.settings.logger.lines.some(
        (l) => l.msg.startsWith('endpoint unreachable') && l.fields['endpoint'] === dead,
      ),
    );
    assert.equal(
      ctx.settings.logger.lines.filter((l) => l.msg.startsWith('endpoint unreachable')).length,
      1,
      'marked down once, then skipped',
    );
  });

  test('round-robin spreads requests over healthy endpoints', async () => {
    const other = new FakeElasticsearch();
    await other.start();
    cleanups.push(() => other.close());
    const ctx = await setup({ flush: { max_documents: 10 }, max_in_flight: 1 }, {}, (url) => [
      url,
      other.url,
    ]);
    await ctx.exp.consume(records(40));
    assert.ok(ctx.fake.bulkRequests.length >= 1 && other.bulkRequests.length >= 1);
    assert.equal(ctx.fake.docs.size + other.docs.size, 40);
  });

  test('413 splits the request in halves', async () => {
    const ctx = await setup();
    ctx.fake.bulkFault = (_n, req) => (req.body.split('\n').length > 9 ? { status: 413 } : undefined);
    await ctx.exp.consume(records(16));
    assert.equal(ctx.fake.docs.size, 16);
    assert.ok(ctx.fake.bulkRequests.filter((r) => r.body.split('\n').length <= 9).length >= 4);
  });

  test('request-level 400 rejects the request’s documents into the dead-letter file', async () => {
    const ctx = await setup();
    ctx.fake.bulkFault = () => ({
      status: 400,
      body: { error: { type: 'illegal_argument_exception', reason: 'bad things' }, status: 400 },
    });
    await ctx.exp.consume(records(3));
    const dlq = await deadLetters(ctx);
    assert.equal(dlq.length, 3);
    assert.equal(dlq[0]!.error.type, 'illegal_argument_exception');
    assert.equal(ctx.fake.bulkRequests.length, 1);
  });

  test('without a dead-letter file, permanent rejections are counted and logged', async () => {
    const ctx = await setup({ dead_letter: undefined });
    ctx.fake.itemFault = (doc) => (doc.id === 'id-1' ? 400 : undefined);
    await ctx.exp.consume(records(3));
    assert.deepEqual(ctx.settings.drops, [{ count: 1, reason: 'permanent_rejected_by_elasticsearch' }]);
    assert.equal(await metric(ctx, 'otelcol_exporter_elasticsearch_documents', { outcome: 'rejected' }), 1);
    assert.ok(
      ctx.settings.logger.lines.some(
        (l) => l.level === 'warn' && String(l.fields['reasons']).includes('injected 400'),
      ),
    );
  });

  test('retries exhausted: RetryableError; re-consuming the batch skips what was delivered', async () => {
    const ctx = await setup({
      retry: { ...FAST_RETRY, max_elapsed_time: '150ms' },
      flush: { max_documents: 2 },
    });
    ctx.fake.itemFault = (doc) => (doc.id === 'id-3' ? 503 : undefined);
    const batch = records(6);
    const err = await ctx.exp.consume(batch).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof RetryableError, String(err));
    assert.match(err.message, /1 of 6 documents not delivered: retries exhausted/);
    assert.equal(ctx.fake.docs.size, 5);
    ctx.fake.itemFault = undefined;
    const before = ctx.fake.bulkItems.length;
    await ctx.exp.consume(batch);
    assert.deepEqual(
      ctx.fake.bulkItems.slice(before).map((d) => d.id),
      ['id-3'],
    );
    assert.equal(ctx.fake.docs.size, 6);
  });

  test('shutdown interrupts retries with a RetryableError', async () => {
    const ctx = await setup({ retry: { initial_interval: '5s', randomization_factor: 0 } });
    await ctx.exp.whenSetUp();
    ctx.fake.bulkFault = () => ({ status: 503 });
    const p = ctx.exp.consume(records(2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(() => ctx.fake.bulkRequests.length === 1);
    const t0 = Date.now();
    await ctx.exp.shutdown();
    const err = await p;
    assert.ok(Date.now() - t0 < 2000);
    assert.ok(err instanceof RetryableError, String(err));
    await assert.rejects(ctx.exp.consume(records(1)), RetryableError);
  });

  test('server down at start: start resolves, health recoverable, templates installed before the first bulk', async () => {
    const fake = new FakeElasticsearch();
    await fake.start();
    const url = fake.url;
    const port = Number(new URL(url).port);
    await fake.close();
    const dir = await mkdtemp(join(tmpdir(), 'es-exp-'));
    const settings = nopSettings('elasticsearch', 'exporter', dir);
    const exp = (await factory.create(
      settings,
      factory.configSchema.parse({ endpoints: [url], retry: FAST_RETRY }),
    )) as ElasticsearchExporter;
    const late = new FakeElasticsearch();
    cleanups.push(async () => {
      await exp.shutdown();
      await late.close();
      await rm(dir, { recursive: true, force: true });
    });
    await exp.start(nopHost());
    await waitFor(() => settings.statuses.some((s) => s.status === 'recoverable_error'));
    assert.match(
      settings.statuses.find((s) => s.status === 'recoverable_error')!.message!,
      /ECONNREFUSED|connect/,
    );
    const consumed = exp.consume(records(2));
    await new Promise((r) => setTimeout(r, 100));
    await late.start(port);
    await consumed;
    const firstBulk = late.requests.findIndex((r) => r.path.startsWith('/_bulk'));
    assert.ok(
      late.requests.slice(0, firstBulk).filter((r) => r.method === 'PUT').length ===
        2 + 2 * AUTHENTIK_DATASETS.length,
    );
    assert.equal(late.docs.size, 2);
    assert.equal(settings.statuses.at(-1)?.status, 'ok');
  });

  test('missing privilege to install templates: warning, documents still delivered', async () => {
    const ctx = await setup({}, {});
    // install was attempted already by start(); make a fresh exporter whose PUTs are forbidden
    await ctx.exp.shutdown();
    ctx.fake.otherFault = (r) => (r.method === 'PUT' ? { status: 403 } : undefined);
    ctx.fake.templates.clear();
    const settings = nopSettings('elasticsearch', 'exporter', ctx.dir);
    const exp = (await factory.create(
      settings,
      factory.configSchema.parse({ endpoints: [ctx.fake.url], retry: FAST_RETRY }),
    )) as ElasticsearchExporter;
    cleanups.push(() => exp.shutdown());
    await exp.start(nopHost());
    await exp.consume(records(2));
    assert.ok(
      settings.logger.lines.some((l) => l.level === 'warn' && l.msg.includes('manage_index_templates')),
    );
    assert.equal(ctx.fake.docs.size, 2);
  });

  test('setup.templates false: no template requests', async () => {
    const ctx = await setup({ setup: { templates: false } });
    await ctx.exp.consume(records(1));
    await ctx.exp.whenSetUp();
    assert.equal(ctx.fake.requests.filter((r) => r.path.includes('template')).length, 0);
  });

  test('non-map bodies are wrapped as message; static index', async () => {
    const ctx = await setup({ index: 'authentik-raw' });
    await ctx.exp.consume([
      { observedTimestamp: hrTimeFromMillis(Date.UTC(2024, 0, 1)), attributes: {}, body: 'plain line' },
    ]);
    const [doc] = [...ctx.fake.docs.values(), ...ctx.fake.bulkItems].filter(
      (d) => d.index === 'authentik-raw',
    );
    assert.deepEqual(doc!.source, { '@timestamp': '2024-01-01T00:00:00.000Z', message: 'plain line' });
  });
});

describe('elasticsearch exporter over TLS', () => {
  const hasOpenssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  test(
    'verifies the server with tls.ca_file; refuses an unknown CA',
    { skip: !hasOpenssl && 'openssl not installed' },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'es-tls-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      const fake = new FakeElasticsearch({
        tls: { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
      });
      await fake.start();
      cleanups.push(() => fake.close());
      const make = async (tls: Record<string, unknown>, retry: Record<string, unknown> = FAST_RETRY) => {
        const settings = nopSettings('elasticsearch/tls', 'exporter', dir);
        const config = factory.configSchema.parse({
          endpoints: [fake.url],
          tls,
          retry,
          setup: { templates: false },
        });
        const exp = (await factory.create(settings, config)) as ElasticsearchExporter;
        cleanups.push(() => exp.shutdown());
        await exp.start(nopHost());
        return { exp, settings };
      };
      const ok = await make({ ca_file: 'cert.pem' });
      await ok.exp.consume(records(2));
      assert.equal(fake.docs.size, 2);
      const unknownCa = await make({}, { ...FAST_RETRY, max_elapsed_time: '100ms' });
      await assert.rejects(unknownCa.exp.consume(records(1, 10)), /self[- ]signed|certificate/i);
      assert.equal(fake.docs.size, 2);
      const skip = await make({ insecure_skip_verify: true });
      await skip.exp.consume(records(1, 20));
      assert.equal(fake.docs.size, 3);
      assert.ok(skip.settings.logger.lines.some((l) => l.msg.includes('verification is disabled')));
    },
  );
});
