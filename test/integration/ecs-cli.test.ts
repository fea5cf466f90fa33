/**
 * Issue 3 acceptance end to end through the real command line: a `file` receiver replaying Elastic's
 * pipeline-test inputs, the `authentik_ecs` processor with the test GeoIP database and
 * `tags: [preserve_duplicate_custom_fields]`, a `file` exporter. Every output document must contain
 * every field of Elastic's expected document with an equal value; the only extra fields allowed are
 * the ones the integration's stack adds around the pipeline (data_stream.*, event.dataset,
 * event.module, @timestamp). 55 of 55. Needs no peer.
 *
 * The comparison is written here independently of the processor's own unit test.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import {
  FIXTURES,
  GEOIP,
  STACK_LINE,
  completeLines,
  runCli,
  tail,
  telemetryYaml,
  tempDir,
  writeText,
} from './helpers.ts';
import { needShared } from '../kit/shared.ts';

type Dataset = 'event' | 'group' | 'user';
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const inputPath = (ds: Dataset) => join(FIXTURES, ds, '_dev/test/pipeline', `test-${ds}.log`);
const expectedDocs = (ds: Dataset): Record<string, Json>[] =>
  (JSON.parse(readFileSync(`${inputPath(ds)}-expected.json`, 'utf8')) as { expected: Record<string, Json>[] })
    .expected;

const isObject = (v: unknown): v is Record<string, Json> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Leaf values by dotted path (arrays and empty objects are leaves; dotted keys and nesting are equivalent). */
function flatten(doc: Record<string, Json>, prefix = '', out = new Map<string, Json>()): Map<string, Json> {
  for (const [k, v] of Object.entries(doc)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isObject(v) && Object.keys(v).length > 0) flatten(v, path, out);
    else {
      if (out.has(path)) throw new Error(`field ${path} appears twice (dotted and nested)`);
      out.set(path, v);
    }
  }
  return out;
}

const ALLOWED_EXTRA = (path: string) =>
  path.startsWith('data_stream.') ||
  path === 'event.dataset' ||
  path === 'event.module' ||
  path === '@timestamp';

/** Problems of one document against its expectation (empty = pass). */
function compare(actual: Record<string, Json>, expected: Record<string, Json>): string[] {
  const problems: string[] = [];
  const a = flatten(actual);
  const e = flatten(expected);
  for (const [path, want] of e) {
    if (!a.has(path)) {
      problems.push(`missing ${path} (expected ${JSON.stringify(want)})`);
      continue;
    }
    try {
      assert.deepStrictEqual(a.get(path), want);
    } catch {
      problems.push(`${path}: got ${JSON.stringify(a.get(path))}, expected ${JSON.stringify(want)}`);
    }
  }
  for (const path of a.keys()) {
    if (!e.has(path) && !ALLOWED_EXTRA(path)) {
      problems.push(`extra field ${path} = ${JSON.stringify(a.get(path))}`);
    }
  }
  return problems;
}

function configFor(
  dir: string,
  ds: Dataset,
  tel: string,
  opts: { relativePaths: boolean; format?: string },
): string {
  const p = (abs: string) => (opts.relativePaths ? relative(dir, abs) : abs);
  return `receivers:
  file:
    path: ${JSON.stringify(p(inputPath(ds)))}
    attributes: { data_stream.dataset: authentik.${ds} }
processors:
  authentik_ecs:
    geoip: { city_database: ${JSON.stringify(p(join(GEOIP, 'GeoLite2-City-Test.mmdb')))} }
    tags: [preserve_duplicate_custom_fields]
exporters:
  file: { path: out.ndjson${opts.format ? `, format: ${opts.format}` : ''} }
service:
${tel}  pipelines:
    logs: { receivers: [file], processors: [authentik_ecs], exporters: [file] }
`;
}

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('ecs'));
});
after(() => cleanup());

const results = new Map<Dataset, { pass: number; total: number }>();

