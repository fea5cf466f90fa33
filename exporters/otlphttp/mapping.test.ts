import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SeverityNumber, hrTimeFromIso, hrTimeFromMillis } from '../../runtime/model.ts';
import type { AnyValueMap, LogRecord } from '../../runtime/model.ts';
import { RecordMapper, isEcsDocument, lookup, severityOfAction } from './mapping.ts';

const FIXTURE = new URL('./testdata/test-event.log-expected.json', import.meta.url);
const fixtureDocs = (): AnyValueMap[] =>
  (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { expected: AnyValueMap[] }).expected;

const mapper = (opts: Partial<ConstructorParameters<typeof RecordMapper>[0]> = {}) =>
  new RecordMapper({
    body: 'ecs',
    resource: { 'service.name': 'authentik' },
    defaultScope: { name: 'authentik-collector', version: '1.2.3' },
    ...opts,
  });

const observed = hrTimeFromMillis(1_800_000_000_000);

describe('severityOfAction', () => {
  const cases: [string, SeverityNumber, string][] = [
    ['login_failed', SeverityNumber.WARN, 'WARN'],
    ['login-failed', SeverityNumber.WARN, 'WARN'],
    ['suspicious_request', SeverityNumber.WARN, 'WARN'],
    ['configuration_warning', SeverityNumber.WARN, 'WARN'],
    ['configuration_error', SeverityNumber.ERROR, 'ERROR'],
    ['system_exception', SeverityNumber.ERROR, 'ERROR'],
    ['system-task-exception', SeverityNumber.ERROR, 'ERROR'],
    ['policy_exception', SeverityNumber.ERROR, 'ERROR'],
    ['property-mapping-exception', SeverityNumber.ERROR, 'ERROR'],
    ['login', SeverityNumber.INFO, 'INFO'],
    ['custom_anything', SeverityNumber.INFO, 'INFO'],
    ['', SeverityNumber.INFO, 'INFO'],
  ];
  for (const [action, num, text] of cases) {
    test(`${action || '(none)'} -> ${text}`, () => {
      assert.deepEqual(severityOfAction(action), { number: num, text });
    });
  }
});

describe('lookup and ECS detection', () => {
  test('nested, dotted and mixed keys', () => {
    const doc = { user: { name: 'a' }, 'url.path': '/x', http: { 'request.method': 'GET' } };
    assert.equal(lookup(doc, 'user.name'), 'a');
    assert.equal(lookup(doc, 'url.path'), '/x');
    assert.equal(lookup(doc, 'http.request.method'), 'GET');
    assert.equal(lookup(doc, 'user.email'), undefined);
  });
  test('ECS documents are recognised by @timestamp or ecs.version', () => {
    assert.ok(isEcsDocument({ '@timestamp': 'x' }));
    assert.ok(isEcsDocument({ ecs: { version: '8.11.0' } }));
    assert.ok(!isEcsDocument({ pk: 'x', action: 'login' }));
    assert.ok(!isEcsDocument('text'));
    assert.ok(!isEcsDocument([1]));
  });
});

describe('RecordMapper on the 30 fixture ECS documents', () => {
  const docs = fixtureDocs();
  test('fixture has 30 documents', () => assert.equal(docs.length, 30));

  test('every document maps to the table', () => {
    const m = mapper();
    for (const doc of docs) {
      const rec: LogRecord = {
        observedTimestamp: observed,
        body: doc,
        attributes: { 'data_stream.dataset': 'authentik.event', 'data_stream.namespace': 'default' },
      };
      const out = m.map(rec);
      const event = doc['event'] as AnyValueMap;
      assert.deepEqual(out.hrTime, hrTimeFromIso(doc['@timestamp'] as string));
      assert.deepEqual(out.hrTimeObserved, observed);
      assert.equal(out.eventName, event['action']);
      assert.equal(out.attributes['event.name'], event['action']);
      const sev = severityOfAction(event['action'] as string);
      assert.equal(out.severityNumber, sev.number);
      assert.equal(out.severityText, sev.text);
      assert.equal(out.body, doc, 'body: ecs sends the document itself');
      const src = doc['source'] as AnyValueMap | undefined;
      assert.equal(out.attributes['client.address'], src?.['ip']);
      assert.equal(out.attributes['source.address'], src?.['ip']);
      const user = doc['user'] as AnyValueMap | undefined;
      assert.equal(out.attributes['user.id'], user?.['id']);
      assert.equal(out.attributes['user.name'], user?.['name']);
      assert.equal(out.attributes['user.email'], user?.['email']);
      assert.equal(out.attributes['url.path'], lookup(doc, 'url.path'));
      assert.equal(out.attributes['http.request.method'], lookup(doc, 'http.request.method'));
      assert.equal(out.attributes['user_agent.original'], lookup(doc, 'user_agent.original'));
      assert.equal(out.attributes['data_stream.dataset'], 'authentik.event');
      assert.equal(out.attributes['data_stream.namespace'], 'default');
      for (const v of Object.values(out.attributes)) assert.notEqual(v, undefined);
      assert.equal(out.droppedAttributesCount, 0);
      assert.deepEqual(out.resource.attributes, { 'service.name': 'authentik' });
      assert.deepEqual(out.instrumentationScope, { name: 'authentik-collector', version: '1.2.3' });
    }
  });

  test('the fixture covers warn and error severities and the semconv attributes', () => {
    const m = mapper();
    const outs = docs.map((d) => m.map({ observedTimestamp: observed, body: d, attributes: {} }));
    const sev = new Set(outs.map((o) => o.severityText));
    assert.deepEqual([...sev].sort(), ['ERROR', 'INFO', 'WARN']);
    for (const key of [
      'client.address',
      'user.email',
      'url.path',
      'http.request.method',
      'user_agent.original',
    ]) {
      assert.ok(
        outs.some((o) => o.attributes[key] !== undefined),
        `no fixture document yields ${key}`,
      );
    }
  });

  test('body: original sends event.original', () => {
    const m = mapper({ body: 'original' });
    const doc = docs[0]!;
    const out = m.map({ observedTimestamp: observed, body: doc, attributes: {} });
    assert.equal(out.body, (doc['event'] as AnyValueMap)['original']);
    assert.equal(typeof out.body, 'string');
  });
});

