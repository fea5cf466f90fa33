/**
 * The `elasticsearch` exporter against real search servers (test/peers/elasticsearch.sh,
 * test/peers/opensearch.sh): templates installed and effective, the 55 fixture documents (through the
 * `authentik_ecs` processor) indexed and searchable by ECS fields, a re-sent batch yields no duplicate,
 * a conflicting document ends in the dead-letter file while the rest of its batch is indexed.
 *
 * Needs ES_TEST_URLS (comma-separated) and/or OPENSEARCH_URL, printed by the peer scripts' `start`
 * (test/run-all.sh sets them). Without them every test here is skipped with the reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { LogRecord } from '../../runtime/model.ts';
import { cloneRecord } from '../../runtime/model.ts';
import { nopHost, nopSettings, SinkConsumer } from '../kit/index.ts';
import type { TestSettings } from '../kit/index.ts';
import { needShared } from '../kit/shared.ts';
import { factory } from '../../exporters/elasticsearch/factory.ts';
import type { ElasticsearchExporter } from '../../exporters/elasticsearch/exporter.ts';
import { TEMPLATE_VERSION, unknownTypesIn } from '../../exporters/elasticsearch/templates.ts';
import { factory as ecsFactory } from '../../processors/authentik_ecs/factory.ts';
import { cityDb, fileRecord, fixtureCases } from '../../processors/authentik_ecs/fixtures.ts';

const servers = [
  ...(process.env['ES_TEST_URLS'] ?? '').split(','),
  ...(process.env['OPENSEARCH_URL'] ?? '').split(','),
]
  .map((s) => s.trim())
  .filter((s) => s !== '');
const SKIP =
  (servers.length > 0
    ? false
    : 'ES_TEST_URLS / OPENSEARCH_URL not set: start a server with `eval "$(test/peers/opensearch.sh start)"` ' +
      'or `eval "$(test/peers/elasticsearch.sh start)"` and export the variable (npm test does this)') ||
  needShared('fixtures/elastic-authentik', 'geoip');

interface Json {
  [k: string]: unknown;
}

async function http(base: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) {
  const res = await request(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: (text ? JSON.parse(text) : {}) as Json };
}

/** ECS documents of the 55 fixture cases, made by the authentik_ecs processor (GeoIP test database). */
async function ecsRecords(namespace: string): Promise<LogRecord[]> {
  const sink = new SinkConsumer();
  const settings = nopSettings('authentik_ecs', 'processor');
  const config = ecsFactory.configSchema.parse({ geoip: { city_database: cityDb }, namespace });
  const p = await ecsFactory.create(settings, config, sink);
  await p.start(nopHost());
  await p.consume(fixtureCases().map((c) => fileRecord(`authentik.${c.dataset}`, c.raw)));
  await p.shutdown();
  return sink.all();
}

function get(doc: unknown, path: string): unknown {
  let v: unknown = doc;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Json)[k] : undefined;
  return v;
}

function leafType(mapping: Json, index: string, field: string): string | undefined {
  const m = (mapping[index] as { mappings: Record<string, { mapping: Record<string, { type?: string }> }> })
    ?.mappings?.[field]?.mapping;
  return m ? Object.values(m)[0]?.type : undefined;
}

