/**
 * End-to-end tests of the receiver against the authentik API emulator: exactly-once delivery under
 * faults and drift, restart and crash mid-backfill, pipeline refusals.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StorageExtension } from '../../runtime/component.ts';
import { factory as fileStorageFactory } from '../../runtime/extensions/file_storage/factory.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { hrTimeFromIso } from '../../runtime/model.ts';
import { PermanentError, RetryableError } from '../../runtime/errors.ts';
import { startEmulator } from '../../test/emulator/index.ts';
import type { Emulator, EmulatorOptions } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

const EVENTS_PATH = '/api/v3/events/events/';

interface Run {
  r: AuthentikReceiver;
  settings: TestSettings;
}

async function startReceiver(
  em: Emulator,
  next: SinkConsumer | { consume(b: LogsBatch): Promise<void>; capabilities: { mutatesData: boolean } },
  storage: StorageExtension | undefined,
  over: Record<string, unknown> = {},
): Promise<Run> {
  const settings = nopSettings('authentik');
  const cfg = configSchema.parse({
    endpoint: em.url,
    token: em.token,
    ...(storage ? { storage: 'file_storage' } : {}),
    events: { interval: '1s' },
    users: { enabled: false },
    groups: { enabled: false },
    api_retry: { initial_interval: '10ms', max_interval: '200ms' },
    retry_on_failure: { initial_interval: '10ms', max_interval: '100ms' },
    ...over,
  });
  const r = (await factory.create(settings, cfg, next)) as AuthentikReceiver;
  await r.start(nopHost(storage ? { file_storage: storage } : {}));
  return { r, settings };
}

const eventsOf = (sink: SinkConsumer) =>
  sink.all().filter((x) => x.attributes['data_stream.dataset'] === 'authentik.event');
const pkOf = (x: { body?: unknown }) => (x.body as { pk: string }).pk;

function assertExactlyOnce(delivered: string[], alive: string[], label: string) {
  const set = new Set(delivered);
  assert.equal(set.size, delivered.length, `${label}: ${delivered.length - set.size} events delivered twice`);
  const aliveSet = new Set(alive);
  const missing = alive.filter((p) => !set.has(p));
  assert.equal(missing.length, 0, `${label}: ${missing.length} events missing`);
  const extra = delivered.filter((p) => !aliveSet.has(p));
  assert.equal(extra.length, 0, `${label}: ${extra.length} events that do not exist`);
}

async function withEmulator<T>(opts: EmulatorOptions, fn: (em: Emulator) => Promise<T>): Promise<T> {
  const em = await startEmulator(opts);
  try {
    return await fn(em);
  } finally {
    await em.close();
  }
}

/** Inserts `n` events every `ms` until stopped. */
function inserter(em: Emulator, n: number, ms: number) {
  const t = setInterval(() => em.events.insert(n), ms);
  return () => clearInterval(t);
}

