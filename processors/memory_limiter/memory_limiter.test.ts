import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { RetryableError } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { nopHost, nopSettings, SinkConsumer } from '../../test/kit/index.ts';
import { computeLimits, configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { factory } from './factory.ts';
import { MemoryLimiter, obtainGc } from './memory_limiter.ts';
import type { MemoryReading } from './memory_limiter.ts';

const MIB = 1024 * 1024;
const batch = (n: number): LogsBatch =>
  Array.from({ length: n }, (_, i) => ({ observedTimestamp: [1, i], attributes: {} }));

function parse(v: unknown): Config {
  return configSchema.parse(v);
}

function issues(v: unknown): string[] {
  const r = configSchema.safeParse(v);
  assert.equal(r.success, false, 'expected the config to be rejected');
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

void describe('memory_limiter config', () => {
  void test('the default config parses; an empty config asks for a limit', () => {
    const c = parse(createDefaultConfig());
    assert.equal(c.check_interval, 1000);
    assert.equal(c.limit_percentage, 80);
    assert.match(issues({}).join('\n'), /limit_mib: set limit_mib \(MiB\) or limit_percentage/);
  });

  void test('validation rules', () => {
    assert.match(
      issues({ limit_mib: 100, spike_limit_mib: 100 }).join(),
      /spike_limit_mib: must be below limit_mib/,
    );
    assert.match(issues({ limit_mib: 100, limit_percentage: 50 }).join(), /not both/);
    assert.match(issues({ limit_mib: 100, spike_limit_percentage: 10 }).join(), /goes with limit_percentage/);
    assert.match(issues({ limit_percentage: 50, spike_limit_mib: 10 }).join(), /goes with limit_mib/);
    assert.match(
      issues({ limit_percentage: 50, spike_limit_percentage: 60 }).join(),
      /spike_limit_percentage: must be below/,
    );
    assert.match(
      issues({ limit_mib: 100, check_interval: 'soon' }).join(),
      /check_interval: "soon" is not a duration/,
    );
    assert.match(issues({ limit_mib: '100' }).join(), /limit_mib: expected a number of MiB/);
    assert.match(issues({ limit_mib: 100, extra: 1 }).join(), /extra|Unrecognized/i);
    assert.equal(factory.type, 'memory_limiter');
    assert.equal(factory.kind, 'processor');
  });

  void test('limits: MiB with default spike of 20 %, percentages of available memory', () => {
    assert.deepEqual(computeLimits(parse({ limit_mib: 500 }), 0), {
      hardBytes: 500 * MIB,
      softBytes: 400 * MIB,
    });
    assert.deepEqual(computeLimits(parse({ limit_mib: 500, spike_limit_mib: 50 }), 0), {
      hardBytes: 500 * MIB,
      softBytes: 450 * MIB,
    });
    assert.deepEqual(computeLimits(parse({ limit_percentage: 50, spike_limit_percentage: 10 }), 1000 * MIB), {
      hardBytes: 500 * MIB,
      softBytes: 400 * MIB,
    });
  });
});

void describe('memory_limiter processor', () => {
  function make(
    reading: MemoryReading,
    cfg: unknown = { limit_mib: 100, spike_limit_mib: 20 },
    gc?: () => void,
  ) {
    const settings = nopSettings('memory_limiter', 'processor');
    const sink = new SinkConsumer();
    const now = { t: 1_000_000 };
    const p = new MemoryLimiter(settings, parse(cfg), sink, {
      read: () => reading,
      availableBytes: 1000 * MIB,
      gc,
      now: () => now.t,
    });
    return { p, sink, settings, now };
  }

  void test('passes data below the soft limit; refuses with a retryable error above it; recovers', async () => {
    const reading = { rss: 50 * MIB, heapUsed: 10 * MIB, heapLimit: 1000 * MIB };
    const { p, sink, settings } = make(reading, {
      limit_mib: 100,
      spike_limit_mib: 20,
      check_interval: '250ms',
    });
    await p.start(nopHost());
    await p.consume(batch(3));
    assert.equal(sink.count(), 3);

    reading.rss = 85 * MIB; // above soft (80), below hard (100)
    assert.equal(p.check(), 'soft');
    await assert.rejects(p.consume(batch(4)), (err: unknown) => {
      assert.ok(err instanceof RetryableError);
      assert.equal(err.retryAfterMs, 250);
      assert.match(err.message, /RSS 85 MiB is above the soft limit of 80 MiB/);
      return true;
    });
    assert.equal(sink.count(), 3);
    const refused = await settings.metrics.getSingleMetric('otelcol_processor_refused_log_records')!.get();
    assert.equal(refused.values[0]!.value, 4);
    assert.deepEqual(settings.statuses.at(-1)?.status, 'recoverable_error');

    reading.rss = 60 * MIB;
    assert.equal(p.check(), 'ok');
    await p.consume(batch(1));
    assert.equal(sink.count(), 4);
    assert.deepEqual(settings.statuses.at(-1)?.status, 'ok');
    await p.shutdown();
  });

  void test('above the hard limit forces GC (when exposed) and re-measures', async () => {
    const reading = { rss: 120 * MIB, heapUsed: 10 * MIB, heapLimit: 1000 * MIB };
    let gcs = 0;
    const { p } = make(reading, { limit_mib: 100, spike_limit_mib: 20 }, () => {
      gcs++;
      reading.rss = 70 * MIB; // GC freed memory
    });
    assert.equal(p.check(), 'ok');
    assert.equal(gcs, 1);
    await p.consume(batch(1));
  });

  void test('GC while soft-limited is rate limited by min_gc_interval_when_soft_limited', () => {
    const reading = { rss: 90 * MIB, heapUsed: 10 * MIB, heapLimit: 1000 * MIB };
    let gcs = 0;
    const { p, now } = make(
      reading,
      { limit_mib: 100, spike_limit_mib: 20, min_gc_interval_when_soft_limited: '10s' },
      () => void gcs++,
    );
    p.check();
    p.check();
    assert.equal(gcs, 1);
    now.t += 10_000;
    p.check();
    assert.equal(gcs, 2);
    assert.equal(p.state, 'soft');
  });

  void test('without an exposed GC, the hard limit warns once and keeps refusing', async () => {
    const reading = { rss: 150 * MIB, heapUsed: 10 * MIB, heapLimit: 1000 * MIB };
    const { p, settings } = make(reading, { limit_mib: 100 }, undefined);
    assert.equal(p.check(), 'hard');
    p.check();
    assert.equal(settings.logger.lines.filter((l) => l.msg.includes('cannot be forced')).length, 1);
    await assert.rejects(p.consume(batch(1)), /hard limit/);
  });

  void test('obtains a GC function even without --expose-gc, and uses it on first need', () => {
    const gc = obtainGc();
    assert.equal(typeof gc, 'function');
    gc!();
    const reading = { rss: 150 * MIB, heapUsed: 10 * MIB, heapLimit: 1000 * MIB };
    const settings = nopSettings('memory_limiter', 'processor');
    const p = new MemoryLimiter(settings, parse({ limit_mib: 100 }), new SinkConsumer(), {
      read: () => reading,
      availableBytes: 1000 * MIB,
    });
    assert.equal(p.check(), 'hard');
    assert.equal(settings.logger.lines.filter((l) => l.msg.includes('cannot be forced')).length, 0);
  });

  void test('refuses when the V8 heap nears its limit even with RSS low', async () => {
    const reading = { rss: 10 * MIB, heapUsed: 95 * MIB, heapLimit: 100 * MIB };
    const { p } = make(reading, { limit_mib: 1000, heap_limit_percentage: 90 });
    assert.equal(p.check(), 'soft');
    await assert.rejects(p.consume(batch(1)), /V8 heap 95 MiB is above 90% of its limit/);
  });

  void test('the real process reading works through the factory', async () => {
    const settings = nopSettings('memory_limiter', 'processor');
    const sink = new SinkConsumer();
    const p = await factory.create(settings, parse({ limit_mib: 1_000_000, check_interval: '50ms' }), sink);
    await p.start(nopHost());
    await p.consume(batch(2));
    assert.equal(sink.count(), 2);
    await p.shutdown();
    const tiny = await factory.create(settings, parse({ limit_mib: 1, spike_limit_mib: 0 }), sink);
    await tiny.start(nopHost());
    await assert.rejects(tiny.consume(batch(1)), RetryableError);
    await tiny.shutdown();
  });
});
