/**
 * The receiver against every emulated authentik generation: payload shapes, include_* flags, page
 * clamps, enterprise QL, the users `last_updated__gt` path and the 403 messages.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROFILE_INFO, PROFILES, startEmulator } from '../../test/emulator/index.ts';
import type { Emulator, EmulatorOptions, VersionProfile } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

const EVENTS_PATH = '/api/v3/events/events/';
const USERS_PATH = '/api/v3/core/users/';
const GROUPS_PATH = '/api/v3/core/groups/';

type Answer = (res: http.ServerResponse) => void;

/**
 * A front that passes every request to `upstream()` (read per request, so a test can switch servers)
 * except the paths in `answers`, which it answers itself.
 */
async function proxyFront(
  upstream: () => string,
  answers: Record<string, Answer> = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const front = http.createServer((req, res) => {
    const path = req.url ?? '/';
    const own = Object.entries(answers).find(([prefix]) => path.startsWith(prefix));
    if (own) return own[1](res);
    const up = http.request(`${upstream()}${path}`, { headers: req.headers }, (r2) => {
      res.writeHead(r2.statusCode ?? 502, r2.headers);
      r2.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    up.end();
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(front.address() as AddressInfo).port}`,
    close: async () => {
      front.closeAllConnections();
      await new Promise((res) => front.close(res));
    },
  };
}

async function withEmulator<T>(opts: EmulatorOptions, fn: (em: Emulator) => Promise<T>): Promise<T> {
  const em = await startEmulator(opts);
  try {
    return await fn(em);
  } finally {
    await em.close();
  }
}

async function start(
  em: Emulator,
  sink: SinkConsumer,
  over: Record<string, unknown>,
  configDir?: string,
): Promise<{ r: AuthentikReceiver; settings: TestSettings }> {
  const settings = nopSettings('authentik', 'receiver', configDir);
  const cfg = configSchema.parse({
    endpoint: em.url,
    token: em.token,
    storage: 'file_storage',
    events: { interval: '1s' },
    api_retry: { initial_interval: '10ms', max_interval: '100ms' },
    ...over,
  });
  const r = (await factory.create(settings, cfg, sink)) as AuthentikReceiver;
  await r.start(nopHost({ file_storage: new MemoryStorage() }));
  return { r, settings };
}

const ofDataset = (sink: SinkConsumer, ds: string) =>
  sink.all().filter((x) => x.attributes['data_stream.dataset'] === ds);
const bodyOf = (x: { body?: unknown }) => x.body as Record<string, unknown>;

describe('every API generation', () => {
  for (const profile of PROFILES) {
    test(`profile ${profile}`, async () => {
      await withEmulator({ events: 1200, users: 130, groups: 7, version: profile, seed: 3 }, async (em) => {
        const sink = new SinkConsumer();
        const { r } = await start(em, sink, {});
        try {
          await waitFor(
            () =>
              r.events?.phase === 'incremental' &&
              r.events.polls > 0 &&
              (r.directory?.runs.usersFull ?? 0) > 0 &&
              (r.directory?.runs.groupsFull ?? 0) > 0,
            20_000,
            10,
          );
          const info = PROFILE_INFO[profile];
          // events: exactly once
          const evs = ofDataset(sink, 'authentik.event').map((x) => bodyOf(x).pk as string);
          assert.equal(new Set(evs).size, evs.length);
          assert.deepEqual(new Set(evs), new Set(em.events.allPks()));
          // users and groups: every record once per listing, following pagination.next
          const users = ofDataset(sink, 'authentik.user').map(bodyOf);
          const groups = ofDataset(sink, 'authentik.group').map(bodyOf);
          assert.equal(users.length, em.users.count());
          assert.equal(groups.length, em.groups.count());
          assert.equal(new Set(users.map((u) => u.pk)).size, users.length);
          // query flags by generation
          const userReqs = em.requests.filter((q) => q.path === USERS_PATH);
          const groupReqs = em.requests.filter((q) => q.path === GROUPS_PATH);
          assert.ok(userReqs.length >= 2, 'users span several pages');
          // exactly Elastic's CEL parameters, whatever the generation (older servers ignore the flag)
          for (const q of userReqs) {
            assert.deepEqual(Object.keys(q.query).sort(), ['include_groups', 'page', 'page_size']);
            assert.equal(q.query.include_groups, 'false');
          }
          for (const q of groupReqs) {
            assert.deepEqual(Object.keys(q.query).sort(), ['include_users', 'page', 'page_size']);
            assert.equal(q.query.include_users, 'false');
          }
          // shapes as served
          if (info.includeFlags) assert.ok(users.every((u) => u.groups_obj === null));
          if (info.userRoles) assert.ok(users.every((u) => Array.isArray(u.roles_obj)));
          if (info.groupParents) assert.ok(groups.every((g) => Array.isArray(g.parents)));
          else assert.ok(groups.every((g) => 'parent' in g));
          // version detection → resource
          const rec = ofDataset(sink, 'authentik.event')[0]!;
          assert.equal(rec.resource?.['service.version'], info.versionCurrent);
        } finally {
          await r.shutdown();
        }
      });
    });
  }

  test('a server page-size maximum below page_size is followed (no offsets computed from the request)', async () => {
    await withEmulator(
      { events: 3000, users: 75, version: '2025.12', maxPageSize: 30, seed: 4 },
      async (em) => {
        const sink = new SinkConsumer();
        const { r } = await start(em, sink, { groups: { enabled: false } });
        try {
          await waitFor(
            () =>
              r.events?.polls !== undefined && r.events.polls > 0 && (r.directory?.runs.usersFull ?? 0) > 0,
            20_000,
            10,
          );
          const evs = ofDataset(sink, 'authentik.event').map((x) => bodyOf(x).pk as string);
          assert.equal(new Set(evs).size, 3000);
          assert.equal(evs.length, 3000);
          assert.equal(ofDataset(sink, 'authentik.user').length, 75);
        } finally {
          await r.shutdown();
        }
      },
    );
  });
});

describe('enterprise QL search', () => {
  const cases: [VersionProfile, boolean][] = [
    ['2025.8', true],
    ['2026.2', true],
    ['2026.5', false], // AKQL: open source, no licence needed
  ];
  for (const [profile, enterprise] of cases) {
    test(`${profile} ${enterprise ? 'with a license' : 'without a licence (AKQL)'}: polls use search=created >= "…", verified, one request when idle`, async () => {
      await withEmulator({ events: 2000, version: profile, enterprise, seed: 5 }, async (em) => {
        const sink = new SinkConsumer();
        const { r } = await start(em, sink, { users: { enabled: false }, groups: { enabled: false } });
        try {
          await waitFor(() => r.events?.ql === 'yes', 20_000, 10);
          // From 2026.5 the licence is not consulted (and root/config not read for it).
          const licenceReads = em.requests.filter(
            (q) => q.path === '/api/v3/root/config/' || q.path === '/api/v3/enterprise/license/summary/',
          ).length;
          assert.equal(licenceReads, enterprise ? 2 : 0);
          const inserted = em.events.insert(7);
          await waitFor(() => ofDataset(sink, 'authentik.event').length === 2007, 10_000, 10);
          const qlReqs = em.requests.filter(
            (q) => q.path === EVENTS_PATH && typeof q.query.search === 'string',
          );
          assert.ok(qlReqs.length >= 2);
          for (const q of qlReqs) {
            assert.match(String(q.query.search), /^created >= "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"$/);
            // The one-off probe and region re-reads are keyset pages; polls read the newest events.
            assert.ok(q.query.ordering === 'created' || q.query.ordering === '-created');
          }
          const polls = qlReqs.filter((q) => q.query.ordering === '-created');
          assert.ok(polls.length >= 1);
          // Small pages: the newest events plus a margin, not the whole overlap window.
          assert.ok(
            polls.slice(1).every((q) => Number(q.query.page_size) <= 20),
            'small QL pages',
          );
          const evs = ofDataset(sink, 'authentik.event').map((x) => bodyOf(x).pk as string);
          assert.equal(new Set(evs).size, evs.length);
          assert.ok(inserted.every((p) => evs.includes(p)));
          // Idle: one request per poll.
          const polls0 = r.events!.polls;
          const before = em.requests.length;
          await waitFor(() => r.events!.polls >= polls0 + 3, 10_000, 10);
          const during = em.requests.slice(before).filter((q) => q.path === EVENTS_PATH);
          assert.ok(
            during.length <= r.events!.polls - polls0,
            `${during.length} requests for ${r.events!.polls - polls0} polls`,
          );
          assert.equal(r.events!.lastPollRequests, 1);
        } finally {
          await r.shutdown();
        }
      });
    });
  }

  test('without a licence QL is not probed (root/config lists is_enterprise, the licence summary says unlicensed): no substring search', async () => {
    await withEmulator({ events: 2000, version: '2026.2', enterprise: false, seed: 6 }, async (em) => {
      const sink = new SinkConsumer();
      const { r } = await start(em, sink, { users: { enabled: false }, groups: { enabled: false } });
      try {
        await waitFor(() => r.events?.ql === 'no', 20_000, 10);
        em.events.insert(3);
        await waitFor(() => ofDataset(sink, 'authentik.event').length === 2003, 10_000, 10);
        assert.equal(em.requests.filter((q) => q.query.search !== undefined).length, 0, 'no QL probe');
        assert.equal(em.requests.filter((q) => q.path === '/api/v3/root/config/').length, 1);
        assert.equal(em.requests.filter((q) => q.path === '/api/v3/enterprise/license/summary/').length, 1);
      } finally {
        await r.shutdown();
      }
    });
  });

  /** An unlicensed emulator behind a front that rewrites (or fails) /api/v3/root/config/. */
  const configFront = (em: Emulator, config: Answer, licence?: Answer) =>
    proxyFront(() => em.url, {
      '/api/v3/root/config/': config,
      ...(licence ? { '/api/v3/enterprise/license/summary/': licence } : {}),
    });

  test('2026.5 reported but QL not honoured (AKQL not shipped): one probe, detected, not used, events exact', async () => {
    await withEmulator({ events: 2000, version: '2026.2', enterprise: false, seed: 9 }, async (em) => {
      // A 2026.2 server without a licence (substring fallback) that reports 2026.5.0.
      const front = await proxyFront(() => em.url, {
        '/api/v3/admin/version/': (res) =>
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ version_current: '2026.5.0', version_latest: '2026.5.0', build_hash: '' })),
      });
      const sink = new SinkConsumer();
      const { r } = await start({ ...em, url: front.url }, sink, {
        users: { enabled: false },
        groups: { enabled: false },
      });
      try {
        await waitFor(() => r.events?.ql === 'no', 20_000, 10);
        const probes = () =>
          em.requests.filter((q) => q.path === EVENTS_PATH && q.query.search !== undefined);
        assert.equal(probes().length, 1, 'one probe');
        assert.equal(em.requests.filter((q) => q.path === '/api/v3/enterprise/license/summary/').length, 0);
        const fresh = em.events.insert(3);
        await waitFor(() => ofDataset(sink, 'authentik.event').length === 2003, 10_000, 10);
        const pks = ofDataset(sink, 'authentik.event').map((x) => bodyOf(x).pk as string);
        assert.equal(new Set(pks).size, 2003);
        assert.ok(fresh.every((p) => pks.includes(p)));
        assert.equal(probes().length, 1);
      } finally {
        await r.shutdown();
        await front.close();
      }
    });
  });

  test('a licence announced but QL not honoured (silent substring fallback) is detected and not used', async () => {
    await withEmulator({ events: 2000, version: '2026.2', enterprise: false, seed: 6 }, async (em) => {
      const front = await configFront(
        em,
        (res) =>
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ capabilities: ['can_geo_ip', 'is_enterprise'] })),
        (res) =>
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: 'valid', internal_users: 1, external_users: 0 })),
      );
      const sink = new SinkConsumer();
      const { r } = await start({ ...em, url: front.url }, sink, {
        users: { enabled: false },
        groups: { enabled: false },
      });
      try {
        await waitFor(() => r.events?.ql === 'no', 20_000, 10);
        const probes = () =>
          em.requests.filter((q) => q.path === EVENTS_PATH && q.query.search !== undefined);
        assert.equal(probes().length, 1, 'one probe');
        em.events.insert(3);
        await waitFor(() => ofDataset(sink, 'authentik.event').length === 2003, 10_000, 10);
        assert.equal(probes().length, 1);
      } finally {
        await r.shutdown();
        await front.close();
      }
    });
  });

  test('root/config unreadable: QL is not probed, said once at info, events flow', async () => {
    await withEmulator({ events: 500, version: '2026.2', enterprise: true, seed: 6 }, async (em) => {
      const front = await configFront(em, (res) => res.writeHead(404).end('not found'));
      const sink = new SinkConsumer();
      const { r, settings } = await start({ ...em, url: front.url }, sink, {
        users: { enabled: false },
        groups: { enabled: false },
      });
      try {
        await waitFor(() => r.events?.ql === 'no', 20_000, 10);
        em.events.insert(2);
        await waitFor(() => ofDataset(sink, 'authentik.event').length === 502, 10_000, 10);
        assert.equal(em.requests.filter((q) => q.query.search !== undefined).length, 0, 'no QL probe');
        const said = settings.logger.lines.filter((l) =>
          /could not read \/api\/v3\/root\/config\//.test(l.msg),
        );
        assert.equal(said.length, 1);
        assert.equal(said[0]!.level, 'info');
      } finally {
        await r.shutdown();
        await front.close();
      }
    });
  });

  test('license expires at runtime: the silent fallback is noticed, polls return to -created, nothing lost', async () => {
    // Two emulators with identical data, with and without a license, behind a switchable front.
    const startTime = new Date(Date.now() - 3_600_000);
    const licensed = await startEmulator({ events: 800, seed: 7, startTime, enterprise: true });
    const unlicensed = await startEmulator({
      events: 800,
      seed: 7,
      startTime,
      enterprise: false,
      token: licensed.token,
    });
    let target = licensed;
    const front = await proxyFront(() => target.url);
    const sink = new SinkConsumer();
    const { r, settings } = await start({ ...licensed, url: front.url }, sink, {
      users: { enabled: false },
      groups: { enabled: false },
    });
    try {
      await waitFor(() => r.events?.ql === 'yes', 20_000, 10);
      target = unlicensed;
      const fresh = unlicensed.events.insert(3);
      await waitFor(() => r.events?.ql === 'no', 20_000, 10);
      await waitFor(() => ofDataset(sink, 'authentik.event').length === 803, 10_000, 10);
      const pks = ofDataset(sink, 'authentik.event').map((x) => bodyOf(x).pk as string);
      assert.equal(new Set(pks).size, 803);
      assert.ok(fresh.every((p) => pks.includes(p)));
      assert.ok(
        settings.logger.lines.some((l) => l.level === 'warn' && /not using QL search any more/.test(l.msg)),
      );
    } finally {
      await r.shutdown();
      await front.close();
      await licensed.close();
      await unlicensed.close();
    }
  });

  test('before 2025.8 QL is not probed', async () => {
    await withEmulator({ events: 500, version: '2024.4', enterprise: true, seed: 6 }, async (em) => {
      const sink = new SinkConsumer();
      const { r } = await start(em, sink, { users: { enabled: false }, groups: { enabled: false } });
      try {
        await waitFor(() => (r.events?.polls ?? 0) >= 2, 20_000, 10);
        assert.equal(r.events!.ql, 'unknown');
        assert.equal(em.requests.filter((q) => q.query.search !== undefined).length, 0);
      } finally {
        await r.shutdown();
      }
    });
  });
});

describe('users: changes between full listings', () => {
  test('2025.8+: last_updated__gt with ordering=last_updated reads only changed users', async () => {
    await withEmulator({ events: 10, users: 40, version: '2026.2', seed: 12 }, async (em) => {
      const sink = new SinkConsumer();
      const { r } = await start(em, sink, {
        events: { enabled: false },
        groups: { enabled: false },
        users: { interval: '1h', changes_interval: '1s' },
      });
      try {
        await waitFor(() => (r.directory?.runs.usersFull ?? 0) === 1, 10_000, 10);
        assert.equal(ofDataset(sink, 'authentik.user').length, 40);
        const pk = em.users.all()[5]!.pk;
        assert.ok(em.users.touch(pk));
        await waitFor(() => ofDataset(sink, 'authentik.user').length === 41, 10_000, 10);
        const again = ofDataset(sink, 'authentik.user').at(-1)!;
        assert.equal(bodyOf(again).pk, pk);
        const changeReqs = em.requests.filter(
          (q) => q.path === USERS_PATH && q.query.last_updated__gt !== undefined,
        );
        assert.ok(changeReqs.length >= 1);
        assert.equal(changeReqs[0]!.query.ordering, 'last_updated');
        assert.equal(changeReqs[0]!.query.include_groups, 'false');
        assert.match(String(changeReqs[0]!.query.last_updated__gt), /^\d{4}-\d\d-\d\dT/);
        assert.equal(r.directory!.runs.usersFull, 1, 'no second full listing');
        // Idle change polls return nothing new.
        const n = r.directory!.runs.usersChanges;
        await waitFor(() => r.directory!.runs.usersChanges >= n + 1, 5000, 10);
        assert.equal(ofDataset(sink, 'authentik.user').length, 41);
      } finally {
        await r.shutdown();
      }
    });
  });

  test('before 2025.8 there are no change polls (no last_updated)', async () => {
    await withEmulator({ events: 10, users: 10, version: '2024.4', seed: 12 }, async (em) => {
      const sink = new SinkConsumer();
      const { r } = await start(em, sink, {
        events: { enabled: false },
        groups: { enabled: false },
        users: { interval: '1h', changes_interval: '1s' },
      });
      try {
        await waitFor(() => (r.directory?.runs.usersFull ?? 0) === 1, 10_000, 10);
        await new Promise((res) => setTimeout(res, 1500));
        assert.equal(r.directory!.runs.usersChanges, 0);
        assert.equal(em.requests.filter((q) => q.query.last_updated__gt !== undefined).length, 0);
      } finally {
        await r.shutdown();
      }
    });
  });
});

describe('403', () => {
  test('an invalid token: a clear message, permanent_error, recovery when token_file is fixed, nothing lost', async () => {
    await withEmulator({ events: 300, users: 5, groups: 2, seed: 13 }, async (em) => {
      const dir = await mkdtemp(join(tmpdir(), 'ak-403-'));
      try {
        await writeFile(join(dir, 'token'), 'not-the-right-token-0000\n');
        const sink = new SinkConsumer();
        const { r, settings } = await start(
          em,
          sink,
          {
            token: undefined,
            token_file: 'token',
            api_retry: { initial_interval: '10ms', max_interval: '200ms' },
          },
          dir,
        );
        try {
          await waitFor(() => settings.statuses.some((s) => s.status === 'permanent_error'), 10_000, 10);
          const err = settings.logger.lines.find((l) => l.level === 'error' && /403/.test(l.msg))!;
          assert.match(err.msg, /rejected the API token \(403 "Token invalid\/expired"\)/);
          assert.match(err.msg, /receivers\.authentik\.token_file/);
          assert.match(err.msg, /app passwords/);
          assert.equal(ofDataset(sink, 'authentik.event').length, 0);
          await writeFile(join(dir, 'token'), `${em.token}\n`);
          await waitFor(() => ofDataset(sink, 'authentik.event').length === 300, 10_000, 10);
          await waitFor(() => settings.statuses.at(-1)?.status === 'ok', 10_000, 10);
          assert.ok(!settings.logger.text().includes(em.token));
        } finally {
          await r.shutdown();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  test('an app password is not an API token', async () => {
    await withEmulator({ events: 10, appPasswords: ['app-password-value-1234'], seed: 14 }, async (em) => {
      const sink = new SinkConsumer();
      const { r, settings } = await start(em, sink, {
        token: 'app-password-value-1234',
        users: { enabled: false },
        groups: { enabled: false },
      });
      try {
        await waitFor(
          () => settings.logger.lines.some((l) => l.level === 'error' && /403/.test(l.msg)),
          10_000,
          10,
        );
        const err = settings.logger.lines.find((l) => l.level === 'error' && /403/.test(l.msg))!;
        assert.match(
          err.msg,
          /app passwords, including the password shown by "Create Service Account", are not API tokens/,
        );
        assert.ok(!settings.logger.text().includes('app-password-value-1234'));
      } finally {
        await r.shutdown();
      }
    });
  });

  test('a missing permission names it; the other datasets keep flowing', async () => {
    await withEmulator(
      { events: 200, users: 5, groups: 3, denyDatasets: ['users'], seed: 15 },
      async (em) => {
        const sink = new SinkConsumer();
        const { r, settings } = await start(em, sink, {});
        try {
          await waitFor(
            () =>
              ofDataset(sink, 'authentik.event').length === 200 &&
              ofDataset(sink, 'authentik.group').length === 3,
            10_000,
            10,
          );
          const err = settings.logger.lines.find((l) => l.level === 'error' && /permission/.test(l.msg))!;
          assert.match(err.msg, /lacks permission to read users .*grant it authentik_core\.view_user/);
          assert.equal(ofDataset(sink, 'authentik.user').length, 0);
          assert.equal(settings.statuses.at(-1)?.status, 'permanent_error');
        } finally {
          await r.shutdown();
        }
      },
    );
  });

  test('token rotated by authentik mid-run: 403 until the new token is configured, then everything arrives', async () => {
    await withEmulator({ events: 500, seed: 16 }, async (em) => {
      const dir = await mkdtemp(join(tmpdir(), 'ak-rot-'));
      try {
        await writeFile(join(dir, 'token'), em.token);
        const sink = new SinkConsumer();
        const { r, settings } = await start(
          em,
          sink,
          { token: undefined, token_file: 'token', users: { enabled: false }, groups: { enabled: false } },
          dir,
        );
        try {
          await waitFor(() => r.events?.polls !== undefined && r.events.polls > 0, 10_000, 10);
          const fresh = em.rotateToken();
          em.events.insert(20);
          await waitFor(() => settings.statuses.some((s) => s.status === 'permanent_error'), 10_000, 10);
          await writeFile(join(dir, 'token'), fresh);
          await waitFor(() => ofDataset(sink, 'authentik.event').length === 520, 10_000, 10);
          const pks = ofDataset(sink, 'authentik.event').map((x) => bodyOf(x).pk as string);
          assert.equal(new Set(pks).size, 520);
          assert.ok(!settings.logger.text().includes(fresh));
        } finally {
          await r.shutdown();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
