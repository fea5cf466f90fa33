/**
 * Steady-state cost: with 1,000,000 retained events and no new ones, one poll costs one request
 * (counted from the emulator's request log), with and without enterprise QL.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

const EVENTS_PATH = '/api/v3/events/events/';

describe('steady state with 1,000,000 retained events', () => {
  for (const enterprise of [false, true]) {
    test(`one poll = one request (${enterprise ? 'QL search' : '-created page 1'})`, async () => {
      const em = await startEmulator({ events: 1_000_000, users: 1, groups: 1, enterprise, seed: 21 });
      const sink = new SinkConsumer();
      const settings = nopSettings('authentik');
      const cfg = configSchema.parse({
        endpoint: em.url,
        token: em.token,
        storage: 'file_storage',
        // Without a license the one-off QL probe is a substring search over every event (slow in the
        // emulator at 1M); the plain path is what this variant measures.
        events: { interval: '1s', backfill: 'none', use_ql: enterprise },
        users: { enabled: false },
        groups: { enabled: false },
      });
      const r = (await factory.create(settings, cfg, sink)) as AuthentikReceiver;
      await r.start(nopHost({ file_storage: new MemoryStorage() }));
      try {
        // First poll(s): position and the one-off QL probe.
        await waitFor(() => (r.events?.polls ?? 0) >= 2, 20_000, 10);
        assert.equal(r.events!.ql, enterprise ? 'yes' : 'unknown');
        const polls0 = r.events!.polls;
        const req0 = em.requests.length;
        await waitFor(() => r.events!.polls >= polls0 + 4, 20_000, 10);
        const polls = r.events!.polls - polls0;
        const reqs = em.requests.slice(req0).filter((q) => q.path === EVENTS_PATH);
        assert.equal(reqs.length, polls, `${reqs.length} requests for ${polls} idle polls`);
        assert.equal(r.events!.lastPollRequests, 1);
        if (enterprise) assert.ok(reqs.every((q) => typeof q.query.search === 'string'));
        else assert.ok(reqs.every((q) => q.query.page === '1' && q.query.ordering === '-created,pk'));
        // A trickle of new events keeps it at one request per poll.
        const polls1 = r.events!.polls;
        const req1 = em.requests.length;
        em.events.insert(3);
        await waitFor(() => sink.count() === 3 && r.events!.polls >= polls1 + 3, 20_000, 10);
        const reqs1 = em.requests.slice(req1).filter((q) => q.path === EVENTS_PATH).length;
        assert.ok(
          reqs1 <= r.events!.polls - polls1,
          `${reqs1} requests for ${r.events!.polls - polls1} polls`,
        );
        console.log(
          `# idle polls at 1M events (${enterprise ? 'QL' : 'scan'}): ${reqs.length} requests / ${polls} polls`,
        );
      } finally {
        await r.shutdown();
        await em.close();
      }
    });
  }
});
