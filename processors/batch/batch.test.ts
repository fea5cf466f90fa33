import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogsConsumer } from '../../runtime/component.ts';
import { isPermanent, PermanentError, retryAfterOf, RetryableError } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { describeComponent, sampleBatch } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import type { BatchProcessor } from './batch.ts';
import { factory } from './factory.ts';

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: { timeout: '10ms' },
  expectedFixtureConfig: { send_batch_size: 500, timeout: 1000, send_batch_max_size: 2000 },
});

/** A downstream whose calls stay pending until the test settles them. */
class GatedConsumer implements LogsConsumer {
  readonly capabilities = { mutatesData: false };
  readonly calls: { batch: LogsBatch; resolve: () => void; reject: (e: unknown) => void }[] = [];
  consume(batch: LogsBatch): Promise<void> {
    return new Promise((resolve, reject) => this.calls.push({ batch, resolve, reject }));
  }
}

async function make(cfg: Record<string, unknown>, next: LogsConsumer) {
  const settings = nopSettings('batch', 'processor');
  const p = (await factory.create(settings, factory.configSchema.parse(cfg), next)) as BatchProcessor;
  await p.start(nopHost());
  return { p, settings };
}

/** Tracks whether a promise settled, without awaiting it. */
function track(p: Promise<void>) {
  const s = { state: 'pending' as 'pending' | 'resolved' | 'rejected', error: undefined as unknown, p };
  p.then(
    () => (s.state = 'resolved'),
    (e: unknown) => {
      s.state = 'rejected';
      s.error = e;
    },
  );
  return s;
}

const tick = () => new Promise((r) => setImmediate(r));
const seqs = (b: LogsBatch) => b.map((r) => r.attributes['seq']);
function records(from: number, n: number): LogsBatch {
  return sampleBatch(n).map((r, i) => ({ ...r, attributes: { ...r.attributes, seq: from + i } }));
}

describe('batch processor: acknowledgement', () => {
  test('small batches are merged while a send is in progress; none is acknowledged before delivery', async () => {
    const gate = new GatedConsumer();
    const { p } = await make({ send_batch_size: 5, timeout: '1h' }, gate);
    const ups = [0, 1, 2, 3, 4].map((i) => track(p.consume(records(i, 1))));
    await tick();
    assert.deepEqual(
      gate.calls.map((c) => seqs(c.batch)),
      [[0]],
      'downstream idle: the first record goes out at once',
    );
    assert.ok(
      ups.every((u) => u.state === 'pending'),
      'nothing acknowledged while downstream is pending',
    );
    gate.calls[0]!.resolve();
    await tick();
    await tick();
    assert.equal(ups[0]!.state, 'resolved');
    assert.deepEqual(seqs(gate.calls[1]!.batch), [1, 2, 3, 4], 'what arrived meanwhile goes out together');
    assert.ok(ups.slice(1).every((u) => u.state === 'pending'));
    gate.calls[1]!.resolve();
    await Promise.all(ups.map((u) => u.p));
    await p.shutdown();
  });

  test('a call spanning several downstream batches resolves only after the last one', async () => {
    const gate = new GatedConsumer();
    const { p } = await make({ send_batch_size: 3, send_batch_max_size: 3, timeout: '1h' }, gate);
    const up = track(p.consume(records(0, 10)));
    await tick();
    assert.deepEqual(
      gate.calls.map((c) => seqs(c.batch)),
      [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7, 8],
      ],
      'split at send_batch_max_size, in order; the remainder waits while sends are in progress',
    );
    for (const c of gate.calls.slice(0, 3)) c.resolve();
    await tick();
    await tick();
    assert.deepEqual(seqs(gate.calls[3]!.batch), [9], 'downstream idle again: the remainder goes out');
    assert.equal(up.state, 'pending', 'the last part is not delivered yet');
    gate.calls[3]!.resolve();
    await up.p;
    await p.shutdown();
  });

  test('a downstream rejection rejects every call whose records were in that batch', async () => {
    const gate = new GatedConsumer();
    const { p } = await make({ send_batch_size: 4, timeout: '1h' }, gate);
    const a = track(p.consume(records(0, 2)));
    const b = track(p.consume(records(2, 1)));
    const c = track(p.consume(records(3, 1)));
    await tick();
    assert.deepEqual(seqs(gate.calls[0]!.batch), [0, 1]);
    gate.calls[0]!.reject(new PermanentError('mapping conflict'));
    await tick();
    await tick();
    assert.equal(a.state, 'rejected');
    assert.ok(isPermanent(a.error), 'permanence preserved');
    assert.equal(b.state, 'pending', 'later calls are unaffected');
    assert.deepEqual(seqs(gate.calls[1]!.batch), [2, 3]);
    gate.calls[1]!.reject(new RetryableError('overloaded', { retryAfterMs: 1234 }));
    await tick();
    assert.equal(b.state, 'rejected');
    assert.equal(c.state, 'rejected');
    assert.ok(!isPermanent(b.error) && !isPermanent(c.error));
    assert.equal(retryAfterOf(c.error), 1234);
    await p.shutdown();
  });

  for (const permanentFirst of [true, false]) {
    test(`when parts of one call fail differently, the retryable failure is reported (permanent ${permanentFirst ? 'first' : 'last'})`, async () => {
      const gate = new GatedConsumer();
      const { p } = await make({ send_batch_size: 2, send_batch_max_size: 2, timeout: '1h' }, gate);
      const up = track(p.consume(records(0, 4)));
      const errors = [new PermanentError('bad'), new RetryableError('later')];
      if (!permanentFirst) errors.reverse();
      await tick();
      gate.calls[0]!.reject(errors[0]);
      await tick();
      assert.equal(up.state, 'pending', 'still waiting for the second part');
      gate.calls[1]!.reject(errors[1]);
      await tick();
      assert.equal(up.state, 'rejected');
      assert.ok(!isPermanent(up.error));
      await p.shutdown();
    });
  }

  test('a downstream that throws synchronously still settles the caller', async () => {
    const throwing: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: () => {
        throw new RetryableError('sync throw');
      },
    };
    const { p } = await make({ timeout: '0s' }, throwing);
    await assert.rejects(p.consume(records(0, 1)), /sync throw/);
    await p.shutdown();
  });
});

