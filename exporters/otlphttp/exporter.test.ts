import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OTLPLogExporter as ProtoSdkExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonSdkExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { freePort, nopHost, nopSettings } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import { hrTimeFromIso, hrTimeFromMillis } from '../../runtime/model.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { isPermanent, PermanentError, RetryableError } from '../../runtime/errors.ts';
import { SinkUnusableError } from '../../runtime/exporterhelper/failure.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { factory } from './factory.ts';
import type { OtlpHttpExporter } from './exporter.ts';
import { RecordMapper } from './mapping.ts';
import { protoPartialSuccess, protoStatus, startFakeEndpoint } from './testing.ts';
import type { FakeEndpoint } from './testing.ts';

const conformanceEndpoint = await startFakeEndpoint();
after(() => conformanceEndpoint.close());
describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: { endpoint: conformanceEndpoint.url },
});

const FAST_RETRY = { initial_interval: '10ms', max_interval: '50ms', randomization_factor: 0 };

function ecsRecord(i: number, extra: Pick<LogRecord, 'resource'> = {}): LogRecord {
  return {
    timestamp: hrTimeFromIso(`2024-08-07T06:28:59.${String(i % 1000).padStart(3, '0')}123Z`)!,
    observedTimestamp: hrTimeFromMillis(1_723_012_200_000 + i),
    body: {
      '@timestamp': '2024-08-07T06:28:59.565Z',
      ecs: { version: '8.11.0' },
      event: { action: i % 2 ? 'login-failed' : 'login', id: `id-${i}` },
      source: { ip: '192.0.2.1' },
      user: { name: 'akadmin', id: '4' },
    },
    attributes: { 'data_stream.dataset': 'authentik.event', 'elasticsearch.document_id': `id-${i}` },
    resource: { 'host.name': 'auth.example.com', 'service.version': '2024.8.0' },
    ...extra,
  };
}

async function make(
  raw: Record<string, unknown>,
  id = 'otlphttp',
): Promise<{ exp: OtlpHttpExporter; settings: TestSettings }> {
  const settings = nopSettings(id, 'exporter');
  const cfg = factory.configSchema.parse(raw);
  const exp = (await factory.create(settings, cfg)) as OtlpHttpExporter;
  await exp.start(nopHost());
  return { exp, settings };
}

