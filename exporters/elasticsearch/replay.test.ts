import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { MemoryLogger } from '../../test/kit/index.ts';
import { hrTimeFromMillis } from '../../runtime/model.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { EsClient } from './client.ts';
import { configSchema } from './config.ts';
import { encodeItem } from './document.ts';
import { EsMetrics } from './metrics.ts';
import { ReplayChecker } from './replay.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('replay_check option', () => {
  test('values', () => {
    const parse = (v: unknown) =>
      configSchema.parse({ endpoints: ['http://localhost:9200'], replay_check: v });
    assert.equal(configSchema.parse({ endpoints: ['http://localhost:9200'] }).replay_check, 'none');
    assert.equal(parse(true).replay_check, 'replayed');
    assert.equal(parse(false).replay_check, 'none');
    assert.equal(parse('all').replay_check, 'all');
    assert.equal(parse('replayed').replay_check, 'replayed');
    const bad = configSchema.safeParse({ endpoints: ['http://localhost:9200'], replay_check: 'yes' });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error?.issues), /none, replayed, all, true or false/);
  });
});

/** A `_search` endpoint: answers with the ids of `present` among those asked, or with `status`. */
async function searchServer(present: Set<string>): Promise<{
  url: string;
  bodies: { path: string; ids: string[] }[];
  fail: { status: number } | undefined;
}> {
  const state = {
    url: '',
    bodies: [] as { path: string; ids: string[] }[],
    fail: undefined as { status: number } | undefined,
  };
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const ids =
        (JSON.parse(body || '{}') as { query?: { ids?: { values?: string[] } } }).query?.ids?.values ?? [];
      state.bodies.push({ path: req.url ?? '', ids });
      res.setHeader('content-type', 'application/json');
      if (state.fail) {
        res.statusCode = state.fail.status;
        res.end('{"error":{"type":"boom","reason":"search broke"},"status":500}');
        return;
      }
      const hits = ids.filter((id) => present.has(id)).map((id) => ({ _id: id }));
      res.end(JSON.stringify(hits.length ? { hits: { hits } } : {}));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
  return state;
}

function rec(i: number, observedMs: number, dataset = 'authentik.event'): LogRecord {
  return {
    observedTimestamp: hrTimeFromMillis(observedMs),
    attributes: { 'data_stream.dataset': dataset, 'elasticsearch.document_id': `id-${i}` },
    body: { event: { id: `e${i}` } },
  };
}

function checker(url: string, mode: 'replayed' | 'all', startedAtMs: number) {
  const client = new EsClient({
    endpoints: [url],
    timeoutMs: 2000,
    connections: 1,
    cooldownMs: 1000,
    userAgent: 't',
  });
  cleanups.push(() => client.close());
  const registry = new Registry();
  const logger = new MemoryLogger();
  const c = new ReplayChecker({
    client,
    metrics: new EsMetrics(registry, 'elasticsearch'),
    logger,
    mode,
    startedAtMs,
    timeoutMs: 2000,
  });
  return { c, registry, logger };
}

const routing = { index: undefined, dataset: 'authentik.event', namespace: 'default' };

describe('ReplayChecker', () => {
  test('mode replayed: looks up only records observed before the start, skips those present', async () => {
    const srv = await searchServer(new Set(['id-0', 'id-1', 'id-5']));
    const start = Date.now();
    const { c, registry, logger } = checker(srv.url, 'replayed', start);
    // 0..3 read by an earlier run (observed before start), 4..5 by this run; users go to their own stream
    const batch = [0, 1, 2, 3].map((i) => rec(i, start - 5000));
    batch.push(rec(4, start + 10), rec(5, start + 10), rec(6, start - 5000, 'authentik.user'));
    const items = batch.map((r, pos) => encodeItem(r, pos, routing));
    const skipped: string[] = [];
    const out = await c.skipPresent(items, batch, new AbortController().signal, (it) => skipped.push(it.id!));
    assert.deepEqual(skipped.sort(), ['id-0', 'id-1']);
    assert.deepEqual(
      out.map((it) => it.id),
      ['id-2', 'id-3', 'id-4', 'id-5', 'id-6'],
      'id-5 is present but was observed by this run: not looked up',
    );
    assert.deepEqual(
      srv.bodies.map((b) => [b.path.split('?')[0], b.ids]),
      [
        ['/logs-authentik.event-default/_search', ['id-0', 'id-1', 'id-2', 'id-3']],
        ['/logs-authentik.user-default/_search', ['id-6']],
      ],
    );
    assert.match(srv.bodies[0]!.path, /ignore_unavailable=true&allow_no_indices=true/);
    const text = await registry.metrics();
    assert.match(
      text,
      /otelcol_exporter_elasticsearch_documents\{exporter="elasticsearch",outcome="replay_skipped"\} 2/,
    );
    assert.match(
      text,
      /otelcol_exporter_elasticsearch_replay_checks\{exporter="elasticsearch",result="ok"\} 2/,
    );
    assert.ok(logger.lines.some((l) => l.msg.startsWith('replay check: documents already in the target')));
  });

  test('mode all: every record with an id is looked up; nothing to look up sends no request', async () => {
    const srv = await searchServer(new Set(['id-1']));
    const { c } = checker(srv.url, 'all', Date.now() - 60_000);
    const batch = [rec(0, Date.now()), rec(1, Date.now())];
    const out = await c.skipPresent(
      batch.map((r, pos) => encodeItem(r, pos, routing)),
      batch,
      new AbortController().signal,
      () => {},
    );
    assert.deepEqual(
      out.map((it) => it.id),
      ['id-0'],
    );
    // records without a document id cannot be looked up
    const noId = [{ observedTimestamp: hrTimeFromMillis(Date.now()), attributes: {}, body: { a: 1 } }];
    const out2 = await c.skipPresent(
      noId.map((r, pos) => encodeItem(r, pos, routing)),
      noId,
      new AbortController().signal,
      () => {},
    );
    assert.equal(out2.length, 1);
    assert.equal(srv.bodies.length, 1);
  });

  test('a failed look-up sends everything unchecked, warns once per episode, counts it', async () => {
    const srv = await searchServer(new Set(['id-0']));
    srv.fail = { status: 500 };
    const { c, registry, logger } = checker(srv.url, 'all', Date.now());
    const batch = [rec(0, Date.now()), rec(1, Date.now())];
    const run = () =>
      c.skipPresent(
        batch.map((r, pos) => encodeItem(r, pos, routing)),
        batch,
        new AbortController().signal,
        () => {},
      );
    assert.equal((await run()).length, 2);
    assert.equal((await run()).length, 2);
    const warns = logger.lines.filter((l) => l.msg.startsWith('replay check: cannot look up'));
    assert.equal(warns.length, 1);
    assert.match(String(warns[0]!.fields['error']), /500 boom: search broke/);
    assert.match(
      await registry.metrics(),
      /otelcol_exporter_elasticsearch_replay_checks\{exporter="elasticsearch",result="failed"\} 2/,
    );
    srv.fail = undefined;
    assert.equal((await run()).length, 1);
    assert.ok(logger.lines.some((l) => l.msg === 'replay check: look-ups work again'));
  });
});