describe('exactly once against the emulator', () => {
  test('25,000 events, page size clamped to 100, inserts during the run, 5% faults', async () => {
    await withEmulator(
      {
        events: 25_000,
        version: '2026.2',
        seed: 7,
        faults: {
          rate: 0.05,
          kinds: ['500', '502', '503', '429', 'reset', 'truncated', 'non_json'],
          retryAfterSeconds: 1,
        },
      },
      async (em) => {
        const sink = new SinkConsumer();
        const storage = new MemoryStorage();
        const t0 = Date.now();
        // page_size 500 is clamped to 100 by the 2026.2 profile.
        const { r, settings } = await startReceiver(em, sink, storage, {
          events: { interval: '1s', page_size: 500 },
        });
        const stop = inserter(em, 5, 50);
        try {
          await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 50_000, 20);
          const backfillMs = Date.now() - t0;
          stop();
          const target = em.events.count();
          await waitFor(() => eventsOf(sink).length >= target && r.events!.polls > 2, 20_000, 20);
          const evs = eventsOf(sink);
          assertExactlyOnce(evs.map(pkOf), em.events.allPks(), 'faults+inserts');
          for (let i = 1; i < evs.length; i++) {
            const a = (evs[i - 1]!.body as { created: string }).created;
            const b = (evs[i]!.body as { created: string }).created;
            assert.ok(a <= b, `events not oldest first at ${i}: ${a} > ${b}`);
          }
          const faults = Object.values(em.stats.faults).reduce((a, b) => a + b, 0);
          assert.ok(faults > 5, `expected injected faults, got ${faults}`);
          // The served page size was clamped: requests asked for more than they got.
          assert.ok(em.requests.some((q) => q.path === EVENTS_PATH && Number(q.query.page_size) > 100));
          // Records: body exactly as returned, dataset, timestamps with microseconds, resource.
          const sample = evs[1234]!;
          assert.deepEqual(sample.body, em.events.get(pkOf(sample)));
          assert.equal(sample.attributes['data_stream.dataset'], 'authentik.event');
          assert.deepEqual(sample.timestamp, hrTimeFromIso((sample.body as { created: string }).created));
          assert.deepEqual(sample.resource, {
            'service.name': 'authentik',
            'service.version': '2026.2.2',
            'server.address': '127.0.0.1',
            'host.name': '127.0.0.1',
          });
          const metrics = await settings.metrics.metrics();
          assert.match(
            metrics,
            /otelcol_receiver_authentik_records_emitted\{receiver="authentik",dataset="events"\} \d+/,
          );
          assert.match(metrics, /otelcol_receiver_authentik_request_errors\{[^}]*kind="http_5\d\d"\}/);
          assert.ok(
            !metrics.includes(em.token) && !settings.logger.text().includes(em.token),
            'token leaked',
          );
          assert.ok(
            settings.logger.lines.some((l) =>
              /events backfill: \d+\/\d+ pages, \d+ events, \d+ events\/s, ETA/.test(l.msg),
            ),
          );
          assert.ok(settings.statuses.some((s) => s.status === 'recoverable_error'));
          console.log(
            `# backfill of ${target} events with 5% faults: ${backfillMs} ms, ${em.stats.requests} requests`,
          );
        } finally {
          stop();
          await r.shutdown();
        }
      },
    );
  });

  test('retention and GDPR deletes while backfilling: nothing alive is missed, nothing twice', async () => {
    await withEmulator({ events: 15_000, version: '2025.12', seed: 8, users: 30 }, async (em) => {
      const sink = new SinkConsumer();
      const ever = new Set(em.events.allPks());
      let gdpr = 1;
      const { r } = await startReceiver(em, sink, new MemoryStorage(), {
        events: { interval: '1s' },
        max_concurrent_requests: 4,
      });
      const t = setInterval(() => {
        for (const pk of em.events.insert(3)) ever.add(pk);
        em.events.deleteOldest(5);
        if (Math.random() < 0.2) em.events.deleteByUserPk(gdpr++);
      }, 20);
      try {
        await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 50_000, 20);
        clearInterval(t);
        const target = em.events.allPks();
        await waitFor(
          () => {
            const got = new Set(eventsOf(sink).map(pkOf));
            return target.every((p) => got.has(p));
          },
          20_000,
          200,
        ).catch(() => undefined);
        const delivered = eventsOf(sink).map(pkOf);
        assert.equal(new Set(delivered).size, delivered.length, 'an event was delivered twice');
        const got = new Set(delivered);
        const missing = target.filter((p) => !got.has(p));
        assert.equal(missing.length, 0, `${missing.length} alive events missing`);
        assert.ok(delivered.every((p) => ever.has(p)));
      } finally {
        clearInterval(t);
        await r.shutdown();
      }
    });
  });
});

