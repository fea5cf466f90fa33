import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hrTimeFromMillis } from '../../runtime/model.ts';
import type { LogRecord } from '../../runtime/model.ts';
import {
  DISALLOWED_DATASET_CHARS,
  DISALLOWED_NAMESPACE_CHARS,
  buildDocument,
  chunkItems,
  encodeItem,
  itemDocument,
  routeRecord,
  sanitizeDataStreamField,
} from './document.ts';

const defaults = { dataset: 'authentik.event', namespace: 'default' };
const T = Date.parse('2024-08-07T06:28:59.565Z');

function rec(p: Partial<LogRecord> = {}): LogRecord {
  return { observedTimestamp: hrTimeFromMillis(T + 1000), attributes: {}, ...p };
}

describe('sanitizeDataStreamField', () => {
  test('lowercases and replaces forbidden characters', () => {
    assert.equal(
      sanitizeDataStreamField('Foo/Bar*Baz?"<>| ,#:x', DISALLOWED_DATASET_CHARS, 'g'),
      `foo_bar_baz${'_'.repeat(9)}x`,
    );
    assert.equal(sanitizeDataStreamField('a\\b', DISALLOWED_NAMESPACE_CHARS, 'd'), 'a_b');
  });
  test('dataset and namespace lose their dashes', () => {
    assert.equal(sanitizeDataStreamField('my-data.set', DISALLOWED_DATASET_CHARS, 'g'), 'my_data.set');
    assert.equal(sanitizeDataStreamField('prod-eu', DISALLOWED_NAMESPACE_CHARS, 'd'), 'prod_eu');
  });
  test('truncates to 100 bytes without splitting a character', () => {
    assert.equal(sanitizeDataStreamField('x'.repeat(150), DISALLOWED_DATASET_CHARS, 'g').length, 100);
    const s = sanitizeDataStreamField('a' + 'ö'.repeat(60), DISALLOWED_DATASET_CHARS, 'g');
    assert.equal(Buffer.byteLength(s), 99); // 1 + 49*2; the 50th ö would make 101
    assert.ok(!s.includes('\uFFFD'));
  });
  test('empty falls back', () => {
    assert.equal(sanitizeDataStreamField('', DISALLOWED_DATASET_CHARS, 'generic'), 'generic');
  });
});

describe('routeRecord', () => {
  test('default data stream', () => {
    assert.deepEqual(routeRecord(rec(), defaults), {
      index: 'logs-authentik.event-default',
      dataStream: { type: 'logs', dataset: 'authentik.event', namespace: 'default' },
    });
  });
  test('record attributes win over resource attributes, and are sanitised', () => {
    const r = rec({
      attributes: { 'data_stream.dataset': 'Authentik.User', 'data_stream.namespace': 'Prod-EU' },
      resource: { 'data_stream.dataset': 'ignored', 'data_stream.namespace': 'ignored' },
    });
    assert.equal(routeRecord(r, defaults).index, 'logs-authentik.user-prod_eu');
    const r2 = rec({ resource: { 'data_stream.namespace': 'staging' } });
    assert.equal(routeRecord(r2, defaults).index, 'logs-authentik.event-staging');
  });
  test('static index and elasticsearch.index attribute', () => {
    assert.deepEqual(routeRecord(rec(), { ...defaults, index: 'my-index' }), { index: 'my-index' });
    assert.deepEqual(routeRecord(rec({ attributes: { 'elasticsearch.index': 'raw-target' } }), defaults), {
      index: 'raw-target',
    });
  });
});

describe('buildDocument', () => {
  test('map body is the document; @timestamp from the record timestamp; data_stream set', () => {
    const body = { event: { action: 'login' }, 'data_stream.dataset': 'stale' };
    const r = rec({ timestamp: hrTimeFromMillis(T), body });
    const doc = buildDocument(r, routeRecord(r, defaults));
    assert.equal(doc['@timestamp'], '2024-08-07T06:28:59.565Z');
    assert.deepEqual(doc['event'], { action: 'login' });
    assert.equal(doc['data_stream.dataset'], undefined);
    assert.deepEqual(doc['data_stream'], { type: 'logs', dataset: 'authentik.event', namespace: 'default' });
    assert.equal(body['data_stream.dataset'], 'stale', 'the record body is not modified');
  });
  test('an existing @timestamp is kept; observedTimestamp is the fallback', () => {
    const r = rec({ body: { '@timestamp': '2020-01-01T00:00:00Z' } });
    assert.equal(buildDocument(r, { index: 'x' })['@timestamp'], '2020-01-01T00:00:00Z');
    const r2 = rec({ body: { a: 1 } });
    assert.equal(buildDocument(r2, { index: 'x' })['@timestamp'], new Date(T + 1000).toISOString());
  });
  test('string and other bodies are wrapped as message, with attributes', () => {
    const r = rec({
      body: 'hello',
      severityText: 'WARN',
      attributes: { 'elasticsearch.document_id': 'x', 'user.name': 'alice', 'data_stream.dataset': 'a' },
    });
    const doc = buildDocument(r, { index: 'idx' });
    assert.deepEqual(doc, {
      '@timestamp': new Date(T + 1000).toISOString(),
      message: 'hello',
      'user.name': 'alice',
      'log.level': 'WARN',
    });
    assert.equal(buildDocument(rec({ body: 42 }), { index: 'i' })['message'], '42');
    assert.equal(buildDocument(rec({ body: [1, 'a'] }), { index: 'i' })['message'], '[1,"a"]');
    assert.equal(buildDocument(rec({ body: new Uint8Array([1, 2]) }), { index: 'i' })['message'], 'AQI=');
    assert.equal(buildDocument(rec(), { index: 'i' })['message'], '');
  });
});

describe('encodeItem / chunkItems', () => {
  test('create action with _id and the document line', () => {
    const r = rec({ attributes: { 'elasticsearch.document_id': 'a"b' }, body: { k: 'ü' } });
    const it = encodeItem(r, 3, defaults);
    const [meta, doc] = it.lines.split('\n');
    assert.deepEqual(JSON.parse(meta!), { create: { _index: 'logs-authentik.event-default', _id: 'a"b' } });
    assert.equal(JSON.parse(doc!).k, 'ü');
    assert.equal(itemDocument(it), doc);
    assert.equal(it.bytes, Buffer.byteLength(it.lines));
    assert.equal(it.pos, 3);
  });
  test('no _id without the attribute; bigint values become strings', () => {
    const it = encodeItem(rec({ body: { n: 5n as unknown as number } }), 0, defaults);
    assert.deepEqual(JSON.parse(it.lines.split('\n')[0]!), {
      create: { _index: 'logs-authentik.event-default' },
    });
    assert.equal(JSON.parse(itemDocument(it)).n, '5');
  });
  test('splits by count and by bytes; an oversized item travels alone', () => {
    const items = Array.from({ length: 10 }, (_, i) => encodeItem(rec({ body: { i } }), i, defaults));
    assert.deepEqual(
      chunkItems(items, 4, 1e9).map((c) => c.length),
      [4, 4, 2],
    );
    const one = items[0]!.bytes;
    assert.deepEqual(
      chunkItems(items, 100, one * 3).map((c) => c.length),
      [3, 3, 3, 1],
    );
    const big = encodeItem(rec({ body: { s: 'x'.repeat(5000) } }), 10, defaults);
    assert.deepEqual(
      chunkItems([items[0]!, big, items[1]!], 100, 1000).map((c) => c.length),
      [1, 1, 1],
    );
  });
});
