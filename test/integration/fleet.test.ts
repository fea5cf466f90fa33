/**
 * Beside Elastic's authentik integration (Fleet): when Kibana has installed the integration's assets,
 * `logs-authentik.*` has Fleet-managed index templates (`_meta.managed_by: fleet`, `_meta.package.name:
 * authentik`) with Elastic's ingest pipeline as `default_pipeline`. The `elasticsearch` exporter must then
 * leave those templates alone (install none of its own for those data streams, log it once) and still
 * deliver, with Elastic's document ids.
 *
 * Against the real search servers (test/peers/opensearch.sh, test/peers/elasticsearch.sh): a Fleet-like
 * index template written here (that `_meta`, a mapping of the ECS fields searched below, and — where the
 * server has ingest processors — a `default_pipeline` that sets a marker field) is installed for a
 * namespace of this test only, then the 55 fixture documents (through `authentik_ecs`) are indexed
 * through the exporter.
 *
 * - OpenSearch: the peer script installs the `ingest-common` module (Maven Central), so the pipeline part
 *   is tested: every document carries the marker.
 * - Elasticsearch: its ingest modules are not published on Maven Central and the integ-test distribution
 *   ships none, so no pipeline can be defined there; the template part (detection, none of ours,
 *   delivery through Fleet's template, ids, search) is tested and the pipeline assertion is skipped,
 *   stated in the test name.
 *
 * Needs ES_TEST_URLS and/or OPENSEARCH_URL (printed by the peer scripts' `start`; npm test sets them).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { LogRecord } from '../../runtime/model.ts';
import { ATTR_DOCUMENT_ID, cloneRecord } from '../../runtime/model.ts';
import { nopHost, nopSettings, SinkConsumer } from '../kit/index.ts';
import type { TestSettings } from '../kit/index.ts';
import { factory } from '../../exporters/elasticsearch/factory.ts';
import type { ElasticsearchExporter } from '../../exporters/elasticsearch/exporter.ts';
import { factory as ecsFactory } from '../../processors/authentik_ecs/factory.ts';
import { cityDb, fileRecord, fixtureCases } from '../../processors/authentik_ecs/fixtures.ts';

const servers = [
  ...(process.env['ES_TEST_URLS'] ?? '').split(','),
  ...(process.env['OPENSEARCH_URL'] ?? '').split(','),
]
  .map((s) => s.trim())
  .filter((s) => s !== '');
const SKIP =
  servers.length > 0
    ? false
    : 'ES_TEST_URLS / OPENSEARCH_URL not set: start a server with `eval "$(test/peers/opensearch.sh start)"` ' +
      'or `eval "$(test/peers/elasticsearch.sh start)"` and export the variable (npm test does this)';

const DATASETS = ['authentik.event', 'authentik.user', 'authentik.group'] as const;
const FIXTURE_COUNTS: Record<string, number> = {
  'authentik.event': 30,
  'authentik.user': 20,
  'authentik.group': 5,
};

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
  let json: Json;
  try {
    json = (text ? JSON.parse(text) : {}) as Json;
  } catch {
    json = { text };
  }
  return { status: res.statusCode, json };
}

async function ecsRecords(namespace: string): Promise<LogRecord[]> {
  const sink = new SinkConsumer();
  const config = ecsFactory.configSchema.parse({ geoip: { city_database: cityDb }, namespace });
  const p = await ecsFactory.create(nopSettings('authentik_ecs', 'processor'), config, sink);
  await p.start(nopHost());
  await p.consume(fixtureCases().map((c) => fileRecord(`authentik.${c.dataset}`, c.raw)));
  await p.shutdown();
  return sink.all();
}

async function count(base: string, index: string, query?: unknown): Promise<number> {
  const r = await http(base, 'POST', `/${index}/_count`, query === undefined ? undefined : { query });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json['count'] as number;
}

for (const base of servers) {
  describe(`beside Elastic's integration (Fleet-managed templates) on ${base}`, { skip: SKIP }, () => {
    const ns = `fleet${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
    const pipeline = `authentik-collector-it-fleet-${ns}`;
    const fleetName = (ds: string) => `logs-${ds}-${ns}-fleet-it`;
    const all = `logs-authentik.*-${ns}`;
    let dir: string;
    let settings: TestSettings;
    let exp: ElasticsearchExporter;
    let records: LogRecord[];
    let flavor: 'opensearch' | 'elasticsearch';
    let hasPipeline = false;

    before(async () => {
      const root = await http(base, 'GET', '/');
      flavor =
        (root.json['version'] as Json | undefined)?.['distribution'] === 'opensearch'
          ? 'opensearch'
          : 'elasticsearch';
      // The pipeline Fleet would set as default_pipeline (Elastic's), reduced to a marker.
      const put = await http(base, 'PUT', `/_ingest/pipeline/${pipeline}`, {
        description: 'stands in for the authentik integration pipeline (test)',
        processors: [{ set: { field: 'fleet_marker', value: 'pipeline ran' } }],
      });
      hasPipeline = put.status === 200;
      if (flavor === 'opensearch' && process.env['AC_PEER_INGEST'] !== '0') {
        assert.ok(
          hasPipeline,
          `OpenSearch should have ingest-common (test/peers/searchserver.sh installs it): ${JSON.stringify(put.json)}`,
        );
      }
      for (const ds of DATASETS) {
        // As Kibana installs the integration's assets: managed by Fleet, package authentik, priority above
        // ours, so for this test's namespace Fleet's template is the one that applies.
        const r = await http(base, 'PUT', `/_index_template/${encodeURIComponent(fleetName(ds))}`, {
          index_patterns: [`logs-${ds}-${ns}`],
          data_stream: {},
          priority: 300,
          template: {
            settings: {
              number_of_replicas: 0,
              ...(hasPipeline ? { 'index.default_pipeline': pipeline } : {}),
            },
            mappings: {
              // Only the fields searched here; the rest stays in _source (no dynamic-mapping surprises).
              dynamic: false,
              properties: {
                '@timestamp': { type: 'date' },
                fleet_marker: { type: 'keyword' },
                event: { properties: { action: { type: 'keyword' }, kind: { type: 'keyword' } } },
                user: { properties: { name: { type: 'keyword' }, id: { type: 'keyword' } } },
                source: { properties: { ip: { type: 'ip' } } },
                related: { properties: { user: { type: 'keyword' } } },
              },
            },
          },
          _meta: { managed_by: 'fleet', managed: true, package: { name: 'authentik' } },
        });
        assert.equal(r.status, 200, JSON.stringify(r.json));
      }
      dir = await mkdtemp(join(tmpdir(), 'es-fleet-it-'));
      settings = nopSettings('elasticsearch/fleet-it', 'exporter', dir);
      const config = factory.configSchema.parse({
        endpoints: [base],
        data_stream: { namespace: ns },
        dead_letter: { path: 'dead-letter.ndjson' },
        retry: { initial_interval: '200ms', max_interval: '2s', max_elapsed_time: '60s' },
        flush: { max_documents: 20 },
      });
      exp = (await factory.create(settings, config)) as ElasticsearchExporter;
      await exp.start(nopHost());
      records = await ecsRecords(ns);
    });

    after(async () => {
      await exp?.shutdown();
      if (dir) await rm(dir, { recursive: true, force: true });
      for (const ds of DATASETS) await http(base, 'DELETE', `/_data_stream/logs-${ds}-${ns}`);
      for (const ds of DATASETS)
        await http(base, 'DELETE', `/_index_template/${encodeURIComponent(fleetName(ds))}`);
      await http(base, 'DELETE', `/_ingest/pipeline/${pipeline}`);
    });

    test('detects the Fleet-managed templates, logs it once, installs none of its own for them', async () => {
      await exp.whenSetUp();
      const lines = settings.logger.lines;
      const fleetLines = lines.filter((l) => l.msg.startsWith('Fleet manages'));
      assert.equal(fleetLines.length, 1, settings.logger.text());
      assert.deepEqual(
        [...(fleetLines[0]!.fields['templates'] as string[])].sort(),
        DATASETS.map(fleetName).sort(),
      );
      const ready = lines.find((l) => l.msg === 'index templates ready');
      assert.ok(ready, settings.logger.text());
      // Elastic's package has no change data stream (authentik_changes is ours): only that one, and the
      // component templates it is composed of, are ours; none for the Fleet-managed data streams.
      const ours = [...(ready.fields['installed'] as string[]), ...(ready.fields['up_to_date'] as string[])];
      for (const ds of ['authentik.event', 'authentik.user', 'authentik.group']) {
        assert.ok(
          !ours.some((t) => t.includes(`logs-${ds}`)),
          `no template of ours for ${ds}: ${ours.join(', ')}`,
        );
      }
    });

    test("delivers through Fleet's template with Elastic's _id; searchable by ECS fields", async () => {
      await exp.consume(records.map((r) => cloneRecord(r)));
      await http(base, 'POST', `/${all}/_refresh`);
      for (const ds of DATASETS) {
        // The data stream was created from Fleet's template, not ours: its mapping is Fleet's (dynamic
        // false, the marker field), and where the server has the data stream API it names the template.
        const m = await http(base, 'GET', `/logs-${ds}-${ns}/_mapping`);
        assert.equal(m.status, 200, JSON.stringify(m.json));
        for (const idx of Object.values(m.json) as { mappings: Json }[]) {
          assert.equal(String(idx.mappings['dynamic']), 'false');
          assert.ok((idx.mappings['properties'] as Json)['fleet_marker']);
          assert.equal(idx.mappings['dynamic_templates'], undefined, 'not our template');
        }
        const d = await http(base, 'GET', `/_data_stream/logs-${ds}-${ns}`);
        if (d.status === 200) {
          assert.equal((d.json['data_streams'] as Json[])[0]!['template'], fleetName(ds));
        }
        assert.equal(await count(base, `logs-${ds}-${ns}`), FIXTURE_COUNTS[ds]);
      }
      // Elastic's _id (the fingerprint of event.original) is the document id.
      const want = new Set(records.map((r) => r.attributes[ATTR_DOCUMENT_ID] as string));
      assert.equal(want.size, 55);
      const hits = await http(base, 'POST', `/${all}/_search`, { size: 100, _source: false });
      const got = new Set(((hits.json['hits'] as Json)['hits'] as Json[]).map((h) => h['_id'] as string));
      assert.deepEqual([...got].sort(), [...want].sort());
      // Searchable by ECS fields, with Fleet's mapping (source.ip is an ip: a CIDR query works).
      assert.ok((await count(base, all, { term: { 'event.action': 'login-failed' } })) >= 1);
      assert.ok((await count(base, all, { term: { 'user.name': 'akadmin' } })) >= 1);
      assert.ok((await count(base, all, { term: { 'source.ip': '81.2.69.0/24' } })) >= 1);
      assert.equal(await count(base, all, { term: { 'event.kind': 'pipeline_error' } }), 0);
      let dead = '';
      try {
        dead = await readFile(join(dir, 'dead-letter.ndjson'), 'utf8');
      } catch {
        // no dead-letter file: nothing was rejected
      }
      assert.equal(dead.trim(), '', 'nothing dead-lettered');
    });

    test(hasPipelineLabel(base), async (t) => {
      if (!hasPipeline) {
        t.skip(
          `${flavor} has no ingest processors here (Elasticsearch's ingest modules are not on Maven Central; ` +
            'the integ-test distribution ships none), so no default_pipeline could be set',
        );
        return;
      }
      await http(base, 'POST', `/${all}/_refresh`);
      assert.equal(await count(base, all, { term: { fleet_marker: 'pipeline ran' } }), 55);
    });

    test('re-sending the same records adds no duplicates (ids dedupe, as against Elastic Agent)', async () => {
      await exp.consume(records.map((r) => cloneRecord(r)));
      await http(base, 'POST', `/${all}/_refresh`);
      assert.equal(await count(base, all), 55);
    });
  });
}

function hasPipelineLabel(base: string): string {
  return `Fleet's default_pipeline ran on every document (the marker is set) on ${base}`;
}
