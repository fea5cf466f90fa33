import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComponentKind, StorageClient, StorageExtension } from '../../runtime/component.ts';
import type { LogRecord, LogsBatch } from '../../runtime/model.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { RetryableError } from '../../runtime/errors.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings, SinkConsumer } from '../../test/kit/index.ts';
import { factory } from './factory.ts';
import type { AuthentikChangesProcessor } from './processor.ts';
import { USER_CHANGE_KINDS, GROUP_CHANGE_KINDS } from './diff.ts';

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: {},
  expectedFixtureConfig: {
    storage: 'file_storage',
    storage_key: 'authentik-main',
    namespace: 'prod',
    counts_flush_interval: 10_000,
  },
});

/** A storage extension keeping values in a Map shared across processor instances (a "restart"). */
function memoryStorage(data = new Map<string, Buffer>()): StorageExtension & { data: Map<string, Buffer> } {
  const client: StorageClient = {
    get: (k) => Promise.resolve(data.get(k)),
    set: (k, v) => {
      data.set(k, Buffer.from(v));
      return Promise.resolve();
    },
    delete: (k) => {
      data.delete(k);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return {
    data,
    start: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    getClient: (_k: ComponentKind, _id: string) => Promise.resolve(client),
    getDirectory: () => Promise.resolve('/nonexistent'),
  };
}

interface User {
  pk: number;
  username: string;
  name: string;
  email: string;
  is_active: boolean;
  is_superuser: boolean;
  groups: string[];
  type: string;
  uuid: string;
  password_change_date: string;
  last_updated: string;
}
interface Group {
  pk: string;
  name: string;
  is_superuser: boolean;
  parents: string[];
  users: number[];
}

const ADMINS = 'aaaaaaaa-0000-4000-8000-000000000001';
const STAFF = 'aaaaaaaa-0000-4000-8000-000000000002';
const DEPT = 'aaaaaaaa-0000-4000-8000-000000000003';

function user(pk: number, over: Partial<User> = {}): User {
  return {
    pk,
    username: `user${pk}`,
    name: `User ${pk}`,
    email: `user${pk}@example.com`,
    is_active: true,
    is_superuser: false,
    groups: [],
    type: 'internal',
    uuid: `00000000-0000-4000-8000-${String(pk).padStart(12, '0')}`,
    password_change_date: '2026-01-01T00:00:00.000000Z',
    last_updated: '2026-01-01T00:00:00.000000Z',
    ...over,
  };
}

function rec(
  kind: 'user' | 'group',
  body: object,
  listing?: { id: string; mode: string; count: number },
): LogRecord {
  const attributes: Record<string, string | number> = { 'data_stream.dataset': `authentik.${kind}` };
  if (listing) {
    attributes['authentik.listing.id'] = listing.id;
    attributes['authentik.listing.mode'] = listing.mode;
    attributes['authentik.listing.count'] = listing.count;
  }
  return {
    timestamp: nowHrTime(),
    observedTimestamp: nowHrTime(),
    body: JSON.parse(JSON.stringify(body)) as LogRecord['body'],
    attributes,
    resource: { 'server.address': 'auth.example.com' },
  };
}

let listingN = 0;
function fullListing(kind: 'user' | 'group', items: object[]): LogsBatch {
  const l = { id: `${kind}s:full:${++listingN}`, mode: 'full', count: items.length };
  return items.map((i) => rec(kind, i, l));
}

function event(userPk: number): LogRecord {
  return {
    observedTimestamp: nowHrTime(),
    body: { pk: `e-${Math.random()}`, action: 'login', user: { pk: userPk, username: `user${userPk}` } },
    attributes: { 'data_stream.dataset': 'authentik.event' },
    resource: { 'server.address': 'auth.example.com' },
  };
}

async function make(storage = memoryStorage()) {
  const sink = new SinkConsumer();
  const p = (await factory.create(
    nopSettings('authentik_changes', 'processor'),
    factory.configSchema.parse({ storage: 'file_storage' }),
    sink,
  )) as AuthentikChangesProcessor;
  await p.start(nopHost({ file_storage: storage }));
  return { p, sink, storage };
}

function changes(sink: SinkConsumer): Record<string, unknown>[] {
  return sink
    .all()
    .filter((r) => r.attributes['data_stream.dataset'] === 'authentik.change')
    .map((r) => r.body as Record<string, unknown>);
}
const actions = (docs: Record<string, unknown>[]) =>
  docs.map((d) => (d.event as { action: string }).action).sort();

describe('authentik_changes', () => {
  test('first listings are a silent baseline; snapshots pass unchanged, listing attributes removed', async () => {
    const { p, sink } = await make();
    const groups = [{ pk: ADMINS, name: 'admins', is_superuser: true, parents: [], users: [] }];
    await p.consume(fullListing('group', groups));
    await p.consume(fullListing('user', [user(1), user(2)]));
    assert.equal(changes(sink).length, 0);
    const snap = sink.all().filter((r) => r.attributes['data_stream.dataset'] === 'authentik.user');
    assert.equal(snap.length, 2);
    assert.deepEqual(snap[0]!.attributes, { 'data_stream.dataset': 'authentik.user' });
    assert.deepEqual(snap[0]!.body, user(1));
    await p.shutdown();
  });

  test('every change kind once; deletion with the events shipped; restart neither repeats nor misses', async () => {
    const storage = memoryStorage();
    let { p, sink } = await make(storage);
    const g0: Group[] = [
      { pk: ADMINS, name: 'admins', is_superuser: true, parents: [], users: [] },
      { pk: STAFF, name: 'staff', is_superuser: false, parents: [], users: [] },
      { pk: DEPT, name: 'dept', is_superuser: false, parents: [], users: [] },
    ];
    await p.consume(fullListing('group', g0));
    await p.consume(fullListing('user', [user(1), user(2, { groups: [STAFF] }), user(3)]));
    await p.consume([event(3), event(3), event(3), event(1)]);

    // Round 1: user changes.
    await p.consume(
      fullListing('user', [
        user(1, { is_active: false, email: 'new1@example.com', last_updated: '2026-02-01T00:00:00.000000Z' }),
        user(2, {
          groups: [ADMINS],
          is_superuser: true,
          username: 'renamed2',
          type: 'external',
          name: 'Two',
        }),
        user(4),
      ]),
    );
    let docs = changes(sink);
    assert.deepEqual(actions(docs), [
      'user-added-to-group',
      'user-created',
      'user-deactivated',
      'user-deleted',
      'user-email-changed',
      'user-name-changed',
      'user-removed-from-group',
      'user-superuser-granted',
      'user-type-changed',
      'user-username-changed',
    ]);
    const del = docs.find((d) => (d.event as { action: string }).action === 'user-deleted')!;
    assert.equal((del.authentik as { change: { events_shipped: number } }).change.events_shipped, 3);
    assert.match(del.message as string, /shipped 3 of its events/);
    const su = docs.find((d) => (d.event as { action: string }).action === 'user-superuser-granted')!;
    assert.deepEqual((su.authentik as { change: { via_groups: unknown } }).change.via_groups, [
      { id: ADMINS, name: 'admins' },
    ]);
    assert.deepEqual((su.event as { type: string[] }).type, ['user', 'change']);
    assert.deepEqual((su.user as { target: { name: string } }).target.name, 'renamed2');
    const added = docs.find((d) => (d.event as { action: string }).action === 'user-added-to-group')!;
    assert.deepEqual(added.group, { id: ADMINS, name: 'admins' });
    const mail = docs.find((d) => (d.event as { action: string }).action === 'user-email-changed')!;
    assert.equal(mail['@timestamp'], '2026-02-01T00:00:00.000Z');
    assert.deepEqual((mail.authentik as { change: { before: unknown } }).change.before, {
      email: 'user1@example.com',
    });
    for (const d of docs) {
      assert.equal((d.event as { kind: string }).kind, 'event');
      assert.deepEqual((d.event as { category: string[] }).category, ['iam']);
      assert.deepEqual(d.data_stream, { type: 'logs', dataset: 'authentik.change', namespace: 'default' });
    }

    // Restart: nothing again for the same listing.
    await p.shutdown();
    ({ p, sink } = await make(storage));
    const same = [
      user(1, { is_active: false, email: 'new1@example.com', last_updated: '2026-02-01T00:00:00.000000Z' }),
      user(2, { groups: [ADMINS], is_superuser: true, username: 'renamed2', type: 'external', name: 'Two' }),
      user(4),
    ];
    await p.consume(fullListing('group', g0));
    await p.consume(fullListing('user', same));
    assert.equal(changes(sink).length, 0, 'a restart re-emits nothing');

    // Changes made "while down" (before the next listing) are reported: round 2.
    await p.shutdown();
    ({ p, sink } = await make(storage));
    await p.consume(
      fullListing('group', [
        { pk: ADMINS, name: 'admins', is_superuser: false, parents: [], users: [] },
        { pk: STAFF, name: 'staff-team', is_superuser: false, parents: [DEPT], users: [] },
        {
          pk: 'aaaaaaaa-0000-4000-8000-000000000009',
          name: 'new',
          is_superuser: false,
          parents: [],
          users: [],
        },
      ]),
    );
    await p.consume(
      fullListing('user', [
        user(1, {
          is_active: true,
          email: 'new1@example.com',
          password_change_date: '2026-03-01T00:00:00.000000Z',
        }),
        user(2, {
          groups: [ADMINS],
          is_superuser: false,
          username: 'renamed2',
          type: 'external',
          name: 'Two',
        }),
        user(4),
      ]),
    );
    docs = changes(sink);
    assert.deepEqual(actions(docs), [
      'group-created',
      'group-deleted',
      'group-parent-changed',
      'group-renamed',
      'group-superuser-revoked',
      'user-activated',
      'user-password-changed',
      'user-superuser-revoked',
    ]);
    const parent = docs.find((d) => (d.event as { action: string }).action === 'group-parent-changed')!;
    assert.deepEqual((parent.authentik as { change: { after: unknown } }).change.after, {
      parents: [DEPT],
      parent_names: ['dept'],
    });
    // Every kind is covered by this test.
    const seen = new Set(actions(docs));
    await p.shutdown();
    for (const k of GROUP_CHANGE_KINDS) {
      if (k !== 'superuser-granted') assert.ok(seen.has(`group-${k}`), k);
    }
    assert.ok(USER_CHANGE_KINDS.length === 13);
  });

  test('a group gaining is_superuser is reported; an incomplete listing deletes nothing', async () => {
    const { p, sink } = await make();
    await p.consume(
      fullListing('group', [{ pk: STAFF, name: 'staff', is_superuser: false, parents: [], users: [1] }]),
    );
    await p.consume(fullListing('user', [user(1, { groups: [STAFF] }), user(2)]));
    await p.consume(
      fullListing('group', [{ pk: STAFF, name: 'staff', is_superuser: true, parents: [], users: [1] }]),
    );
    // The user listing stops after one of two users (count 2): no deletion.
    const l = { id: 'users:full:partial', mode: 'full', count: 2 };
    await p.consume([rec('user', user(1, { groups: [STAFF], is_superuser: true }), l)]);
    const docs = changes(sink);
    assert.deepEqual(actions(docs), ['group-superuser-granted', 'user-superuser-granted']);
    const su = docs.find((d) => (d.event as { action: string }).action === 'user-superuser-granted')!;
    assert.deepEqual((su.authentik as { change: { via_groups: unknown } }).change.via_groups, [
      { id: STAFF, name: 'staff' },
    ]);
    await p.shutdown();
  });

  test('a refused batch leaves the state as it was; the retry carries the same changes and ids', async () => {
    const { p, sink } = await make();
    await p.consume(fullListing('user', [user(1)]));
    sink.failWith = (_b, call) => (call === 2 ? new RetryableError('backend down') : undefined);
    const batch = () => [
      rec('user', user(1, { is_active: false }), { id: 'users:changes:1', mode: 'changes', count: 1 }),
    ];
    await assert.rejects(p.consume(batch()), /backend down/);
    await p.consume(batch());
    await p.consume(batch());
    const docs = changes(sink);
    assert.deepEqual(actions(docs), ['user-deactivated']);
    const ids = sink
      .all()
      .filter((r) => r.attributes['data_stream.dataset'] === 'authentik.change')
      .map((r) => r.attributes['elasticsearch.document_id']);
    assert.equal(ids.length, 1);
    assert.equal(typeof ids[0], 'string');
    await p.shutdown();
  });

  test('ECS snapshot documents (after authentik_ecs) are read through event.original', async () => {
    const { p, sink } = await make();
    const ecs = (u: User) => ({
      ecs: { version: '8.11.0' },
      event: { original: JSON.stringify(u), kind: 'asset' },
    });
    await p.consume(fullListing('user', [ecs(user(1))]));
    await p.consume(fullListing('user', [ecs(user(1, { email: 'x@example.org' }))]));
    assert.deepEqual(actions(changes(sink)), ['user-email-changed']);
    await p.shutdown();
  });

  test('an unreadable stored state stops the batch (retryable), reports permanent_error, recovers once deleted', async () => {
    const storage = memoryStorage();
    storage.data.set('auth.example.com/users', Buffer.from('{not json'));
    const sink = new SinkConsumer();
    const settings = nopSettings('authentik_changes', 'processor');
    const p = await factory.create(settings, factory.configSchema.parse({ storage: 'file_storage' }), sink);
    await p.start(nopHost({ file_storage: storage }));
    await assert.rejects(
      p.consume(fullListing('user', [user(1)])),
      (e: Error) => e instanceof RetryableError,
    );
    assert.equal(sink.count(), 0, 'nothing forwarded');
    assert.equal(settings.statuses.at(-1)?.status, 'permanent_error');
    assert.match(settings.statuses.at(-1)?.message ?? '', /auth\.example\.com\/users.*not valid JSON/);
    storage.data.delete('auth.example.com/users');
    await p.consume(fullListing('user', [user(1)]));
    assert.equal(sink.count(), 1);
    await p.shutdown();
  });
});
