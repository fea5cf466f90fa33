/**
 * The `otlphttp` exporter against a real OpenTelemetry Collector (test/peers/otelcol.sh): what the
 * collector's file exporter wrote must equal what we sent, field by field, in both encodings.
 *
 * Needs OTELCOL_OTLP_URL and OTELCOL_OUTPUT (printed by `test/peers/otelcol.sh start`; test/run-all.sh
 * sets them). Without them every test here is skipped with the reason.
 */
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import type { LogsConsumer, ProcessorFactory } from '../../runtime/component.ts';
import type { AnyValueMap, LogRecord, LogsBatch } from '../../runtime/model.ts';
import {
  SeverityNumber,
  cloneRecord,
  hrTimeFromIso,
  hrTimeFromMillis,
  nowHrTime,
} from '../../runtime/model.ts';
import { nopHost, nopSettings } from '../kit/index.ts';
import { factory } from '../../exporters/otlphttp/factory.ts';
import type { OtlpHttpExporter } from '../../exporters/otlphttp/exporter.ts';
import { RecordMapper, lookup, severityOfAction } from '../../exporters/otlphttp/mapping.ts';
import { decodeFileExporterOutput, normalFromReadable } from '../../exporters/otlphttp/testing.ts';
import type { NormalRecord } from '../../exporters/otlphttp/testing.ts';

const URL_ = process.env['OTELCOL_OTLP_URL'];
const OUTPUT = process.env['OTELCOL_OUTPUT'];
const SKIP =
  URL_ && OUTPUT
    ? false
    : 'OTELCOL_OTLP_URL / OTELCOL_OUTPUT not set: start the collector peer with ' +
      '`eval "$(test/peers/otelcol.sh start)"` and export both (npm test does this)';

