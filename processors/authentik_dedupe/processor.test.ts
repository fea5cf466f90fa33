import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings, SinkConsumer } from '../../test/kit/index.ts';
import { RetryableError } from '../../runtime/errors.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { factory as storageFactory } from '../../runtime/extensions/file_storage/factory.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import { DedupeProcessor } from './processor.ts';

describeComponent(factory, { dir: import.meta.dirname });

function ev(pk: string, via: 'push' | 'poll', createdMs = Date.now()): LogRecord {
  return {
    observedTimestamp: nowHrTime(),
    body: { pk, action: 'login', created: new Date(createdMs).toISOString() },
    attributes: { 'data_stream.dataset': 'authentik.event' },
    scope: {
      name:
        via === 'push'
          ? 'authentik-collector/receiver/authentik_webhook'
          : 'authentik-collector/receiver/authentik',
    },
  };
}
const pk = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

async function withStorage<T>(
  fn: (host: ReturnType<typeof nopHost>) => Promise<T>,
  dir?: string,
): Promise<T> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'dedupe-')));
  const cfg = storageFactory.configSchema.parse({ directory: d });
  const ext = await storageFactory.create(nopSettings('file_storage', 'extension', d), cfg);
  await ext.start(nopHost());
  try {
    return await fn(nopHost({ file_storage: ext }));
  } finally {
    await ext.shutdown();
    if (!dir) await rm(d, { recursive: true, force: true });
  }
}

describe('authentik_dedupe', () => {
  test('forwards each pk once across push and poll, acknowledges duplicates, passes other records', async () => {
    const sink = new SinkConsumer();
    const settings = nopSettings('authentik_dedupe', 'processor');
    const p = new DedupeProcessor(settings, configSchema.parse({}), sink);
    await p.start(nopHost());
    await p.consume([ev(pk(1), 'push')]);
    await p.consume([ev(pk(1), 'poll'), ev(pk(2), 'poll'), ev(pk(2), 'poll')]);
    const user: LogRecord = {
      observedTimestamp: nowHrTime(),
      body: { pk: 5 },
      attributes: { 'data_stream.dataset': 'authentik.user' },
    };
    await p.consume([user, ev(pk(1), 'push')]);
    assert.deepEqual(
      sink.all().map((r) => (r.body as Record<string, unknown>)['pk']),
      [pk(1), pk(2), 5],
    );
    const m = await settings.metrics.getSingleMetricAsString('otelcol_processor_authentik_dedupe_duplicates');
    assert.match(m, /source="poll"} 2$/m);
    assert.match(m, /source="push"} 1$/m);
    await p.shutdown();
  });

  test('a copy in flight waits for the first: dropped when it was delivered, forwarded when it failed', async () => {
    const sink = new SinkConsumer();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let fail = true;
    const slow = {
      capabilities: { mutatesData: false },
      async consume(b: LogRecord[]) {
        await gate;
        if (fail) {
          fail = false;
          throw new RetryableError('down');
        }
        await sink.consume(b);
      },
    };
    const p = new DedupeProcessor(nopSettings('authentik_dedupe', 'processor'), configSchema.parse({}), slow);
    await p.start(nopHost());
    const a = p.consume([ev(pk(7), 'push')]);
    const b = p.consume([ev(pk(7), 'poll')]);
    release();
    await assert.rejects(a);
    await b;
    assert.equal(sink.count(), 1, 'the second copy went through because the first failed');
    await p.consume([ev(pk(7), 'push')]);
    assert.equal(sink.count(), 1);
    await p.shutdown();
  });

  test('remembers delivered pks across restarts through the storage extension', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dedupe-restart-'));
    try {
      const cfg = configSchema.parse({ storage: 'file_storage' });
      await withStorage(async (host) => {
        const p = new DedupeProcessor(nopSettings('authentik_dedupe', 'processor'), cfg, new SinkConsumer());
        await p.start(host);
        await Promise.all([
          p.consume([ev(pk(1), 'push')]),
          p.consume([ev(pk(2), 'push')]),
          p.consume([ev(pk(3), 'poll', Date.now() - 120_000)]),
        ]);
        await p.shutdown();
      }, dir);
      await withStorage(async (host) => {
        const sink = new SinkConsumer();
        const p = new DedupeProcessor(nopSettings('authentik_dedupe', 'processor'), cfg, sink);
        await p.start(host);
        assert.equal(p.remembered, 3);
        await p.consume([ev(pk(1), 'poll'), ev(pk(2), 'poll'), ev(pk(3), 'push'), ev(pk(4), 'poll')]);
        assert.deepEqual(
          sink.all().map((r) => (r.body as Record<string, unknown>)['pk']),
          [pk(4)],
        );
        await p.shutdown();
      }, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