describe('batch processor: triggers', () => {
  test('downstream idle: a partial batch goes out at once (no waiting for the timeout)', async () => {
    const sink = new SinkConsumer();
    const { p } = await make({ send_batch_size: 100, timeout: '1h' }, sink);
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) await p.consume(records(i * 2, 2));
    assert.ok(Date.now() - t0 < 1000, 'a sequential sender is not held up');
    assert.equal(sink.batches.length, 20);
    await p.shutdown();
  });

  test('timeout sends what waited that long while another send is in progress', async () => {
    const gate = new GatedConsumer();
    const { p, settings } = await make({ send_batch_size: 100, timeout: '30ms' }, gate);
    const first = p.consume(records(0, 1));
    await tick();
    const t0 = Date.now();
    const second = track(p.consume(records(1, 2)));
    await waitFor(() => gate.calls.length === 2, 2000);
    assert.ok(Date.now() - t0 >= 25, 'waited for the timeout');
    assert.deepEqual(seqs(gate.calls[1]!.batch), [1, 2]);
    const text = await settings.metrics.getSingleMetricAsString(
      'otelcol_processor_batch_timeout_trigger_send',
    );
    assert.match(text, /processor="batch"[^}]*\} 1$/m);
    gate.calls[1]!.resolve();
    await second.p;
    gate.calls[0]!.resolve();
    await first;
    await p.shutdown();
  });

  test('timeout 0 sends at once, split by send_batch_max_size', async () => {
    const sink = new SinkConsumer();
    const { p, settings } = await make({ send_batch_size: 4, send_batch_max_size: 4, timeout: '0s' }, sink);
    await p.consume(records(0, 10));
    assert.deepEqual(
      sink.batches.map((b) => seqs(b)),
      [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
      ],
    );
    const hist = await settings.metrics.getSingleMetricAsString('otelcol_processor_batch_batch_send_size');
    assert.match(hist, /otelcol_processor_batch_batch_send_size_count\{[^}]*\} 3/);
    await p.shutdown();
  });

  test('size trigger sends everything pending when there is no max size', async () => {
    const gate = new GatedConsumer();
    const { p } = await make({ send_batch_size: 3, timeout: '1h' }, gate);
    const first = p.consume(records(0, 1));
    await tick();
    const rest = Promise.all([p.consume(records(1, 2)), p.consume(records(3, 5))]);
    await tick();
    assert.deepEqual(
      gate.calls.map((c) => seqs(c.batch)),
      [[0], [1, 2, 3, 4, 5, 6, 7]],
    );
    for (const c of gate.calls) c.resolve();
    await Promise.all([first, rest]);
    await p.shutdown();
  });

  test('sends start in arrival order across many concurrent calls and a slow downstream', async () => {
    const got: unknown[] = [];
    const slow: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: async (b) => {
        got.push(...seqs(b));
        await new Promise((r) => setTimeout(r, 2));
      },
    };
    const { p } = await make({ send_batch_size: 7, send_batch_max_size: 10, timeout: '5ms' }, slow);
    const calls: Promise<void>[] = [];
    let n = 0;
    for (let i = 0; i < 30; i++) {
      const size = 1 + (i % 6);
      calls.push(p.consume(records(n, size)));
      n += size;
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 3));
    }
    await Promise.all(calls);
    assert.deepEqual(
      got,
      Array.from({ length: n }, (_, i) => i),
    );
    await p.shutdown();
  });

  test('consume after shutdown is refused and nothing is sent', async () => {
    const sink = new SinkConsumer();
    const { p } = await make({}, sink);
    await p.shutdown();
    await assert.rejects(p.consume(records(0, 1)), /shut down/);
    assert.equal(sink.count(), 0);
  });
});

describe('batch processor: config', () => {
  test('defaults', () => {
    assert.deepEqual(factory.configSchema.parse({}), {
      send_batch_size: 1000,
      timeout: 200,
      send_batch_max_size: 0,
    });
  });
  test('send_batch_max_size must be 0 or at least send_batch_size', () => {
    const r = factory.configSchema.safeParse({ send_batch_size: 100, send_batch_max_size: 50 });
    assert.equal(r.success, false);
    assert.deepEqual(r.error.issues[0]!.path, ['send_batch_max_size']);
    assert.match(r.error.issues[0]!.message, /at least send_batch_size \(100\)/);
    assert.equal(
      factory.configSchema.safeParse({ send_batch_size: 100, send_batch_max_size: 100 }).success,
      true,
    );
  });
  test('rejects bad values', () => {
    for (const bad of [
      { send_batch_size: 0 },
      { send_batch_size: 1.5 },
      { timeout: 'fast' },
      { send_batch_max_size: -1 },
    ]) {
      assert.equal(factory.configSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });
});
