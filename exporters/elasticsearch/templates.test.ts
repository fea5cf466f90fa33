import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EsClient } from './client.ts';
import { AUTHENTIK_DATASETS, buildProperties, resolveField } from './mappings.ts';
import type { Degradation } from './mappings.ts';
import {
  TEMPLATE_VERSION,
  buildTemplates,
  detectServer,
  indexPatternMatches,
  initialServerTypes,
  installTemplates,
  unknownTypesIn,
} from './templates.ts';
import type { ServerInfo } from './templates.ts';
import { FakeElasticsearch } from './testing.ts';

/** Settings + ECS component templates, then a component and an index template per data stream. */
const TEMPLATE_COUNT = 2 + 2 * AUTHENTIK_DATASETS.length;

/* eslint-disable @typescript-eslint/no-explicit-any -- walking mapping JSON */
function field(props: any, path: string): any {
  const parts = path.split('.');
  let node = { properties: props };
  for (const p of parts) node = node.properties[p];
  return node;
}

const fullEs = { flavor: 'elasticsearch' as const, unsupported: new Set(['flat_object']) };

describe('mappings', () => {
  test('documented types on a full Elasticsearch', () => {
    const set = buildTemplates(fullEs, 250);
    const ecs = set.templates.find((t) => t.name === 'authentik-collector-ecs@mappings')!;
    const props = (ecs.body as any).template.mappings.properties;
    assert.equal(field(props, 'source.ip').type, 'ip');
    assert.equal(field(props, 'source.geo.location').type, 'geo_point');
    assert.equal(field(props, 'url.path').type, 'wildcard');
    assert.deepEqual(field(props, 'event.original'), { type: 'keyword', index: false, doc_values: false });
    assert.deepEqual(field(props, 'event.module'), { type: 'constant_keyword', value: 'authentik' });
    assert.equal(field(props, 'related.ip').type, 'ip');
    const ev = set.templates.find((t) => t.name === 'authentik-collector-logs-authentik.event@mappings')!;
    const evp = (ev.body as any).template.mappings.properties;
    assert.equal(field(evp, 'authentik.event.context.diff').type, 'flattened');
    assert.equal(field(evp, 'authentik.event.created').type, 'date');
    assert.equal(field(evp, 'authentik.event.client_ip').type, 'ip');
    assert.equal(field(evp, 'authentik.event.context.created').type, 'boolean');
    assert.deepEqual(field(evp, 'event.dataset'), { type: 'constant_keyword', value: 'authentik.event' });
    const gr = set.templates.find((t) => t.name === 'authentik-collector-logs-authentik.group@mappings')!;
    assert.equal(field((gr.body as any).template.mappings.properties, 'authentik.group.num_pk').type, 'long');
    const us = set.templates.find((t) => t.name === 'authentik-collector-logs-authentik.user@mappings')!;
    assert.equal(
      field((us.body as any).template.mappings.properties, 'authentik.user.last_login').type,
      'date',
    );
    assert.equal(set.degraded.length, 0);
    const idx = set.templates.filter((t) => t.kind === 'index');
    assert.deepEqual(
      idx.map((t) => (t.body as any).index_patterns[0] as string),
      [
        'logs-authentik.event-*',
        'logs-authentik.user-*',
        'logs-authentik.group-*',
        'logs-authentik.change-*',
      ],
    );
    for (const t of idx) {
      assert.deepEqual((t.body as any).data_stream, {});
      assert.equal((t.body as any).priority, 250);
      assert.equal((t.body as any).version, TEMPLATE_VERSION);
    }
    // component templates come before the index templates that use them
    assert.ok(
      set.templates.findIndex((t) => t.kind === 'index') >
        set.templates.findLastIndex((t) => t.kind === 'component'),
    );
  });

  test('core-only Elasticsearch degrades constant_keyword, wildcard, match_only_text', () => {
    const info: ServerInfo = {
      flavor: 'elasticsearch',
      version: '8.19.21',
      major: 8,
      minor: 19,
      modules: ['x-pack-core'],
      source: 'nodes',
    };
    const types = initialServerTypes(info);
    const degraded: Degradation[] = [];
    const props = buildProperties(
      { a: 'wildcard', b: { type: 'constant_keyword', value: 'v' }, c: 'match_only_text', d: 'flattened' },
      types,
      degraded,
    );
    assert.equal(field(props, 'a').type, 'keyword');
    assert.equal(field(props, 'b').type, 'keyword');
    assert.equal(field(props, 'c').type, 'text');
    assert.equal(field(props, 'd').type, 'flattened');
    assert.deepEqual(
      degraded.map((d) => `${d.field}:${d.wanted}->${d.used}`),
      ['a:wildcard->keyword', 'b:constant_keyword->keyword', 'c:match_only_text->text'],
    );
  });

  test('OpenSearch: flat_object for flattened; constant_keyword only with a value', () => {
    const types = initialServerTypes({
      flavor: 'opensearch',
      version: '2.19.6',
      major: 2,
      minor: 19,
      source: 'root',
    });
    assert.deepEqual(resolveField('flattened', types).mapping, { type: 'flat_object' });
    assert.deepEqual(resolveField({ type: 'constant_keyword', value: 'logs' }, types).mapping, {
      type: 'constant_keyword',
      value: 'logs',
    });
    assert.equal(resolveField('constant_keyword', types).mapping['type'], 'keyword');
    const old = initialServerTypes({
      flavor: 'opensearch',
      version: '2.3.0',
      major: 2,
      minor: 3,
      source: 'root',
    });
    assert.deepEqual(resolveField('flattened', old).mapping, { type: 'object', enabled: false });
    assert.equal(resolveField('wildcard', old).mapping['type'], 'keyword');
  });

  test('unknown types are read from refusals of both flavours', () => {
    assert.deepEqual(
      unknownTypesIn('{"reason":"The mapper type [wildcard] declared on field [f] does not exist."}'),
      ['wildcard'],
    );
    assert.deepEqual(unknownTypesIn('No handler for type [flattened] declared on field [x]'), ['flattened']);
    assert.deepEqual(
      unknownTypesIn('Field [f] of type constant_keyword is missing required parameter [value]'),
      ['constant_keyword'],
    );
    assert.deepEqual(unknownTypesIn('something else'), []);
  });
});

