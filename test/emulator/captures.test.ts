/**
 * The emulator against real server responses (../shared/authentik/captures/, recorded from authentik
 * 2025.12.4 and 2023.10.7): status, envelope keys, pagination, field names and types of events, users
 * and groups, page-size defaults and clamps, error bodies, `is_enterprise`. The 2023.10.7 captures are
 * compared with the oldest profile (2024.2), the closest generation the emulator models; the known
 * differences between those two releases (the `tenant` key renamed `brand` in 2024.2) are stated below.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { needShared, sharedPath } from '../kit/shared.ts';
import { startEmulator } from './index.ts';
import type { Emulator, VersionProfile } from './index.ts';
import { get } from './helpers.ts';
import type { Json } from './helpers.ts';

const DIR = sharedPath('authentik', 'captures');
const skip = needShared('authentik/captures');

const read = (release: string, name: string): Json =>
  JSON.parse(readFileSync(join(DIR, release, name), 'utf8'));
/** HTTP status of a capture: `.status`, or the first line of `.headers`. */
function statusOf(release: string, base: string): number {
  const st = join(DIR, release, `${base}.status`);
  if (existsSync(st)) return Number(readFileSync(st, 'utf8').trim());
  const first = readFileSync(join(DIR, release, `${base}.headers`), 'utf8').split('\n')[0]!;
  return Number(first.split(' ')[1]);
}
function bodyOf(release: string, base: string): Json {
  for (const ext of ['json', 'body']) {
    const p = join(DIR, release, `${base}.${ext}`);
    if (existsSync(p)) return JSON.parse(readFileSync(p, 'utf8'));
  }
  throw new Error(`no body for ${release}/${base}`);
}

const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
/** key → the set of types seen over records (null counted separately). */
function shape(records: Record<string, unknown>[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const r of records)
    for (const [k, v] of Object.entries(r)) (m.get(k) ?? m.set(k, new Set()).get(k)!).add(typeOf(v));
  return m;
}
function assertSameShape(
  real: Record<string, unknown>[],
  emu: Record<string, unknown>[],
  what: string,
  rename: Record<string, string> = {},
) {
  const a = shape(
    real.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [rename[k] ?? k, v]))),
  );
  const b = shape(emu);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort(), `${what}: field names`);
  for (const [k, types] of a) {
    const mine = b.get(k)!;
    const nonNull = [...types].filter((t) => t !== 'null');
    const mineNonNull = [...mine].filter((t) => t !== 'null');
    if (nonNull.length > 0 && mineNonNull.length > 0)
      assert.ok(
        mineNonNull.every((t) => nonNull.includes(t)),
        `${what}.${k}: emulator ${[...mine].join(',')} vs real ${[...types].join(',')}`,
      );
  }
}

interface Case {
  release: string;
  profile: VersionProfile;
  files: Record<string, string>;
  /** real key → emulator key */
  rename: Record<string, string>;
  defaultSize: number;
  ps1000: number;
}

const CASES: Case[] = [
  {
    release: '2025.12.4',
    profile: '2025.12',
    files: {
      default: 'events_default',
      ps0: 'events_ps0',
      ps1000: 'events_ps1000',
      beyond: 'events_page_beyond',
      notint: 'events_page_bad',
      unauth: 'events_unauth',
      badtoken: 'events_bad_token',
      emptybearer: 'events_empty_bearer',
      config: 'root_config_anon',
      users: 'users_ps100',
      groups: 'groups_ps100',
    },
    rename: {},
    defaultSize: 20,
    ps1000: 100,
  },
  {
    release: '2023.10.7',
    profile: '2024.2',
    files: {
      default: 'events_default',
      ps0: 'events_ps0',
      ps1000: 'events_ps1000_p1',
      beyond: 'events_page_beyond',
      notint: 'events_page_notint',
      unauth: 'unauth_events',
      badtoken: 'badtoken_events',
      emptybearer: 'emptybearer_events',
      config: 'root_config_unauth',
      users: 'users_ps100',
    },
    // 2024.2 renamed the event's `tenant` to `brand` (website/docs/releases/2024/v2024.2.md).
    rename: { tenant: 'brand' },
    defaultSize: 100,
    ps1000: 1000,
  },
];

