/**
 * The emulator's responses validated against authentik's real OpenAPI schema (2026.2.2,
 * ../shared/authentik/schema.yml) with ajv, so the emulator cannot drift from the real API.
 *
 * Strictness added on top of the schema: every object schema that declares `properties` is closed
 * (`additionalProperties: false`), so an emulator field the real API does not have fails too.
 *
 * Two places where the real server is looser than its own schema (both documented in
 * ../shared/spec/authentik-api.md and seen in the Elastic fixtures) are relaxed explicitly:
 *  - `EventActions` lists the literal `custom_`, but `Event.new("foo")` stores `custom_foo`;
 *  - `email` has `format: email`, but users without an address carry `""`.
 *
 * Older profiles are validated against the 2026.2 schema with the documented differences of
 * spec §6 applied (e.g. 2025.10: `parent`/`parent_name` instead of `parents`, no `roles`).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { startEmulator, PROFILES, actionsOf } from './index.ts';
import type { Emulator, VersionProfile } from './index.ts';
import { needShared, sharedPath } from '../kit/shared.ts';
import { get } from './helpers.ts';
import type { Json } from './helpers.ts';

const SCHEMA_PATH = sharedPath('authentik/schema.yml');
const NEED = needShared('authentik/schema.yml');

type Schema = Record<string, Json>;

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function loadComponents(): Record<string, Schema> {
  const doc: Json = parse(readFileSync(SCHEMA_PATH, 'utf8'));
  return doc.components.schemas as Record<string, Schema>;
}

/** Deep-copies a schema tree, closing every object that declares properties. */
function closeObjects(s: Json): Json {
  if (Array.isArray(s)) return s.map(closeObjects);
  if (s === null || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s))
    out[k] = k === 'properties' ? mapValues(v, closeObjects) : closeObjects(v);
  if (out.properties && out.additionalProperties === undefined && out.type === 'object')
    out.additionalProperties = false;
  return out;
}
function mapValues(o: Json, f: (v: Json) => Json): Json {
  return Object.fromEntries(Object.entries(o as Record<string, Json>).map(([k, v]) => [k, f(v)]));
}

const NAMES = [
  'Pagination',
  'Autocomplete',
  'PaginatedEventList',
  'Event',
  'EventActions',
  'PaginatedUserList',
  'User',
  'UserTypeEnum',
  'PartialGroup',
  'Role',
  'PaginatedGroupList',
  'Group',
  'PartialUser',
  'RelatedGroup',
  'Version',
  'GenericError',
  'ValidationError',
  'Config',
  'ErrorReportingConfig',
  'CapabilitiesEnum',
];

/** The 2026.2 schemas with the documented per-release differences applied (spec §6). */
function schemasFor(all: Record<string, Schema>, profile: VersionProfile): Record<string, Schema> {
  const s: Record<string, Schema> = {};
  for (const n of NAMES) {
    assert.ok(all[n], `schema.yml has components.schemas.${n}`);
    s[n] = structuredClone(all[n]);
  }
  const idx = PROFILES.indexOf(profile);
  const before = (v: VersionProfile) => idx < PROFILES.indexOf(v);
  const drop = (name: string, ...props: string[]) => {
    for (const p of props) {
      assert.ok(s[name]!.properties[p], `${name}.${p} exists in 2026.2`);
      delete s[name]!.properties[p];
      s[name]!.required = (s[name]!.required ?? []).filter((r: string) => r !== p);
    }
  };
  // custom_* actions (real data) and the actions a release knows
  s.EventActions = {
    anyOf: [
      { type: 'string', enum: actionsOf(profile) },
      { type: 'string', pattern: '^custom_.+' },
    ],
  };
  if (before('2025.12')) {
    drop('Group', 'parents', 'parents_obj', 'inherited_roles_obj');
    s.Group!.properties.parent = { type: 'string', format: 'uuid', nullable: true };
    s.Group!.properties.parent_name = { type: 'string', nullable: true, readOnly: true };
    s.Group!.required.push('parent_name');
    s.PartialGroup!.properties.parent = { type: 'string', format: 'uuid', nullable: true };
    s.PartialGroup!.properties.parent_name = { type: 'string', nullable: true, readOnly: true };
    s.PartialGroup!.required.push('parent_name');
    drop('User', 'roles', 'roles_obj');
  }
  if (before('2025.8')) {
    for (const l of ['PaginatedEventList', 'PaginatedUserList', 'PaginatedGroupList'])
      drop(l, 'autocomplete');
    drop('User', 'last_updated', 'date_joined', 'password_change_date');
    drop('Group', 'children', 'children_obj');
  }
  if (before('2024.4')) {
    // no include_* flags yet: the *_obj lists are always filled
    s.User!.properties.groups_obj.nullable = false;
    s.Group!.properties.users_obj.nullable = false;
  }
  return s;
}

