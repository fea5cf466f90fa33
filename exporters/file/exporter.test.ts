import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RetryableError } from '../../runtime/errors.ts';
import { SinkUnusableError } from '../../runtime/exporterhelper/failure.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { hrTimeFromIso, SeverityNumber } from '../../runtime/model.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings } from '../../test/kit/index.ts';
import { encodeNdjson, encodeOtlpJson, toOtlpAnyValue } from './encode.ts';
import type { FileExporter } from './exporter.ts';
import { factory } from './factory.ts';
import { LineFile } from './writer.ts';

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: (tmp) => ({ path: join(tmp, 'out.ndjson') }),
  expectedFixtureConfig: {
    path: 'data/out.json',
    format: 'otlp_json',
    fsync: false,
    rotation: { max_megabytes: 10, max_backups: 3 },
  },
});

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'file-exporter-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let seq = 0;
function outPath(ext = '.ndjson'): string {
  return join(root, `case-${++seq}`, `out${ext}`);
}

async function started(cfg: Record<string, unknown>) {
  const settings = nopSettings('file', 'exporter', root);
  const exp = (await factory.create(settings, factory.configSchema.parse(cfg))) as FileExporter;
  await exp.start(nopHost());
  return { exp, settings };
}

function rec(body: LogRecord['body'], extra: Partial<LogRecord> = {}): LogRecord {
  return { observedTimestamp: [1_700_000_000, 5], body, attributes: {}, ...extra };
}

async function lines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'file ends with a newline');
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