describe('emulator vs captures of real servers', { skip }, () => {
  for (const c of CASES) {
    void describe(`${c.release} (profile ${c.profile})`, () => {
      let e: Emulator;
      const EV = '/api/v3/events/events/';
      const withEmu = async (fn: () => Promise<void>) => {
        e = await startEmulator({ events: 2500, users: 7, groups: 6, version: c.profile, seed: 5 });
        try {
          await fn();
        } finally {
          await e.close();
        }
      };

      void test('events list: status, envelope, pagination, event fields and types, default page size', () =>
        withEmu(async () => {
          const real = bodyOf(c.release, c.files.default!);
          assert.equal(statusOf(c.release, c.files.default!), 200);
          const r = await get(e, EV);
          assert.equal(r.status, 200);
          assert.deepEqual(Object.keys(r.json).sort(), Object.keys(real).sort(), 'envelope keys');
          if ('autocomplete' in real) assert.equal(typeOf(r.json.autocomplete), typeOf(real.autocomplete));
          assert.deepEqual(Object.keys(r.json.pagination).sort(), Object.keys(real.pagination).sort());
          for (const [k, v] of Object.entries(real.pagination))
            assert.equal(typeOf(r.json.pagination[k]), typeOf(v), k);
          assert.equal(real.results.length, c.defaultSize);
          assert.equal(r.json.results.length, c.defaultSize, 'default page size');
          const one = read(c.release, 'events_one_per_action.json') as
            Record<string, unknown>[] | Record<string, Record<string, unknown>>;
          const realEvents = [...real.results, ...(Array.isArray(one) ? one : Object.values(one))];
          const emuEvents = (await get(e, `${EV}?page_size=${Math.min(c.ps1000, 1000)}`)).json.results;
          assertSameShape(realEvents, emuEvents, 'event', c.rename);
        }));

      void test('page size: 0 gives the default, 1000 is clamped or honoured as on the real server', () =>
        withEmu(async () => {
          const ps0 = bodyOf(c.release, c.files.ps0!);
          assert.equal((await get(e, `${EV}?page_size=0`)).json.results.length, ps0.results.length);
          const ps1000 = bodyOf(c.release, c.files.ps1000!);
          assert.equal(ps1000.results.length, c.ps1000);
          assert.equal((await get(e, `${EV}?page_size=1000`)).json.results.length, c.ps1000);
        }));

      void test('error bodies and statuses as captured', () =>
        withEmu(async () => {
          const cases: [string, string, Parameters<typeof get>[2]][] = [
            [c.files.beyond!, `${EV}?page=99999`, {}],
            [c.files.notint!, `${EV}?page=abc`, {}],
            [c.files.unauth!, EV, { token: null }],
            [c.files.badtoken!, EV, { authorization: 'Bearer not-a-token' }],
            [c.files.emptybearer!, EV, { authorization: 'Bearer ' }],
          ];
          for (const [file, path, o] of cases) {
            const r = await get(e, path, o);
            assert.equal(r.status, statusOf(c.release, file), `${file}: status`);
            assert.deepEqual(r.json, bodyOf(c.release, file), `${file}: body`);
          }
        }));

      void test('root/config lists is_enterprise without a licence', () =>
        withEmu(async () => {
          const real = bodyOf(c.release, c.files.config!);
          assert.ok(real.capabilities.includes('is_enterprise'));
          const r = await get(e, '/api/v3/root/config/', { token: null });
          assert.equal(r.status, 200);
          assert.ok(r.json.capabilities.includes('is_enterprise'));
          for (const k of Object.keys(real))
            if (k !== 'cache_timeout_reputation') assert.ok(k in r.json, `root/config.${k}`);
        }));

      if (c.release === '2025.12.4') {
        void test('users and groups: field names and types', () =>
          withEmu(async () => {
            const users = bodyOf(c.release, c.files.users!);
            assertSameShape(
              users.results,
              (await get(e, '/api/v3/core/users/?page_size=100')).json.results,
              'user',
            );
            const groups = bodyOf(c.release, c.files.groups!);
            assertSameShape(
              groups.results,
              (await get(e, '/api/v3/core/groups/?page_size=100')).json.results,
              'group',
            );
            const bad = bodyOf(c.release, 'events_actions_bad');
            const r = await get(e, `${EV}?actions=foo`);
            assert.equal(r.status, statusOf(c.release, 'events_actions_bad'));
            assert.deepEqual(r.json, bad);
          }));
      }
    });
  }
});