describe(
  'authentik_ecs through the CLI: Elastic fixtures',
  { timeout: 120_000, skip: needShared('fixtures/elastic-authentik', 'geoip') },
  () => {
    for (const ds of ['event', 'group', 'user'] as const) {
      test(`${ds}: every expected document matches (the issue-3 config, paths relative to the config)`, async () => {
        const work = join(dir, ds);
        const tel = await telemetryYaml();
        await mkdir(work, { recursive: true });
        const cfg = await writeText(
          work,
          'collector.yaml',
          configFor(work, ds, tel.yaml, { relativePaths: true }),
        );
        const r = await runCli(['run', '--config', cfg], { cwd: work, timeoutMs: 90_000 });
        assert.equal(r.code, 0, `exit 0 expected; stderr:\n${tail(r.stderr)}`);
        assert.doesNotMatch(r.stderr, STACK_LINE, tail(r.stderr));

        const expected = expectedDocs(ds);
        const out = (await completeLines(join(work, 'out.ndjson'))).map(
          (l) => JSON.parse(l) as Record<string, Json>,
        );
        assert.equal(out.length, expected.length, `one document per input line (${expected.length})`);

        const failures: string[] = [];
        let pass = 0;
        expected.forEach((want, i) => {
          const problems = compare(out[i]!, want);
          if (problems.length === 0) pass++;
          else failures.push(`line ${i + 1}:\n    ${problems.join('\n    ')}`);
        });
        results.set(ds, { pass, total: expected.length });
        assert.equal(
          failures.length,
          0,
          `${pass}/${expected.length} pass; failures:\n${failures.join('\n')}`,
        );

        // What the stack adds around the pipeline is there too, with the right values.
        out.forEach((doc, i) => {
          const f = flatten(doc);
          assert.equal(f.get('data_stream.dataset'), `authentik.${ds}`, `line ${i + 1} data_stream.dataset`);
          assert.equal(f.get('data_stream.type'), 'logs', `line ${i + 1} data_stream.type`);
          assert.equal(f.get('data_stream.namespace'), 'default', `line ${i + 1} data_stream.namespace`);
          assert.equal(f.get('event.dataset'), `authentik.${ds}`, `line ${i + 1} event.dataset`);
          assert.equal(f.get('event.module'), 'authentik', `line ${i + 1} event.module`);
          const ts = f.get('@timestamp');
          assert.ok(typeof ts === 'string', `line ${i + 1} @timestamp is a string`);
          assert.ok(!Number.isNaN(Date.parse(ts)), `line ${i + 1} @timestamp parses: ${ts}`);
          if (ds !== 'event') {
            // user/group: collection time (the event dataset's @timestamp is compared with Elastic's above)
            const ms = Date.parse(ts);
            assert.ok(
              ms >= r.startedAt - 60_000 && ms <= Date.now() + 60_000,
              `line ${i + 1}: @timestamp ${ts} is the collection time`,
            );
          }
        });
      });
    }

    test('55 of 55 fixture documents pass', (t) => {
      if (results.size < 3) {
        t.skip('a dataset test above did not complete');
        return;
      }
      const pass = [...results.values()].reduce((n, r) => n + r.pass, 0);
      const total = [...results.values()].reduce((n, r) => n + r.total, 0);
      assert.equal(total, 55);
      assert.equal(pass, 55);
    });

    test('event: records carry elasticsearch.document_id = base64(SHA-1(0x00 + event.original)) (otlp_json output, absolute paths)', async () => {
      const work = join(dir, 'event-otlp');
      await mkdir(work, { recursive: true });
      const tel = await telemetryYaml();
      const cfg = await writeText(
        work,
        'collector.yaml',
        configFor(work, 'event', tel.yaml, { relativePaths: false, format: 'otlp_json' }),
      );
      // Run from another directory: absolute paths must not depend on the working directory.
      const r = await runCli(['run', '--config', cfg], { cwd: dir, timeoutMs: 90_000 });
      assert.equal(r.code, 0, tail(r.stderr));
      const lines = await completeLines(join(work, 'out.ndjson'));
      assert.equal(lines.length, 30);
      const ids = new Set<string>();
      for (const [i, line] of lines.entries()) {
        const req = JSON.parse(line) as {
          resourceLogs: {
            scopeLogs: {
              logRecords: {
                attributes?: { key: string; value: Record<string, unknown> }[];
                body?: unknown;
              }[];
            }[];
          }[];
        };
        const recs = req.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords));
        assert.equal(recs.length, 1, `line ${i + 1}: one record per line`);
        const rec = recs[0]!;
        const attr = (k: string) => rec.attributes?.find((a) => a.key === k)?.value;
        const id = attr('elasticsearch.document_id')?.['stringValue'];
        assert.ok(typeof id === 'string', `line ${i + 1}: elasticsearch.document_id present`);
        // event.original inside the body map (nested maps, or a dotted key)
        type Kv = { kvlistValue?: { values: { key: string; value: Kv }[] }; stringValue?: string };
        const entries = (v: Kv | undefined) => v?.kvlistValue?.values ?? [];
        const body = rec.body as Kv | undefined;
        const original =
          entries(entries(body).find((e) => e.key === 'event')?.value).find((e) => e.key === 'original')
            ?.value.stringValue ?? entries(body).find((e) => e.key === 'event.original')?.value.stringValue;
        assert.ok(typeof original === 'string', `line ${i + 1}: event.original in the body`);
        assert.ok(typeof id === 'string');
        const want = createHash('sha1')
          .update(Buffer.concat([Buffer.from([0]), Buffer.from(original, 'utf8')]))
          .digest('base64');
        assert.equal(id, want, `line ${i + 1}: document id`);
        ids.add(id);
      }
      assert.equal(ids.size, 30, 'document ids are distinct');
    });
  },
);
