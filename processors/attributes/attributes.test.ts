import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PermanentError } from '../../runtime/errors.ts';
import type { LogAttributes, LogRecord } from '../../runtime/model.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { errConsumer, nopHost, nopSettings, SinkConsumer } from '../../test/kit/index.ts';
import { factory } from './factory.ts';

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: { actions: [{ key: 'data_stream.namespace', action: 'insert', value: 'default' }] },
  expectedFixtureConfig: {
    actions: [
      { key: 'data_stream.namespace', action: 'insert', value: 'production' },
      { key: 'service.name', action: 'update', value: 'authentik' },
      { key: 'labels', action: 'upsert', value: ['a', 'b'] },
      { key: 'deployment.environment', action: 'upsert', from_attribute: 'data_stream.namespace' },
      { key: 'log.record.original', action: 'delete' },
    ],
  },
});

async function run(actions: unknown[], attrs: LogAttributes[]): Promise<LogAttributes[]> {
  const sink = new SinkConsumer();
  const p = await factory.create(
    nopSettings('attributes', 'processor'),
    factory.configSchema.parse({ actions }),
    sink,
  );
  await p.start(nopHost());
  const batch: LogRecord[] = attrs.map((a) => ({
    observedTimestamp: [0, 0],
    body: 'b',
    attributes: { ...a },
  }));
  await p.consume(batch);
  await p.shutdown();
  return sink.all().map((r) => r.attributes);
}

describe('attributes processor: actions', () => {
  const present = { k: 'old', other: 'o' };
  const absent = { other: 'o' };

  test('insert sets only when absent', async () => {
    assert.deepEqual(await run([{ key: 'k', action: 'insert', value: 'new' }], [present, absent]), [
      { k: 'old', other: 'o' },
      { other: 'o', k: 'new' },
    ]);
  });

  test('update sets only when present', async () => {
    assert.deepEqual(await run([{ key: 'k', action: 'update', value: 'new' }], [present, absent]), [
      { k: 'new', other: 'o' },
      { other: 'o' },
    ]);
  });

  test('upsert sets in both cases', async () => {
    assert.deepEqual(await run([{ key: 'k', action: 'upsert', value: 7 }], [present, absent]), [
      { k: 7, other: 'o' },
      { other: 'o', k: 7 },
    ]);
  });

  test('delete removes the key when present', async () => {
    assert.deepEqual(await run([{ key: 'k', action: 'delete' }], [present, absent]), [
      { other: 'o' },
      { other: 'o' },
    ]);
  });

  test('from_attribute copies another attribute, and does nothing when that one is absent', async () => {
    const actions = [
      { key: 'copy_i', action: 'insert', from_attribute: 'other' },
      { key: 'k', action: 'update', from_attribute: 'other' },
      { key: 'u', action: 'upsert', from_attribute: 'missing' },
    ];
    assert.deepEqual(await run(actions, [present, { x: 1 }]), [
      { k: 'o', other: 'o', copy_i: 'o' },
      { x: 1 },
    ]);
  });

  test('actions apply in order, and list values are not shared between records', async () => {
    const out = await run(
      [
        { key: 'tags', action: 'upsert', value: ['a', 'b'] },
        { key: 'tags2', action: 'insert', from_attribute: 'tags' },
        { key: 'tags', action: 'delete' },
      ],
      [{}, {}],
    );
    assert.deepEqual(out, [{ tags2: ['a', 'b'] }, { tags2: ['a', 'b'] }]);
    assert.notEqual(out[0]!['tags2'], out[1]!['tags2']);
  });

  test('downstream errors pass through unchanged; consume after shutdown is refused', async () => {
    const err = new PermanentError('nope');
    const p = await factory.create(
      nopSettings('attributes', 'processor'),
      factory.configSchema.parse({ actions: [{ key: 'a', action: 'delete' }] }),
      errConsumer(err),
    );
    await p.start(nopHost());
    await assert.rejects(p.consume([{ observedTimestamp: [0, 0], attributes: { a: 1 } }]), (e) => e === err);
    await p.shutdown();
    await assert.rejects(p.consume([]), /shut down/);
  });

  test('declares that it mutates data', () => {
    const p = factory.create(
      nopSettings('attributes', 'processor'),
      factory.configSchema.parse({ actions: [{ key: 'a', action: 'delete' }] }),
      new SinkConsumer(),
    );
    assert.equal((p as { capabilities: { mutatesData: boolean } }).capabilities.mutatesData, true);
  });
});

describe('attributes processor: config validation', () => {
  const cases: [string, unknown, RegExp][] = [
    ['no actions key', {}, /required: a list of actions/],
    ['empty actions', { actions: [] }, /at least one action/],
    [
      'insert without value',
      { actions: [{ key: 'a', action: 'insert' }] },
      /value or from_attribute is required for insert/,
    ],
    [
      'both value and from_attribute',
      { actions: [{ key: 'a', action: 'upsert', value: 1, from_attribute: 'b' }] },
      /either value or from_attribute/,
    ],
    [
      'delete with a value',
      { actions: [{ key: 'a', action: 'delete', value: 1 }] },
      /not allowed with action delete/,
    ],
    ['unknown action', { actions: [{ key: 'a', action: 'hash' }] }, /one of insert, update, upsert, delete/],
    ['empty key', { actions: [{ key: '', action: 'delete' }] }, /must not be empty/],
    [
      'copy from itself',
      { actions: [{ key: 'a', action: 'upsert', from_attribute: 'a' }] },
      /must differ from key/,
    ],
    [
      'object value',
      { actions: [{ key: 'a', action: 'insert', value: { x: 1 } }] },
      /string, number, boolean/,
    ],
    ['typo in an action', { actions: [{ key: 'a', action: 'delete', vaule: 1 }] }, /Unrecognized key/],
  ];
  for (const [name, raw, re] of cases) {
    test(name, () => {
      const r = factory.configSchema.safeParse(raw);
      assert.equal(r.success, false);
      assert.match(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'), re);
    });
  }

  test('the problem points at the action index', () => {
    const r = factory.configSchema.safeParse({
      actions: [
        { key: 'a', action: 'delete' },
        { key: 'b', action: 'update' },
      ],
    });
    assert.deepEqual(r.error?.issues[0]?.path, ['actions', 1, 'value']);
  });
});
