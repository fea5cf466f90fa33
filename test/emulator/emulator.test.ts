/* eslint-disable @typescript-eslint/no-unsafe-return -- assertions over parsed JSON bodies */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startEmulator, PROFILES, actionsOf } from './index.ts';
import type { Emulator, EmulatorOptions } from './index.ts';
import { get, listAll } from './helpers.ts';
import type { Json } from './helpers.ts';

const EV = '/api/v3/events/events/';
const USERS = '/api/v3/core/users/';
const GROUPS = '/api/v3/core/groups/';

async function withEmu<T>(o: EmulatorOptions, fn: (e: Emulator) => Promise<T>): Promise<T> {
  const e = await startEmulator(o);
  try {
    return await fn(e);
  } finally {
    await e.close();
  }
}

const createdUs = (iso: string) => Date.parse(iso.slice(0, 23) + 'Z') * 1000 + Number(iso.slice(23, 26));

void describe('authentication (403, never 401)', () => {
  let e: Emulator;
  before(async () => {
    e = await startEmulator({ events: 30, appPasswords: ['app-password-1'] });
  });
  after(() => e.close());

  const cases: Array<[string, string | null, string]> = [
    ['no header', null, 'Authentication credentials were not provided.'],
    ['basic scheme', 'Basic dXNlcjpwYXNz', 'Authentication credentials were not provided.'],
    // Real 2023.10.7 and 2025.12.4 (captures emptybearer_events / events_empty_bearer).
    ['bearer without value', 'Bearer', 'Authentication credentials were not provided.'],
    ['unknown token', 'Bearer nope', 'Token invalid/expired'],
    ['app password', 'Bearer app-password-1', 'Token invalid/expired'],
  ];
  for (const [name, header, detail] of cases) {
    void test(name, async () => {
      for (const p of [EV, USERS, GROUPS, '/api/v3/admin/version/']) {
        const r = await get(e, p, header === null ? { token: null } : { authorization: header });
        assert.equal(r.status, 403, `${p}: ${r.text}`);
        assert.deepEqual(r.json, { detail });
        assert.equal(r.headers['www-authenticate'], undefined);
      }
    });
  }

  void test('scheme is case-insensitive; valid token works', async () => {
    const r = await get(e, EV, { authorization: `bearer ${e.token}` });
    assert.equal(r.status, 200);
  });

  void test('root config is anonymous and lists is_enterprise whenever the enterprise app is installed', async () => {
    // Both real releases list it without a licence (captures root_config*.json).
    const r = await get(e, '/api/v3/root/config/', { token: null });
    assert.equal(r.status, 200);
    assert.ok(r.json.capabilities.includes('is_enterprise'));
    await withEmu({ events: 1, enterprise: true }, async (x) => {
      const c = await get(x, '/api/v3/root/config/', { token: null });
      assert.ok(c.json.capabilities.includes('is_enterprise'));
    });
    await withEmu({ events: 1, enterpriseApp: false }, async (x) => {
      const c = await get(x, '/api/v3/root/config/', { token: null });
      assert.ok(!c.json.capabilities.includes('is_enterprise'));
    });
  });

  void test('permission denied per dataset', async () => {
    await withEmu({ events: 5, denyDatasets: ['events'] }, async (x) => {
      const r = await get(x, EV);
      assert.equal(r.status, 403);
      assert.deepEqual(r.json, { detail: 'You do not have permission to perform this action.' });
      assert.equal((await get(x, USERS)).status, 200);
      assert.equal((await get(x, GROUPS)).status, 200);
    });
  });

  void test('token rotation: old token 403 Token invalid/expired, new one works', async () => {
    await withEmu({ events: 5 }, async (x) => {
      const old = x.token;
      const next = x.rotateToken();
      assert.notEqual(next, old);
      assert.equal(x.token, next);
      const r = await get(x, EV, { token: old });
      assert.equal(r.status, 403);
      assert.deepEqual(r.json, { detail: 'Token invalid/expired' });
      assert.equal((await get(x, EV)).status, 200);
      assert.equal(x.rotateToken('fixed'), 'fixed');
      assert.equal((await get(x, EV, { token: next })).status, 403);
      assert.equal((await get(x, EV, { token: 'fixed' })).status, 200);
    });
  });
});