function compile(all: Record<string, Schema>, profile: VersionProfile): Record<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  // authentik serialises users without an address as "" although the schema says format: email
  const email = /^[^\s@]+@[^\s@]+$/;
  ajv.addFormat('email', { type: 'string', validate: (x: string) => x === '' || email.test(x) });
  ajv.addFormat('double', true);
  const comps = mapValues(schemasFor(all, profile), closeObjects);
  ajv.addSchema({ $id: 'authentik', components: { schemas: comps } });
  const out: Record<string, ValidateFunction> = {};
  for (const n of NAMES) out[n] = ajv.getSchema(`authentik#/components/schemas/${n}`)!;
  return out;
}

function check(v: ValidateFunction, body: unknown, what: string): void {
  if (!v(body)) {
    assert.fail(`${what}: ${JSON.stringify(v.errors?.slice(0, 5), null, 1)}`);
  }
}

const all = NEED ? {} : loadComponents();

void describe('emulator responses validate against authentik 2026.2.2 schema.yml', { skip: NEED }, () => {
  let e: Emulator;
  let v: Record<string, ValidateFunction>;
  before(async () => {
    v = compile(all, '2026.2');
    e = await startEmulator({ events: 2500, users: 120, groups: 25, enterprise: true, seed: 42 });
  });
  after(() => e.close());

  void test('the validator is not vacuous (broken records fail)', () => {
    assert.equal(v.Event!({ pk: 'x', action: 'login', app: 'a', created: 'now' }), false);
    assert.equal(
      v.Event!({
        pk: '1e399dbf-bb30-4d0f-acf3-a5275e065cd0',
        action: 'nope',
        app: 'a',
        created: '2024-08-07T06:28:59.565191Z',
      }),
      false,
    );
    assert.equal(
      v.Event!({
        pk: '1e399dbf-bb30-4d0f-acf3-a5275e065cd0',
        action: 'login',
        app: 'a',
        created: '2024-08-07T06:28:59.565191Z',
        tenant: {},
      }),
      false,
    );
    assert.equal(
      v.Event!({
        pk: '1e399dbf-bb30-4d0f-acf3-a5275e065cd0',
        action: 'custom_x',
        app: 'a',
        created: '2024-08-07T06:28:59.565191Z',
      }),
      true,
    );
    assert.equal(v.PaginatedGroupList!({ pagination: {}, results: [] }), false);
  });

  void test(
    'the Elastic fixture records validate (the relaxations are the only ones needed)',
    { skip: needShared('fixtures/elastic-authentik') },
    () => {
      const fx = sharedPath('fixtures/elastic-authentik');
      const lines = readFileSync(path.join(fx, 'event/_dev/test/pipeline/test-event.log'), 'utf8')
        .trim()
        .split('\n');
      for (const l of lines) check(v.Event!, JSON.parse(l), 'fixture event');
    },
  );

  void test('events: many pages and parameter variants', async () => {
    const queries = [
      '',
      '?page_size=100',
      '?page_size=100&page=7',
      '?page_size=100&page=last',
      '?ordering=created&page_size=100&page=3',
      '?ordering=-created,pk&page_size=37&page=11',
      '?ordering=action&page_size=50&page=9',
      '?search=login',
      `?search=${encodeURIComponent('created >= "2000-01-01 00:00:00"')}&ordering=created&page_size=100&page=2`,
      '?actions=login&actions=model_updated&page_size=100',
    ];
    let n = 0;
    for (const q of queries) {
      const r = await get(e, `/api/v3/events/events/${q}`);
      assert.equal(r.status, 200, q);
      check(v.PaginatedEventList!, r.json, `events ${q}`);
      n += r.json.results.length;
    }
    assert.ok(n > 500);
    // every page of the table
    for (let page = 1; ; page++) {
      const r = await get(e, `/api/v3/events/events/?page_size=100&page=${page}`);
      check(v.PaginatedEventList!, r.json, `events page ${page}`);
      if (r.json.pagination.next === 0) break;
    }
    const one = (await get(e, '/api/v3/events/events/?page_size=1')).json.results[0];
    const d = await get(e, `/api/v3/events/events/${one.pk}/`);
    check(v.Event!, d.json, 'event detail');
  });

  void test('users and groups with every include_* combination', async () => {
    for (const ig of ['', 'include_groups=false', 'include_groups=true']) {
      for (const ir of ['', 'include_roles=false']) {
        for (const page of [1, 2, 3]) {
          const q = [ig, ir, 'page_size=50', `page=${page}`].filter((x) => x !== '').join('&');
          const r = await get(e, `/api/v3/core/users/?${q}`);
          assert.equal(r.status, 200, q);
          check(v.PaginatedUserList!, r.json, `users ${q}`);
        }
      }
    }
    const flags = ['include_users', 'include_children', 'include_parents', 'include_inherited_roles'];
    for (let mask = 0; mask < 16; mask++) {
      const q = flags.map((f, i) => `${f}=${(mask >> i) & 1 ? 'true' : 'false'}`).join('&');
      const r = await get(e, `/api/v3/core/groups/?${q}&page_size=100`);
      check(v.PaginatedGroupList!, r.json, `groups ${q}`);
    }
  });

  void test('version, root config and error bodies', async () => {
    check(v.Version!, (await get(e, '/api/v3/admin/version/')).json, 'version');
    check(v.Config!, (await get(e, '/api/v3/root/config/', { token: null })).json, 'config');
    for (const [p, o] of [
      ['/api/v3/events/events/', { token: null }],
      ['/api/v3/events/events/', { token: 'bad' }],
      ['/api/v3/events/events/?page=999999', {}],
      ['/api/v3/core/users/', { authorization: 'Bearer' }],
    ] as const) {
      const r = await get(e, p, o);
      assert.ok(r.status === 403 || r.status === 404);
      check(v.GenericError!, r.json, `error ${p}`);
    }
    const bad = await get(e, '/api/v3/core/users/?last_updated__gt=nope');
    assert.equal(bad.status, 400);
    check(v.ValidationError!, bad.json, 'validation error');
  });
});