const TESTDATA = new URL('../../exporters/otlphttp/testdata/', import.meta.url);
const SCRIPT = new URL('../peers/otelcol.sh', import.meta.url).pathname;
const run = promisify(execFile);
const str = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** Records the collector wrote for one run id (a resource attribute only that run uses). */
async function collected(
  output: string,
  runId: string,
  expected: number,
  timeoutMs = 15_000,
): Promise<NormalRecord[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(output) ? await readFile(output, 'utf8') : '';
    // The file exporter may be mid-line: only complete lines are parsed.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const mine = decodeFileExporterOutput(complete).filter((r) => r.resource['test.run.id'] === runId);
    if (mine.length >= expected || Date.now() > until) return mine;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function exporterFor(raw: Record<string, unknown>) {
  const settings = nopSettings('otlphttp', 'exporter');
  const cfg = factory.configSchema.parse(raw);
  const exp = (await factory.create(settings, cfg)) as OtlpHttpExporter;
  await exp.start(nopHost());
  return { exp, settings, cfg };
}

/** The mapper the exporter uses, with the same options: gives what the collector must have received. */
function mapperFor(
  cfg: ReturnType<typeof factory.configSchema.parse>,
  settings: ReturnType<typeof nopSettings>,
) {
  return new RecordMapper({
    body: cfg.body,
    resource: cfg.resource,
    defaultScope: { name: settings.buildInfo.name, version: settings.buildInfo.version },
  });
}

function byKey(records: NormalRecord[], key: (r: NormalRecord) => string): Map<string, NormalRecord> {
  return new Map(records.map((r) => [key(r), r]));
}

/** Records exercising every value type and the time/severity fields. */
function roundTripBatch(): LogsBatch {
  return [
    {
      timestamp: hrTimeFromIso('2024-08-07T06:28:59.565191123Z')!,
      observedTimestamp: hrTimeFromMillis(1_723_012_140_001.5),
      severityNumber: SeverityNumber.WARN2,
      severityText: 'WARN2',
      eventName: 'test.round_trip',
      body: {
        str: 'text with ünïcode ✓ and "quotes"',
        int: 42,
        neg: -7,
        big: 9_007_199_254_740_991,
        dbl: 3.25,
        bool: false,
        arr: ['a', 1, true, 2.5, { k: 'v' }],
        empty_map: {},
        empty_arr: [],
        nested: { deep: { deeper: { list: [[1, 2], ['x']] } } },
        'dotted.key': 'kept as one key',
      },
      attributes: {
        seq: 0,
        'string.attr': 's',
        'int.attr': 123,
        'double.attr': 0.125,
        'bool.attr': true,
        'array.attr': ['x', 'y'],
        'map.attr': { a: 1, b: ['c'] },
        'elasticsearch.document_id': 'must-not-be-sent',
      },
      resource: { 'service.version': '2024.8.0', 'host.name': 'auth.example.com' },
      scope: { name: 'integration', version: '9.9.9' },
    },
    {
      observedTimestamp: hrTimeFromMillis(1_723_012_140_002),
      body: 'a plain string body with no timestamp',
      attributes: { seq: 1, 'log.file.name': 'in.ndjson' },
    },
    {
      timestamp: hrTimeFromIso('2024-01-02T03:04:05Z')!,
      observedTimestamp: hrTimeFromMillis(1_723_012_140_003),
      severityNumber: SeverityNumber.ERROR,
      body: ['array', 'body'],
      attributes: { seq: 2 },
      resource: { 'host.name': 'other.example.com' },
    },
  ];
}

/** The 30 fixture events as documents: through processors/authentik_ecs when it exists, else the expected file. */
async function fixtureDocuments(
  t: TestContext,
  next: LogsConsumer,
): Promise<{ send: () => Promise<void>; shutdown: () => Promise<void> }> {
  const lines = readFileSync(new URL('test-event.log', TESTDATA), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const processorFile = new URL('../../processors/authentik_ecs/factory.ts', import.meta.url);
  if (existsSync(processorFile)) {
    const mod = (await import(processorFile.href)) as { factory: ProcessorFactory };
    const parsed = mod.factory.configSchema.safeParse({});
    assert.ok(
      parsed.success,
      `authentik_ecs rejects an empty config: ${JSON.stringify(parsed.error?.issues)}`,
    );
    const proc = await mod.factory.create(nopSettings('authentik_ecs', 'processor'), parsed.data, next);
    await proc.start(nopHost());
    t.diagnostic('documents made by processors/authentik_ecs from testdata/test-event.log');
    const batch: LogsBatch = lines.map((line) => ({
      observedTimestamp: nowHrTime(),
      body: JSON.parse(line) as AnyValueMap,
      attributes: { 'data_stream.dataset': 'authentik.event', 'log.record.original': line },
    }));
    return { send: () => proc.consume(batch), shutdown: () => proc.shutdown() };
  }
  t.diagnostic(
    'processors/authentik_ecs/factory.ts not present: documents taken from test-event.log-expected.json',
  );
  const docs = (
    JSON.parse(readFileSync(new URL('test-event.log-expected.json', TESTDATA), 'utf8')) as {
      expected: AnyValueMap[];
    }
  ).expected;
  const batch: LogsBatch = docs.map((doc) => ({
    observedTimestamp: nowHrTime(),
    body: doc,
    attributes: { 'data_stream.dataset': 'authentik.event', 'data_stream.namespace': 'default' },
  }));
  return { send: () => next.consume(batch), shutdown: () => Promise.resolve() };
}

describe('otlphttp → real OpenTelemetry Collector', () => {
  for (const encoding of ['proto', 'json'] as const) {
    test(
      `${encoding}: timestamps, severity, body, attributes, resource and scope round-trip exactly`,
      { skip: SKIP },
      async () => {
        const runId = randomUUID();
        const { exp, settings, cfg } = await exporterFor({
          endpoint: URL_,
          encoding,
          resource: { 'service.name': 'authentik', 'test.run.id': runId },
        });
        const batch = roundTripBatch();
        const expected = batch.map((r) =>
          normalFromReadable(mapperFor(cfg, settings).map(cloneRecord(r, true))),
        );
        await exp.consume(batch);
        await exp.shutdown();
        const got = await collected(OUTPUT!, runId, batch.length);
        assert.equal(got.length, batch.length);
        const bySeq = byKey(got, (r) => str(r.attributes['seq']));
        for (const want of expected) {
          const have = bySeq.get(str(want.attributes['seq']));
          assert.ok(have, `record seq=${str(want.attributes['seq'])} missing`);
          assert.deepEqual(have, want);
        }
        // Spot checks against literal values (independent of the mapper).
        const first = bySeq.get('0')!;
        assert.equal(first.timeUnixNano, '1723012139565191123');
        assert.equal(first.observedTimeUnixNano, '1723012140001500000');
        assert.equal(first.severityNumber, 14);
        assert.equal(first.eventName, 'test.round_trip');
        assert.equal(first.attributes['elasticsearch.document_id'], undefined);
        assert.deepEqual(first.attributes['map.attr'], { a: 1, b: ['c'] });
        assert.deepEqual(first.scope, { name: 'integration', version: '9.9.9' });
        assert.equal(first.resource['host.name'], 'auth.example.com');
        assert.equal(first.resource['service.name'], 'authentik');
        assert.equal(bySeq.get('1')!.timeUnixNano, '0');
        assert.deepEqual(bySeq.get('2')!.body, ['array', 'body']);
        assert.deepEqual(settings.drops, []);
      },
    );

    test(
      `${encoding}: the 30 fixture events through authentik_ecs → otlphttp yield 30 mapped records`,
      { skip: SKIP },
      async (t) => {
        const runId = randomUUID();
        const { exp, settings, cfg } = await exporterFor({
          endpoint: URL_,
          encoding,
          resource: { 'service.name': 'authentik', 'test.run.id': runId },
        });
        const mapper = mapperFor(cfg, settings);
        const sent: LogRecord[] = [];
        const tee: LogsConsumer = {
          capabilities: { mutatesData: false },
          consume: (batch) => {
            for (const r of batch) sent.push(cloneRecord(r, true));
            return exp.consume(batch);
          },
        };
        const source = await fixtureDocuments(t, tee);
        await source.send();
        await source.shutdown();
        await exp.shutdown();
        assert.equal(sent.length, 30, 'the pipeline produced 30 records');

        const got = await collected(OUTPUT!, runId, 30);
        assert.equal(got.length, 30, 'the collector received 30 log records');
        const byId = byKey(got, (r) => str(lookup(r.body as AnyValueMap, 'event.id')));
        const severities: Record<string, number> = {};
        for (const r of sent) {
          const doc = r.body as AnyValueMap;
          const id = str(lookup(doc, 'event.id'));
          const have = byId.get(id);
          assert.ok(have, `event ${id} missing in the collector output`);
          // Exact round trip of everything the exporter sent.
          assert.deepEqual(have, normalFromReadable(mapper.map(r)));
          // The mapping table, checked against the document itself.
          const action = str(lookup(doc, 'event.action'));
          assert.equal(have.eventName, r.eventName ?? action);
          assert.equal(have.attributes['event.name'], have.eventName);
          if (r.severityNumber === undefined) {
            assert.equal(have.severityNumber, severityOfAction(action).number);
            assert.equal(have.severityText, severityOfAction(action).text);
          }
          severities[have.severityText ?? ''] = (severities[have.severityText ?? ''] ?? 0) + 1;
          const ts = lookup(doc, '@timestamp') as string;
          if (r.timestamp === undefined) {
            const [s, n] = hrTimeFromIso(ts)!;
            assert.equal(have.timeUnixNano, (BigInt(s) * 1_000_000_000n + BigInt(n)).toString());
          } else {
            assert.equal(have.timeUnixNano.slice(0, 10), String(Math.floor(Date.parse(ts) / 1000)));
          }
          assert.equal(have.attributes['data_stream.dataset'], 'authentik.event');
          const pairs: [string, string][] = [
            ['client.address', 'source.ip'],
            ['user.id', 'user.id'],
            ['user.name', 'user.name'],
            ['user.email', 'user.email'],
            ['url.path', 'url.path'],
            ['http.request.method', 'http.request.method'],
            ['user_agent.original', 'user_agent.original'],
          ];
          for (const [otel, ecs] of pairs) {
            const v = lookup(doc, ecs);
            if (v !== undefined && r.attributes[otel] === undefined)
              assert.equal(have.attributes[otel], v, `${id}: ${otel}`);
          }
          assert.equal(have.resource['service.name'], 'authentik');
          assert.equal(have.attributes['elasticsearch.document_id'], undefined);
        }
        t.diagnostic(`severities: ${JSON.stringify(severities)}`);
        assert.deepEqual(settings.drops, []);
      },
    );
  }

  test(
    'collector down for a while: consume waits, retries, and every record arrives once it is up',
    { skip: SKIP },
    async () => {
      const port = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as AddressInfo).port;
          s.close(() => resolve(p));
        });
      });
      const runId = randomUUID();
      const { exp, settings } = await exporterFor({
        endpoint: `http://127.0.0.1:${port}`,
        retry: { initial_interval: '50ms', max_interval: '200ms' },
        resource: { 'test.run.id': runId },
      });
      const batch = roundTripBatch();
      let settled = false;
      const pending = exp.consume(batch).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 800));
      assert.equal(settled, false, 'consume must not resolve while the endpoint is down');
      const env: NodeJS.ProcessEnv = { ...process.env, OTELCOL_PORT: String(port) };
      delete env['OTELCOL_DIR'];
      const { stdout } = await run('bash', [SCRIPT, 'start'], { env });
      const vars = Object.fromEntries(
        stdout
          .trim()
          .split('\n')
          .map((l) => l.split('=', 2) as [string, string]),
      );
      try {
        await pending;
        const got = await collected(vars['OTELCOL_OUTPUT']!, runId, batch.length);
        assert.equal(got.length, batch.length);
        assert.deepEqual(settings.drops, []);
        assert.match(settings.logger.text(), /will retry/);
      } finally {
        await exp.shutdown();
        await run('bash', [SCRIPT, 'stop', vars['OTELCOL_DIR']!]);
      }
    },
  );
});
