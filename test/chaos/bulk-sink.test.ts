import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { startBulkSink } from './bulk-sink.ts';

function ndjson(lines: unknown[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

void describe('chaos bulk sink', async () => {
  const sink = await startBulkSink({ auth: 'ApiKey k' });
  after(() => sink.close());
  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${sink.url}/_bulk`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-ndjson', authorization: 'ApiKey k', ...headers },
    });

  void test('create with _id stores once; a second create answers 409 per item', async () => {
    const body = ndjson([
      { create: { _index: 'logs-authentik.event-default', _id: 'a' } },
      { data_stream: { dataset: 'authentik.event' }, event: { id: 'p1' } },
      { create: { _index: 'logs-authentik.event-default', _id: 'b' } },
      { event: { id: 'p2' } },
    ]);
    const r1 = (await (await post(body)).json()) as {
      errors: boolean;
      items: { create: { status: number } }[];
    };
    assert.equal(r1.errors, false);
    assert.deepEqual(
      r1.items.map((i) => i.create.status),
      [201, 201],
    );
    const r2 = (await (await post(gzipSync(body), { 'content-encoding': 'gzip' })).json()) as typeof r1;
    assert.equal(r2.errors, true);
    assert.deepEqual(
      r2.items.map((i) => i.create.status),
      [409, 409],
    );
    assert.equal(sink.stats.conflicts, 2);
    assert.deepEqual([...sink.pksOf('event')].sort(), ['event:p1', 'event:p2']);
    assert.equal(sink.duplicatePks(), 0);
  });

  void test('auth is enforced; GET / looks like Elasticsearch', async () => {
    const r = await fetch(`${sink.url}/_bulk`, { method: 'POST', body: '\n' });
    assert.equal(r.status, 401);
    const info = (await (await fetch(`${sink.url}/`, { headers: { authorization: 'ApiKey k' } })).json()) as {
      version: { number: string };
    };
    assert.match(info.version.number, /^8\./);
  });

  void test('refuse closes the port, status modes answer the status, ok restores on the same port', async () => {
    const port = sink.port;
    await sink.setMode({ kind: 'refuse' });
    await assert.rejects(post('\n'));
    await sink.setMode({ kind: 'status', status: 429, retryAfterSeconds: 2 });
    assert.equal(sink.port, port);
    const r = await post('\n');
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '2');
    await sink.setMode({ kind: 'ok' });
    assert.equal((await post('\n')).status, 200);
  });

  void test('item faults fail a share of items with the given status', async () => {
    sink.setItemFaults({ rate: 1, status: 500 });
    const r = (await (await post(ndjson([{ create: { _index: 'x', _id: 'z' } }, { pk: 'z' }]))).json()) as {
      items: { create: { status: number } }[];
    };
    assert.equal(r.items[0]!.create.status, 500);
    sink.setItemFaults(undefined);
    assert.equal(sink.stats.itemFailures, 1);
  });
});