void describe('pagination envelope', () => {
  void test('fields, next/previous 0 at the edges, 404 Invalid page', async () => {
    await withEmu({ events: 45 }, async (e) => {
      const p1 = await get(e, `${EV}?page_size=20`);
      assert.deepEqual(p1.json.pagination, {
        next: 2,
        previous: 0,
        count: 45,
        current: 1,
        total_pages: 3,
        start_index: 1,
        end_index: 20,
      });
      assert.equal(p1.json.results.length, 20);
      const p3 = await get(e, `${EV}?page_size=20&page=3`);
      assert.deepEqual(p3.json.pagination, {
        next: 0,
        previous: 2,
        count: 45,
        current: 3,
        total_pages: 3,
        start_index: 41,
        end_index: 45,
      });
      assert.equal(p3.json.results.length, 5);
      const last = await get(e, `${EV}?page_size=20&page=last`);
      assert.equal(last.json.pagination.current, 3);
      for (const bad of ['4', '0', '-1', 'abc', '1.5']) {
        const r = await get(e, `${EV}?page_size=20&page=${bad}`);
        assert.equal(r.status, 404, bad);
        assert.deepEqual(r.json, { detail: 'Invalid page.' });
      }
      const empty = await get(e, `${EV}?page_size=20&page=`);
      assert.equal(empty.json.pagination.current, 1);
    });
  });

  void test('empty table: count 0, one page, indexes 0', async () => {
    await withEmu({ events: 0 }, async (e) => {
      const r = await get(e, EV);
      assert.deepEqual(r.json.pagination, {
        next: 0,
        previous: 0,
        count: 0,
        current: 1,
        total_pages: 1,
        start_index: 0,
        end_index: 0,
      });
      assert.deepEqual(r.json.results, []);
      assert.equal((await get(e, `${EV}?page=2`)).status, 404);
    });
  });

  void test('page size clamp per profile', async () => {
    const expect: Record<string, { def: number; big: number }> = {
      '2024.2': { def: 100, big: 250 },
      '2024.4': { def: 100, big: 250 },
      '2025.8': { def: 100, big: 250 },
      '2025.10': { def: 100, big: 250 },
      '2025.12': { def: 20, big: 100 },
      '2026.2': { def: 20, big: 100 },
      '2026.5': { def: 20, big: 100 },
    };
    for (const v of PROFILES) {
      await withEmu({ events: 250, version: v }, async (e) => {
        const size = async (q: string) => (await get(e, `${EV}${q}`)).json.results.length as number;
        assert.equal(await size(''), expect[v]!.def, `${v} default`);
        assert.equal(await size('?page_size=1000'), expect[v]!.big, `${v} 1000`);
        assert.equal(await size('?page_size=0'), expect[v]!.def, `${v} zero`);
        assert.equal(await size('?page_size=abc'), expect[v]!.def, `${v} invalid`);
        assert.equal(await size('?page_size=-3'), expect[v]!.def, `${v} negative`);
        assert.equal(await size('?page_size=7'), 7, `${v} 7`);
        const r = await get(e, `${EV}?page_size=1000`);
        assert.equal(r.json.pagination.total_pages, Math.ceil(250 / expect[v]!.big));
        // users and groups share the pagination class
        const u = await get(e, `${USERS}?page_size=1`);
        assert.equal(u.json.results.length, 1);
      });
    }
  });

  void test('page size overrides', async () => {
    await withEmu({ events: 300, version: '2025.10', maxPageSize: 50, defaultPageSize: 10 }, async (e) => {
      assert.equal((await get(e, EV)).json.results.length, 10);
      assert.equal((await get(e, `${EV}?page_size=200`)).json.results.length, 50);
    });
  });
});