describe('restart and crash mid-backfill', () => {
  test('graceful shutdown and restart: all events, none twice, finished history not re-read', async () => {
    await withEmulator({ events: 25_000, version: '2026.2', seed: 9 }, async (em) => {
      const storage = new MemoryStorage();
      const sink1 = new SinkConsumer();
      // A slow pipeline, so shutdown finds a consume() in flight and must wait for it.
      let inFlight = 0;
      const slow = {
        capabilities: { mutatesData: false },
        async consume(b: LogsBatch) {
          inFlight++;
          await new Promise((res) => setTimeout(res, 15));
          await sink1.consume(b);
          inFlight--;
        },
      };
      const run1 = await startReceiver(em, slow, storage);
      await waitFor(() => eventsOf(sink1).length >= 6_000 && inFlight > 0, 30_000, 1);
      await run1.r.shutdown();
      assert.equal(inFlight, 0, 'shutdown returned before the in-flight consume settled');
      const first = eventsOf(sink1).map(pkOf);
      assert.ok(first.length < 25_000, 'the first run must stop mid-backfill');
      em.events.insert(200); // events arrive while the collector is down
      const before = em.requests.length;
      const sink2 = new SinkConsumer();
      const run2 = await startReceiver(em, sink2, storage);
      try {
        await waitFor(() => run2.r.events?.phase === 'incremental' && run2.r.events.polls > 0, 30_000, 10);
        const second = eventsOf(sink2).map(pkOf);
        assertExactlyOnce([...first, ...second], em.events.allPks(), 'restart');
        const remainingPages = Math.ceil((25_000 - first.length) / 100);
        const used = em.requests.slice(before).filter((q) => q.path === EVENTS_PATH).length;
        assert.ok(
          used <= remainingPages * 1.3 + 12,
          `second run used ${used} requests for ~${remainingPages} remaining pages`,
        );
        assert.ok(run2.settings.logger.lines.some((l) => /resuming backfill/.test(l.msg)));
      } finally {
        await run2.r.shutdown();
      }
    });
  });

  test('restart when the server clamps page_size: resumes with the served size, at its position', async () => {
    await withEmulator({ events: 8_000, version: '2026.2', seed: 11 }, async (em) => {
      const storage = new MemoryStorage();
      const sink1 = new SinkConsumer();
      const over = { events: { interval: '1s', page_size: 250 } };
      const run1 = await startReceiver(em, sink1, storage, over);
      await waitFor(() => eventsOf(sink1).length >= 3_000, 30_000, 1);
      await run1.r.shutdown();
      const first = eventsOf(sink1).map(pkOf);
      assert.ok(first.length < 8_000, 'the first run must stop mid-backfill');
      const before = em.requests.length;
      const sink2 = new SinkConsumer();
      const run2 = await startReceiver(em, sink2, storage, over);
      try {
        await waitFor(() => run2.r.events?.phase === 'incremental' && run2.r.events.polls > 0, 30_000, 10);
        assertExactlyOnce([...first, ...eventsOf(sink2).map(pkOf)], em.events.allPks(), 'restart');
        const reqs = em.requests.slice(before).filter((q) => q.path === EVENTS_PATH);
        // The first request is positioned with the size the server serves (100), not the configured 250.
        assert.equal(reqs[0]!.query.page_size, '100', JSON.stringify(reqs[0]!.query));
        // It lands at the frontier: the first request holds the newest delivered event.
        const firstRows = Number(reqs[0]!.query.page) * 100;
        const deliveredRank = em.events.count() - first.length;
        assert.ok(
          firstRows - 100 <= deliveredRank && deliveredRank < firstRows + 100,
          `page ${String(reqs[0]!.query.page)} for rank ${deliveredRank}`,
        );
      } finally {
        await run2.r.shutdown();
      }
    });
  });

  test('crash (no shutdown) after some acknowledged batches: all events, at most the in-flight batch twice', async () => {
    await withEmulator({ events: 12_000, version: '2025.8', seed: 10 }, async (em) => {
      const storage = new MemoryStorage();
      const delivered1: string[] = [];
      let inflight: string[] = [];
      let rejectHung: ((e: Error) => void) | undefined;
      let batches = 0;
      const crashing = {
        capabilities: { mutatesData: false },
        consume(b: LogsBatch): Promise<void> {
          const pks = b.filter((x) => x.attributes['data_stream.dataset'] === 'authentik.event').map(pkOf);
          if (++batches < 40) {
            delivered1.push(...pks);
            return Promise.resolve();
          }
          if (rejectHung) return new Promise(() => undefined); // dead process: nothing completes
          // The batch reaches the destination, then the process dies before the acknowledgement.
          delivered1.push(...pks);
          inflight = pks;
          storage.crash();
          return new Promise((_res, rej) => (rejectHung = rej));
        },
      };
      const run1 = await startReceiver(em, crashing, storage);
      await waitFor(() => rejectHung !== undefined, 30_000, 5);
      storage.revive();
      const sink2 = new SinkConsumer();
      const run2 = await startReceiver(em, sink2, storage);
      try {
        await waitFor(() => run2.r.events?.phase === 'incremental' && run2.r.events.polls > 0, 30_000, 10);
        const second = eventsOf(sink2).map(pkOf);
        const all = [...delivered1, ...second];
        const counts = new Map<string, number>();
        for (const p of all) counts.set(p, (counts.get(p) ?? 0) + 1);
        const twice = [...counts].filter(([, n]) => n > 1).map(([p]) => p);
        assert.ok(
          twice.length <= inflight.length,
          `${twice.length} duplicates, in-flight batch was ${inflight.length}`,
        );
        assert.ok(
          twice.every((p) => inflight.includes(p)),
          'only the in-flight batch may be delivered twice',
        );
        assert.ok(twice.every((p) => (counts.get(p) ?? 0) === 2));
        const alive = em.events.allPks();
        assert.equal(alive.filter((p) => !counts.has(p)).length, 0, 'events missing after the crash');
      } finally {
        const sd = run1.r.shutdown();
        rejectHung?.(new RetryableError('process is gone'));
        await sd;
        await run2.r.shutdown();
      }
    });
  });
});

