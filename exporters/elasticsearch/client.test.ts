import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hrTimeFromMillis } from '../../runtime/model.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { nopHost, nopSettings, waitFor } from '../../test/kit/index.ts';
import { EsClient } from './client.ts';
import type { ElasticsearchExporter } from './exporter.ts';
import { factory } from './factory.ts';
import { FakeElasticsearch } from './testing.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A loopback port nothing listens on (bound, noted, closed). */
async function refusingPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function records(n: number): LogRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    observedTimestamp: hrTimeFromMillis(Date.now()),
    attributes: { 'data_stream.dataset': 'authentik.event', 'elasticsearch.document_id': `id-${i}` },
    body: { event: { action: 'login', id: `e${i}` } },
  }));
}

describe('endpoint state', () => {
  test('a refused endpoint is down until a probe gets an HTTP answer', async () => {
    const port = await refusingPort();
    const dead = `http://127.0.0.1:${port}`;
    const live = new FakeElasticsearch();
    await live.start();
    cleanups.push(() => live.close());
    const events: [string, boolean][] = [];
    const client = new EsClient({
      endpoints: [dead, live.url],
      timeoutMs: 2000,
      connections: 2,
      cooldownMs: 100,
      userAgent: 'test',
      onEndpointState: (e, up) => events.push([e, up]),
    });
    cleanups.push(() => client.close());
    // round-robin starts at the dead one: the request fails over
    const res = await client.request('GET', '/');
    assert.equal(res.endpoint, live.url);
    assert.deepEqual(
      client.downEndpoints().map((d) => d.url),
      [dead],
    );
    assert.match(client.downEndpoints()[0]!.reason, /ECONNREFUSED/);
    // probes keep failing while nothing listens: still down, reported once
    await new Promise((r) => setTimeout(r, 350));
    assert.deepEqual(events, [[dead, false]]);
    // something answers on the port again: the next probe marks it up, without any request of ours
    const back = new FakeElasticsearch();
    await back.start(port);
    cleanups.push(() => back.close());
    await waitFor(() => client.downEndpoints().length === 0, 3000);
    assert.deepEqual(events, [
      [dead, false],
      [dead, true],
    ]);
    assert.ok(
      back.requests.some((r) => r.method === 'GET' && r.path === '/'),
      'probed with GET /',
    );
  });

  test('exporter: health names the dead endpoint while the other serves, the gauge says which; ok when it is back', async () => {
    const port = await refusingPort();
    const dead = `http://127.0.0.1:${port}`;
    const live = new FakeElasticsearch();
    await live.start();
    cleanups.push(() => live.close());
    const dir = await mkdtemp(join(tmpdir(), 'es-client-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const settings = nopSettings('elasticsearch', 'exporter', dir);
    const config = factory.configSchema.parse({
      endpoints: [live.url, dead],
      endpoint_cooldown: '200ms',
      retry: { initial_interval: '10ms', max_interval: '40ms' },
      flush: { max_documents: 5 },
      max_in_flight: 1,
    });
    const exp = (await factory.create(settings, config)) as ElasticsearchExporter;
    cleanups.push(() => exp.shutdown());
    await exp.start(nopHost());
    await exp.whenSetUp();
    await exp.consume(records(20));
    assert.equal(live.docs.size, 20);
    const last = settings.statuses.at(-1)!;
    assert.equal(last.status, 'recoverable_error');
    assert.ok(last.message?.startsWith(`1 of 2 endpoints unreachable: ${dead} since `), last.message);
    assert.ok(last.message?.endsWith(`; delivering through ${live.url}`), last.message);
    const gauge = async () => {
      const text = await settings.metrics.metrics();
      const value = (url: string) =>
        Number(
          new RegExp(
            `otelcol_exporter_elasticsearch_endpoint_up\\{[^}]*endpoint="${url}"[^}]*\\} (\\d)`,
          ).exec(text)?.[1],
        );
      return { live: value(live.url), dead: value(dead) };
    };
    assert.deepEqual(await gauge(), { live: 1, dead: 0 });

    const back = new FakeElasticsearch();
    await back.start(port);
    cleanups.push(() => back.close());
    await waitFor(() => settings.statuses.at(-1)?.status === 'ok', 3000);
    assert.deepEqual(await gauge(), { live: 1, dead: 1 });
    assert.ok(
      settings.logger.lines.some(
        (l) => l.msg === 'endpoint reachable again' && l.fields['endpoint'] === dead,
      ),
    );
  });

  test('exporter: once every endpoint is down, health no longer says "delivering through"', async () => {
    const dead = `http://127.0.0.1:${await refusingPort()}`;
    const live = new FakeElasticsearch();
    await live.start();
    const dir = await mkdtemp(join(tmpdir(), 'es-client-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const settings = nopSettings('elasticsearch', 'exporter', dir);
    const config = factory.configSchema.parse({
      endpoints: [live.url, dead],
      endpoint_cooldown: '1h',
      retry: { initial_interval: '10ms', max_interval: '40ms', max_elapsed_time: '300ms' },
      max_in_flight: 1,
    });
    const exp = (await factory.create(settings, config)) as ElasticsearchExporter;
    cleanups.push(() => exp.shutdown());
    await exp.start(nopHost());
    await exp.whenSetUp();
    await exp.consume(records(4));
    assert.match(settings.statuses.at(-1)!.message ?? '', /delivering through/);
    await live.close();
    await assert.rejects(exp.consume(records(2)));
    const last = settings.statuses.at(-1)!;
    assert.equal(last.status, 'recoverable_error');
    assert.doesNotMatch(last.message ?? '', /delivering through/);
    assert.match(last.message ?? '', /failed/);
  });
});
