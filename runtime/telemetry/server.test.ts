import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { MemoryLogger } from '../../test/kit/index.ts';
import { Secret } from '../config/types.ts';
import { collectorMetrics, counter, registerProcessMetrics } from './metrics.ts';
import { startTelemetryServers, TelemetryBindError } from './server.ts';
import type { TelemetryServers } from './server.ts';
import { componentSettings } from './settings.ts';
import { StatusBoard } from './status.ts';

describe('telemetry endpoints', () => {
  const open: TelemetryServers[] = [];
  after(async () => {
    await Promise.all(open.map((s) => s.close()));
  });

  async function start(metricsAddress?: string, healthAddress?: string, onBindError?: 'fail' | 'warn') {
    const registry = new Registry();
    registerProcessMetrics(registry);
    const metrics = collectorMetrics(registry);
    const status = new StatusBoard(metrics);
    const logger = new MemoryLogger();
    const servers = await startTelemetryServers({
      metricsAddress,
      healthAddress,
      registry,
      status,
      logger,
      ...(onBindError ? { onBindError } : {}),
    });
    open.push(servers);
    return { registry, metrics, status, logger, servers };
  }

  test('serves Prometheus text with the runtime and process metrics', async () => {
    const { metrics, servers } = await start('127.0.0.1:0', undefined);
    metrics.receiverAccepted.inc({ receiver: 'file' }, 42);
    metrics.exporterSendFailed.inc({ exporter: 'elasticsearch/a' }, 3);
    assert.ok(servers.metricsUrl);
    assert.equal(servers.healthUrl, undefined);
    const res = await fetch(servers.metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /^otelcol_receiver_accepted_log_records\{receiver="file"\} 42$/m);
    assert.match(text, /^otelcol_exporter_send_failed_log_records\{exporter="elasticsearch\/a"\} 3$/m);
    for (const name of [
      'otelcol_process_uptime',
      'otelcol_process_memory_rss',
      'otelcol_exporter_queue_size',
      'otelcol_exporter_enqueue_failed_log_records',
      'otelcol_processor_incoming_log_records',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'));
    }
    assert.match(text, /^otelcol_process_memory_rss \d+/m);
    assert.equal((await fetch(servers.metricsUrl.replace('/metrics', '/nope'))).status, 404);
  });

  test('readiness (/readyz, /): 503 until started; recoverable errors ignored by default, permanent ones count', async () => {
    const { status, servers } = await start(undefined, '127.0.0.1:0');
    const url = servers.healthUrl!;
    const base = url.replace(/\/$/, '');
    status.set('receiver', 'authentik', undefined, 'starting');
    status.set('exporter', 'file', undefined, 'ok');
    let res = await fetch(url);
    assert.equal(res.status, 503);
    let body = (await res.json()) as {
      ready: boolean;
      status: string;
      components: Record<string, { status: string; since: string }>;
    };
    assert.equal(body.ready, false);
    assert.equal(body.status, 'starting');
    assert.equal(body.components['exporter:file']!.status, 'ok');
    assert.ok(!Number.isNaN(Date.parse(body.components['exporter:file']!.since)));
    status.set('receiver', 'authentik', undefined, 'ok');
    res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    // A backend outage being retried: ready and alive (Kubernetes must neither restart nor unroute).
    status.set('receiver', 'authentik', undefined, 'recoverable_error', 'HTTP 503 from authentik');
    res = await fetch(url);
    body = (await res.json()) as typeof body;
    assert.equal(res.status, 200);
    assert.equal(body.status, 'recoverable_error');
    assert.deepEqual(
      { ...body.components['receiver:authentik'], since: undefined },
      { status: 'recoverable_error', message: 'HTTP 503 from authentik', since: undefined },
    );
    // A rejected credential (exporters report permanent_error and keep retrying): not ready, still alive.
    status.set('exporter', 'file', undefined, 'permanent_error', 'HTTP 401');
    assert.equal((await fetch(`${base}/readyz`)).status, 503);
    const live = await fetch(`${base}/livez`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'alive' });
    status.set('exporter', 'file', undefined, 'fatal_error', 'broken');
    assert.equal((await fetch(`${base}/livez`)).status, 503);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  });

  test('readiness options: include_recoverable_errors after recovery_duration, include_permanent_errors: false', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const status = new StatusBoard(undefined, () => new Date(now));
    status.set('exporter', 'es', undefined, 'recoverable_error', 'connection refused');
    const opts = { includeRecoverable: true, recoveryMs: 60_000 };
    assert.equal(status.ready(), true);
    assert.equal(status.ready(opts), true, 'not yet: the error is younger than recovery_duration');
    now += 60_000;
    assert.equal(status.ready(opts), false);
    status.set('exporter', 'es', undefined, 'permanent_error', '401');
    assert.equal(status.ready(), false);
    assert.equal(status.ready({ includePermanent: false }), true);
    assert.equal(status.alive(), true);
    for (const s of ['stopping', 'stopped', 'starting'] as const) {
      status.set('exporter', 'es', undefined, s);
      assert.equal(status.ready(), false, s);
    }
  });

  test('a busy port fails the start with a clear message, unless on_bind_error: warn', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      await assert.rejects(
        () => start(`127.0.0.1:${port}`, '127.0.0.1:0'),
        (e: unknown) =>
          e instanceof TelemetryBindError &&
          /cannot listen on 127\.0\.0\.1:\d+ for the metrics endpoint: the port is in use/.test(e.message) &&
          /on_bind_error: warn/.test(e.message),
      );
      const { servers, logger } = await start(`127.0.0.1:${port}`, '127.0.0.1:0', 'warn');
      assert.equal(servers.metricsUrl, undefined);
      assert.ok(servers.healthUrl, 'the other endpoint still starts');
      assert.match(
        logger.text(),
        /metrics endpoint not started: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/,
      );
    } finally {
      blocker.close();
    }
  });

  test('the status gauge and dropped counters; no secret reaches a label or a log line', async () => {
    const { registry, metrics, status } = await start();
    const logger = new MemoryLogger();
    const token = new Secret('tok-very-secret-123');
    const settings = componentSettings(
      { logger, registry, metrics, status, buildInfo: { name: 't', version: '0' }, configDir: '.' },
      'processor',
      'authentik_ecs',
      'logs',
    );
    settings.reportStatus('recoverable_error', `auth failed with ${token.reveal()}`);
    settings.reportDropped(2, `invalid record near ${token.reveal()}`);
    settings.reportDropped(0, 'nothing');
    const text = await registry.metrics();
    assert.doesNotMatch(text, /tok-very-secret-123/);
    assert.match(
      text,
      /^otelcol_processor_dropped_log_records\{processor="authentik_ecs",pipeline="logs",reason="invalid record near \[REDACTED\]"\} 2$/m,
    );
    assert.match(
      text,
      /^otelcol_component_status\{kind="processor",id="authentik_ecs",pipeline="logs",status="recoverable_error"\} 1$/m,
    );
    assert.match(
      text,
      /^otelcol_component_status\{kind="processor",id="authentik_ecs",pipeline="logs",status="ok"\} 0$/m,
    );
    assert.equal(logger.lines.length, 1, 'one warn line per drop report');
    assert.match(logger.lines[0]!.msg, /dropped 2 log records: invalid record near \[REDACTED\]/);
    assert.equal(status.get('processor:authentik_ecs@logs')?.message, 'auth failed with [REDACTED]');
  });

  test('counter() is get-or-create, so two instances of a component share a metric', () => {
    const registry = new Registry();
    const a = counter(registry, { name: 'otelcol_x_total', help: 'x', labelNames: ['exporter'] });
    const b = counter(registry, { name: 'otelcol_x_total', help: 'x', labelNames: ['exporter'] });
    assert.equal(a, b);
  });
});