void describe('ordering', () => {
  let e: Emulator;
  before(async () => {
    e = await startEmulator({ events: 120, seed: 7 });
  });
  after(() => e.close());

  const createdOf = async (q: string) =>
    ((await get(e, `${EV}?page_size=100&${q}`)).json.results as Json[]).map((r) => r.created as string);

  void test('default is -created; created strictly increasing with microseconds', async () => {
    const def = await createdOf('');
    assert.equal(def.length, 100);
    for (const c of def) assert.match(c, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    for (let i = 1; i < def.length; i++) assert.ok(createdUs(def[i - 1]!) > createdUs(def[i]!));
    const asc = await createdOf('ordering=created');
    for (let i = 1; i < asc.length; i++) assert.ok(createdUs(asc[i - 1]!) < createdUs(asc[i]!));
    assert.deepEqual(await createdOf('ordering=created,pk'), asc);
    assert.deepEqual(await createdOf('ordering=-created,pk'), def);
    assert.deepEqual(await createdOf('ordering=expires'), asc);
  });

  void test('invalid fields are dropped silently; nothing valid → default', async () => {
    const def = await createdOf('');
    assert.deepEqual(await createdOf('ordering=nope'), def);
    assert.deepEqual(await createdOf('ordering=-nope,%20'), def);
    assert.deepEqual(await createdOf('ordering=nope,created'), await createdOf('ordering=created'));
  });

  void test('ordering by another field sorts the whole table', async () => {
    const all = await listAll(e, `${EV}?ordering=action&page_size=50`);
    assert.equal(all.length, 120);
    const actions = all.map((r) => r.action as string);
    assert.deepEqual(actions, actions.slice().sort());
    const rev = await listAll(e, `${EV}?ordering=-client_ip&page_size=50`);
    // PostgreSQL: NULLS FIRST when descending
    const firstNonNull = rev.findIndex((r) => r.client_ip !== null);
    assert.ok(rev.slice(0, firstNonNull).every((r) => r.client_ip === null));
    assert.ok(rev.slice(firstNonNull).every((r) => r.client_ip !== null));
  });

  void test('users default username, groups default name', async () => {
    const u = await listAll(e, `${USERS}?page_size=7`);
    const names = u.map((x) => x.username as string);
    assert.deepEqual(names, names.slice().sort());
    const g = await listAll(e, `${GROUPS}?page_size=5`);
    const gn = g.map((x) => x.name as string);
    assert.deepEqual(gn, gn.slice().sort());
    const byPk = await listAll(e, `${USERS}?ordering=-pk`);
    assert.deepEqual(
      byPk.map((x) => x.pk),
      u.map((x) => x.pk as number).sort((a, b) => b - a),
    );
  });
});

void describe('records and profiles', () => {
  void test('event shape and key order like the fixtures; detail endpoint', async () => {
    await withEmu({ events: 60 }, async (e) => {
      const r = await get(e, `${EV}?page_size=60`);
      for (const ev of r.json.results) {
        assert.deepEqual(Object.keys(ev), [
          'pk',
          'user',
          'action',
          'app',
          'context',
          'client_ip',
          'created',
          'expires',
          'brand',
        ]);
        assert.match(ev.pk, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        assert.equal(createdUs(ev.expires) - createdUs(ev.created), 365 * 86_400_000_000);
      }
      const one = r.json.results[3];
      const d = await get(e, `${EV}${one.pk}/`);
      assert.equal(d.status, 200);
      assert.deepEqual(d.json, one);
      assert.deepEqual(e.events.get(one.pk), one);
      const miss = await get(e, `${EV}00000000-0000-4000-8000-000000000000/`);
      assert.equal(miss.status, 404);
      assert.equal((await get(e, `${EV}not-a-uuid/`)).status, 404);
    });
  });

  void test('every action of the profile appears, and none from later releases', async () => {
    for (const v of PROFILES) {
      await withEmu({ events: 400, version: v }, async (e) => {
        const all = await listAll(e, `${EV}?page_size=100`);
        const seen = new Set(all.map((x) => (String(x.action).startsWith('custom_') ? 'custom_' : x.action)));
        assert.deepEqual([...seen].sort(), actionsOf(v).sort(), v);
      });
    }
    assert.equal(actionsOf('2026.2').length, 33);
    assert.equal(actionsOf('2025.10').length, 27);
  });

  void test('realistic variety: anonymous, impersonation, IPv6, null ip, diffs, legacy tenant brand', async () => {
    await withEmu({ events: 3000, seed: 3 }, async (e) => {
      const all = await listAll(e, `${EV}?page_size=100&ordering=created`);
      assert.equal(all.length, 3000);
      assert.ok(all.some((x) => x.user.is_anonymous === true && x.user.username === 'AnonymousUser'));
      assert.ok(all.some((x) => x.user.on_behalf_of !== undefined && x.action === 'impersonation_started'));
      assert.ok(all.some((x) => typeof x.client_ip === 'string' && x.client_ip.includes(':')));
      assert.ok(all.some((x) => typeof x.client_ip === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(x.client_ip)));
      assert.ok(all.some((x) => x.client_ip === null));
      assert.ok(all.some((x) => x.context.diff !== undefined && x.action === 'model_updated'));
      assert.ok(all.some((x) => Object.keys(x.user).length === 0));
      assert.ok(all.some((x) => typeof x.context.geo === 'object'));
      // the oldest 2% keep pre-2024.2 tenant content under the renamed key
      assert.equal(all[0].brand.model_name, 'tenant');
      assert.equal(all[0].brand.app, 'authentik_tenants');
      assert.equal(all[2999].brand.app, 'authentik_brands');
      assert.ok(all.every((x) => !('tenant' in x)));
      // same-second bursts exist (matters for second-precision QL)
      const secs = all.map((x) => String(x.created).slice(0, 19));
      assert.ok(new Set(secs).size < secs.length);
    });
  });

  void test('deterministic from the seed', async () => {
    const first = async (seed: number) =>
      withEmu(
        { events: 50, seed, startTime: new Date('2026-01-01T00:00:00Z') },
        async (e) => (await get(e, `${EV}?page_size=50`)).text,
      );
    assert.equal(await first(11), await first(11));
    assert.notEqual(await first(11), await first(12));
  });

  void test('version endpoint and autocomplete per profile', async () => {
    for (const v of PROFILES) {
      await withEmu({ events: 3, version: v }, async (e) => {
        const r = await get(e, '/api/v3/admin/version/');
        assert.equal(r.status, 200);
        assert.ok(String(r.json.version_current).startsWith(`${v}.`), r.json.version_current);
        const hasAc = !['2024.2', '2024.4'].includes(v);
        for (const p of [EV, USERS, GROUPS]) {
          const l = await get(e, p);
          assert.equal('autocomplete' in l.json, hasAc, `${v} ${p}`);
          if (hasAc) assert.deepEqual(l.json.autocomplete, {});
        }
      });
    }
  });

  void test('groups: parent/parent_name before 2025.12, parents/parents_obj after', async () => {
    for (const v of PROFILES) {
      await withEmu({ events: 1, groups: 20, version: v }, async (e) => {
        const gs = await listAll(e, GROUPS);
        const newer = v === '2025.12' || v === '2026.2' || v === '2026.5';
        for (const g of gs) {
          assert.equal('parents' in g, newer, v);
          assert.equal('parent' in g, !newer, v);
          assert.equal('parent_name' in g, !newer, v);
          assert.equal('children' in g, !['2024.2', '2024.4'].includes(v));
          assert.equal('inherited_roles_obj' in g, newer);
        }
        const child = gs.find((g) => (newer ? g.parents.length > 0 : g.parent !== null));
        assert.ok(child, 'some group has a parent');
        if (!newer) {
          assert.equal(child.parent_name, gs.find((g) => g.pk === child.parent).name);
        }
      });
    }
  });

  void test('user fields per profile', async () => {
    const want: Record<string, string[]> = {
      '2024.2': [
        'pk',
        'username',
        'name',
        'is_active',
        'last_login',
        'is_superuser',
        'groups',
        'groups_obj',
        'email',
        'avatar',
        'attributes',
        'uid',
        'path',
        'type',
        'uuid',
      ],
      '2025.8': [
        'pk',
        'username',
        'name',
        'is_active',
        'last_login',
        'date_joined',
        'is_superuser',
        'groups',
        'groups_obj',
        'email',
        'avatar',
        'attributes',
        'uid',
        'path',
        'type',
        'uuid',
        'password_change_date',
        'last_updated',
      ],
      '2026.2': [
        'pk',
        'username',
        'name',
        'is_active',
        'last_login',
        'date_joined',
        'is_superuser',
        'groups',
        'groups_obj',
        'roles',
        'roles_obj',
        'email',
        'avatar',
        'attributes',
        'uid',
        'path',
        'type',
        'uuid',
        'password_change_date',
        'last_updated',
      ],
    };
    for (const [v, keys] of Object.entries(want)) {
      await withEmu({ events: 1, version: v as EmulatorOptions['version'] & string }, async (e) => {
        const r = await get(e, USERS);
        for (const u of r.json.results) assert.deepEqual(Object.keys(u), keys, v);
      });
    }
  });

  void test('directory variety: service accounts, inactive, external, LDAP, default avatar', async () => {
    await withEmu({ events: 1, users: 200 }, async (e) => {
      const us = await listAll(e, `${USERS}?page_size=100`);
      assert.equal(us.length, 200);
      const types = new Set(us.map((u) => u.type));
      for (const t of ['internal', 'external', 'service_account', 'internal_service_account'])
        assert.ok(types.has(t), t);
      assert.ok(us.some((u) => u.is_active === false));
      assert.ok(us.some((u) => String(u.path).startsWith('goauthentik.io/sources/')));
      assert.ok(us.some((u) => String(u.avatar).startsWith('data:image/svg+xml;base64,')));
      assert.ok(us.some((u) => !String(u.avatar).startsWith('data:')));
      assert.ok(us.some((u) => u.is_superuser === true));
      // memberships are consistent both ways
      const gs = await listAll(e, GROUPS);
      for (const g of gs)
        for (const pk of g.users) assert.ok(us.find((u) => u.pk === pk).groups.includes(g.pk));
    });
  });
});

void describe('include_* flags', () => {
  void test('users: include_groups / include_roles', async () => {
    await withEmu({ events: 1, users: 30 }, async (e) => {
      const def = await get(e, `${USERS}?page_size=30`);
      assert.ok(
        def.json.results.every((u: Json) => Array.isArray(u.groups_obj) && Array.isArray(u.roles_obj)),
      );
      const member = def.json.results.find((u: Json) => u.groups.length > 0);
      assert.equal(member.groups_obj.length, member.groups.length);
      assert.deepEqual(Object.keys(member.groups_obj[0]), [
        'pk',
        'num_pk',
        'name',
        'is_superuser',
        'attributes',
      ]);
      const off = await get(e, `${USERS}?page_size=30&include_groups=false&include_roles=false`);
      assert.ok(off.json.results.every((u: Json) => u.groups_obj === null && u.roles_obj === null));
      assert.ok(off.json.results.every((u: Json) => Array.isArray(u.groups)));
      const odd = await get(e, `${USERS}?page_size=30&include_groups=0`);
      assert.ok(
        odd.json.results.every((u: Json) => u.groups_obj === null),
        'anything but "true" is false',
      );
    });
  });

  void test('groups: include_users / include_children / include_parents / include_inherited_roles', async () => {
    await withEmu({ events: 1, users: 30, groups: 15 }, async (e) => {
      const def = await get(e, `${GROUPS}?page_size=50`);
      for (const g of def.json.results) {
        assert.ok(Array.isArray(g.users_obj));
        assert.equal(g.users_obj.length, g.users.length);
        assert.equal(g.children_obj, null);
        assert.equal(g.parents_obj, null);
        assert.equal(g.inherited_roles_obj, null);
      }
      const on = await get(
        e,
        `${GROUPS}?page_size=50&include_users=false&include_children=true&include_parents=true&include_inherited_roles=true`,
      );
      for (const g of on.json.results) {
        assert.equal(g.users_obj, null);
        assert.ok(Array.isArray(g.users));
        assert.equal(g.children_obj.length, g.children.length);
        assert.equal(g.parents_obj.length, g.parents.length);
        assert.ok(Array.isArray(g.inherited_roles_obj));
      }
    });
  });

  void test('2024.2 has no include flags: *_obj always filled', async () => {
    await withEmu({ events: 1, version: '2024.2' }, async (e) => {
      const u = await get(e, `${USERS}?include_groups=false`);
      assert.ok(u.json.results.every((x: Json) => Array.isArray(x.groups_obj)));
      const g = await get(e, `${GROUPS}?include_users=false`);
      assert.ok(g.json.results.every((x: Json) => Array.isArray(x.users_obj)));
    });
  });
});

void describe('users last_updated__gt', () => {
  void test('honoured on 2025.8+, ignored before, 400 on bad value', async () => {
    for (const v of ['2025.8', '2026.2'] as const) {
      await withEmu({ events: 1, users: 40, version: v }, async (e) => {
        const since = new Date(Date.now() + 1000);
        const none = await get(e, `${USERS}?last_updated__gt=${encodeURIComponent(since.toISOString())}`);
        assert.equal(none.json.pagination.count, 0);
        const pk = e.users.all()[5]!.pk;
        assert.ok(e.users.touch(pk, new Date(since.getTime() + 5000)));
        const one = await get(e, `${USERS}?last_updated__gt=${encodeURIComponent(since.toISOString())}`);
        assert.deepEqual(
          one.json.results.map((u: Json) => u.pk),
          [pk],
        );
        const bad = await get(e, `${USERS}?last_updated__gt=yesterday`);
        assert.equal(bad.status, 400);
        assert.deepEqual(bad.json, { last_updated__gt: ['Enter a valid date/time.'] });
      });
    }
    await withEmu({ events: 1, users: 40, version: '2024.4' }, async (e) => {
      const r = await get(
        e,
        `${USERS}?last_updated__gt=${encodeURIComponent(new Date(Date.now() + 1e6).toISOString())}`,
      );
      assert.equal(r.json.pagination.count, 40, 'unknown filter ignored like django-filter');
      assert.equal('last_updated' in r.json.results[0], false);
    });
  });
});

void describe('search', () => {
  const ql = (s: string) => `search=${encodeURIComponent(s)}`;

  void test('enterprise QL created filter honoured (second precision, UTC)', async () => {
    await withEmu({ events: 500, enterprise: true, seed: 5 }, async (e) => {
      const all = await listAll(e, `${EV}?ordering=created&page_size=100`);
      const mid = all[250];
      const sec = String(mid.created).slice(0, 19).replace('T', ' ');
      const secUs = Date.parse(sec.replace(' ', 'T') + 'Z') * 1000;
      const ge = await listAll(e, `${EV}?ordering=created&page_size=100&${ql(`created >= "${sec}"`)}`);
      assert.deepEqual(
        ge.map((x) => x.pk),
        all.filter((x) => createdUs(x.created) >= secUs).map((x) => x.pk),
      );
      assert.ok(ge.some((x) => x.pk === mid.pk));
      const gt = await listAll(e, `${EV}?page_size=100&${ql(`created > "${sec}"`)}`);
      assert.equal(gt.length, all.filter((x) => createdUs(x.created) > secUs).length);
      const lo = String(all[100].created).slice(0, 19).replace('T', ' ');
      const loUs = Date.parse(lo.replace(' ', 'T') + 'Z') * 1000;
      const between = await listAll(
        e,
        `${EV}?ordering=created&${ql(`created >= "${lo}" and created < "${sec}"`)}`,
      );
      assert.deepEqual(
        between.map((x) => x.pk),
        all.filter((x) => createdUs(x.created) >= loUs && createdUs(x.created) < secUs).map((x) => x.pk),
      );
      const le = await get(e, `${EV}?${ql(`created <= "${lo}"`)}`);
      assert.equal(le.json.pagination.count, all.filter((x) => createdUs(x.created) <= loUs).length);
      // date-only and minute precision parse too
      const day = String(all[0].created).slice(0, 10);
      const d = await get(e, `${EV}?${ql(`created >= "${day}"`)}`);
      assert.equal(d.json.pagination.count, 500);
      // other QL fields
      const logins = await get(e, `${EV}?${ql('action = "login" or action = "logout"')}&page_size=100`);
      assert.ok(logins.json.results.every((x: Json) => ['login', 'logout'].includes(x.action)));
      assert.equal(
        logins.json.pagination.count,
        all.filter((x) => x.action === 'login' || x.action === 'logout').length,
      );
      const byUser = await get(e, `${EV}?${ql('user.username = "akadmin"')}&page_size=100`);
      assert.ok(byUser.json.results.every((x: Json) => x.user.username === 'akadmin'));
    });
  });

  void test('without license, before 2025.8, or on a parse error: silent substring fallback with 200', async () => {
    const q = ql('created >= "2020-01-01 00:00:00"');
    for (const o of [
      { enterprise: false, version: '2026.2' },
      { enterprise: true, version: '2024.4' as const },
      { enterprise: true, version: '2024.2' as const },
    ] as EmulatorOptions[]) {
      await withEmu({ events: 300, ...o }, async (e) => {
        const r = await get(e, `${EV}?${q}`);
        assert.equal(r.status, 200);
        assert.ok(
          r.json.pagination.count < 300,
          `${o.version} ${String(o.enterprise)}: ${r.json.pagination.count}`,
        );
      });
    }
    await withEmu({ events: 300, enterprise: true, version: '2025.8' }, async (e) => {
      assert.equal((await get(e, `${EV}?${q}`)).json.pagination.count, 300, '2025.8 licensed honours QL');
      await withEmu({ events: 300, enterprise: true, version: '2025.10' }, async (x) => {
        assert.equal((await get(x, `${EV}?${q}`)).json.pagination.count, 300, '2025.10 licensed honours QL');
      });
      await withEmu({ events: 300, enterprise: false, version: '2026.5' }, async (x) => {
        assert.equal(
          (await get(x, `${EV}?${q}`)).json.pagination.count,
          300,
          '2026.5 (AKQL) needs no licence',
        );
      });
      const broken = await get(e, `${EV}?${ql('created >>= "2020-01-01"')}`);
      assert.equal(broken.status, 200);
      assert.ok(broken.json.pagination.count < 300);
      const unknownField = await get(e, `${EV}?${ql('nope = "x"')}`);
      assert.equal(unknownField.status, 200);
    });
  });

  void test('substring search: case-insensitive, all terms, over uuid/user/action/app/context/ip', async () => {
    await withEmu({ events: 400 }, async (e) => {
      const all = await listAll(e, `${EV}?page_size=100`);
      const target = all[17];
      const byPk = await get(e, `${EV}?search=${target.pk.slice(0, 13).toUpperCase()}`);
      assert.ok(byPk.json.results.some((x: Json) => x.pk === target.pk));
      const login = await listAll(e, `${EV}?search=LOGIN_FAILED`);
      assert.ok(login.length > 0);
      assert.ok(login.every((x) => JSON.stringify(x).toLowerCase().includes('login_failed')));
      const two = await listAll(e, `${EV}?search=${encodeURIComponent('akadmin, login')}`);
      assert.ok(
        two.every((x) => JSON.stringify(x).includes('akadmin') && JSON.stringify(x).includes('login')),
      );
      // jsonb text: "key": value with a space, as PostgreSQL renders it
      const spaced = await listAll(e, `${EV}?search=${encodeURIComponent('"auth_method": "password"')}`);
      assert.ok(spaced.length > 0);
      assert.ok(spaced.every((x) => x.context.auth_method === 'password'));
    });
  });

  void test('unknown params are ignored (no server-side created filter)', async () => {
    await withEmu({ events: 50 }, async (e) => {
      const r = await get(e, `${EV}?created__gt=2999-01-01T00:00:00Z&since=x&after=y`);
      assert.equal(r.json.pagination.count, 50);
    });
  });

  void test('event filters: action (icontains), actions (exact, 400 on unknown), username, client_ip', async () => {
    await withEmu({ events: 500 }, async (e) => {
      const all = await listAll(e, `${EV}?page_size=100`);
      const a = await listAll(e, `${EV}?action=login`);
      assert.deepEqual(
        a.map((x) => x.pk),
        all.filter((x) => String(x.action).includes('login')).map((x) => x.pk),
      );
      const exact = await listAll(e, `${EV}?actions=login&actions=logout`);
      assert.deepEqual(
        exact.map((x) => x.pk),
        all.filter((x) => x.action === 'login' || x.action === 'logout').map((x) => x.pk),
      );
      const bad = await get(e, `${EV}?actions=foo`);
      assert.equal(bad.status, 400);
      assert.ok(Array.isArray(bad.json.actions));
      const ip = all.find((x) => x.client_ip !== null).client_ip;
      const byIp = await listAll(e, `${EV}?client_ip=${encodeURIComponent(ip)}`);
      assert.ok(byIp.length > 0 && byIp.every((x) => x.client_ip === ip));
      const u = await listAll(e, `${EV}?username=akadmin`);
      assert.ok(u.every((x) => x.user.username === 'akadmin' || x.context.username === 'akadmin'));
    });
  });
});

void describe('drift under inserts and deletes', () => {
  void test('descending pages while inserting → duplicates, not losses', async () => {
    await withEmu({ events: 100 }, async (e) => {
      const p1 = await get(e, `${EV}?page_size=10`);
      e.events.insert(3);
      const p2 = await get(e, `${EV}?page_size=10&page=2`);
      assert.equal(p2.json.pagination.count, 103);
      const p1pks = p1.json.results.map((x: Json) => x.pk);
      const dup = p2.json.results.filter((x: Json) => p1pks.includes(x.pk));
      assert.equal(dup.length, 3);
    });
  });

  void test('ascending pages while retention deletes the oldest → skips', async () => {
    await withEmu({ events: 100 }, async (e) => {
      const all = e.events.allPks();
      const p1 = await get(e, `${EV}?page_size=10&ordering=created`);
      assert.deepEqual(
        p1.json.results.map((x: Json) => x.pk),
        all.slice(0, 10),
      );
      const gone = e.events.deleteOldest(4);
      assert.deepEqual(gone, all.slice(0, 4));
      const p2 = await get(e, `${EV}?page_size=10&page=2&ordering=created`);
      assert.equal(p2.json.pagination.count, 96);
      assert.deepEqual(
        p2.json.results.map((x: Json) => x.pk),
        all.slice(14, 24),
        'rows 10..13 were skipped',
      );
      assert.equal(e.events.get(gone[0]!), undefined);
      assert.equal((await get(e, `${EV}${gone[0]}/`)).status, 404);
    });
  });

  void test('GDPR cleanup deletes a user’s events anywhere in the table', async () => {
    await withEmu({ events: 800, users: 20 }, async (e) => {
      const all = await listAll(e, `${EV}?page_size=100`);
      const pk = all.find((x) => typeof x.user.pk === 'number' && x.user.pk !== 1).user.pk as number;
      const n = all.filter((x) => x.user.pk === pk).length;
      assert.ok(n > 0);
      assert.equal(e.events.deleteByUserPk(pk), n);
      const after = await listAll(e, `${EV}?page_size=100`);
      assert.equal(after.length, 800 - n);
      assert.ok(after.every((x) => x.user.pk !== pk));
      assert.equal(e.events.count(), 800 - n);
      // removing a user (gdpr) also drops it from the directory
      const u = e.users.all()[3]!.pk;
      assert.ok(e.users.remove(u));
      assert.ok((await listAll(e, USERS)).every((x) => x.pk !== u));
      assert.ok((await listAll(e, GROUPS)).every((g) => !g.users.includes(u)));
    });
  });

  void test('insert in the past (commit lag) lands in created order; pks unique and stable', async () => {
    await withEmu(
      { events: 50, startTime: new Date('2026-01-01T00:00:00Z'), spacingMs: 60_000 },
      async (e) => {
        const before = e.events.allPks();
        const at = new Date('2026-01-01T00:10:30Z');
        const [pk] = e.events.insert(1, at);
        const after = e.events.allPks();
        assert.equal(after.length, 51);
        const idx = after.indexOf(pk!);
        assert.ok(idx > 0 && idx < 50, `inserted at ${idx}`);
        assert.deepEqual(
          after.filter((p) => p !== pk),
          before,
        );
        const asc = await listAll(e, `${EV}?ordering=created&page_size=100`);
        assert.deepEqual(
          asc.map((x) => x.pk),
          after,
        );
        assert.equal(new Set(after).size, after.length);
        const ev = e.events.get(pk!) as Json;
        assert.equal(ev.created, '2026-01-01T00:10:30.000000Z');
      },
    );
  });

  void test('cached filtered views follow inserts and deletes', async () => {
    await withEmu({ events: 300 }, async (e) => {
      const q = `${EV}?actions=login&page_size=100&ordering=created`;
      const a = await listAll(e, q);
      e.events.deleteOldest(50);
      e.events.insert(200);
      const b = await listAll(e, q);
      const expect = (await listAll(e, `${EV}?page_size=100&ordering=created`)).filter(
        (x) => x.action === 'login',
      );
      assert.deepEqual(
        b.map((x) => x.pk),
        expect.map((x) => x.pk),
      );
      assert.notDeepEqual(
        a.map((x) => x.pk),
        b.map((x) => x.pk),
      );
    });
  });

  void test('insert/delete timers', async () => {
    await withEmu({ events: 1000, insertPerSecond: 100, deletePerSecond: 50 }, async (e) => {
      const start = e.events.count();
      const pks0 = e.events.allPks();
      await new Promise((r) => setTimeout(r, 450));
      const pks1 = e.events.allPks();
      assert.ok(pks1.length > start, `grew: ${pks1.length}`);
      assert.notEqual(pks1[0], pks0[0], 'oldest were deleted');
      const newest = (await get(e, `${EV}?page_size=1`)).json.results[0];
      assert.ok(Math.abs(createdUs(newest.created) / 1000 - Date.now()) < 5000);
    });
  });
});

void describe('transport', () => {
  void test('gzip when accepted', async () => {
    await withEmu({ events: 200 }, async (e) => {
      const plain = await get(e, `${EV}?page_size=100`);
      assert.equal(plain.headers['content-encoding'], undefined);
      const z = await get(e, `${EV}?page_size=100`, { headers: { 'accept-encoding': 'gzip, deflate' } });
      assert.equal(z.headers['content-encoding'], 'gzip');
      assert.ok(z.raw.length < plain.raw.length / 3);
      assert.equal(z.text, plain.text);
    });
  });

  void test('request log and stats', async () => {
    await withEmu({ events: 30 }, async (e) => {
      await get(e, `${EV}?page_size=5&actions=login&actions=logout`);
      await get(e, USERS, { token: 'bad' });
      assert.equal(e.requests.length, 2);
      const [a, b] = e.requests;
      assert.equal(a!.path, EV);
      assert.deepEqual(a!.query, { page_size: '5', actions: ['login', 'logout'] });
      assert.equal(a!.status, 200);
      assert.ok(a!.bytes > 100);
      assert.equal(b!.status, 403);
      assert.equal(e.stats.requests, 2);
      assert.equal(e.stats.byPath[EV], 1);
      assert.equal(e.stats.byStatus['403'], 1);
      assert.ok(e.stats.cpuMs > 0);
      assert.equal(e.stats.bytes, a!.bytes + b!.bytes);
      e.resetStats();
      assert.equal(e.stats.requests, 0);
      assert.equal(e.requests.length, 0);
    });
    await withEmu({ events: 3, logRequests: false }, async (e) => {
      await get(e, EV);
      assert.equal(e.requests.length, 0);
      assert.equal(e.stats.requests, 1);
    });
  });

  void test('main.ts starts standalone and prints URL and token', async () => {
    const main = path.join(import.meta.dirname, 'main.ts');
    const child = spawn(
      process.execPath,
      [main, '--events', '25', '--port', '0', '--quiet', '--version', '2025.12'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m && out.includes('token: ')) resolve(m[1]!);
        });
        child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
      });
      assert.match(out, /token: emulator-token/);
      const r = await fetch(`${url}/api/v3/events/events/`, {
        headers: { authorization: 'Bearer emulator-token' },
      });
      const body = (await r.json()) as Json;
      assert.equal(body.pagination.count, 25);
      assert.equal(body.results.length, 20);
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  void test('main.ts rejects bad flags', async () => {
    const main = path.join(import.meta.dirname, 'main.ts');
    const child = spawn(process.execPath, [main, '--version', '1999.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    assert.equal(code, 2);
    assert.match(err, /--version must be one of/);
  });
});
