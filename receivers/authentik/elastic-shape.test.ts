/**
 * Users and groups are requested exactly as Elastic's CEL programs request them
 * (elastic/integrations packages/authentik/data_stream/{user,group}/agent/stream/cel.yml.hbs;
 * ../shared/spec/elastic-authentik.md §b), so the records, their `event.original` and the document
 * `_id` equal Elastic Agent's for the same API record (the README's cross-dedupe promise).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../test/emulator/index.ts';
import type { Emulator } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import { fingerprint, goJson } from '../../processors/authentik_ecs/original.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

/** The request Elastic Agent's CEL program makes: Go url.Values.Encode (keys sorted), Bearer token. */
async function celPage(em: Emulator, path: string, flag: string, page: number, size: number) {
  const qs = new URLSearchParams([
    [flag, 'false'],
    ['page', String(page)],
    ['page_size', String(size)],
  ]);
  const res = await fetch(`${em.url}${path}?${qs.toString()}`, {
    headers: { Authorization: `Bearer ${em.token}` },
  });
  assert.equal(res.status, 200);
  return (await res.json()) as { results: Record<string, unknown>[]; pagination: { next: number } };
}

async function celAll(em: Emulator, path: string, flag: string, size: number) {
  const out: Record<string, unknown>[] = [];
  for (let page = 1; page !== 0;) {
    const b = await celPage(em, path, flag, page, size);
    out.push(...b.results);
    page = b.pagination.next;
  }
  return out;
}

const idOf = (record: unknown) => fingerprint(goJson(record));

describe("users and groups: Elastic Agent's request shape and _id", () => {
  for (const version of ['2024.2', '2025.12', '2026.2'] as const) {
    test(`${version}: same query parameters, same records, same _id`, async () => {
      const em = await startEmulator({ events: 5, users: 45, groups: 9, version, seed: 9 });
      const sink = new SinkConsumer();
      const settings = nopSettings('authentik', 'receiver');
      const cfg = configSchema.parse({
        endpoint: em.url,
        token: em.token,
        storage: 'file_storage',
        events: { enabled: false },
        users: { page_size: 20 },
        groups: { page_size: 4 },
      });
      const r = (await factory.create(settings, cfg, sink)) as AuthentikReceiver;
      await r.start(nopHost({ file_storage: new MemoryStorage() }));
      try {
        await waitFor(
          () => (r.directory?.runs.usersFull ?? 0) > 0 && (r.directory?.runs.groupsFull ?? 0) > 0,
          20_000,
          10,
        );
        for (const [path, flag, ds, size] of [
          ['/api/v3/core/users/', 'include_groups', 'authentik.user', 20],
          ['/api/v3/core/groups/', 'include_users', 'authentik.group', 4],
        ] as const) {
          const reqs = em.requests.filter((q) => q.path === path);
          assert.ok(reqs.length >= 2, `${path}: several pages`);
          for (const q of reqs)
            assert.deepEqual(q.query, { [flag]: 'false', page: q.query.page, page_size: String(size) });
          const ours = sink
            .all()
            .filter((x) => x.attributes['data_stream.dataset'] === ds)
            .map((x) => x.body as Record<string, unknown>);
          const theirs = await celAll(em, path, flag, size);
          assert.equal(ours.length, theirs.length);
          const byPk = new Map(theirs.map((t) => [String(t.pk), t]));
          for (const o of ours) {
            const t = byPk.get(String(o.pk));
            assert.ok(t, `record ${String(o.pk)} listed by both`);
            assert.equal(goJson(o), goJson(t), 'event.original');
            assert.equal(idOf(o), idOf(t), '_id');
          }
        }
        if (version !== '2024.2') {
          // What the previous request shape (include_roles=false) did to the _id on 2025.12+.
          const u = (await celPage(em, '/api/v3/core/users/', 'include_groups', 1, 1)).results[0]!;
          assert.ok(Array.isArray(u.roles_obj));
          assert.notEqual(idOf({ ...u, roles_obj: null }), idOf(u));
        }
      } finally {
        await r.shutdown();
        await em.close();
      }
    });
  }
});