void describe(
  'other profiles validate against the 2026.2 schema with the documented differences (2026.5: none)',
  { skip: NEED },
  () => {
    for (const profile of PROFILES.filter((p) => p !== '2026.2')) {
      void test(profile, async () => {
        const v = compile(all, profile);
        // the derived schema must reject a 2026.2 group on releases before 2025.12 (and vice versa)
        const e = await startEmulator({ events: 600, users: 60, groups: 20, version: profile, seed: 9 });
        try {
          for (const q of [
            '?page_size=100',
            '?page_size=100&page=4',
            '?ordering=created&page_size=100&page=2',
          ]) {
            check(
              v.PaginatedEventList!,
              (await get(e, `/api/v3/events/events/${q}`)).json,
              `${profile} events ${q}`,
            );
          }
          for (const q of [
            '',
            '?include_groups=false',
            '?include_groups=false&include_roles=false&page=2&page_size=20',
          ]) {
            check(
              v.PaginatedUserList!,
              (await get(e, `/api/v3/core/users/${q}`)).json,
              `${profile} users ${q}`,
            );
          }
          for (const q of ['', '?include_users=false', '?include_children=true&include_parents=true']) {
            check(
              v.PaginatedGroupList!,
              (await get(e, `/api/v3/core/groups/${q}`)).json,
              `${profile} groups ${q}`,
            );
          }
          check(v.Version!, (await get(e, '/api/v3/admin/version/')).json, `${profile} version`);
          const g = (await get(e, '/api/v3/core/groups/')).json;
          const v26 = compile(all, '2026.2');
          if (PROFILES.indexOf(profile) < PROFILES.indexOf('2025.12')) {
            assert.equal(v26.PaginatedGroupList!(g), false, `${profile} groups must not pass as 2026.2`);
          }
        } finally {
          await e.close();
        }
      });
    }
  },
);