async function metric(settings: TestSettings, name: string, labels: Record<string, string>): Promise<number> {
  const m = await settings.metrics.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

describe('otlphttp exporter against a fake endpoint', () => {
  let fake: FakeEndpoint;
  before(async () => {
    fake = await startFakeEndpoint();
  });
  after(() => fake.close());
  const reset = () => {
    fake.requests.length = 0;
    fake.respond = () => undefined;
  };

  test('proto + gzip: content type, encoding, path and payload', async () => {
    reset();
    const { exp } = await make({ endpoint: `${fake.url}/base/` });
    await exp.consume([ecsRecord(1), ecsRecord(2)]);
    await exp.shutdown();
    assert.equal(fake.requests.length, 1);
    const req = fake.requests[0]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/base/v1/logs');
    assert.equal(req.headers['content-type'], 'application/x-protobuf');
    assert.equal(req.headers['content-encoding'], 'gzip');
    assert.deepEqual(gunzipSync(req.raw), req.body);
    assert.equal(req.records.length, 2);
    const r = req.records[0]!;
    assert.equal(r.timeUnixNano, '1723012139001123000');
    assert.equal(r.severityText, 'WARN');
    assert.equal(r.eventName, 'login-failed');
    assert.equal(r.attributes['user.name'], 'akadmin');
    assert.equal(r.attributes['elasticsearch.document_id'], undefined);
    assert.deepEqual(r.resource, {
      'host.name': 'auth.example.com',
      'service.version': '2024.8.0',
      'service.name': 'authentik',
    });
  });

  test('json without compression, logs_endpoint used as is', async () => {
    reset();
    const { exp } = await make({
      logs_endpoint: `${fake.url}/custom/path`,
      encoding: 'json',
      compression: 'none',
    });
    await exp.consume([ecsRecord(3)]);
    await exp.shutdown();
    const req = fake.requests[0]!;
    assert.equal(req.url, '/custom/path');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['content-encoding'], undefined);
    const parsed = JSON.parse(req.raw.toString('utf8')) as { resourceLogs: unknown[] };
    assert.equal(parsed.resourceLogs.length, 1);
    assert.equal(req.records[0]!.attributes['client.address'], '192.0.2.1');
  });

  for (const encoding of ['proto', 'json'] as const) {
    test(`${encoding}: bytes on the wire equal the SDK OTLPLogExporter's for the same records`, async () => {
      reset();
      const records = [ecsRecord(1), ecsRecord(2), ecsRecord(3, { resource: { 'host.name': 'other' } })];
      const { exp, settings } = await make({ endpoint: fake.url, encoding, compression: 'none' });
      await exp.consume(records.map((r) => ({ ...r })));
      await exp.shutdown();
      const mapper = new RecordMapper({
        body: 'ecs',
        resource: { 'service.name': 'authentik' },
        defaultScope: { name: settings.buildInfo.name, version: settings.buildInfo.version },
      });
      const readable: ReadableLogRecord[] = records.map((r) => mapper.map(r));
      const Sdk = encoding === 'proto' ? ProtoSdkExporter : JsonSdkExporter;
      const sdk = new Sdk({ url: `${fake.url}/v1/logs`, compression: 'none' as never, timeoutMillis: 5000 });
      const result = await new Promise<{ code: number }>((resolve) => sdk.export(readable, resolve));
      await sdk.shutdown();
      assert.equal(result.code, ExportResultCode.SUCCESS);
      assert.equal(fake.requests.length, 2);
      assert.equal(fake.requests[1]!.headers['content-type'], fake.requests[0]!.headers['content-type']);
      assert.ok(fake.requests[0]!.body.equals(fake.requests[1]!.body), 'payloads differ');
      assert.equal(fake.requests[0]!.records.length, 3);
    });
  }

  test('OTEL_EXPORTER_OTLP_* variables do not change the exporter (they do change the SDK exporter)', async () => {
    reset();
    const saved = { ...process.env };
    process.env['OTEL_EXPORTER_OTLP_HEADERS'] = 'x-from-env=1';
    process.env['OTEL_EXPORTER_OTLP_LOGS_HEADERS'] = 'x-logs-env=1';
    process.env['OTEL_EXPORTER_OTLP_COMPRESSION'] = 'none';
    process.env['OTEL_EXPORTER_OTLP_TIMEOUT'] = '1';
    try {
      const { exp } = await make({ endpoint: fake.url });
      await exp.consume([ecsRecord(1)]);
      await exp.shutdown();
      const ours = fake.requests[0]!;
      assert.equal(ours.headers['x-from-env'], undefined);
      assert.equal(ours.headers['x-logs-env'], undefined);
      assert.equal(ours.headers['content-encoding'], 'gzip');

      const sdk = new ProtoSdkExporter({ url: `${fake.url}/v1/logs`, timeoutMillis: 5000 });
      const mapper = new RecordMapper({ body: 'ecs', resource: {}, defaultScope: { name: 't' } });
      await new Promise((resolve) => sdk.export([mapper.map(ecsRecord(1))], resolve));
      await sdk.shutdown();
      assert.equal(fake.requests[1]!.headers['x-from-env'], '1', 'the SDK exporter merges env headers');
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test('headers are sent on the wire and never logged, even in errors', async () => {
    reset();
    const token = 'Bearer s3cr3t-token-value';
    fake.respond = (n) => (n === 0 ? { status: 401, body: 'unauthorized' } : undefined);
    const { exp, settings } = await make({
      endpoint: fake.url,
      headers: { Authorization: token, 'X-Tenant': 'acme' },
    });
    await assert.rejects(exp.consume([ecsRecord(1)]), (err: unknown) => {
      assert.ok(err instanceof SinkUnusableError, String(err));
      assert.ok(!isPermanent(err), '401 is class 2: never dropped');
      assert.ok(!String((err as Error).message).includes('s3cr3t'));
      return true;
    });
    await exp.shutdown();
    assert.equal(fake.requests[0]!.headers['authorization'], token);
    assert.equal(fake.requests[0]!.headers['x-tenant'], 'acme');
    assert.match(String(fake.requests[0]!.headers['user-agent']), /^authentik-collector\//);
    assert.ok(!settings.logger.text().includes('s3cr3t'));
    assert.ok(settings.logger.text().includes('Authorization'), 'header names are logged at start');
  });

  test('429 with Retry-After is honoured, then delivered', async () => {
    reset();
    fake.respond = (n) => (n === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined);
    const { exp, settings } = await make({ endpoint: fake.url, retry: FAST_RETRY });
    const t0 = Date.now();
    await exp.consume([ecsRecord(1)]);
    const waited = Date.now() - t0;
    await exp.shutdown();
    assert.equal(fake.requests.length, 2);
    assert.ok(waited >= 950, `waited only ${waited} ms despite Retry-After: 1`);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_requests', { outcome: 'throttled' }), 1);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_retries', {}), 1);
    assert.deepEqual(
      settings.statuses.map((s) => s.status),
      ['recoverable_error', 'ok'],
    );
  });

  test('503 (and 500) are retried until accepted', async () => {
    reset();
    fake.respond = (n) => (n === 0 ? { status: 503 } : n === 1 ? { status: 500 } : undefined);
    const { exp, settings } = await make({ endpoint: fake.url, retry: FAST_RETRY });
    await exp.consume([ecsRecord(1), ecsRecord(2)]);
    await exp.shutdown();
    assert.equal(fake.requests.length, 3);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_log_records', { result: 'sent' }), 2);
    assert.equal(
      await metric(settings, 'otelcol_exporter_otlphttp_requests', { outcome: 'retryable_status' }),
      2,
    );
  });

  test('400 is permanent: not retried, the server message is in the error', async () => {
    reset();
    fake.respond = () => ({
      status: 400,
      headers: { 'Content-Type': 'application/x-protobuf' },
      body: protoStatus(3, 'unable to unmarshal request'),
    });
    const { exp, settings } = await make({ endpoint: fake.url, retry: FAST_RETRY });
    await assert.rejects(exp.consume([ecsRecord(1), ecsRecord(2)]), (err: unknown) => {
      assert.ok(err instanceof PermanentError);
      assert.match(err.message, /answered 400: unable to unmarshal request/);
      return true;
    });
    await exp.shutdown();
    assert.equal(fake.requests.length, 1);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_log_records', { result: 'failed' }), 2);
    // Nothing was delivered: the caller accounts for the batch, the exporter does not report a drop.
    assert.deepEqual(settings.drops, []);
  });

  for (const encoding of ['proto', 'json'] as const) {
    test(`${encoding}: partial success is counted as rejected and the server message logged`, async () => {
      reset();
      fake.respond = () =>
        encoding === 'proto'
          ? {
              headers: { 'Content-Type': 'application/x-protobuf' },
              body: protoPartialSuccess(2, 'two records too old'),
            }
          : {
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({
                partialSuccess: { rejectedLogRecords: '2', errorMessage: 'two records too old' },
              }),
            };
      const { exp, settings } = await make({ endpoint: fake.url, encoding });
      await exp.consume([ecsRecord(1), ecsRecord(2), ecsRecord(3)]);
      await exp.shutdown();
      assert.deepEqual(settings.drops, [{ count: 2, reason: 'otlp_partial_success' }]);
      assert.match(settings.logger.text(), /two records too old/);
      assert.equal(
        await metric(settings, 'otelcol_exporter_otlphttp_log_records', { result: 'rejected' }),
        2,
      );
      assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_log_records', { result: 'sent' }), 1);
      assert.equal(
        await metric(settings, 'otelcol_exporter_otlphttp_requests', { outcome: 'partial_success' }),
        1,
      );
    });
  }

  test('an empty partialSuccess answer (what the collector sends) is full success', async () => {
    reset();
    fake.respond = () => ({ headers: { 'Content-Type': 'application/json' }, body: '{"partialSuccess":{}}' });
    const { exp, settings } = await make({ endpoint: fake.url, encoding: 'json' });
    await exp.consume([ecsRecord(1)]);
    await exp.shutdown();
    assert.deepEqual(settings.drops, []);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_requests', { outcome: 'success' }), 1);
  });

  test('a response slower than timeout is abandoned and retried', async () => {
    reset();
    fake.respond = (n) => (n === 0 ? { delayMs: 1500 } : undefined);
    const { exp, settings } = await make({ endpoint: fake.url, timeout: '200ms', retry: FAST_RETRY });
    const t0 = Date.now();
    await exp.consume([ecsRecord(1)]);
    const took = Date.now() - t0;
    await exp.shutdown();
    assert.equal(fake.requests.length, 2);
    assert.ok(took < 1400, `took ${took} ms: the timeout did not cut the slow request`);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_requests', { outcome: 'timeout' }), 1);
  });

  test('retries stop at max_elapsed_time with a permanent error', async () => {
    reset();
    fake.respond = () => ({ status: 503 });
    const { exp } = await make({
      endpoint: fake.url,
      retry: { ...FAST_RETRY, max_elapsed_time: '150ms' },
    });
    await assert.rejects(exp.consume([ecsRecord(1)]), (err: unknown) => {
      assert.ok(isPermanent(err));
      assert.match((err as Error).message, /gave up after \d+ attempts.*answered 503/);
      return true;
    });
    await exp.shutdown();
    assert.ok(fake.requests.length >= 2);
  });

  test('network errors are retryable', async () => {
    const down = await startFakeEndpoint();
    const url = down.url;
    await down.close();
    const { exp, settings } = await make({ endpoint: url, retry: { enabled: false } });
    await assert.rejects(exp.consume([ecsRecord(1)]), (err: unknown) => {
      assert.ok(err instanceof RetryableError);
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
    await exp.shutdown();
    assert.equal(
      await metric(settings, 'otelcol_exporter_otlphttp_requests', { outcome: 'network_error' }),
      1,
    );
  });

  test('a connection reset is retried', async () => {
    reset();
    fake.respond = (n) => (n === 0 ? { reset: true } : undefined);
    const { exp } = await make({ endpoint: fake.url, retry: FAST_RETRY });
    await exp.consume([ecsRecord(1)]);
    await exp.shutdown();
    assert.equal(fake.requests.length, 2);
    assert.equal(fake.requests[1]!.records.length, 1);
  });

  test('batches larger than max_batch_size are split in order', async () => {
    reset();
    const { exp } = await make({ endpoint: fake.url, max_batch_size: 10 });
    await exp.consume(Array.from({ length: 25 }, (_, i) => ecsRecord(i)));
    await exp.shutdown();
    assert.deepEqual(
      fake.requests.map((r) => r.records.length),
      [10, 10, 5],
    );
    const ids = fake.requests.flatMap((r) =>
      r.records.map((x) => (x.body as { event: { id: string } }).event.id),
    );
    assert.deepEqual(
      ids,
      Array.from({ length: 25 }, (_, i) => `id-${i}`),
    );
  });

  test('413 splits the request in halves until the endpoint takes it; nothing dropped', async () => {
    reset();
    fake.respond = (_n, req) => (req.records.length > 3 ? { status: 413, body: 'too large' } : undefined);
    const { exp, settings } = await make({ endpoint: fake.url, max_batch_size: 10, retry: FAST_RETRY });
    await exp.consume(Array.from({ length: 25 }, (_, i) => ecsRecord(i)));
    await exp.shutdown();
    assert.deepEqual(settings.drops, []);
    const ids = fake.requests
      .filter((r) => r.records.length <= 3)
      .flatMap((r) => r.records.map((x) => x.timeUnixNano));
    assert.equal(ids.length, 25);
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_log_records', { result: 'sent' }), 25);
  });

  test('413 for a single record is class 2 (kept, health permanent_error), not a drop', async () => {
    reset();
    fake.respond = () => ({ status: 413, body: '<html>413</html>' });
    const { exp, settings } = await make({ endpoint: fake.url, retry: FAST_RETRY });
    await assert.rejects(exp.consume([ecsRecord(1), ecsRecord(2)]), (err: unknown) => {
      assert.ok(err instanceof SinkUnusableError, String(err));
      assert.match(String(err), /too large/);
      return true;
    });
    await exp.shutdown();
    assert.deepEqual(settings.drops, []);
    assert.equal(settings.statuses.at(-1)?.status, 'permanent_error');
  });

  for (const [what, answer] of [
    ['403', { status: 403, body: 'forbidden' }],
    [
      'a proxy’s HTML 404',
      { status: 404, headers: { 'Content-Type': 'text/html' }, body: '<h1>Not Found</h1>' },
    ],
    ['a 301 redirect', { status: 301, headers: { Location: 'https://elsewhere/' } }],
    [
      'a 400 that is not an OTLP Status',
      { status: 400, headers: { 'Content-Type': 'text/html' }, body: '<h1>Bad</h1>' },
    ],
  ] as const) {
    test(`${what} is class 2: the batch is kept and goes through once fixed, delivered parts are not re-sent`, async () => {
      reset();
      // First chunk accepted, second refused: the retry must send only the second.
      fake.respond = (n) => (n === 1 ? answer : undefined);
      const { exp, settings } = await make({ endpoint: fake.url, max_batch_size: 5, retry: FAST_RETRY });
      const batch = Array.from({ length: 10 }, (_, i) => ecsRecord(i));
      await assert.rejects(exp.consume(batch), (err: unknown) => err instanceof SinkUnusableError);
      assert.deepEqual(settings.drops, []);
      await exp.consume(batch);
      await exp.shutdown();
      assert.equal(fake.requests.length, 3, 'chunk 1, chunk 2 refused, chunk 2 again');
      assert.equal(
        fake.requests.reduce((n, r) => n + r.records.length, 0),
        15,
      );
    });
  }

  test('endpoint down: every retried attempt counts in send_failed; no body bytes count as sent', async () => {
    const port = await freePort();
    const { exp, settings } = await make({
      endpoint: `http://127.0.0.1:${port}`,
      retry: { initial_interval: '10ms', max_interval: '20ms', max_elapsed_time: '300ms' },
    });
    await assert.rejects(exp.consume([ecsRecord(1), ecsRecord(2)]));
    await exp.shutdown();
    assert.ok(
      (await metric(settings, 'otelcol_exporter_send_failed_log_records', { exporter: settings.id })) >= 4,
      'at least two failed attempts of 2 records before giving up',
    );
    assert.equal(await metric(settings, 'otelcol_exporter_otlphttp_sent_bytes', {}), 0);
  });

  test('shutdown stops retrying: the pending consume rejects as retryable (the caller keeps the data)', async () => {
    reset();
    fake.respond = () => ({ status: 503 });
    const { exp } = await make({ endpoint: fake.url, retry: { initial_interval: '5s', max_interval: '5s' } });
    const pending = exp.consume([ecsRecord(1)]);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await exp.shutdown();
    await assert.rejects(pending, (err: unknown) => !isPermanent(err));
    assert.ok(Date.now() - t0 < 2000);
    await assert.rejects(exp.consume([ecsRecord(2)]), (err: unknown) => !isPermanent(err));
  });

  test('more than 128 attributes all arrive (no SDK attribute limit in this path)', async () => {
    reset();
    const attributes: Record<string, string> = {};
    for (let i = 0; i < 300; i++) attributes[`attr.${i}`] = `v${i}`;
    const { exp } = await make({ endpoint: fake.url });
    await exp.consume([{ observedTimestamp: hrTimeFromMillis(1), body: 'plain', attributes }]);
    await exp.shutdown();
    const r = fake.requests[0]!.records[0]!;
    assert.equal(Object.keys(r.attributes).length, 300);
    assert.equal(r.attributes['attr.299'], 'v299');
    assert.equal(r.droppedAttributesCount, 0);
  });

  test('an empty batch sends nothing', async () => {
    reset();
    const { exp } = await make({ endpoint: fake.url });
    await exp.consume([]);
    await exp.shutdown();
    assert.equal(fake.requests.length, 0);
  });

  test('two instances share one registry without clashing', async () => {
    reset();
    const a = await make({ endpoint: fake.url }, 'otlphttp/a');
    const settingsB = { ...nopSettings('otlphttp/b', 'exporter'), metrics: a.settings.metrics };
    const b = (await factory.create(
      settingsB,
      factory.configSchema.parse({ endpoint: fake.url }),
    )) as OtlpHttpExporter;
    await a.exp.consume([ecsRecord(1)]);
    await b.consume([ecsRecord(1), ecsRecord(2)]);
    await a.exp.shutdown();
    await b.shutdown();
    const m = 'otelcol_exporter_otlphttp_log_records';
    assert.equal(await metric(a.settings, m, { exporter: 'otlphttp/a', result: 'sent' }), 1);
    assert.equal(await metric(a.settings, m, { exporter: 'otlphttp/b', result: 'sent' }), 2);
  });
});

describe('otlphttp factory', () => {
  test('an unreadable tls.ca_file is a config error naming the option', async () => {
    const settings = nopSettings('otlphttp', 'exporter', '/nonexistent-dir');
    const cfg = factory.configSchema.parse({ endpoint: 'https://x', tls: { ca_file: 'ca.pem' } });
    await assert.rejects(Promise.resolve(factory.create(settings, cfg)), (err: unknown) => {
      assert.match(
        (err as Error).message,
        /exporters\.otlphttp\.tls\.ca_file: cannot read \/nonexistent-dir\/ca\.pem/,
      );
      return true;
    });
  });

  test('shutdown without start or consume is safe, twice', async () => {
    const settings = nopSettings('otlphttp', 'exporter');
    const exp = await factory.create(
      settings,
      factory.configSchema.parse({ endpoint: 'http://127.0.0.1:9' }),
    );
    await exp.shutdown();
    await exp.shutdown();
  });
});

describe('otlphttp TLS', () => {
  let dir = '';
  let server: Server | undefined;
  let url = '';
  const received: string[] = [];
  const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

  before(async () => {
    if (!haveOpenssl) return;
    dir = await mkdtemp(join(tmpdir(), 'otlphttp-tls-'));
    // A throw-away self-signed certificate for the name otlp.test (the test connects to 127.0.0.1).
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=otlp.test',
        '-addext',
        'subjectAltName=DNS:otlp.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    server = createHttpsServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (req, res) => {
        req.resume();
        req.on('end', () => {
          received.push(String(req.headers['content-type']));
          res.end();
        });
      },
    );
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server!.close(r));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test(
    'ca_file (relative to the config dir) and server_name verify the server',
    { skip: !haveOpenssl && 'no openssl' },
    async () => {
      const settings = nopSettings('otlphttp', 'exporter', dir);
      const cfg = factory.configSchema.parse({
        endpoint: url,
        tls: { ca_file: 'cert.pem', server_name: 'otlp.test' },
      });
      const exp = await factory.create(settings, cfg);
      await exp.consume([ecsRecord(1)]);
      await exp.shutdown();
      assert.equal(received.length, 1);
    },
  );

  test(
    'an unknown CA fails (retryable), insecure_skip_verify accepts it',
    { skip: !haveOpenssl && 'no openssl' },
    async () => {
      const strict = await factory.create(
        nopSettings('otlphttp', 'exporter'),
        factory.configSchema.parse({ endpoint: url, retry: { enabled: false } }),
      );
      await assert.rejects(strict.consume([ecsRecord(1)]), (err: unknown) => {
        assert.ok(err instanceof RetryableError);
        assert.match(err.message, /certificate/i);
        return true;
      });
      await strict.shutdown();
      const lax = await factory.create(
        nopSettings('otlphttp', 'exporter'),
        factory.configSchema.parse({ endpoint: url, tls: { insecure_skip_verify: true } }),
      );
      await lax.consume([ecsRecord(1)]);
      await lax.shutdown();
    },
  );
});

describe('otlphttp bad input', () => {
  test('a record that cannot be mapped or encoded is dropped alone; the others are delivered', async () => {
    const fake = await startFakeEndpoint();
    try {
      const settings = nopSettings('otlphttp', 'exporter');
      const exp = await factory.create(settings, factory.configSchema.parse({ endpoint: fake.url }));
      const circular: Record<string, unknown> = { a: 1 };
      circular['self'] = circular;
      const bad: LogRecord[] = [
        // circular resource map: mapping (JSON text of a map value) fails
        {
          observedTimestamp: hrTimeFromMillis(1),
          body: 'x',
          attributes: {},
          resource: { r: circular as never },
        },
        // circular body: the serializer fails
        { observedTimestamp: hrTimeFromMillis(1), body: circular as never, attributes: {} },
      ];
      await exp.consume([ecsRecord(1), ...bad, ecsRecord(2)]);
      await exp.shutdown();
      assert.equal(fake.requests.length, 1);
      assert.equal(fake.requests[0]!.records.length, 2);
      assert.deepEqual(settings.drops, [
        { count: 1, reason: 'otlp_permanent_error' },
        { count: 1, reason: 'otlp_permanent_error' },
      ]);

      // Only bad records: nothing delivered, the caller gets a permanent error and accounts for them.
      const exp2 = await factory.create(
        nopSettings('otlphttp', 'exporter'),
        factory.configSchema.parse({ endpoint: fake.url }),
      );
      await assert.rejects(exp2.consume(bad), (err: unknown) => err instanceof PermanentError);
      await exp2.shutdown();
      assert.equal(fake.requests.length, 1);
    } finally {
      await fake.close();
    }
  });
});
