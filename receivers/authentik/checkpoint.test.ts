import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLogger } from '../../test/kit/index.ts';
import { checkDirectoryState, checkEventsState, CheckpointStore } from './checkpoint.ts';
import type { EventsState } from './checkpoint.ts';
import { MemoryStorage } from './testing.ts';

const good: EventsState = {
  v: 1,
  phase: 'backfill',
  hw: null,
  window: [],
  floor: null,
  backfill: {
    upper: '1800000000000000',
    frontier: { c: '1700000000000001', pks: ['a'] },
    hint: 1234,
    count: 5000,
    pagesDone: 3,
    pagesTotal: 50,
    emitted: 300,
    startedAt: 1,
    handover: [['b', '1799999999000000']],
  },
};

describe('checkpoints', () => {
  test('valid states round-trip through the storage client', async () => {
    const storage = new MemoryStorage();
    const store = new CheckpointStore(
      await storage.getClient('receiver', 'authentik', 'k'),
      new MemoryLogger(),
    );
    assert.equal(await store.load('events', checkEventsState), undefined);
    await store.save('events', good);
    assert.deepEqual(await store.load('events', checkEventsState), good);
    assert.ok(store.durable);
  });

  test('verified (µs string or null) and pageSize (positive integer) are validated; absent is fine', () => {
    for (const ok of [{ verified: '1799999999000000' }, { verified: null }, { pageSize: 100 }, {}]) {
      assert.equal(typeof checkEventsState({ ...good, ...ok }), 'object', JSON.stringify(ok));
    }
    assert.equal(checkEventsState({ ...good, verified: 12 }), 'bad verified');
    assert.equal(checkEventsState({ ...good, verified: '2026-01-01' }), 'bad verified');
    assert.equal(checkEventsState({ ...good, pageSize: 0 }), 'bad pageSize');
    assert.equal(checkEventsState({ ...good, pageSize: 2.5 }), 'bad pageSize');
    assert.equal(checkEventsState({ ...good, pageSize: '100' }), 'bad pageSize');
  });

  test('corrupt or unknown states are reported and ignored', async () => {
    const storage = new MemoryStorage();
    const client = await storage.getClient('receiver', 'authentik', 'k');
    const logger = new MemoryLogger();
    const store = new CheckpointStore(client, logger);
    await client.set('events', Buffer.from('{not json'));
    assert.equal(await store.load('events', checkEventsState), undefined);
    await client.set('events', Buffer.from(JSON.stringify({ ...good, v: 2 })));
    assert.equal(await store.load('events', checkEventsState), undefined);
    await client.set(
      'events',
      Buffer.from(JSON.stringify({ ...good, backfill: { ...good.backfill, upper: 'x' } })),
    );
    assert.equal(await store.load('events', checkEventsState), undefined);
    assert.equal(logger.lines.filter((l) => l.level === 'error').length, 3);
    assert.match(logger.lines[1]!.fields.reason as string, /unknown version 2/);
  });

  test('validation rules', () => {
    assert.equal(typeof checkEventsState({ ...good, phase: 'x' }), 'string');
    assert.equal(
      typeof checkEventsState({ ...good, backfill: null }),
      'string',
      'backfill phase needs its state',
    );
    assert.equal(typeof checkEventsState({ ...good, window: [['a', 'not-a-number']] }), 'string');
    assert.equal(
      typeof checkEventsState({ ...good, phase: 'incremental', backfill: null, hw: '17' }),
      'object',
    );
    assert.equal(
      typeof checkDirectoryState({
        v: 1,
        usersFullAt: 1,
        usersChangesAt: null,
        usersHw: null,
        groupsFullAt: null,
      }),
      'object',
    );
    assert.equal(typeof checkDirectoryState({ v: 1, usersFullAt: 'x' }), 'string');
  });

  test('without storage: in memory; no writes after close', async () => {
    const store = new CheckpointStore(undefined, new MemoryLogger());
    assert.equal(store.durable, false);
    await store.save('k', { v: 1 });
    assert.deepEqual(await store.load('k', (x) => x), { v: 1 });
    await store.close();
    await store.save('k', { v: 2 });
    assert.deepEqual(await store.load('k', (x) => x), { v: 1 });
  });
});

describe('checkpoint writes that fail', () => {
  test('are retried in the background without waiting for a state change, and once more at close', async () => {
    const written = new Map<string, string>();
    let failuresLeft = 2;
    const client = {
      get: (k: string) => Promise.resolve(written.has(k) ? Buffer.from(written.get(k)!) : undefined),
      set: (k: string, v: Buffer) => {
        if (failuresLeft > 0) {
          failuresLeft--;
          return Promise.reject(new Error('ENOSPC: no space left on device'));
        }
        written.set(k, v.toString('utf8'));
        return Promise.resolve();
      },
      delete: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const logger = new MemoryLogger();
    const store = new CheckpointStore(client, logger);
    await store.save('events', good); // fails, stays pending
    assert.deepEqual(store.unsaved, ['events']);
    assert.ok(logger.lines.some((l) => l.level === 'error' && /retrying in the background/.test(l.msg)));
    const t0 = Date.now();
    while (written.size === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(JSON.parse(written.get('events')!), good, 'written by the background retry');
    assert.deepEqual(store.unsaved, []);

    failuresLeft = 1;
    await store.save('directory', { v: 1 });
    assert.deepEqual(store.unsaved, ['directory']);
    await store.close(); // the final attempt succeeds
    assert.equal(written.get('directory'), '{"v":1}');
  });
});