describe('file exporter: ndjson', () => {
  test('writes each body as one JSON line, in order, appending and creating directories', async () => {
    const path = outPath();
    await writeFile(join(root, 'dummy'), '');
    const { exp } = await started({ path });
    await exp.consume([rec({ a: 1, s: 'x\ny' }), rec('just a string'), rec(42), rec(null), rec(undefined)]);
    await exp.consume([rec([1, { b: true }]), rec(new Uint8Array([1, 2, 3]))]);
    await exp.shutdown();
    assert.deepEqual(await lines(path), [
      '{"a":1,"s":"x\\ny"}',
      '"just a string"',
      '42',
      'null',
      'null',
      '[1,{"b":true}]',
      '"AQID"',
    ]);
    // Appends on the next run.
    const again = await started({ path });
    await again.exp.consume([rec({ run: 2 })]);
    await again.exp.shutdown();
    assert.equal((await lines(path)).at(-1), '{"run":2}');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test('acknowledges only after the lines are in the file and fsynced', async () => {
    const path = outPath();
    const { exp } = await started({ path });
    // Observe the order of writes and fsyncs on the real file handle.
    const probe = await open(join(root, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const events: string[] = [];
    const orig = proto.datasync;
    proto.datasync = async function (this: unknown) {
      events.push(`sync:${(await readFile(path, 'utf8')).split('\n').length - 1}`);
      return orig.call(this);
    };
    try {
      await exp.consume([rec({ n: 1 }), rec({ n: 2 })]);
      events.push(`resolved:${(await lines(path)).length}`);
    } finally {
      proto.datasync = orig;
    }
    assert.deepEqual(events, ['sync:2', 'resolved:2']);
    await exp.shutdown();
  });

  test('concurrent batches keep call order and never interleave', async () => {
    const path = outPath();
    const { exp } = await started({ path, fsync: false });
    const calls = Array.from({ length: 20 }, (_, b) =>
      exp.consume(Array.from({ length: 50 }, (_, i) => rec({ b, i }))),
    );
    await Promise.all(calls);
    await exp.shutdown();
    const got = (await lines(path)).map((l) => JSON.parse(l) as { b: number; i: number });
    assert.equal(got.length, 1000);
    got.forEach((v, k) => assert.deepEqual(v, { b: Math.floor(k / 50), i: k % 50 }));
  });

  test('a record that cannot be encoded is dropped and counted; the rest is written', async () => {
    const path = outPath();
    const { exp, settings } = await started({ path });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    await exp.consume([rec({ ok: 1 }), rec(cyclic as LogRecord['body']), rec({ ok: 2 })]);
    await exp.shutdown();
    assert.deepEqual(await lines(path), ['{"ok":1}', '{"ok":2}']);
    assert.deepEqual(settings.drops, [{ count: 1, reason: 'unencodable' }]);
  });

  test('consume after shutdown is refused', async () => {
    const { exp } = await started({ path: outPath() });
    await exp.shutdown();
    await assert.rejects(exp.consume([rec(1)]), /stopped/);
  });

  test(
    'a full disk is class 2 (sink unusable): retryable, never dropped',
    { skip: !existsSync('/dev/full') },
    async () => {
      const { exp, settings } = await started({ path: '/dev/full' });
      await assert.rejects(exp.consume([rec({ a: 1 })]), (err) => {
        assert.ok(err instanceof RetryableError);
        assert.ok(err instanceof SinkUnusableError, String(err));
        assert.equal(err.kind, 'disk_full');
        assert.match(err.message, /cannot write \/dev\/full/);
        return true;
      });
      assert.deepEqual(settings.drops, []);
      await exp.shutdown();
    },
  );

  test('a path that cannot be opened fails start', async () => {
    const settings = nopSettings('file', 'exporter', root);
    const exp = await factory.create(settings, factory.configSchema.parse({ path: root }));
    await assert.rejects(exp.start(nopHost()), /cannot open .* for writing/);
    await exp.shutdown();
  });
});

describe('file exporter: otlp_json', () => {
  test('one ExportLogsServiceRequest per record with OTLP JSON encoding', async () => {
    const path = outPath('.json');
    const { exp } = await started({ path, format: 'otlp_json' });
    await exp.consume([
      rec(
        { msg: 'hi', n: 3, f: 1.5, ok: true, list: ['a', null], bin: new Uint8Array([255]) },
        {
          timestamp: hrTimeFromIso('2024-05-01T10:00:00.123456789Z')!,
          severityNumber: SeverityNumber.WARN,
          severityText: 'WARN',
          eventName: 'login',
          attributes: { 'data_stream.dataset': 'authentik.event', count: 2 },
          resource: { 'service.name': 'authentik' },
          scope: { name: 'authentik-collector', version: '1.0.0' },
        },
      ),
      rec('plain'),
    ]);
    await exp.shutdown();
    type Req = { resourceLogs: { scopeLogs: { logRecords: Record<string, unknown>[] }[] }[] };
    const [first, second] = (await lines(path)).map((l) => JSON.parse(l) as Req);
    assert.deepEqual(first, {
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'authentik' } }] },
          scopeLogs: [
            {
              scope: { name: 'authentik-collector', version: '1.0.0' },
              logRecords: [
                {
                  timeUnixNano: '1714557600123456789',
                  observedTimeUnixNano: '1700000000000000005',
                  severityNumber: 13,
                  severityText: 'WARN',
                  body: {
                    kvlistValue: {
                      values: [
                        { key: 'msg', value: { stringValue: 'hi' } },
                        { key: 'n', value: { intValue: '3' } },
                        { key: 'f', value: { doubleValue: 1.5 } },
                        { key: 'ok', value: { boolValue: true } },
                        { key: 'list', value: { arrayValue: { values: [{ stringValue: 'a' }, {}] } } },
                        { key: 'bin', value: { bytesValue: '/w==' } },
                      ],
                    },
                  },
                  attributes: [
                    { key: 'data_stream.dataset', value: { stringValue: 'authentik.event' } },
                    { key: 'count', value: { intValue: '2' } },
                  ],
                  eventName: 'login',
                },
              ],
            },
          ],
        },
      ],
    });
    const r2 = second!.resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!;
    assert.deepEqual(r2['body'], { stringValue: 'plain' });
    assert.equal(r2['timeUnixNano'], undefined, 'unset timestamp is omitted');
  });

  test('AnyValue edge cases', () => {
    assert.deepEqual(toOtlpAnyValue(2 ** 60), { doubleValue: 2 ** 60 });
    assert.deepEqual(toOtlpAnyValue(-7), { intValue: '-7' });
    assert.deepEqual(toOtlpAnyValue(Number.NaN), { doubleValue: 'NaN' });
    assert.deepEqual(toOtlpAnyValue(-Infinity), { doubleValue: '-Infinity' });
    assert.deepEqual(toOtlpAnyValue(undefined), {});
    assert.equal(encodeNdjson(rec({ x: Number.NaN })), '{"x":null}');
    assert.ok(!encodeOtlpJson(rec(undefined)).includes('"body"'));
  });
});

