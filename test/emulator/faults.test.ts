import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator, FAULT_KINDS } from './index.ts';
import type { Emulator, EmulatorOptions } from './index.ts';
import { get } from './helpers.ts';

const EV = '/api/v3/events/events/?page_size=100';

async function withEmu<T>(o: EmulatorOptions, fn: (e: Emulator) => Promise<T>): Promise<T> {
  const e = await startEmulator(o);
  try {
    return await fn(e);
  } finally {
    await e.close();
  }
}

/** Issues a request and reports either the status or the transport error code/message. */
async function outcome(e: Emulator, path = EV, timeoutMs?: number): Promise<string> {
  try {
    const r = await get(e, path, timeoutMs === undefined ? {} : { timeoutMs });
    return r.status === 200 && r.json === undefined ? '200:non-json' : String(r.status);
  } catch (err) {
    const x = err as NodeJS.ErrnoException;
    return `error:${x.code ?? x.message}`;
  }
}

void describe('fault injection', () => {
  void test('5xx kinds answer with their status and an HTML body', async () => {
    await withEmu({ events: 10 }, async (e) => {
      for (const k of ['500', '502', '503', '504'] as const) {
        e.setFaults({ rate: 1, kinds: [k] });
        const r = await get(e, EV);
        assert.equal(r.status, Number(k));
        assert.match(String(r.headers['content-type']), /text\/html/);
        assert.equal(r.json, undefined);
      }
      assert.equal(e.stats.faults['500'], 1);
      assert.equal(e.requests.at(-1)!.fault, '504');
    });
  });

  void test('429 carries Retry-After and the DRF throttle body', async () => {
    await withEmu({ events: 10, faults: { rate: 1, kinds: ['429'], retryAfterSeconds: 7 } }, async (e) => {
      const r = await get(e, EV);
      assert.equal(r.status, 429);
      assert.equal(r.headers['retry-after'], '7');
      assert.deepEqual(r.json, { detail: 'Request was throttled. Expected available in 7 seconds.' });
    });
  });

  void test('reset destroys the connection before any byte', async () => {
    await withEmu({ events: 10, faults: { rate: 1, kinds: ['reset'] } }, async (e) => {
      const o = await outcome(e);
      assert.match(o, /^error:(ECONNRESET|socket hang up)/, o);
      assert.equal(e.requests[0]!.fault, 'reset');
      assert.equal(e.requests[0]!.status, 0);
    });
  });

  void test('truncated sends the full Content-Length but half the body', async () => {
    await withEmu({ events: 100, faults: { rate: 1, kinds: ['truncated'] } }, async (e) => {
      const o = await outcome(e);
      assert.match(o, /^error:/, o);
      const entry = e.requests[0]!;
      assert.equal(entry.fault, 'truncated');
      assert.equal(entry.status, 200);
      assert.ok(entry.bytes > 1000);
      // also through fetch (undici): the body read must fail, not parse
      const r = await fetch(`${e.url}${EV}`, { headers: { authorization: `Bearer ${e.token}` } });
      assert.equal(r.status, 200);
      await assert.rejects(r.json());
    });
  });

  void test('non_json answers 200 with an HTML error page', async () => {
    await withEmu({ events: 10, faults: { rate: 1, kinds: ['non_json'] } }, async (e) => {
      const r = await get(e, EV);
      assert.equal(r.status, 200);
      assert.match(r.text, /502 Bad Gateway/);
      assert.throws(() => JSON.parse(r.text) as unknown);
    });
  });

  void test('timeout never answers; the client gives up; nothing leaks on close', async () => {
    const e = await startEmulator({ events: 10, faults: { rate: 1, kinds: ['timeout'] } });
    const t0 = performance.now();
    const o = await outcome(e, EV, 150);
    assert.equal(o, 'error:client timeout');
    assert.ok(performance.now() - t0 >= 140);
    // a second request stays open until close() ends it
    const pending = outcome(e, EV);
    await new Promise((r) => setTimeout(r, 50));
    const c0 = performance.now();
    await e.close();
    assert.ok(performance.now() - c0 < 2000, 'close does not wait for held requests');
    assert.match(await pending, /^error:/);
    assert.equal(e.stats.faults.timeout, 2);
  });

  void test('latency fixed + jitter', async () => {
    await withEmu({ events: 5, faults: { latencyMs: 60, jitterMs: 40 } }, async (e) => {
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        assert.equal(await outcome(e), '200');
        const ms = performance.now() - t0;
        assert.ok(ms >= 55 && ms < 1000, `${ms}`);
      }
      assert.ok(e.requests.every((r) => r.ms >= 55));
    });
  });

  void test('rate-based and deterministic for a seed', async () => {
    const run = async (seed: number) =>
      withEmu({ events: 5, seed, faults: { rate: 0.3, kinds: ['500', '429', '503'] } }, async (e) => {
        const seq: string[] = [];
        for (let i = 0; i < 60; i++) seq.push(await outcome(e));
        return seq;
      });
    const a = await run(3);
    const b = await run(3);
    const c = await run(4);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const faulted = a.filter((x) => x !== '200').length;
    assert.ok(faulted >= 8 && faulted <= 32, `faulted ${faulted}/60`);
    for (const k of ['500', '429', '503']) assert.ok(a.includes(k), k);
  });

  void test('every kind is accepted and faults can be switched off; paths restrict them', async () => {
    await withEmu({ events: 5 }, async (e) => {
      for (const k of FAULT_KINDS.filter((x) => x !== 'timeout')) {
        e.setFaults({ rate: 1, kinds: [k] });
        assert.notEqual(await outcome(e), '200', k);
      }
      e.setFaults(undefined);
      assert.equal(await outcome(e), '200');
      e.setFaults({ rate: 1, kinds: ['500'], paths: ['/api/v3/core/'] });
      assert.equal(await outcome(e), '200');
      assert.equal(await outcome(e, '/api/v3/core/users/'), '500');
    });
  });

  void test('default kinds exclude timeout', async () => {
    await withEmu({ events: 5, faults: { rate: 1 } }, async (e) => {
      for (let i = 0; i < 40; i++) await outcome(e, EV, 2000);
      assert.equal(e.stats.faults.timeout, undefined);
      assert.ok(Object.keys(e.stats.faults).length >= 5);
    });
  });
});
