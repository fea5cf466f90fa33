import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogRecord } from '../../runtime/model.ts';
import { hrTimeFromIso, SeverityNumber } from '../../runtime/model.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings } from '../../test/kit/index.ts';
import { DebugExporter, formatHrTime } from './debug.ts';
import { factory } from './factory.ts';

describeComponent(factory, {
  dir: import.meta.dirname,
  expectedFixtureConfig: { verbosity: 'detailed', sampling_initial: 5, sampling_thereafter: 10 },
});

function exporter(cfg: Record<string, unknown>) {
  const out: string[] = [];
  const exp = new DebugExporter(nopSettings('debug', 'exporter'), factory.configSchema.parse(cfg), (t) =>
    out.push(t),
  );
  return { exp, out };
}

const record: LogRecord = {
  timestamp: hrTimeFromIso('2024-05-01T10:00:00.000000123Z')!,
  observedTimestamp: [1_714_557_601, 0],
  severityNumber: SeverityNumber.INFO,
  severityText: 'INFO',
  eventName: 'login',
  body: { user: { username: 'akadmin' }, n: 1 },
  attributes: { 'data_stream.dataset': 'authentik.event', tags: ['a'] },
  resource: { 'service.name': 'authentik' },
  scope: { name: 'authentik-collector', version: '0.1.0' },
};

describe('debug exporter', () => {
  test('basic: one summary line per batch', async () => {
    const { exp, out } = exporter({});
    await exp.start(nopHost());
    await exp.consume([record, record, record]);
    await exp.consume([record]);
    assert.deepEqual(out, ['debug: 3 log records\n', 'debug: 1 log record\n']);
    await exp.shutdown();
  });

  test('normal: one line per record', async () => {
    const { exp, out } = exporter({ verbosity: 'normal' });
    await exp.consume([record, { observedTimestamp: [0, 5], body: 'plain', attributes: {} }]);
    const lines = out.join('').trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.equal(
      lines[1],
      '2024-05-01T10:00:00.000000123Z INFO login {"user":{"username":"akadmin"},"n":1} data_stream.dataset="authentik.event" tags=["a"]',
    );
    assert.equal(lines[2], '1970-01-01T00:00:00.000000005Z "plain"');
  });

  test('detailed: every field, body pretty-printed', async () => {
    const { exp, out } = exporter({ verbosity: 'detailed' });
    await exp.consume([record]);
    const text = out.join('');
    for (const want of [
      'LogRecord #0',
      'Timestamp: 2024-05-01T10:00:00.000000123Z',
      'ObservedTimestamp: 2024-05-01T10:00:01.000000000Z',
      'SeverityText: INFO',
      'SeverityNumber: 9',
      'EventName: login',
      '-> service.name: "authentik"',
      'Scope: authentik-collector 0.1.0',
      '-> data_stream.dataset: "authentik.event"',
      'Body: {\n    "user": {\n      "username": "akadmin"\n    },',
    ]) {
      assert.ok(text.includes(want), `missing ${JSON.stringify(want)} in:\n${text}`);
    }
  });

  test('sampling: the first sampling_initial batches per second, then every Nth', async () => {
    const { exp, out } = exporter({ sampling_initial: 2, sampling_thereafter: 3 });
    for (let i = 1; i <= 11; i++) await exp.consume(Array.from({ length: i }, () => record));
    // Batches 1 and 2, then 5, 8, 11 (every 3rd after the initial two) within the same second.
    assert.deepEqual(
      out.map((l) => Number(/(\d+) log/.exec(l)![1])),
      [1, 2, 5, 8, 11],
    );
  });

  test('a failing writer does not fail the batch; consume after shutdown is refused', async () => {
    const exp = new DebugExporter(nopSettings('debug', 'exporter'), factory.configSchema.parse({}), () => {
      throw new Error('EPIPE');
    });
    await exp.consume([record]);
    await exp.shutdown();
    await assert.rejects(exp.consume([record]), /shut down/);
  });

  test('formatHrTime keeps nanoseconds', () => {
    assert.equal(formatHrTime([0, 1]), '1970-01-01T00:00:00.000000001Z');
  });

  test('config validation', () => {
    assert.equal(factory.configSchema.safeParse({ verbosity: 'loud' }).success, false);
    assert.equal(factory.configSchema.safeParse({ sampling_initial: 0 }).success, false);
  });
});