describe('detection and install against a fake server', () => {
  let fake: FakeElasticsearch;
  let client: EsClient;
  afterEach(async () => {
    await client.close();
    await fake.close();
  });
  const mk = async (opts: ConstructorParameters<typeof FakeElasticsearch>[0]) => {
    fake = new FakeElasticsearch(opts);
    await fake.start();
    client = new EsClient({
      endpoints: [fake.url],
      timeoutMs: 2000,
      connections: 2,
      cooldownMs: 1000,
      userAgent: 't/1',
    });
  };

  test('detects OpenSearch from version.distribution', async () => {
    await mk({ flavor: 'opensearch', version: '2.19.6' });
    const info = await detectServer(client);
    assert.equal(info.flavor, 'opensearch');
    assert.equal(info.version, '2.19.6');
    assert.equal(info.source, 'root');
  });

  test('falls back to node info when GET / is missing (core-only Elasticsearch)', async () => {
    await mk({ version: '8.19.21', modules: ['x-pack-core'] });
    fake.otherFault = (r) =>
      r.path === '/' ? { status: 405, body: { error: 'Incorrect HTTP method', status: 405 } } : undefined;
    const info = await detectServer(client);
    assert.deepEqual([info.flavor, info.version, info.source], ['elasticsearch', '8.19.21', 'nodes']);
    assert.deepEqual(info.modules, ['x-pack-core']);
  });

  test('installs once, then finds them up to date', async () => {
    await mk({});
    const types = initialServerTypes(await detectServer(client));
    const r1 = await installTemplates(client, types, 250);
    assert.equal(r1.installed.length, TEMPLATE_COUNT);
    assert.equal(r1.upToDate.length, 0);
    const puts = fake.requests.filter((r) => r.method === 'PUT').length;
    const r2 = await installTemplates(client, types, 250);
    assert.equal(r2.installed.length, 0);
    assert.equal(r2.upToDate.length, TEMPLATE_COUNT);
    assert.equal(fake.requests.filter((r) => r.method === 'PUT').length, puts, 'no second PUT');
  });

  test('an older installed version is replaced', async () => {
    await mk({});
    fake.templates.set('_index_template/authentik-collector-logs-authentik.user', {
      version: TEMPLATE_VERSION - 1,
    });
    const r = await installTemplates(client, initialServerTypes(await detectServer(client)), 250);
    assert.ok(r.installed.includes('authentik-collector-logs-authentik.user'));
  });

  test('degrades a type the server refuses and re-sends', async () => {
    // Modules unknown (node info hidden), so nothing is degraded up front; the server refuses wildcard.
    await mk({ unknownTypes: ['wildcard', 'constant_keyword'] });
    fake.otherFault = (r) => (r.path.startsWith('/_nodes') ? { status: 403 } : undefined);
    const types = initialServerTypes(await detectServer(client));
    const r = await installTemplates(client, types, 250);
    assert.deepEqual(r.discoveredUnsupported.sort(), ['constant_keyword', 'wildcard']);
    assert.equal(r.installed.length, TEMPLATE_COUNT);
    const stored = JSON.stringify([...fake.templates.values()]);
    assert.ok(!stored.includes('"wildcard"') && !stored.includes('"constant_keyword"'));
  });

  test('403 on template PUT is a privilege error', async () => {
    await mk({});
    fake.otherFault = (r) =>
      r.method === 'PUT'
        ? {
            status: 403,
            body: {
              error: {
                type: 'security_exception',
                reason: 'action [indices:admin/index_template/put] is unauthorized',
              },
              status: 403,
            },
          }
        : undefined;
    await assert.rejects(
      installTemplates(client, fullEs, 250),
      (e: any) => e.kind === 'privilege' && /unauthorized/.test(e.message),
    );
  });

  const listing = (templates: unknown[]) => (r: { method: string; path: string }) =>
    r.method === 'GET' && r.path.startsWith('/_index_template?')
      ? { status: 200, body: { index_templates: templates } }
      : undefined;
  const fleetTemplate = (dataset: string, meta: Record<string, unknown>) => ({
    name: `logs-${dataset}`,
    index_template: { index_patterns: [`logs-${dataset}-*`], _meta: meta },
  });

  test('Fleet-managed templates (managed_by: fleet) for all data streams: none of ours installed', async () => {
    await mk({});
    fake.otherFault = listing(
      ['authentik.event', 'authentik.user', 'authentik.group'].map((d) =>
        fleetTemplate(d, { managed_by: 'fleet', managed: true, package: { name: 'authentik' } }),
      ),
    );
    const r = await installTemplates(client, fullEs, 250);
    // Elastic's package has no change data stream: only ours (and the component templates it uses).
    assert.deepEqual(r.installed.sort(), [
      'authentik-collector-ecs@mappings',
      'authentik-collector-logs-authentik.change',
      'authentik-collector-logs-authentik.change@mappings',
      'authentik-collector@settings',
    ]);
    assert.deepEqual(r.upToDate, []);
    assert.deepEqual(
      r.fleetManaged.map((f) => [f.dataset, f.template, f.reason]),
      [
        ['authentik.event', 'logs-authentik.event', 'managed_by'],
        ['authentik.user', 'logs-authentik.user', 'managed_by'],
        ['authentik.group', 'logs-authentik.group', 'managed_by'],
      ],
    );
    for (const d of ['event', 'user', 'group']) {
      assert.ok(!fake.templates.has(`_index_template/authentik-collector-logs-authentik.${d}`), d);
      assert.ok(
        !fake.templates.has(`_component_template/authentik-collector-logs-authentik.${d}@mappings`),
        d,
      );
    }
  });

  test('a template of the authentik package alone counts too; other data streams get ours', async () => {
    await mk({});
    fake.otherFault = listing([
      fleetTemplate('authentik.event', { package: { name: 'authentik' } }),
      // Not Fleet's: another package, and a user template without _meta.
      fleetTemplate('authentik.user', { package: { name: 'okta' } }),
      { name: 'mine', index_template: { index_patterns: ['logs-authentik.group-*'] } },
    ]);
    const r = await installTemplates(client, fullEs, 250);
    assert.deepEqual(
      r.fleetManaged.map((f) => [f.dataset, f.reason]),
      [['authentik.event', 'package']],
    );
    assert.deepEqual(r.installed.sort(), [
      'authentik-collector-ecs@mappings',
      'authentik-collector-logs-authentik.change',
      'authentik-collector-logs-authentik.change@mappings',
      'authentik-collector-logs-authentik.group',
      'authentik-collector-logs-authentik.group@mappings',
      'authentik-collector-logs-authentik.user',
      'authentik-collector-logs-authentik.user@mappings',
      'authentik-collector@settings',
    ]);
    assert.ok(!fake.templates.has('_index_template/authentik-collector-logs-authentik.event'));
  });

  test("our own template with a higher priority than Fleet's is reported, not replaced", async () => {
    await mk({});
    const ours = (dataset: string, priority: number) => ({
      name: `authentik-collector-logs-${dataset}`,
      index_template: {
        index_patterns: [`logs-${dataset}-*`],
        priority,
        _meta: { managed_by: 'authentik-collector' },
      },
    });
    fake.otherFault = listing([
      {
        ...fleetTemplate('authentik.event', { managed_by: 'fleet' }),
        index_template: {
          index_patterns: ['logs-authentik.event-*'],
          priority: 200,
          _meta: { managed_by: 'fleet' },
        },
      },
      ours('authentik.event', 250),
      {
        name: 'logs-authentik.user',
        index_template: {
          index_patterns: ['logs-authentik.user-*'],
          priority: 300,
          _meta: { managed_by: 'fleet' },
        },
      },
      ours('authentik.user', 250),
    ]);
    const r = await installTemplates(client, fullEs, 250);
    assert.deepEqual(r.shadowing, ['authentik-collector-logs-authentik.event']);
    assert.ok(!r.installed.includes('authentik-collector-logs-authentik.event'));
    assert.ok(!r.installed.includes('authentik-collector-logs-authentik.user'));
    assert.ok(r.installed.includes('authentik-collector-logs-authentik.group'));
  });

  test('namespace-specific Fleet templates are found through the probed namespaces', async () => {
    await mk({});
    fake.otherFault = listing([
      {
        name: 'logs-authentik.event-prod',
        index_template: { index_patterns: ['logs-authentik.event-prod'], _meta: { managed_by: 'fleet' } },
      },
    ]);
    const a = await installTemplates(client, fullEs, 250);
    assert.deepEqual(a.fleetManaged, []);
    const b = await installTemplates(client, fullEs, 250, undefined, ['prod']);
    assert.deepEqual(
      b.fleetManaged.map((f) => f.template),
      ['logs-authentik.event-prod'],
    );
  });

  test('templates that cannot be listed (403) are treated as not Fleet-managed', async () => {
    await mk({});
    fake.otherFault = (r) =>
      r.method === 'GET' && r.path.startsWith('/_index_template?') ? { status: 403 } : undefined;
    const r = await installTemplates(client, fullEs, 250);
    assert.equal(r.installed.length, TEMPLATE_COUNT);
    assert.deepEqual(r.fleetManaged, []);
  });

  test('index pattern globbing', () => {
    assert.ok(indexPatternMatches('logs-authentik.event-*', 'logs-authentik.event-default'));
    assert.ok(indexPatternMatches('logs-*', 'logs-authentik.event-default'));
    assert.ok(indexPatternMatches('*-authentik.*-*', 'logs-authentik.user-x'));
    assert.ok(indexPatternMatches('logs-authentik.event-default', 'logs-authentik.event-default'));
    assert.ok(!indexPatternMatches('logs-authentik.user-*', 'logs-authentik.event-default'));
    assert.ok(!indexPatternMatches('logs-*-*-x', 'logs-a-x'));
    assert.ok(!indexPatternMatches('metrics-*', 'logs-authentik.event-default'));
  });
});
