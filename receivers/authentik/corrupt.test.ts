/** A damaged events checkpoint stops the receiver's start unless `events.on_corrupt_checkpoint: backfill`. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

describe('damaged events checkpoint', () => {
  for (const [what, value] of [
    ['not JSON', Buffer.from('{"v":1,"phase":')],
    ['not a checkpoint', Buffer.from(JSON.stringify({ v: 1, phase: 'sideways' }))],
  ] as const) {
    test(`${what}: start fails naming the key and the option; with backfill it starts over`, async () => {
      const em = await startEmulator({ events: 40, seed: 2 });
      try {
        const storage = new MemoryStorage();
        const key = `authentik:${em.url}`;
        storage.data.set(key, new Map([['events', value]]));
        const mk = async (extra: Record<string, unknown>) => {
          const settings = nopSettings('authentik', 'receiver');
          const cfg = configSchema.parse({
            endpoint: em.url,
            token: em.token,
            storage: 'file_storage',
            users: { enabled: false },
            groups: { enabled: false },
            events: { interval: '1s', ...extra },
          });
          const sink = new SinkConsumer();
          const r = (await factory.create(settings, cfg, sink)) as AuthentikReceiver;
          return { r, sink, settings };
        };
        const a = await mk({});
        await assert.rejects(a.r.start(nopHost({ file_storage: storage })), (e: Error) => {
          assert.match(e.message, /events checkpoint "events" is damaged/);
          assert.match(e.message, /on_corrupt_checkpoint: backfill/);
          return true;
        });
        await a.r.shutdown();
        assert.equal(
          em.requests.filter((q) => q.path === '/api/v3/events/events/').length,
          0,
          'nothing read',
        );

        const b = await mk({ on_corrupt_checkpoint: 'backfill' });
        await b.r.start(nopHost({ file_storage: storage }));
        try {
          await waitFor(() => b.sink.all().length === 40, 10_000, 10);
          assert.ok(b.settings.logger.lines.some((l) => /events checkpoint is damaged/.test(l.msg)));
        } finally {
          await b.r.shutdown();
        }
      } finally {
        await em.close();
      }
    });
  }
});