describe('RecordMapper rules', () => {
  const doc = {
    '@timestamp': '2024-08-07T06:28:59.565Z',
    event: { action: 'login' },
    user: { name: 'from-body' },
  };

  test('the record timestamp (full precision) wins over @timestamp', () => {
    const ts = hrTimeFromIso('2024-08-07T06:28:59.565191Z')!;
    const out = mapper().map({ timestamp: ts, observedTimestamp: observed, body: doc, attributes: {} });
    assert.deepEqual(out.hrTime, [1_723_012_139, 565_191_000]);
  });

  test('own severity and event name are kept', () => {
    const out = mapper().map({
      observedTimestamp: observed,
      body: doc,
      severityNumber: SeverityNumber.ERROR2,
      severityText: 'E2',
      eventName: 'upstream.name',
      attributes: {},
    });
    assert.equal(out.severityNumber, SeverityNumber.ERROR2);
    assert.equal(out.severityText, 'E2');
    assert.equal(out.eventName, 'upstream.name');
    assert.equal(out.attributes['event.name'], 'upstream.name');
  });

  test('record attributes win over derived ones; internal elasticsearch.* are not sent', () => {
    const out = mapper().map({
      observedTimestamp: observed,
      body: doc,
      attributes: {
        'user.name': 'from-attr',
        'elasticsearch.document_id': 'abc',
        'elasticsearch.index': 'x',
        custom: { nested: [1, 2] },
        nothing: null,
      },
    });
    assert.equal(out.attributes['user.name'], 'from-attr');
    assert.equal(out.attributes['elasticsearch.document_id'], undefined);
    assert.equal(out.attributes['elasticsearch.index'], undefined);
    assert.deepEqual(out.attributes['custom'], { nested: [1, 2] });
    assert.ok(!('nothing' in out.attributes));
  });

  test('non-ECS records pass through unchanged', () => {
    const ts = hrTimeFromMillis(1_700_000_000_123);
    const out = mapper({ body: 'original' }).map({
      timestamp: ts,
      observedTimestamp: observed,
      severityNumber: SeverityNumber.DEBUG,
      severityText: 'debug',
      body: { pk: 'x', action: 'login', context: { a: 1 } },
      attributes: { 'log.file.name': 'in.ndjson' },
      scope: { name: 'file' },
    });
    assert.deepEqual(out.hrTime, ts);
    assert.equal(out.severityNumber, SeverityNumber.DEBUG);
    assert.equal(out.severityText, 'debug');
    assert.equal(out.eventName, undefined);
    assert.deepEqual(out.body, { pk: 'x', action: 'login', context: { a: 1 } });
    assert.deepEqual(out.attributes, { 'log.file.name': 'in.ndjson' });
    assert.deepEqual(out.instrumentationScope, { name: 'file' });

    const text = mapper().map({ observedTimestamp: observed, body: 'just text', attributes: {} });
    assert.equal(text.body, 'just text');
    assert.deepEqual(text.hrTime, [0, 0], 'unknown time is 0 (OTLP: unknown)');
    assert.equal(text.severityNumber, undefined);
  });

  test('resource: record attributes merged under the static ones; maps become JSON text', () => {
    const m = mapper({ resource: { 'service.name': 'authentik', 'deployment.environment.name': 'prod' } });
    const out = m.map({
      observedTimestamp: observed,
      body: 'x',
      attributes: {},
      resource: {
        'service.name': 'overridden',
        'service.version': '2024.8.0',
        'host.name': 'auth.example.com',
        'authentik.brand': { name: 'b' },
        'list.ok': ['a', 'b'],
      },
    });
    assert.deepEqual(out.resource.attributes, {
      'service.name': 'authentik',
      'service.version': '2024.8.0',
      'host.name': 'auth.example.com',
      'authentik.brand': '{"name":"b"}',
      'list.ok': ['a', 'b'],
      'deployment.environment.name': 'prod',
    });
    assert.deepEqual([...m.converted], ['authentik.brand']);
  });

  test('equal resources and scopes are the same objects (the serializer groups by identity)', () => {
    const m = mapper();
    const a = m.map({
      observedTimestamp: observed,
      body: 'a',
      attributes: {},
      resource: { 'host.name': 'h' },
    });
    const b = m.map({
      observedTimestamp: observed,
      body: 'b',
      attributes: {},
      resource: { 'host.name': 'h' },
    });
    const c = m.map({
      observedTimestamp: observed,
      body: 'c',
      attributes: {},
      resource: { 'host.name': 'i' },
    });
    assert.equal(a.resource, b.resource);
    assert.notEqual(a.resource, c.resource);
    assert.equal(a.instrumentationScope, c.instrumentationScope);
  });
});