for (const base of servers) {
  describe(`elasticsearch exporter against ${base}`, { skip: SKIP }, () => {
    const namespace = `it${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
    let dir: string;
    let settings: TestSettings;
    let exp: ElasticsearchExporter;
    let records: LogRecord[];

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'es-it-'));
      settings = nopSettings('elasticsearch/it', 'exporter', dir);
      const config = factory.configSchema.parse({
        endpoints: [base],
        dead_letter: { path: 'dead-letter.ndjson' },
        retry: { initial_interval: '200ms', max_interval: '2s', max_elapsed_time: '60s' },
        flush: { max_documents: 20 },
      });
      exp = (await factory.create(settings, config)) as ElasticsearchExporter;
      await exp.start(nopHost());
      records = await ecsRecords(namespace);
    });

    after(async () => {
      await exp?.shutdown();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    test('detects the server, installs versioned templates, logs degraded types', async () => {
      await exp.whenSetUp();
      const info = exp.server!;
      const root = await http(base, 'GET', '/');
      const expectedFlavor =
        (root.json['version'] as Json | undefined)?.['distribution'] === 'opensearch'
          ? 'opensearch'
          : 'elasticsearch';
      assert.equal(info.flavor, expectedFlavor);
      assert.notEqual(info.version, 'unknown');
      const lines = settings.logger.lines;
      assert.ok(
        lines.some((l) => l.msg === 'connected to search server' && l.fields['flavor'] === info.flavor),
      );
      assert.ok(
        lines.some((l) => l.msg === 'index templates ready'),
        settings.logger.text(),
      );
      for (const ds of ['event', 'user', 'group']) {
        const t = await http(base, 'GET', `/_index_template/authentik-collector-logs-authentik.${ds}`);
        assert.equal(t.status, 200);
        const body = (t.json['index_templates'] as { index_template: Json }[])[0]!.index_template;
        assert.equal(body['version'], TEMPLATE_VERSION);
        assert.deepEqual(body['index_patterns'], [`logs-authentik.${ds}-*`]);
        assert.ok(body['data_stream'], 'data stream template');
      }
      const degraded = lines.find((l) => l.msg.startsWith('server lacks some field types'));
      if (info.flavor === 'opensearch') {
        // constant_keyword needs a value on OpenSearch: data_stream.namespace falls back to keyword
        assert.ok(degraded && String(degraded.fields['fields']).includes('data_stream.namespace:keyword'));
      } else if (info.modules && !info.modules.includes('wildcard')) {
        assert.ok(degraded && (degraded.fields['degraded'] as string[]).includes('wildcard->keyword'));
      }
    });

    test('the server refuses unknown types in a form the exporter understands', async () => {
      const probe = 'authentik-collector-it-probe';
      const res = await http(base, 'PUT', `/_component_template/${probe}`, {
        template: { mappings: { properties: { a: { type: 'no_such_type' } } } },
      });
      assert.equal(res.status, 400);
      assert.deepEqual(unknownTypesIn(JSON.stringify(res.json)), ['no_such_type']);
    });

    test('the 55 fixture documents are indexed and searchable by ECS fields', async () => {
      assert.equal(records.length, 55);
      await exp.consume(records.map((r) => cloneRecord(r)));
      await http(base, 'POST', `/logs-authentik.*-${namespace}/_refresh`);
      const count = await http(base, 'GET', `/logs-authentik.*-${namespace}/_count`);
      assert.equal(count.json['count'], 55);
      for (const [ds, n] of [
        ['event', 30],
        ['group', 5],
        ['user', 20],
      ] as const) {
        const c = await http(base, 'GET', `/logs-authentik.${ds}-${namespace}/_count`);
        assert.equal(c.json['count'], n, ds);
      }

      const bodies = records.map((r) => r.body);
      const expectCount = (field: string, value: string) =>
        bodies.filter((b) => {
          const v = get(b, field);
          return Array.isArray(v) ? v.includes(value) : v === value;
        }).length;
      for (const [field, value] of [
        ['event.action', 'login'],
        ['event.action', 'login-failed'],
        ['user.name', 'akadmin'],
        ['source.geo.country_iso_code', 'GB'],
        ['source.geo.country_iso_code', 'SE'],
      ] as const) {
        const want = expectCount(field, value);
        assert.ok(want > 0, `fixtures contain ${field}=${value}`);
        const r = await http(base, 'POST', `/logs-authentik.*-${namespace}/_count`, {
          query: { term: { [field]: value } },
        });
        assert.equal(r.json['count'], want, `${field}=${value}`);
      }
      // typed fields work as their types: an IP range and a date range
      const inRange = await http(base, 'POST', `/logs-authentik.event-${namespace}/_count`, {
        query: { term: { 'source.ip': '81.2.69.0/24' } },
      });
      assert.equal(
        inRange.json['count'],
        bodies.filter((b) => String(get(b, 'source.ip')).startsWith('81.2.69.')).length,
      );
    });

    test('templates are effective: mapped types on the data stream', async () => {
      const idx = `logs-authentik.event-${namespace}`;
      const fields = [
        'source.ip',
        'source.geo.location',
        'authentik.event.created',
        'authentik.event.client_ip',
        'authentik.event.context.diff',
        'authentik.event.user.is_anonymous',
        'related.ip',
        'url.path',
        'event.module',
        'data_stream.namespace',
      ];
      const m = await http(base, 'GET', `/${idx}/_mapping/field/${fields.join(',')}`);
      assert.equal(m.status, 200);
      const backing = Object.keys(m.json)[0]!;
      const type = (f: string) => leafType(m.json, backing, f);
      assert.equal(type('source.ip'), 'ip');
      assert.equal(type('source.geo.location'), 'geo_point');
      assert.equal(type('authentik.event.created'), 'date');
      assert.equal(type('authentik.event.client_ip'), 'ip');
      assert.equal(type('authentik.event.user.is_anonymous'), 'boolean');
      assert.equal(type('related.ip'), 'ip');
      const flavor = exp.server!.flavor;
      assert.equal(
        type('authentik.event.context.diff'),
        flavor === 'opensearch' ? 'flat_object' : 'flattened',
      );
      const degradedTypes = settings.logger.lines.find((l) => l.msg.startsWith('server lacks'))?.fields[
        'degraded'
      ] as string[] | undefined;
      assert.equal(type('url.path'), degradedTypes?.includes('wildcard->keyword') ? 'keyword' : 'wildcard');
      assert.equal(
        type('event.module'),
        degradedTypes?.includes('constant_keyword->keyword') && flavor === 'elasticsearch'
          ? 'keyword'
          : 'constant_keyword',
      );
      const group = await http(
        base,
        'GET',
        `/logs-authentik.group-${namespace}/_mapping/field/authentik.group.num_pk`,
      );
      assert.equal(leafType(group.json, Object.keys(group.json)[0]!, 'authentik.group.num_pk'), 'long');
      const user = await http(
        base,
        'GET',
        `/logs-authentik.user-${namespace}/_mapping/field/authentik.user.last_login`,
      );
      assert.equal(leafType(user.json, Object.keys(user.json)[0]!, 'authentik.user.last_login'), 'date');
    });

    test('the same batch sent again yields no duplicate (409 = delivered)', async () => {
      const dupBefore = await metric(settings, 'duplicate');
      await exp.consume(records.map((r) => cloneRecord(r)));
      await http(base, 'POST', `/logs-authentik.*-${namespace}/_refresh`);
      const count = await http(base, 'GET', `/logs-authentik.*-${namespace}/_count`);
      assert.equal(count.json['count'], 55);
      assert.equal((await metric(settings, 'duplicate')) - dupBefore, 55);
    });

    test('a conflicting document ends in the dead-letter file, the rest of its batch is indexed', async () => {
      const good = records.slice(0, 2).map((r, i) => {
        const c = cloneRecord(r, true);
        c.attributes['elasticsearch.document_id'] = `${namespace}-good-${i}`;
        return c;
      });
      const bad = cloneRecord(records[1]!, true);
      bad.attributes['elasticsearch.document_id'] = `${namespace}-bad`;
      (bad.body as { source: { ip: string } }).source.ip = 'not-an-ip';
      await exp.consume([good[0]!, bad, good[1]!]);
      const text = await readFile(join(dir, 'dead-letter.ndjson'), 'utf8');
      const dlq = text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Json);
      assert.equal(dlq.length, 1);
      assert.equal(dlq[0]!['document_id'], `${namespace}-bad`);
      assert.equal(dlq[0]!['status'], 400);
      assert.equal(dlq[0]!['index'], `logs-authentik.event-${namespace}`);
      assert.match(JSON.stringify(dlq[0]!['error']), /source\.ip/);
      assert.equal(get(dlq[0]!['document'], 'source.ip'), 'not-an-ip');
      assert.deepEqual(settings.drops, [{ count: 1, reason: 'permanent_rejected_by_elasticsearch' }]);
      await http(base, 'POST', `/logs-authentik.*-${namespace}/_refresh`);
      const count = await http(base, 'GET', `/logs-authentik.*-${namespace}/_count`);
      assert.equal(count.json['count'], 57);
    });

    test('context.flow is accepted both as a string (authorize_application) and as an object (flow_execution)', async () => {
      const asObject = cloneRecord(records[0]!, true);
      asObject.attributes['elasticsearch.document_id'] = `${namespace}-flow-object`;
      const ev = (asObject.body as { authentik: { event: { action?: string; context?: Json } } }).authentik
        .event;
      ev.action = 'flow_execution';
      ev.context = {
        ...(ev.context ?? {}),
        flow: { app: 'authentik_flows', model_name: 'flow', name: 'Welcome', pk: 'f1' },
      };
      const asString = cloneRecord(records[0]!, true);
      asString.attributes['elasticsearch.document_id'] = `${namespace}-flow-string`;
      const ev2 = (asString.body as { authentik: { event: { context?: Json } } }).authentik.event;
      ev2.context = { ...(ev2.context ?? {}), flow: '53287faa8a644b6cb124cb602a84282f' };
      const dropsBefore = settings.drops.length;
      await exp.consume([asObject, asString]);
      assert.equal(settings.drops.length, dropsBefore, 'neither shape is rejected');
      await http(base, 'POST', `/logs-authentik.*-${namespace}/_refresh`);
      const count = await http(base, 'GET', `/logs-authentik.*-${namespace}/_count`);
      assert.equal(count.json['count'], 59);
    });
  });
}

if (servers.length === 0) {
  test('elasticsearch exporter against a real search server', { skip: SKIP }, () => {});
}

async function metric(settings: TestSettings, outcome: string): Promise<number> {
  const m = await settings.metrics.getSingleMetric('otelcol_exporter_elasticsearch_documents')?.get();
  return m?.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0;
}
