import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, readdir, readFile, writeFile, appendFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Exporter, Host, StorageExtension } from '../component.ts';
import { PermanentError, RetryableError } from '../errors.ts';
import type { LogRecord, LogsBatch } from '../model.ts';
import { nopHost, nopSettings, waitFor } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import { createSendingQueue, sendingQueueSchema } from './queue.ts';
import type { SendingQueueConfig } from './queue.ts';
import { PersistentQueue } from './queue/persistent.ts';
import { decodeBatch, encodeBatch } from './queue/codec.ts';
import { factory as fileStorageFactory } from '../extensions/file_storage/factory.ts';

/** An exporter double: records deliveries; `behave` decides each call's fate. */
class TestExporter implements Exporter {
  readonly capabilities = { mutatesData: false };
  readonly delivered: LogsBatch[] = [];
  calls = 0;
  active = 0;
  maxActive = 0;
  started = false;
  stopped = false;
  behave: (batch: LogsBatch, call: number) => Promise<void> | void = () => undefined;
  start(_host: Host): Promise<void> {
    this.started = true;
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
  async consume(batch: LogsBatch): Promise<void> {
    const call = ++this.calls;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.behave(batch, call);
      this.delivered.push(batch);
    } finally {
      this.active--;
    }
  }
  records(): LogRecord[] {
    return this.delivered.flat();
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function rec(n: number, extra: Partial<LogRecord> = {}): LogRecord {
  return { observedTimestamp: [1_700_000_000, n], attributes: { n }, body: { seq: n }, ...extra };
}

function batchOf(from: number, count: number, pad = 0): LogsBatch {
  return Array.from({ length: count }, (_, i) =>
    rec(from + i, pad ? { body: { seq: from + i, pad: 'x'.repeat(pad) } } : {}),
  );
}

const fastRetry = { initial_interval: '5ms', max_interval: '20ms', randomization_factor: 0 };

function cfg(over: Record<string, unknown> = {}): SendingQueueConfig {
  return sendingQueueSchema.parse({ retry_on_failure: fastRetry, ...over });
}

function seqs(e: TestExporter): number[] {
  return e.records().map((r) => r.attributes['n'] as number);
}

async function metricValue(
  s: TestSettings,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = s.metrics.getSingleMetric(name);
  if (!m) return 0;
  const got = await m.get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((n, v) => n + v.value, 0);
}

void describe('in-memory sending queue', () => {
  void test('consume resolves only after delivery, in order with one consumer', async () => {
    const exp = new TestExporter();
    const gates = [deferred(), deferred(), deferred()];
    exp.behave = (_b, call) => gates[call - 1]!.promise;
    const q = createSendingQueue(nopSettings('x', 'exporter'), cfg({ num_consumers: 1 }), exp);
    await q.start(nopHost());
    const settled: number[] = [];
    const ps = [0, 1, 2].map((i) => q.consume(batchOf(i, 1)).then(() => settled.push(i)));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(settled, [], 'nothing resolves before the exporter delivered');
    gates[0]!.resolve();
    await waitFor(() => settled.length === 1);
    assert.deepEqual(settled, [0]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    await Promise.all(ps);
    assert.deepEqual(seqs(exp), [0, 1, 2]);
    await q.shutdown();
    assert.equal(exp.stopped, true);
  });

  void test('bounds concurrency to num_consumers', async () => {
    const exp = new TestExporter();
    exp.behave = () => new Promise((r) => setTimeout(r, 5));
    const q = createSendingQueue(
      nopSettings('x', 'exporter'),
      cfg({ num_consumers: 3, queue_size: 50 }),
      exp,
    );
    await q.start(nopHost());
    await Promise.all(Array.from({ length: 20 }, (_, i) => q.consume(batchOf(i, 1))));
    assert.equal(exp.maxActive, 3);
    assert.equal(exp.delivered.length, 20);
    await q.shutdown();
  });

  void test('blocks the caller when full (block_on_overflow) and resumes when a batch is delivered', async () => {
    const exp = new TestExporter();
    const gate = deferred();
    exp.behave = () => gate.promise;
    const q = createSendingQueue(nopSettings('x', 'exporter'), cfg({ num_consumers: 1, queue_size: 1 }), exp);
    await q.start(nopHost());
    const p1 = q.consume(batchOf(1, 1)); // in flight
    const p2 = q.consume(batchOf(2, 1)); // waiting
    let thirdAdmitted = false;
    const p3 = q.consume(batchOf(3, 1)).then(() => (thirdAdmitted = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(exp.calls, 1);
    assert.equal(thirdAdmitted, false);
    gate.resolve();
    await Promise.all([p1, p2, p3]);
    assert.deepEqual(seqs(exp), [1, 2, 3]);
    await q.shutdown();
  });

  void test('rejects with a retryable error and counts when full and block_on_overflow is false', async () => {
    const exp = new TestExporter();
    const gate = deferred();
    exp.behave = () => gate.promise;
    const s = nopSettings('elasticsearch', 'exporter');
    const q = createSendingQueue(s, cfg({ num_consumers: 1, queue_size: 1, block_on_overflow: false }), exp);
    await q.start(nopHost());
    const p1 = q.consume(batchOf(1, 1));
    const p2 = q.consume(batchOf(2, 1));
    await assert.rejects(q.consume(batchOf(3, 4)), (err: unknown) => {
      assert.ok(err instanceof RetryableError);
      assert.match(err.message, /sending queue is full/);
      return true;
    });
    assert.equal(
      await metricValue(s, 'otelcol_exporter_enqueue_failed_log_records', { exporter: 'elasticsearch' }),
      4,
    );
    assert.equal(await metricValue(s, 'otelcol_exporter_queue_capacity'), 1);
    assert.equal(await metricValue(s, 'otelcol_exporter_queue_size'), 1);
    gate.resolve();
    await Promise.all([p1, p2]);
    await q.shutdown();
  });

  void test('reuses an enqueue_failed counter the runtime already registered', async () => {
    const s = nopSettings('otlphttp', 'exporter');
    const { Counter } = await import('prom-client');
    new Counter({
      name: 'otelcol_exporter_enqueue_failed_log_records',
      help: 'runtime',
      labelNames: ['exporter'],
      registers: [s.metrics],
    });
    const exp = new TestExporter();
    const gate = deferred();
    exp.behave = () => gate.promise;
    const q = createSendingQueue(s, cfg({ num_consumers: 1, queue_size: 1, block_on_overflow: false }), exp);
    const p1 = q.consume(batchOf(1, 1));
    const p2 = q.consume(batchOf(2, 1));
    await assert.rejects(q.consume(batchOf(3, 2)), RetryableError);
    assert.equal(
      await metricValue(s, 'otelcol_exporter_enqueue_failed_log_records', { exporter: 'otlphttp' }),
      2,
    );
    gate.resolve();
    await Promise.all([p1, p2]);
  });

  void test('retries retryable errors (nothing lost) and passes permanent errors back at once', async () => {
    const exp = new TestExporter();
    exp.behave = (b, call) => {
      if (b[0]!.attributes['n'] === 99) throw new PermanentError('mapping error');
      if (call <= 3) throw new RetryableError('503');
    };
    const q = createSendingQueue(nopSettings('x', 'exporter'), cfg({ num_consumers: 1 }), exp);
    await q.start(nopHost());
    await q.consume(batchOf(1, 2));
    assert.equal(exp.calls, 4);
    assert.deepEqual(seqs(exp), [1, 2]);
    const before = exp.calls;
    await assert.rejects(q.consume(batchOf(99, 1)), PermanentError);
    assert.equal(exp.calls, before + 1, 'permanent errors are not retried');
    await q.shutdown();
  });

  void test('shutdown drains queued batches, then refuses new ones', async () => {
    const exp = new TestExporter();
    exp.behave = () => new Promise((r) => setTimeout(r, 10));
    const q = createSendingQueue(
      nopSettings('x', 'exporter'),
      cfg({ num_consumers: 1, queue_size: 10 }),
      exp,
    );
    await q.start(nopHost());
    const ps = [1, 2, 3, 4].map((i) => q.consume(batchOf(i, 1)));
    await q.shutdown();
    await Promise.all(ps);
    assert.deepEqual(seqs(exp), [1, 2, 3, 4]);
    await assert.rejects(q.consume(batchOf(5, 1)), RetryableError);
  });

  void test('enabled: false passes batches straight through', async () => {
    const exp = new TestExporter();
    const q = createSendingQueue(nopSettings('x', 'exporter'), cfg({ enabled: false }), exp);
    await q.start(nopHost());
    await q.consume(batchOf(1, 1));
    assert.equal(exp.delivered.length, 1);
    await q.shutdown();
  });
});

void describe('persistent sending queue', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  async function storage(): Promise<{ host: Host; dir: string; qdir: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'queue-test-'));
    dirs.push(dir);
    const ext: StorageExtension = {
      start: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
      getClient: () => Promise.reject(new Error('not used')),
      getDirectory: (kind, id) => Promise.resolve(join(dir, `${kind}_${id.replace(/\W/g, '~')}`)),
    };
    return { host: nopHost({ file_storage: ext }), dir, qdir: join(dir, 'exporter_x', 'sending_queue') };
  }

  function pq(
    exp: TestExporter,
    over: Record<string, unknown> = {},
    s: TestSettings = nopSettings('x', 'exporter'),
    segmentBytes?: number,
  ): PersistentQueue {
    return new PersistentQueue(
      s,
      cfg({ storage: 'file_storage', ...over }),
      exp,
      segmentBytes ? { segmentBytes, stopGraceMs: 200 } : { stopGraceMs: 200 },
    );
  }

  async function segFiles(qdir: string): Promise<string[]> {
    return (await readdir(qdir)).filter((f) => f.endsWith('.seg')).sort();
  }

  void test('createSendingQueue picks the persistent queue when storage is set', () => {
    const q = createSendingQueue(
      nopSettings('x', 'exporter'),
      cfg({ storage: 'file_storage' }),
      new TestExporter(),
    );
    assert.ok(q instanceof PersistentQueue);
  });

  void test('start fails clearly when the storage extension is missing', async () => {
    const q = pq(new TestExporter());
    await assert.rejects(
      q.start(nopHost()),
      /sending_queue\.storage: "file_storage" is not a configured storage extension/,
    );
  });

  void test('records survive the log exactly (HrTime, maps, bytes, attributes, resource)', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    const q = pq(exp);
    await q.start(host);
    const r: LogRecord = {
      timestamp: [1_717_000_000, 123_456_789],
      observedTimestamp: [1_717_000_001, 1],
      severityNumber: 9,
      severityText: 'INFO',
      eventName: 'login',
      body: {
        user: { name: 'ä 😀', groups: ['a', 'b'] },
        n: 1.5,
        ok: true,
        nil: null,
        raw: new Uint8Array([0, 1, 255]),
      },
      attributes: {
        'data_stream.dataset': 'authentik.event',
        'elasticsearch.document_id': 'pk-1',
        list: [1, 'two'],
      },
      resource: { 'service.name': 'authentik-collector' },
      scope: { name: 'authentik', version: '1' },
    };
    await q.consume([r]);
    await waitFor(() => exp.delivered.length === 1);
    assert.deepEqual(exp.delivered[0], [r]);
    assert.deepEqual(decodeBatch(encodeBatch([r])), [r]);
    await q.shutdown();
  });

  void test('consume resolves once stored, delivers in the background, deletes delivered segments', async () => {
    const { host, qdir } = await storage();
    const exp = new TestExporter();
    const gate = deferred();
    exp.behave = () => gate.promise;
    const q = pq(exp, { num_consumers: 1 }, undefined, 4096);
    await q.start(host);
    for (let i = 0; i < 10; i++) await q.consume(batchOf(i * 10, 10, 50));
    assert.equal(exp.delivered.length, 0, 'consume did not wait for delivery');
    assert.ok((await segFiles(qdir)).length > 1, 'several segments written');
    gate.resolve();
    await waitFor(() => exp.delivered.length === 10);
    assert.deepEqual(
      seqs(exp),
      Array.from({ length: 100 }, (_, i) => i),
    );
    await waitFor(() => q.size === 0);
    assert.ok((await segFiles(qdir)).length <= 1, 'fully acknowledged sealed segments are deleted');
    await q.shutdown();
  });

  void test('replays undelivered batches after a crash (instance abandoned without shutdown)', async () => {
    const { host } = await storage();
    const stuck = new TestExporter();
    stuck.behave = () => new Promise<void>(() => undefined); // never delivers, no timers
    const crashed = pq(stuck, { num_consumers: 2 });
    await crashed.start(host);
    for (let i = 0; i < 5; i++) await crashed.consume(batchOf(i * 3, 3));
    // No shutdown: the process "dies" here. A new instance opens the same directory.
    const exp = new TestExporter();
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, {}, s);
    await q.start(host);
    await waitFor(() => exp.delivered.length === 5);
    assert.deepEqual(
      seqs(exp).sort((a, b) => a - b),
      Array.from({ length: 15 }, (_, i) => i),
    );
    assert.ok(s.logger.lines.some((l) => l.msg.includes('replaying')));
    await q.shutdown();
    // And nothing is replayed a second time.
    const again = new TestExporter();
    const q2 = pq(again);
    await q2.start(host);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(again.delivered.length, 0);
    await q2.shutdown();
  });

  void test('a torn last record is skipped with a counted warning, not a crash and not a drop', async () => {
    const { host, qdir } = await storage();
    const stuck = new TestExporter();
    stuck.behave = () => new Promise<void>(() => undefined);
    const crashed = pq(stuck, { num_consumers: 1 });
    await crashed.start(host);
    for (let i = 0; i < 3; i++) await crashed.consume(batchOf(i, 1));
    const [seg] = await segFiles(qdir);
    const full = await readFile(join(qdir, seg!));
    // Simulate a write cut short by the crash: the header and half of a copy of the first record.
    await appendFile(join(qdir, seg!), full.subarray(0, 30));
    const exp = new TestExporter();
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, {}, s);
    await q.start(host);
    await waitFor(() => exp.delivered.length === 3);
    assert.deepEqual(seqs(exp).sort(), [0, 1, 2]);
    assert.equal(await metricValue(s, 'otelcol_exporter_queue_skipped_records', { reason: 'torn_tail' }), 1);
    assert.deepEqual(s.drops, []);
    assert.ok(s.logger.lines.some((l) => l.level === 'warn' && l.msg.includes('damaged')));
    await q.shutdown();
  });

