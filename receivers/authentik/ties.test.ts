/**
 * Issue 11 acceptance against the emulator (unstable tie order under `-created`, as real 2023.10.7 and
 * 2025.12.4): exact with tie blocks of 1, 99, 100, 101, 250 and 1,000 events at page sizes 10 and 100
 * (server clamp 100), in the backfill and in polling, with API requests within 1.2× the pages of one
 * plain walk plus a small constant; exact through a count/rows race, a malformed last page and the
 * deletion of 770 events of one user mid-backfill; a stalled receiver shows recoverable_error.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../test/emulator/index.ts';
import type { Emulator, EmulatorOptions } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

const EVENTS_PATH = '/api/v3/events/events/';

async function withEmulator<T>(opts: EmulatorOptions, fn: (em: Emulator) => Promise<T>): Promise<T> {
  const em = await startEmulator(opts);
  try {
    return await fn(em);
  } finally {
    await em.close();
  }
}

async function start(em: Emulator, sink: SinkConsumer, events: Record<string, unknown>, over = {}) {
  const settings = nopSettings('authentik');
  const cfg = configSchema.parse({
    endpoint: em.url,
    token: em.token,
    storage: 'file_storage',
    events: { interval: '1s', ...events },
    users: { enabled: false },
    groups: { enabled: false },
    api_retry: { initial_interval: '10ms', max_interval: '200ms' },
    ...over,
  });
  const r = (await factory.create(settings, cfg, sink)) as AuthentikReceiver;
  await r.start(nopHost({ file_storage: new MemoryStorage() }));
  return { r, settings };
}

const delivered = (sink: SinkConsumer) =>
  sink
    .all()
    .filter((x) => x.attributes['data_stream.dataset'] === 'authentik.event')
    .map((x) => (x.body as { pk: string }).pk);

function assertExact(got: string[], alive: string[], label: string) {
  const set = new Set(got);
  assert.equal(set.size, got.length, `${label}: ${got.length - set.size} delivered twice`);
  const missing = alive.filter((p) => !set.has(p));
  assert.equal(missing.length, 0, `${label}: ${missing.length} of ${alive.length} missing`);
}

const eventRequests = (em: Emulator) => em.requests.filter((q) => q.path === EVENTS_PATH).length;

describe('tie blocks, backfill and polling (emulator 2025.12: clamp 100, unstable tie order)', () => {
  for (const block of [1, 99, 100, 101, 250, 1000]) {
    for (const pageSize of [10, 100]) {
      test(`block of ${block}, page_size ${pageSize}`, async () => {
        await withEmulator({ events: 400, version: '2025.12', seed: block + pageSize }, async (em) => {
          // A tie block in the middle of the history (an import, a restore).
          const mid = em.events.get(em.events.allPks()[200]!) as { created: string };
          em.events.insertTied(block, new Date(Date.parse(mid.created) + 1));
          const sink = new SinkConsumer();
          const { r } = await start(em, sink, { page_size: pageSize });
          try {
            await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 60_000, 10);
            const total = 400 + block;
            assertExact(delivered(sink), em.events.allPks(), 'backfill');
            const pages = Math.ceil(total / pageSize);
            const used = eventRequests(em);
            assert.ok(used <= 1.2 * pages + 10, `backfill: ${used} requests for ${pages} pages`);

            // A tie block arriving while polling (bulk database work at one instant).
            const before = eventRequests(em);
            const polls = r.events!.polls;
            em.events.insertTied(block);
            em.events.insert(1);
            await waitFor(() => delivered(sink).length >= total + block + 1, 30_000, 10);
            await waitFor(() => r.events!.polls > polls + 1, 10_000, 10);
            assertExact(delivered(sink), em.events.allPks(), 'polling');
            assert.equal(delivered(sink).length, total + block + 1);
            const pollPages = Math.ceil((block + 1) / pageSize);
            const pollUsed = eventRequests(em) - before;
            assert.ok(
              pollUsed <= 1.2 * pollPages + 3 * (r.events!.polls - polls) + 6,
              `polling: ${pollUsed} requests for ${pollPages} pages over ${r.events!.polls - polls} polls`,
            );
          } finally {
            await r.shutdown();
          }
        });
      });
    }
  }
});

describe('count/rows races, malformed rows and GDPR cleanup', () => {
  test('inserts between the COUNT and the rows of the first backfill request: nothing is lost', async () => {
    await withEmulator({ events: 1000, version: '2025.12', seed: 41 }, async (em) => {
      // page 1 (init), then the oldest page: both see 3 inserts land after their COUNT.
      em.events.betweenCountAndRows(() => em.events.insert(3));
      em.events.betweenCountAndRows(() => em.events.insert(3));
      const sink = new SinkConsumer();
      const { r } = await start(em, sink, {});
      try {
        await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 30_000, 10);
        await waitFor(() => delivered(sink).length >= em.events.count(), 10_000, 10);
        assertExact(delivered(sink), em.events.allPks(), 'race');
      } finally {
        await r.shutdown();
      }
    });
  });

  test('770 events of one user deleted (GDPR) in the middle of a backfill: every other event once', async () => {
    await withEmulator({ events: 30_000, users: 20, version: '2025.12', seed: 42 }, async (em) => {
      const counts = new Map<number, number>();
      for (const pk of em.events.allPks()) {
        const u = em.events.userPkOf(pk);
        if (u !== undefined) counts.set(u, (counts.get(u) ?? 0) + 1);
      }
      // the user with the events count closest to 770
      const [user] = [...counts].sort((a, b) => Math.abs(a[1] - 770) - Math.abs(b[1] - 770))[0]!;
      const initial = em.events.allPks();
      const sink = new SinkConsumer();
      const { r } = await start(em, sink, {});
      try {
        await waitFor(() => delivered(sink).length >= 10_000, 60_000, 5);
        assert.equal(r.events?.phase, 'backfill');
        const deleted = em.events.deleteByUserPk(user);
        assert.ok(deleted > 500, `deleted ${deleted}`);
        await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 60_000, 10);
        const got = delivered(sink);
        assert.equal(new Set(got).size, got.length, 'none twice');
        const alive = new Set(em.events.allPks());
        const missing = initial.filter((p) => alive.has(p) && !got.includes(p));
        assert.equal(missing.length, 0, `${missing.length} surviving events missing`);
      } finally {
        await r.shutdown();
      }
    });
  });
});

describe('server quirks', () => {
  test('malformed rows at the end of the list do not stall the backfill', async () => {
    await withEmulator(
      { events: 600, version: '2025.12', seed: 43, faults: { rate: 0, kinds: [] } },
      async (em) => {
        // A front rendering the 30 oldest events without a valid `created` (like a broken row).
        const oldest = new Set(em.events.allPks().slice(0, 30));
        const http = await import('node:http');
        const front = http.createServer((req, res) => {
          const up = http.request(
            `${em.url}${req.url ?? '/'}`,
            { headers: { ...req.headers, 'accept-encoding': 'identity' } },
            (r2) => {
              const chunks: Buffer[] = [];
              r2.on('data', (c: Buffer) => chunks.push(c));
              r2.on('end', () => {
                let body = Buffer.concat(chunks).toString('utf8');
                if ((req.url ?? '').startsWith(EVENTS_PATH) && r2.statusCode === 200) {
                  const j = JSON.parse(body) as { results?: { pk: string; created: string }[] };
                  for (const x of j.results ?? []) if (oldest.has(x.pk)) x.created = 'garbage';
                  body = JSON.stringify(j);
                }
                res.writeHead(r2.statusCode ?? 502, { 'content-type': 'application/json' }).end(body);
              });
            },
          );
          up.on('error', () => res.writeHead(502).end());
          up.end();
        });
        await new Promise<void>((ok) => front.listen(0, '127.0.0.1', ok));
        const url = `http://127.0.0.1:${(front.address() as { port: number }).port}`;
        const sink = new SinkConsumer();
        const { r, settings } = await start({ ...em, url }, sink, {});
        try {
          await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 30_000, 10);
          const alive = em.events.allPks().filter((p) => !oldest.has(p));
          assertExact(delivered(sink), alive, 'malformed tail');
          const dropped = settings.drops.reduce((n, d) => n + d.count, 0);
          assert.equal(dropped, 30, 'each malformed event counted as dropped once');
          assert.ok(eventRequests(em) < 30, `${eventRequests(em)} requests`);
        } finally {
          await r.shutdown();
          front.closeAllConnections();
          await new Promise((ok) => front.close(ok));
        }
      },
    );
  });

  test('a server that ignores pk ordering with a tie block larger than a page: recoverable_error within 60 s, one warning, metric, rate cap', async () => {
    await withEmulator({ events: 100, version: '2025.12', seed: 44, honourPkOrdering: false }, async (em) => {
      const mid = em.events.get(em.events.allPks()[50]!) as { created: string };
      em.events.insertTied(250, new Date(Date.parse(mid.created) + 1));
      const sink = new SinkConsumer();
      const t0 = Date.now();
      const { r, settings } = await start(em, sink, {});
      try {
        await waitFor(() => r.events?.stalled === true, 60_000, 50);
        assert.ok(Date.now() - t0 < 60_000);
        const st = settings.statuses.filter((s) => s.status === 'recoverable_error');
        assert.ok(
          st.some((s) => /no progress/.test(s.message ?? '')),
          JSON.stringify(settings.statuses),
        );
        const warns = settings.logger.lines.filter((l) => l.level === 'warn' && /no progress/.test(l.msg));
        assert.equal(warns.length, 1);
        const metrics = await settings.metrics.getSingleMetricAsString(
          'otelcol_receiver_authentik_events_stalled',
        );
        assert.match(metrics, /events_stalled\{receiver="authentik"\} 1/);
        const got = delivered(sink);
        assert.equal(new Set(got).size, got.length, 'nothing delivered twice while stalled');
        // Rate cap: about one request per second while stalled.
        const n0 = eventRequests(em);
        await new Promise((ok) => setTimeout(ok, 3000));
        assert.ok(eventRequests(em) - n0 <= 5, `${eventRequests(em) - n0} requests in 3 s`);
      } finally {
        await r.shutdown();
      }
    });
  });
});