describe('with the file_storage extension', () => {
  test('restart mid-backfill through real files: all events, none twice; request timeouts retried', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ak-fs-'));
    try {
      await withEmulator(
        { events: 6000, version: '2025.12', seed: 19, faults: { rate: 0.05, kinds: ['timeout', '504'] } },
        async (em) => {
          const openStorage = async () => {
            const s = (await fileStorageFactory.create(
              nopSettings('file_storage', 'extension', dir),
              fileStorageFactory.configSchema.parse({ directory: dir }),
            )) as StorageExtension;
            await s.start(nopHost());
            return s;
          };
          const fs1 = await openStorage();
          const sink1 = new SinkConsumer();
          const over = { timeout: '300ms' };
          const run1 = await startReceiver(em, sink1, fs1, over);
          await waitFor(() => eventsOf(sink1).length >= 2500, 30_000, 5);
          await run1.r.shutdown();
          await fs1.shutdown();
          const fs2 = await openStorage();
          const sink2 = new SinkConsumer();
          const run2 = await startReceiver(em, sink2, fs2, over);
          try {
            await waitFor(
              () => run2.r.events?.phase === 'incremental' && run2.r.events.polls > 0,
              30_000,
              10,
            );
            assertExactlyOnce(
              [...eventsOf(sink1), ...eventsOf(sink2)].map(pkOf),
              em.events.allPks(),
              'file_storage',
            );
            assert.ok((em.stats.faults.timeout ?? 0) > 0, 'expected timeouts');
          } finally {
            await run2.r.shutdown();
            await fs2.shutdown();
          }
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('backfill modes', () => {
  test('backfill: <duration> reads only that far back, oldest first', async () => {
    // 20,000 events 30 s apart: about a week of history.
    await withEmulator({ events: 20_000, version: '2026.2', seed: 17, spacingMs: 30_000 }, async (em) => {
      const sink = new SinkConsumer();
      const cutoff = Date.now() - 24 * 3_600_000;
      const { r } = await startReceiver(em, sink, new MemoryStorage(), {
        events: { interval: '1s', backfill: '24h' },
      });
      try {
        await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 20_000, 10);
        const got = eventsOf(sink).map((e) => e.body as { pk: string; created: string });
        const expected = em.events
          .allPks()
          .map((pk) => em.events.get(pk) as { pk: string; created: string })
          .filter((e) => Date.parse(e.created) >= cutoff + 2000);
        const gotSet = new Set(got.map((e) => e.pk));
        assert.ok(
          expected.every((e) => gotSet.has(e.pk)),
          'an event of the last 24h is missing',
        );
        assert.ok(
          got.every((e) => Date.parse(e.created) >= cutoff - 2000),
          'an event older than 24h was emitted',
        );
        assert.equal(gotSet.size, got.length);
        assert.ok(got.length > 2500 && got.length < 3000, `about 2880 events expected, got ${got.length}`);
        // Locating the start of the window took a few probes, not a walk through history.
        const reqs = em.requests.filter((q) => q.path === EVENTS_PATH).length;
        assert.ok(reqs < Math.ceil(got.length / 100) * 1.3 + 25, `${reqs} requests`);
      } finally {
        await r.shutdown();
      }
    });
  });

  test('backfill: none starts from now', async () => {
    await withEmulator({ events: 5000, seed: 18 }, async (em) => {
      const sink = new SinkConsumer();
      const { r } = await startReceiver(em, sink, new MemoryStorage(), {
        events: { interval: '1s', backfill: 'none' },
      });
      try {
        await waitFor(() => (r.events?.polls ?? 0) > 0, 10_000, 10);
        assert.equal(eventsOf(sink).length, 0);
        const fresh = em.events.insert(4);
        await waitFor(() => eventsOf(sink).length === 4, 10_000, 10);
        assert.deepEqual(eventsOf(sink).map(pkOf).sort(), [...fresh].sort());
        // A late commit: created 20 s ago, visible only now (within the 1 m overlap) is still delivered.
        const late = em.events.insert(1, new Date(Date.now() - 20_000));
        await waitFor(() => eventsOf(sink).length === 5, 10_000, 10);
        assert.equal(pkOf(eventsOf(sink).at(-1)!), late[0]);
      } finally {
        await r.shutdown();
      }
    });
  });
});

describe('pipeline refusals', () => {
  test('retryable refusals re-offer the same data; a permanent refusal is counted as dropped and skipped', async () => {
    await withEmulator({ events: 1500, version: '2026.2', seed: 11 }, async (em) => {
      const sink = new SinkConsumer();
      let permanentBatch: string[] = [];
      const offered: string[][] = [];
      sink.failWith = (b, call) => {
        const pks = b.map(pkOf);
        offered.push(pks);
        if (call === 2 || call === 3) return new RetryableError('exporter busy', { retryAfterMs: 30 });
        // The first batch after the retried one (deliveries queued behind a slow one are merged, so
        // the number of batches depends on timing).
        if (call > 4 && permanentBatch.length === 0 && pks[0] !== offered[1]?.[0]) {
          permanentBatch = pks;
          return new PermanentError('mapping rejected the documents');
        }
        // Re-offered records are fresh objects even if the consumer mutated the earlier ones.
        for (const rec of b) (rec.body as Record<string, unknown>).mutated = true;
        return undefined;
      };
      const { r, settings } = await startReceiver(em, sink, new MemoryStorage());
      try {
        await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 20_000, 10);
        assert.deepEqual(offered[1], offered[2], 'the refused batch is offered again unchanged');
        assert.deepEqual(offered[2], offered[3]);
        const dropped = settings.drops.reduce((n, d) => n + d.count, 0);
        assert.equal(dropped, permanentBatch.length);
        assert.match(settings.drops[0]!.reason, /permanently: mapping rejected/);
        const expected = em.events.allPks().filter((p) => !permanentBatch.includes(p));
        assertExactlyOnce(eventsOf(sink).map(pkOf), expected, 'refusals');
        // Bodies handed downstream match the API (the consumer's mutation did not leak into re-offers).
        const x = eventsOf(sink).find((e) => offered[1]!.includes(pkOf(e)))!;
        assert.equal((x.body as Record<string, unknown>).mutated, true);
        const { mutated: _m, ...rest } = x.body as Record<string, unknown>;
        assert.deepEqual(rest, em.events.get(pkOf(x)));
      } finally {
        await r.shutdown();
      }
    });
  });

  test('without storage: a warning, state in memory', async () => {
    await withEmulator({ events: 50 }, async (em) => {
      const sink = new SinkConsumer();
      const { r, settings } = await startReceiver(em, sink, undefined);
      try {
        await waitFor(() => eventsOf(sink).length === 50, 10_000, 10);
        assert.ok(
          settings.logger.lines.some((l) => l.level === 'warn' && /no storage configured/.test(l.msg)),
        );
      } finally {
        await r.shutdown();
      }
    });
  });

  test('a storage id that is not configured fails start with a clear error', async () => {
    await withEmulator({ events: 5 }, async (em) => {
      const settings = nopSettings('authentik');
      const cfg = configSchema.parse({ endpoint: em.url, token: em.token, storage: 'file_storage/missing' });
      const r = await factory.create(settings, cfg, new SinkConsumer());
      await assert.rejects(
        r.start(nopHost()),
        /storage: extension "file_storage\/missing" is not configured/,
      );
      await r.shutdown();
    });
  });
});
