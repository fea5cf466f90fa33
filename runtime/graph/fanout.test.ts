import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogsConsumer } from '../component.ts';
import { FanoutError, isPermanent, PermanentError, retryAfterOf, RetryableError } from '../errors.ts';
import type { LogsBatch, LogRecord } from '../model.ts';
import { retrySchema } from '../config/types.ts';
import { createFanout } from './fanout.ts';

const FAST = retrySchema.parse({ initial_interval: '5ms', max_interval: '10ms' });
const rec = (n: number): LogRecord => ({ observedTimestamp: [0, 0], attributes: { n }, body: { n } });

function recorder(mutatesData = false, fail?: Error): LogsConsumer & { got: LogsBatch[] } {
  const got: LogsBatch[] = [];
  return {
    got,
    capabilities: { mutatesData },
    async consume(batch) {
      await Promise.resolve();
      if (fail !== undefined) throw fail;
      got.push(batch);
      if (mutatesData) for (const r of batch) r.attributes.mutated = true;
    },
  };
}

describe('createFanout', () => {
  test('a single consumer is returned as is', () => {
    const c = recorder();
    assert.equal(createFanout([{ id: 'a', consumer: c }]), c);
  });

  test('consumers are called concurrently', async () => {
    const calls: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: async () => {
        calls.push('slow:start');
        await gate;
        calls.push('slow:end');
      },
    };
    const fast: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: () => {
        calls.push('fast');
        release();
        return Promise.resolve();
      },
    };
    await createFanout([
      { id: 'slow', consumer: slow },
      { id: 'fast', consumer: fast },
    ]).consume([rec(1)]);
    assert.deepEqual(calls, ['slow:start', 'fast', 'slow:end']);
  });

  test('mutating consumers get copies; read-only ones see the untouched original', async () => {
    const ro = recorder(false);
    const rw = recorder(true);
    const batch = [rec(1)];
    await createFanout([
      { id: 'rw', consumer: rw },
      { id: 'ro', consumer: ro },
    ]).consume(batch);
    assert.equal(ro.got[0], batch);
    assert.equal(batch[0]!.attributes.mutated, undefined, 'the original was not mutated');
    assert.equal(rw.got[0]![0]!.attributes.mutated, true);
  });

  test('when every consumer mutates, each gets its own copy and the original stays intact for retries', async () => {
    const a = recorder(true);
    const b = recorder(true);
    const batch = [rec(1)];
    await createFanout([
      { id: 'a', consumer: a },
      { id: 'b', consumer: b },
    ]).consume(batch);
    assert.notEqual(a.got[0], batch);
    assert.notEqual(b.got[0], batch);
    assert.equal(batch[0]!.attributes.mutated, undefined);
  });

  test('a retryable failure is retried on that branch only; the others get the batch once', async () => {
    const ok = recorder();
    let calls = 0;
    const got: LogsBatch[] = [];
    const flaky: LogsConsumer = {
      capabilities: { mutatesData: true },
      consume: (b) => {
        calls++;
        for (const r of b) r.attributes.touched = calls;
        if (calls < 3) return Promise.reject(new RetryableError('busy', { retryAfterMs: 10 }));
        got.push(b);
        return Promise.resolve();
      },
    };
    const batch = [rec(1)];
    await createFanout(
      [
        { id: 'ok', consumer: ok },
        { id: 'flaky', consumer: flaky },
      ],
      { retry: FAST },
    ).consume(batch);
    assert.equal(ok.got.length, 1, 'the healthy branch saw the batch once');
    assert.equal(calls, 3);
    assert.equal(got[0]![0]!.attributes.touched, 3);
    assert.equal(batch[0]!.attributes.touched, undefined, 'each attempt got a fresh copy');
  });

  test('permanent failures are not retried and reject permanently; successes stand', async () => {
    const ok = recorder();
    const bad = recorder(false, new PermanentError('bad data'));
    const err = await createFanout(
      [
        { id: 'ok', consumer: ok },
        { id: 'bad', consumer: bad },
      ],
      { retry: FAST },
    )
      .consume([rec(1)])
      .catch((e: unknown) => e);
    assert.ok(err instanceof FanoutError);
    assert.ok(isPermanent(err));
    assert.deepEqual(
      err.errors.map((e) => e.id),
      ['bad'],
    );
    assert.equal(ok.got.length, 1);
  });

  test('shutdown (signal) stops the retries: every failure of that moment is aggregated, retryable', async () => {
    const ac = new AbortController();
    const ok = recorder();
    const p = createFanout(
      [
        { id: 'ok', consumer: ok },
        { id: 'busy', consumer: recorder(false, new RetryableError('busy', { retryAfterMs: 2000 })) },
        { id: 'bad', consumer: recorder(false, new PermanentError('bad data')) },
      ],
      { signal: ac.signal },
    )
      .consume([rec(1)])
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const err = await p;
    assert.ok(err instanceof FanoutError);
    assert.deepEqual(err.errors.map((e) => e.id).sort(), ['bad', 'busy']);
    assert.equal(isPermanent(err), false, 'retryable when any branch is retryable');
    assert.equal(retryAfterOf(err), 2000);
    assert.equal(ok.got.length, 1);
  });

  test('a consumer that throws synchronously is aggregated like a rejection', async () => {
    const thrower: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: () => {
        throw new Error('sync boom');
      },
    };
    const err = await createFanout(
      [
        { id: 't', consumer: thrower },
        { id: 'ok', consumer: recorder() },
      ],
      { signal: AbortSignal.abort() },
    )
      .consume([rec(1)])
      .catch((e: unknown) => e);
    assert.ok(err instanceof FanoutError);
    assert.equal(err.errors[0]!.id, 't');
  });
});
