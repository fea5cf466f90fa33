/**
 * 1,000,000 events: memory held by the emulator and page-serving time. Numbers are logged (the
 * benchmarks own performance); the only assertion is a generous memory bound and correctness at
 * depth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from './index.ts';
import { get } from './helpers.ts';

const N = 1_000_000;

function held(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

void test('1,000,000 events: compact memory, fast pages at any depth', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = held();
  const t0 = performance.now();
  const e = await startEmulator({ events: N, logRequests: false, seed: 1 });
  const startMs = performance.now() - t0;
  try {
    gc?.();
    const grownMb = (held() - before) / 1e6;
    assert.equal(e.events.count(), N);

    const time = async (label: string, q: string, n = 20) => {
      const c0 = e.stats.cpuMs;
      const t = performance.now();
      let results = 0;
      for (let i = 0; i < n; i++) {
        const r = await get(e, `/api/v3/events/events/?${q}`);
        assert.equal(r.status, 200, `${label}: ${r.text.slice(0, 200)}`);
        results = r.json.results.length as number;
      }
      const ms = (performance.now() - t) / n;
      const cpu = (e.stats.cpuMs - c0) / n;
      console.log(
        `# ${label}: ${ms.toFixed(2)} ms/page wall, ${cpu.toFixed(2)} ms/page emulator CPU, ${results} results`,
      );
      return ms;
    };
    await time('newest page (default -created, 20)', '');
    await time('newest page, page_size=100', 'page_size=100');
    await time('oldest page ascending, page_size=100', 'ordering=created&page_size=100');
    await time('middle page (page 5000), page_size=100', 'page_size=100&page=5000');
    await time('last page, page_size=100', 'page_size=100&page=last');

    // correctness at depth: the last ascending page holds the newest events
    const last = await get(e, '/api/v3/events/events/?ordering=created&page_size=100&page=10000');
    const first = await get(e, '/api/v3/events/events/?page_size=100');
    assert.deepEqual(last.json.results.at(-1), first.json.results[0]);
    assert.equal(last.json.pagination.count, N);
    assert.equal(last.json.pagination.next, 0);

    console.log(
      `# 1M events: startEmulator ${startMs.toFixed(0)} ms; heapUsed+arrayBuffers grew ${grownMb.toFixed(1)} MB` +
        `${gc ? '' : ' (run with --expose-gc for a stable number)'}`,
    );
    assert.ok(grownMb < 200, `memory for 1M events: ${grownMb.toFixed(1)} MB`);
  } finally {
    await e.close();
  }
});
