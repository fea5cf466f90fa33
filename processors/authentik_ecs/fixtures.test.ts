/**
 * Acceptance: Elastic's 55 pipeline-test inputs through the processor (test GeoIP City database, tags
 * [preserve_duplicate_custom_fields], the pipeline-test settings) give the expected documents: every
 * expected field present with an equal value; extra fields only those the stack adds around the pipeline.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import type { LogRecord } from '../../runtime/model.ts';
import { ATTR_DOCUMENT_ID, ATTR_NAMESPACE } from '../../runtime/model.ts';
import { SinkConsumer, nopSettings } from '../../test/kit/index.ts';
import { needShared } from '../../test/kit/shared.ts';
import { factory } from './factory.ts';
import { cityDb, fileRecord, fixtureCases, repoRoot } from './fixtures.ts';
import { ATTR_RECORD_ORIGINAL } from './mapper.ts';
import { fingerprint } from './original.ts';

/** Extra fields allowed beyond the expected document (added around the pipeline by the stack). */
function extraAllowed(path: string): boolean {
  return (
    path === '@timestamp' ||
    path === 'data_stream' ||
    path.startsWith('data_stream.') ||
    path === 'event.dataset' ||
    path === 'event.module'
  );
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Differences between actual and expected: a list of human-readable lines (empty when they match). */
export function diffDocument(actual: unknown, expected: unknown, path = ''): string[] {
  if (isObj(expected) && isObj(actual)) {
    const out: string[] = [];
    for (const k of Object.keys(expected)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in actual)) out.push(`missing ${p} (expected ${JSON.stringify(expected[k])})`);
      else out.push(...diffDocument(actual[k], expected[k], p));
    }
    for (const k of Object.keys(actual)) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in expected) && !extraAllowed(p)) out.push(`unexpected ${p} = ${JSON.stringify(actual[k])}`);
    }
    return out;
  }
  if (isDeepStrictEqual(actual, expected)) return [];
  return [`${path || '<root>'}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

describe(
  'Elastic authentik pipeline fixtures',
  { skip: needShared('fixtures/elastic-authentik', 'geoip') },
  async () => {
    const settings = nopSettings('authentik_ecs', 'processor', repoRoot);
    const config = factory.configSchema.parse({
      geoip: { city_database: cityDb },
      tags: ['preserve_duplicate_custom_fields'],
    });
    const sink = new SinkConsumer();
    const proc = await factory.create(settings, config, sink);
    const cases = fixtureCases();

    test('the City test database is the one configured', () => {
      assert.ok(cityDb.endsWith('GeoLite2-City-Test.mmdb'));
    });

    test('there are 55 fixture cases', () => {
      assert.equal(cases.length, 55);
    });

    const records: LogRecord[] = cases.map((c) => fileRecord(c.dataset, c.raw));
    await proc.consume(records);
    const out = sink.all();

    for (const [i, c] of cases.entries()) {
      test(`${c.dataset} #${c.line}`, () => {
        const rec = out[i]!;
        const diffs = diffDocument(rec.body, c.expected);
        assert.deepEqual(diffs, [], `${c.dataset} line ${c.line}:\n  ${diffs.join('\n  ')}`);
        const doc = rec.body as Record<string, Record<string, unknown>>;
        assert.equal(doc['event']!['original'], c.raw, 'event.original is the raw line');
        assert.equal(rec.attributes[ATTR_DOCUMENT_ID], fingerprint(c.raw));
        assert.equal(rec.attributes[ATTR_NAMESPACE], 'default');
        assert.equal(rec.attributes[ATTR_RECORD_ORIGINAL], undefined);
        assert.deepEqual(doc['data_stream'], {
          type: 'logs',
          dataset: `authentik.${c.dataset}`,
          namespace: 'default',
        });
        assert.equal(doc['event']!['dataset'], `authentik.${c.dataset}`);
        assert.equal(doc['event']!['module'], 'authentik');
        assert.equal(typeof doc['@timestamp'], 'string');
        if (c.dataset === 'event') {
          assert.equal(doc['@timestamp'], c.expected['@timestamp']);
          assert.equal(rec.eventName, (c.expected['event'] as Record<string, unknown>)['action']);
        }
      });
    }

    test('no document was counted as an error', async () => {
      const text = await settings.metrics.getSingleMetricAsString(
        'otelcol_processor_authentik_ecs_pipeline_errors',
      );
      assert.doesNotMatch(text, /otelcol_processor_authentik_ecs_pipeline_errors\{[^}]*\} [1-9]/);
    });
  },
);