  void test('a record with a bad CRC in the middle is skipped and counted as dropped; the rest replays', async () => {
    const { host, qdir } = await storage();
    const stuck = new TestExporter();
    stuck.behave = () => new Promise<void>(() => undefined);
    const crashed = pq(stuck, { num_consumers: 1 });
    await crashed.start(host);
    await crashed.consume(batchOf(0, 2));
    await crashed.consume(batchOf(10, 3));
    await crashed.consume(batchOf(20, 2));
    const [seg] = await segFiles(qdir);
    const path = join(qdir, seg!);
    const buf = await readFile(path);
    const firstLen = 12 + buf.readUInt32BE(4);
    // Flip one byte inside the JSON of the second record.
    buf[firstLen + 12 + 13 + 5]! ^= 0xff;
    await writeFile(path, buf);
    const exp = new TestExporter();
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, {}, s);
    await q.start(host);
    await waitFor(() => exp.delivered.length === 2);
    assert.deepEqual(
      seqs(exp).sort((a, b) => a - b),
      [0, 1, 20, 21],
    );
    assert.deepEqual(s.drops, [{ count: 3, reason: 'queue_corrupted' }]);
    assert.equal(await metricValue(s, 'otelcol_exporter_queue_skipped_records', { reason: 'bad_crc' }), 1);
    await q.shutdown();
  });

  void test('damage in the middle of a segment: 99 of 100 batches replayed in order, 1 dropped with file and offset', async () => {
    const { host, qdir } = await storage();
    const stuck = new TestExporter();
    stuck.behave = () => new Promise<void>(() => undefined);
    const crashed = pq(stuck, { num_consumers: 1, queue_size: 1000 });
    await crashed.start(host);
    for (let i = 1; i <= 100; i++) await crashed.consume(batchOf(i * 10, 2));
    const [seg] = await segFiles(qdir);
    const path = join(qdir, seg!);
    const buf = await readFile(path);
    // Walk to record 40 (1-based) by the framing and overwrite a few of its JSON bytes.
    let off = 0;
    for (let k = 1; k < 40; k++) off += 12 + buf.readUInt32BE(off + 4);
    buf.write('@@@@', off + 12 + 13 + 8, 'latin1');
    await writeFile(path, buf);
    const exp = new TestExporter();
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, { num_consumers: 1, queue_size: 1000 }, s);
    await q.start(host);
    await waitFor(() => exp.delivered.length === 99);
    const expected = Array.from({ length: 100 }, (_, i) => i + 1)
      .filter((i) => i !== 40)
      .flatMap((i) => [i * 10, i * 10 + 1]);
    assert.deepEqual(seqs(exp), expected, 'in order, only batch 40 missing');
    assert.deepEqual(s.drops, [{ count: 2, reason: 'queue_corrupted' }]);
    const line = s.logger.lines.find((l) => l.fields['reason'] === 'queue_corrupted');
    assert.equal(line?.fields['file'], path);
    assert.equal(line?.fields['offset'], off);
    assert.equal(await metricValue(s, 'otelcol_exporter_queue_skipped_records', { reason: 'bad_crc' }), 1);
    await q.shutdown();
  });

  void test('garbage between records is skipped by resynchronising on the next record', async () => {
    const { host, qdir } = await storage();
    const stuck = new TestExporter();
    stuck.behave = () => new Promise<void>(() => undefined);
    const crashed = pq(stuck, { num_consumers: 1 });
    await crashed.start(host);
    await crashed.consume(batchOf(0, 1));
    await crashed.consume(batchOf(1, 1));
    const [seg] = await segFiles(qdir);
    const path = join(qdir, seg!);
    const buf = await readFile(path);
    const firstLen = 12 + buf.readUInt32BE(4);
    await writeFile(
      path,
      Buffer.concat([buf.subarray(0, firstLen), Buffer.from('garbage!'), buf.subarray(firstLen)]),
    );
    const exp = new TestExporter();
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, {}, s);
    await q.start(host);
    await waitFor(() => exp.delivered.length === 2);
    assert.equal(await metricValue(s, 'otelcol_exporter_queue_skipped_records', { reason: 'bad_header' }), 1);
    await q.shutdown();
  });

  void test('the disk bound blocks the caller until space is freed, then unblocks; nothing lost', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    const gate = deferred();
    exp.behave = () => gate.promise;
    // 1 MiB bound, 64 KiB segments, ~200 KiB batches.
    const q = pq(exp, { max_size_mib: 1, num_consumers: 1, queue_size: 1000 }, undefined, 64 * 1024);
    await q.start(host);
    let admitted = 0;
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 8; i++) ps.push(q.consume(batchOf(i * 100, 100, 2000)).then(() => void admitted++));
    await waitFor(() => admitted >= 3);
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(admitted >= 3 && admitted <= 5, `admitted ${admitted} batches of ~200 KiB under a 1 MiB bound`);
    assert.ok(q.diskBytes <= 1024 * 1024, `disk ${q.diskBytes} within the bound`);
    gate.resolve();
    await Promise.all(ps);
    await waitFor(() => exp.delivered.length === 8);
    assert.equal(exp.records().length, 800);
    assert.deepEqual(new Set(seqs(exp)).size, 800);
    await q.shutdown();
  });

  void test('full with block_on_overflow false: retryable error, counted', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    exp.behave = () => new Promise<void>(() => undefined);
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, { queue_size: 2, block_on_overflow: false, num_consumers: 1 }, s);
    await q.start(host);
    await q.consume(batchOf(0, 1));
    await q.consume(batchOf(1, 1));
    await assert.rejects(q.consume(batchOf(2, 7)), /sending queue is full/);
    assert.equal(await metricValue(s, 'otelcol_exporter_enqueue_failed_log_records'), 7);
    await q.shutdown();
  });

  void test('permanent failures are dropped, counted with a reason, and removed from the log', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    exp.behave = (b) => {
      if (b[0]!.attributes['n'] === 5) throw new PermanentError('400 mapper_parsing_exception');
    };
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, { num_consumers: 1 }, s);
    await q.start(host);
    await q.consume(batchOf(0, 5));
    await q.consume(batchOf(5, 4));
    await q.consume(batchOf(9, 1));
    await waitFor(() => exp.delivered.length === 2 && s.drops.length === 1);
    assert.deepEqual(s.drops, [{ count: 4, reason: 'permanent_error' }]);
    await waitFor(() => q.size === 0);
    await q.shutdown();
    const again = new TestExporter();
    const q2 = pq(again);
    await q2.start(host);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(again.calls, 0, 'the dropped batch is not replayed');
    await q2.shutdown();
  });

  void test('retryable errors never drop data with the default (infinite) retry', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    exp.behave = (_b, call) => {
      if (call % 3 !== 0) throw new RetryableError('429 too many requests', { retryAfterMs: 1 });
    };
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, { num_consumers: 2 }, s);
    await q.start(host);
    for (let i = 0; i < 6; i++) await q.consume(batchOf(i * 2, 2));
    await waitFor(() => exp.delivered.length === 6);
    assert.equal(new Set(seqs(exp)).size, 12);
    assert.deepEqual(s.drops, []);
    await q.shutdown();
  });

  void test('a finite max_elapsed_time drops with reason retries_exhausted', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    exp.behave = () => {
      throw new RetryableError('503');
    };
    const s = nopSettings('x', 'exporter');
    const q = pq(exp, { retry_on_failure: { ...fastRetry, max_elapsed_time: '40ms' } }, s);
    await q.start(host);
    await q.consume(batchOf(0, 3));
    await waitFor(() => s.drops.length === 1);
    assert.deepEqual(s.drops, [{ count: 3, reason: 'retries_exhausted' }]);
    await q.shutdown();
  });

  void test('shutdown is quick while the backend is down and keeps batches for the next start', async () => {
    const { host } = await storage();
    const down = new TestExporter();
    down.behave = () => {
      throw new RetryableError('connection refused');
    };
    const q = pq(down, { num_consumers: 2 });
    await q.start(host);
    for (let i = 0; i < 4; i++) await q.consume(batchOf(i, 1));
    await new Promise((r) => setTimeout(r, 30));
    const t0 = Date.now();
    await q.shutdown();
    assert.ok(Date.now() - t0 < 1000, `shutdown took ${Date.now() - t0} ms`);
    assert.equal(down.stopped, true);
    await assert.rejects(q.consume(batchOf(9, 1)), RetryableError);
    const exp = new TestExporter();
    const q2 = pq(exp);
    await q2.start(host);
    await waitFor(() => exp.delivered.length === 4);
    assert.deepEqual(seqs(exp).sort(), [0, 1, 2, 3]);
    await q2.shutdown();
  });

  void test('works with the real file_storage extension across a crash', async () => {
    const { dir } = await storage();
    const extSettings = nopSettings('file_storage', 'extension');
    const open = async () => {
      const ext = await fileStorageFactory.create(
        extSettings,
        fileStorageFactory.configSchema.parse({ directory: join(dir, 'fs') }),
      );
      await ext.start(nopHost());
      return ext;
    };
    const ext1 = await open();
    const stuck = new TestExporter();
    stuck.behave = () => new Promise<void>(() => undefined);
    const crashed = pq(stuck);
    await crashed.start(nopHost({ file_storage: ext1 }));
    await crashed.consume(batchOf(0, 3));
    await crashed.consume(batchOf(3, 3));
    // The process dies: neither the queue nor the extension is shut down. A new process starts.
    await ext1.shutdown();
    const ext2 = await open();
    const exp = new TestExporter();
    const q = pq(exp);
    await q.start(nopHost({ file_storage: ext2 }));
    await waitFor(() => exp.delivered.length === 2);
    assert.deepEqual(
      seqs(exp).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
    );
    await q.shutdown();
    await ext2.shutdown();
  });

  void test('a queue directory owned by a live process is refused; a stale lock is taken over', async () => {
    const { host, qdir } = await storage();
    await mkdir(qdir, { recursive: true });
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      await writeFile(join(qdir, 'LOCK'), `${owner.pid}\n`);
      await assert.rejects(pq(new TestExporter()).start(host), /is in use by process/);
    } finally {
      owner.kill('SIGKILL');
    }
    await new Promise((r) => owner.once('exit', r));
    const exp = new TestExporter();
    const q = pq(exp);
    await q.start(host); // the owner is dead now: its lock is stale
    await q.consume(batchOf(0, 1));
    await waitFor(() => exp.delivered.length === 1);
    await q.shutdown();
  });

  void test('a lock whose pid now belongs to another (node) process is stale; LOCK is created exclusively', async () => {
    const { host, qdir } = await storage();
    await mkdir(qdir, { recursive: true });
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      // What a crashed collector left behind, after its pid was reused by another node process.
      await writeFile(
        join(qdir, 'LOCK'),
        JSON.stringify({ pid: other.pid, start: '1', hostname: hostname(), token: 'dead' }),
      );
      const exp = new TestExporter();
      const q = pq(exp);
      await q.start(host);
      const lock = JSON.parse(await readFile(join(qdir, 'LOCK'), 'utf8')) as { pid: number; token: string };
      assert.equal(lock.pid, process.pid);
      await q.consume(batchOf(0, 1));
      await waitFor(() => exp.delivered.length === 1);
      await q.shutdown();
      await assert.rejects(readFile(join(qdir, 'LOCK')), { code: 'ENOENT' }, 'released at close');
    } finally {
      other.kill('SIGKILL');
    }
  });

  void test('max_batch_bytes splits large batches into several stored batches', async () => {
    const { host } = await storage();
    const exp = new TestExporter();
    const q = pq(exp, { max_batch_bytes: 300, num_consumers: 1 });
    await q.start(host);
    await q.consume(batchOf(0, 8, 100));
    await waitFor(() => exp.records().length === 8);
    assert.ok(exp.delivered.length >= 4, `split into ${exp.delivered.length} batches`);
    assert.deepEqual(seqs(exp), [0, 1, 2, 3, 4, 5, 6, 7]);
    await q.shutdown();
  });
});