describe('file exporter: rotation', () => {
  test('LineFile rotates between whole lines and keeps max_backups', async () => {
    const dir = join(root, 'rot-unit');
    const path = join(dir, 'out.ndjson');
    let rotations = 0;
    const f = new LineFile(path, {
      fsync: false,
      rotation: { maxBytes: 100, maxBackups: 2 },
      onRotate: () => rotations++,
    });
    await f.open();
    const all: string[] = [];
    for (let b = 0; b < 10; b++) {
      const batch = Array.from(
        { length: 3 },
        (_, i) => `{"b":${b},"i":${i},"pad":"${'p'.repeat(5 + ((b * 3 + i) % 7))}"}`,
      );
      all.push(...batch);
      await f.write(batch.map((l) => Buffer.from(l + '\n')));
    }
    // A line larger than the limit goes alone into a fresh file.
    const huge = `{"huge":"${'h'.repeat(150)}"}`;
    all.push(huge);
    await f.write([Buffer.from(huge + '\n')]);
    await f.close();
    const files = (await readdir(dir)).sort();
    const backups = files.filter((x) => x !== 'out.ndjson');
    assert.equal(backups.length, 2, files.join(', '));
    assert.ok(rotations >= 4);
    for (const b of backups) assert.match(b, /^out-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.ndjson$/);
    // Every file holds whole lines within the limit (except a single oversized line alone).
    const kept: string[] = [];
    for (const name of [...backups, 'out.ndjson']) {
      const content = await lines(join(dir, name));
      const size = (await stat(join(dir, name))).size;
      assert.ok(size <= 100 || content.length === 1, `${name} is ${size} bytes`);
      kept.push(...content);
    }
    assert.deepEqual(kept, all.slice(all.length - kept.length), 'the newest lines are kept, in order');
    assert.equal(kept.at(-1), huge);
  });

  test('the exporter rotates at max_megabytes', async () => {
    const path = outPath();
    const { exp, settings } = await started({
      path,
      fsync: false,
      rotation: { max_megabytes: 1, max_backups: 0 },
    });
    const pad = 'x'.repeat(1000);
    for (let b = 0; b < 3; b++) {
      await exp.consume(Array.from({ length: 500 }, (_, i) => rec({ b, i, pad })));
    }
    await exp.shutdown();
    const dir = join(path, '..');
    const files = (await readdir(dir)).sort();
    assert.equal(files.length, 2, files.join(', '));
    let total = 0;
    for (const f of files) {
      assert.ok((await stat(join(dir, f))).size <= 1024 * 1024);
      total += (await lines(join(dir, f))).length;
    }
    assert.equal(total, 1500);
    const rotations = await settings.metrics.getSingleMetricAsString('otelcol_exporter_file_rotations');
    assert.match(rotations, /\} 1$/m);
  });

  test('rotation options are validated', () => {
    assert.equal(
      factory.configSchema.safeParse({ path: 'x', rotation: { max_megabytes: 0 } }).success,
      false,
    );
    assert.equal(factory.configSchema.safeParse({ path: 'x', rotation: { max_backups: -1 } }).success, false);
    assert.equal(factory.configSchema.safeParse({ path: 'x', format: 'csv' }).success, false);
    assert.equal(factory.configSchema.safeParse({}).success, false);
    assert.deepEqual(factory.configSchema.parse({ path: 'x', rotation: {} }).rotation, {
      max_megabytes: 100,
      max_backups: 100,
    });
  });
});
