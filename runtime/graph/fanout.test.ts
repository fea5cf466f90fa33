import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LogsConsumer } from '../component.ts';
import { FanoutError, isPermanent, PermanentError, retryAfterOf, RetryableError } from '../errors.ts';
import type { LogsBatch, LogRecord } from '../model.ts';
import { createFanout } from './fanout.ts';

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

  test('when every consumer mutates, the last one takes the original and the others copies', async () => {
    const a = recorder(true);
    const b = recorder(true);
    const batch = [rec(1)];
    await createFanout([
      { id: 'a', consumer: a },
      { id: 'b', consumer: b },
    ]).consume(batch);
    assert.notEqual(a.got[0], batch);
    assert.equal(b.got[0], batch);
    assert.equal(a.got[0]![0]!.body !== batch[0]!.body, true);
  });

  test('every failure is aggregated; successes stand', async () => {
    const ok = recorder();
    const err = await createFanout([
      { id: 'ok', consumer: ok },
      { id: 'busy', consumer: recorder(false, new RetryableError('busy', { retryAfterMs: 2000 })) },
      { id: 'bad', consumer: recorder(false, new PermanentError('bad data')) },
    ])
      .consume([rec(1)])
      .catch((e: unknown) => e);
    assert.ok(err instanceof FanoutError);
    assert.deepEqual(
      err.errors.map((e) => e.id),
      ['busy', 'bad'],
    );
    assert.equal(isPermanent(err), false, 'retryable when any branch is retryable');
    assert.equal(retryAfterOf(err), 2000);
    assert.match(err.message, /busy: busy; bad: bad data/);
    assert.equal(ok.got.length, 1);
  });

  test('a consumer that throws synchronously is aggregated like a rejection', async () => {
    const thrower: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: () => {
        throw new Error('sync boom');
      },
    };
    const err = await createFanout([
      { id: 't', consumer: thrower },
      { id: 'ok', consumer: recorder() },
    ])
      .consume([rec(1)])
      .catch((e: unknown) => e);
    assert.ok(err instanceof FanoutError);
    assert.equal(err.errors[0]!.id, 't');
  });
});
