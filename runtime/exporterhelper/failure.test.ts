import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FanoutError, PermanentError, RetryableError } from '../errors.ts';
import { retryDefaults, retrySchema } from '../config/types.ts';
import { nopSettings } from '../../test/kit/index.ts';
import {
  SinkHealth,
  SinkUnusableError,
  classifyHttpStatus,
  failureClass,
  isSinkUnusable,
  isTlsError,
  sinkUnusableDelay,
} from './failure.ts';
import { retry } from './retry.ts';
import { MemoryQueue } from './queue/memory.ts';
import { sendingQueueSchema } from './queue.ts';
import type { Exporter } from '../component.ts';
import type { LogsBatch } from '../model.ts';

describe('failure taxonomy', () => {
  test('HTTP statuses', () => {
    for (const s of [401, 403, 404, 405, 407, 413, 415, 301, 302, 307]) {
      assert.equal(classifyHttpStatus(s, true), 'sink_unusable', String(s));
      assert.equal(classifyHttpStatus(s, false), 'sink_unusable', String(s));
    }
    for (const s of [429, 408, 500, 502, 503, 504]) assert.equal(classifyHttpStatus(s, false), 'retryable');
    assert.equal(classifyHttpStatus(400, true), 'rejected', 'the sink parsed and refused the content');
    assert.equal(classifyHttpStatus(400, false), 'sink_unusable', 'a proxy page is not a verdict on data');
    assert.equal(classifyHttpStatus(422, false), 'sink_unusable');
  });

  test('classes of errors', () => {
    const sink = new SinkUnusableError('http_401', 'no');
    assert.equal(failureClass(sink), 'sink_unusable');
    assert.ok(sink instanceof RetryableError, 'code that only knows permanent/retryable retries it');
    assert.equal(failureClass(new PermanentError('bad')), 'rejected');
    assert.equal(failureClass(new Error('boom')), 'retryable');
    assert.ok(isSinkUnusable(new FanoutError([{ id: 'a', error: sink }])));
  });

  test('TLS errors are recognised through the cause chain', () => {
    const e = Object.assign(
      new Error('write EPROTO 4080:error:0A000410:SSL routines::sslv3 alert handshake failure'),
      {
        code: 'EPROTO',
      },
    );
    assert.ok(isTlsError(new Error('request failed', { cause: e })));
    assert.ok(isTlsError(Object.assign(new Error('x'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' })));
    assert.ok(isTlsError(Object.assign(new Error('x'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })));
    assert.ok(!isTlsError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })));
  });

  test('class-2 backoff is slow and capped', () => {
    const cfg = retrySchema.parse(retryDefaults);
    const mid = () => 0.5;
    assert.equal(sinkUnusableDelay(1, cfg, mid), 2000);
    assert.equal(sinkUnusableDelay(2, cfg, mid), 4000);
    assert.equal(sinkUnusableDelay(50, cfg, mid), 30_000);
  });
});

describe('retry() with class-2 failures', () => {
  test('retried forever whatever max_elapsed_time and enabled say; thrown at once with sinkUnusable: throw', async () => {
    const cfg = retrySchema.parse({
      initial_interval: '10ms',
      max_interval: '20ms',
      max_elapsed_time: '30ms',
    });
    let n = 0;
    const t0 = Date.now();
    const r = await retry(cfg, () => {
      n++;
      if (Date.now() - t0 < 400) return Promise.reject(new SinkUnusableError('http_401', 'denied'));
      return Promise.resolve('ok');
    });
    assert.equal(r, 'ok');
    assert.ok(n >= 2);
    const off = retrySchema.parse({ enabled: false, initial_interval: '10ms', max_interval: '20ms' });
    let m = 0;
    await retry(off, () => (++m < 3 ? Promise.reject(new SinkUnusableError('tls', 'x')) : Promise.resolve()));
    assert.equal(m, 3, 'retry disabled does not drop class-2 data');
    let k = 0;
    await assert.rejects(
      retry(
        cfg,
        () => {
          k++;
          return Promise.reject(new SinkUnusableError('http_404', 'gone'));
        },
        { sinkUnusable: 'throw' },
      ),
      SinkUnusableError,
    );
    assert.equal(k, 1);
  });
});

describe('SinkHealth', () => {
  test('one error line per episode, one info line at recovery, permanent_error then ok', () => {
    const s = nopSettings('otlphttp', 'exporter');
    const h = new SinkHealth(s);
    h.failed(new RetryableError('503'));
    assert.equal(s.statuses.length, 0, 'class 3 opens no episode');
    for (let i = 0; i < 5; i++) h.failed(new SinkUnusableError('http_401', 'answered 401'));
    assert.ok(h.unusable);
    h.succeeded();
    h.succeeded();
    assert.deepEqual(
      s.statuses.map((x) => x.status),
      ['permanent_error', 'ok'],
    );
    assert.equal(s.logger.lines.filter((l) => l.level === 'error').length, 1);
    assert.equal(s.logger.lines.filter((l) => l.msg.startsWith('sink accepts data again')).length, 1);
  });
});

describe('in-memory queue with a sink that is unusable for a while', () => {
  test('nothing is rejected or dropped; health and the blocking gauge show it; delivered once fixed', async () => {
    const s = nopSettings('es', 'exporter');
    let down = true;
    const got: LogsBatch[] = [];
    const exp: Exporter = {
      capabilities: { mutatesData: false },
      start: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
      consume: (b) => {
        if (down) return Promise.reject(new SinkUnusableError('http_403', 'forbidden'));
        got.push(b);
        return Promise.resolve();
      },
    };
    const cfg = sendingQueueSchema.parse({
      retry_on_failure: { initial_interval: '20ms', max_interval: '50ms', max_elapsed_time: '60ms' },
    });
    const q = new MemoryQueue(s, cfg, exp);
    const p = q.consume([{ observedTimestamp: [1, 0], attributes: {} }]);
    await new Promise((r) => setTimeout(r, 300));
    const text = await s.metrics.getSingleMetricAsString('otelcol_exporter_blocking_seconds');
    assert.match(text, /otelcol_exporter_blocking_seconds\{exporter="es"\} 0\.[1-9]/);
    down = false;
    await p;
    assert.equal(got.length, 1);
    assert.deepEqual(s.drops, []);
    assert.deepEqual(
      s.statuses.map((x) => x.status),
      ['permanent_error', 'ok'],
    );
    assert.ok(s.logger.lines.some((l) => l.msg.startsWith('pipeline blocked by exporter "es"')));
    assert.ok(s.logger.lines.some((l) => l.msg.startsWith('pipeline no longer blocked by exporter "es"')));
    await q.shutdown();
  });
});
