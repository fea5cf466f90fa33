import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import * as z from 'zod';
import type {
  Component,
  ComponentKind,
  Exporter,
  ExporterFactory,
  Host,
  ReceiverFactory,
} from '../component.ts';
import { CollectorError, ErrorCode, TimeoutError } from '../errors.ts';
import type { LogsBatch, LogRecord } from '../model.ts';
import { loadConfig } from '../config/load.ts';
import type { Graph, GraphNode } from '../graph/graph.ts';
import { Inflight } from '../graph/inflight.ts';
import { createLogger } from '../logger/logger.ts';
import { ComponentRegistry } from '../plugins/registry.ts';
import { collectorMetrics } from '../telemetry/metrics.ts';
import { StatusBoard, statusKey } from '../telemetry/status.ts';
import { nopSettings, MemoryLogger } from '../../test/kit/index.ts';
import { ExitCode, runCollector } from './run.ts';
import { describeUndelivered, Service } from './service.ts';

const rec = (n: number): LogRecord => ({ observedTimestamp: [0, 0], attributes: {}, body: { n } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function node(kind: ComponentKind, id: string, component: Component, pipeline?: string): GraphNode {
  return {
    kind,
    id,
    key: statusKey(kind, id, pipeline),
    component,
    settings: nopSettings(id, kind),
    closed: false,
    ...(pipeline ? { pipeline } : {}),
  };
}

/** A component that logs its lifecycle calls to `events`. */
function traced(events: string[], name: string, hooks: Partial<Component> = {}): Component {
  return {
    start: async (host) => {
      events.push(`start ${name}`);
      await hooks.start?.(host);
    },
    shutdown: async () => {
      events.push(`shutdown ${name}`);
      await hooks.shutdown?.();
    },
  };
}

function service(
  graph: Graph,
  status = new StatusBoard(),
  extra: Partial<{ start: number; shutdown: number }> = {},
) {
  return new Service(graph, {
    logger: new MemoryLogger(),
    status,
    startTimeoutMs: extra.start ?? 2000,
    shutdownTimeoutMs: extra.shutdown ?? 2000,
  });
}

describe('Service lifecycle', () => {
  test('starts in reverse topological order and shuts down in topological order', async () => {
    const events: string[] = [];
    let seenByReceiver: Component | undefined;
    const graph: Graph = {
      extensions: [
        node('extension', 'e1', traced(events, 'e1')),
        node('extension', 'e2', traced(events, 'e2')),
      ],
      exporters: [node('exporter', 'x', traced(events, 'x'))],
      processors: new Map([
        [
          'logs',
          [
            node('processor', 'p1', traced(events, 'p1'), 'logs'),
            node('processor', 'p2', traced(events, 'p2'), 'logs'),
          ],
        ],
        ['logs/b', [node('processor', 'q1', traced(events, 'q1'), 'logs/b')]],
      ]),
      receivers: [
        node(
          'receiver',
          'r',
          traced(events, 'r', {
            start: (host: Host) => {
              seenByReceiver = host.getExtension('e2');
              return Promise.resolve();
            },
          }),
        ),
      ],
    };
    const status = new StatusBoard();
    const s = service(graph, status);
    await s.start();
    assert.deepEqual(events, [
      'start e1',
      'start e2',
      'start x',
      'start p2',
      'start p1',
      'start q1',
      'start r',
    ]);
    assert.equal(
      seenByReceiver,
      graph.extensions[1]!.component,
      'started extensions are visible through the host',
    );
    assert.equal(status.healthy(), true);
    events.length = 0;
    assert.deepEqual(await s.shutdown(), []);
    assert.deepEqual(events.slice(0, 1), ['shutdown r']);
    assert.deepEqual(new Set(events.slice(1, 3)), new Set(['shutdown p1', 'shutdown q1']));
    assert.deepEqual(events.slice(3), ['shutdown p2', 'shutdown x', 'shutdown e2', 'shutdown e1']);
    assert.equal(status.snapshot().status, 'stopped');
    assert.equal(await s.shutdown(), await s.shutdown(), 'idempotent');
  });

  test('a start failure shuts down what started and names the component', async () => {
    const events: string[] = [];
    const graph: Graph = {
      extensions: [node('extension', 'e', traced(events, 'e'))],
      exporters: [
        node('exporter', 'a', traced(events, 'a')),
        node('exporter', 'b', traced(events, 'b', { start: () => Promise.reject(new Error('port busy')) })),
      ],
      processors: new Map(),
      receivers: [node('receiver', 'r', traced(events, 'r'))],
    };
    const status = new StatusBoard();
    const err = await service(graph, status)
      .start()
      .catch((e: unknown) => e);
    assert.ok(err instanceof CollectorError);
    assert.equal(err.code, ErrorCode.COMPONENT_START_FAILED);
    assert.equal(err.message, 'exporter "b" failed to start: port busy');
    assert.ok(!events.includes('start r'), 'receivers never start');
    for (const name of ['e', 'a']) assert.ok(events.includes(`shutdown ${name}`), `${name} was shut down`);
    assert.ok(events.indexOf('shutdown a') < events.indexOf('shutdown e'));
    assert.equal(status.get('exporter:b')?.status, 'stopped');
  });

  test('start is bounded by the start timeout', async () => {
    const graph: Graph = {
      extensions: [],
      exporters: [
        node('exporter', 'stuck', { start: () => new Promise(() => {}), shutdown: async () => {} }),
      ],
      processors: new Map(),
      receivers: [],
    };
    const t0 = Date.now();
    const err = await service(graph, new StatusBoard(), { start: 100 })
      .start()
      .catch((e: unknown) => e);
    assert.ok(err instanceof CollectorError);
    assert.ok(err.cause instanceof TimeoutError);
    assert.ok(Date.now() - t0 < 1500);
  });

  test('shutdown drains a batch already in flight before stopping the exporter', async () => {
    const events: string[] = [];
    const delivered: LogsBatch[] = [];
    const exporter: Exporter = {
      capabilities: { mutatesData: false },
      start: async () => {},
      shutdown: () => Promise.resolve(void events.push('exporter shutdown')),
      consume: async (b) => {
        await sleep(150);
        delivered.push(b);
        events.push('delivered');
      },
    };
    const output = new Inflight();
    const receiverNode = node('receiver', 'r', {
      start: () => {
        // Pushes one batch in the background; shutdown below does not wait for it.
        void output.track(() => exporter.consume([rec(1)])).catch(() => undefined);
        return Promise.resolve();
      },
      shutdown: () => Promise.resolve(void events.push('receiver shutdown')),
    });
    receiverNode.output = output;
    const s = service({
      extensions: [],
      exporters: [node('exporter', 'x', exporter)],
      processors: new Map(),
      receivers: [receiverNode],
    });
    await s.start();
    assert.deepEqual(await s.shutdown(), []);
    assert.deepEqual(events, ['receiver shutdown', 'delivered', 'exporter shutdown']);
    assert.equal(delivered.length, 1);
  });

  test('shutdown drains what receivers handed over before they stop, so it is checkpointed', async () => {
    const events: string[] = [];
    const output = new Inflight();
    const intake = { closed: false };
    let storeClosed = false;
    const exporter: Exporter = {
      capabilities: { mutatesData: false },
      ...traced(events, 'exporter'),
      consume: async () => {
        await sleep(300); // slower than nothing: the receiver must not have closed its store meanwhile
        events.push('delivered');
      },
    };
    const receiverNode = node('receiver', 'r', {
      start: () => {
        void output
          .track(() => exporter.consume([rec(1)]))
          .then(() => {
            events.push(storeClosed ? 'checkpoint LOST (store closed)' : 'checkpointed');
          });
        return Promise.resolve();
      },
      shutdown: () => {
        events.push('receiver shutdown');
        storeClosed = true;
        return Promise.resolve();
      },
    });
    receiverNode.output = output;
    receiverNode.intake = intake;
    const s = service({
      extensions: [],
      exporters: [node('exporter', 'x', exporter)],
      processors: new Map(),
      receivers: [receiverNode],
    });
    await s.start();
    assert.deepEqual(await s.shutdown(), []);
    assert.ok(intake.closed, 'intake closed first');
    assert.deepEqual(events.slice(1, 4), ['delivered', 'checkpointed', 'receiver shutdown']);
    assert.equal(s.undelivered, undefined);
  });

  test('a sink that stays down: the drain gives up, queues give batches back, undelivered says what', async () => {
    const output = new Inflight();
    let reject!: (e: unknown) => void;
    let abandoned = false;
    const exporter = {
      capabilities: { mutatesData: false },
      start: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
      consume: () => new Promise<void>((_, r) => (reject = r)),
      abandon: () => {
        abandoned = true;
        reject(new Error('given back'));
      },
    };
    const receiverNode = node('receiver', 'r', {
      start: () => {
        void output.track(() => exporter.consume()).catch(() => undefined);
        return Promise.resolve();
      },
      shutdown: () => Promise.resolve(),
    });
    receiverNode.output = output;
    receiverNode.intake = { closed: false };
    const status = new StatusBoard();
    const s = service(
      {
        extensions: [],
        exporters: [node('exporter', 'x', exporter)],
        processors: new Map(),
        receivers: [receiverNode],
      },
      status,
      { shutdown: 900 },
    );
    await s.start();
    status.set('exporter', 'x', undefined, 'permanent_error', 'answered 401');
    const t0 = Date.now();
    assert.deepEqual(await s.shutdown(), []);
    assert.ok(Date.now() - t0 < 900);
    assert.ok(abandoned);
    const u = s.undelivered!;
    assert.deepEqual(u.inFlight, [{ receiver: 'r', batches: 1 }]);
    assert.deepEqual(u.blocking, [{ exporter: 'x', status: 'permanent_error', message: 'answered 401' }]);
    assert.match(
      describeUndelivered(u),
      /^stopped with undelivered data, nothing lost: not delivering: exporter "x" \(permanent_error: answered 401\); 1 batch\(es\) from receiver "r" not acknowledged: not checkpointed, read again/,
    );
  });

  test('shutdown collects every failure, bounds hanging components and still stops the rest', async () => {
    const events: string[] = [];
    const graph: Graph = {
      extensions: [node('extension', 'e', traced(events, 'e'))],
      exporters: [
        node('exporter', 'hang', traced(events, 'hang', { shutdown: () => new Promise(() => {}) })),
        node(
          'exporter',
          'boom',
          traced(events, 'boom', { shutdown: () => Promise.reject(new Error('flush failed')) }),
        ),
      ],
      processors: new Map(),
      receivers: [node('receiver', 'r', traced(events, 'r'))],
    };
    const s = service(graph, new StatusBoard(), { shutdown: 200 });
    await s.start();
    const t0 = Date.now();
    const failures = await s.shutdown();
    assert.ok(Date.now() - t0 < 1500, 'bounded by shutdown_timeout');
    assert.deepEqual(failures.map((f) => f.key).sort(), ['exporter:boom', 'exporter:hang']);
    const hang = failures.find((f) => f.key === 'exporter:hang')!.error;
    assert.ok(hang instanceof CollectorError && hang.code === ErrorCode.COMPONENT_SHUTDOWN_FAILED);
    assert.ok(hang.cause instanceof TimeoutError);
    assert.match(
      String((failures.find((f) => f.key === 'exporter:boom')!.error as Error).message),
      /exporter "boom" failed to shut down: flush failed/,
    );
    assert.ok(events.includes('shutdown e'), 'extensions still shut down');
  });

  test('finished resolves when every receiver is finished, and is undefined for infinite sources', async () => {
    let done!: () => void;
    const finite = {
      start: async () => {},
      shutdown: async () => {},
      finished: new Promise<void>((r) => (done = r)),
    };
    const graphA: Graph = {
      extensions: [],
      exporters: [],
      processors: new Map(),
      receivers: [node('receiver', 'a', finite)],
    };
    const f = service(graphA).finished;
    assert.ok(f);
    done();
    await f;
    const graphB: Graph = {
      extensions: [],
      exporters: [],
      processors: new Map(),
      receivers: [
        node('receiver', 'a', finite),
        node('receiver', 'b', { start: async () => {}, shutdown: async () => {} }),
      ],
    };
    assert.equal(service(graphB).finished, undefined);
  });
});

describe('runCollector', () => {
  let dir: string;
  const delivered: LogsBatch[] = [];
  let exporterShutdownMs = 0;
  const registry = new ComponentRegistry();
  const finite: ReceiverFactory<{ batches: number; forever: boolean }> = {
    kind: 'receiver',
    type: 'gen',
    description: 'emits numbered batches',
    configSchema: z.strictObject({ batches: z.number().default(3), forever: z.boolean().default(false) }),
    createDefaultConfig: () => ({ batches: 3, forever: false }),
    create(_s, config, next) {
      let resolveFinished!: () => void;
      const finished = new Promise<void>((r) => (resolveFinished = r));
      return {
        ...(config.forever ? {} : { finished }),
        start: () => {
          void (async () => {
            for (let i = 0; i < config.batches; i++) await next.consume([rec(i)]);
            resolveFinished();
          })();
          return Promise.resolve();
        },
        shutdown: async () => {},
      };
    },
  };
  const sink: ExporterFactory<Record<string, never>> = {
    kind: 'exporter',
    type: 'sink',
    description: 'collects',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create: () => ({
      capabilities: { mutatesData: false },
      start: async () => {},
      // unref: an abandoned (aborted) shutdown must not keep the test process alive
      shutdown: () => new Promise<void>((r) => setTimeout(r, exporterShutdownMs).unref()),
      consume: (b) => Promise.resolve(void delivered.push(b)),
    }),
  };
  registry.add(finite, { kind: 'builtin', file: 'test' });
  registry.add(sink, { kind: 'builtin', file: 'test' });

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'run-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function config(receiverOptions: string) {
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      `receivers: { gen: ${receiverOptions} }
exporters: { sink: {} }
service:
  telemetry: { metrics: { address: none }, health: { address: none } }
  shutdown_timeout: 300ms
  pipelines: { logs: { receivers: [gen], exporters: [sink] } }
`,
    );
    return loadConfig([file], { registry, env: {} });
  }
  const logger = () => createLogger({ sink: { write: () => undefined }, level: 'error' });

  test('finite sources: drains and returns 0 when every receiver finished', async () => {
    delivered.length = 0;
    exporterShutdownMs = 0;
    let metrics: Registry | undefined;
    const code = await runCollector({
      config: await config('{ batches: 5 }'),
      logger: logger(),
      buildInfo: { name: 't', version: '0' },
      signals: new EventEmitter(),
      handleProcessErrors: false,
      onStarted: (i) => (metrics = i.registry),
    });
    assert.equal(code, ExitCode.OK);
    assert.deepEqual(
      delivered.flat().map((r) => r.body),
      [0, 1, 2, 3, 4].map((n) => ({ n })),
    );
    const sent = await metrics!.getSingleMetric('otelcol_exporter_sent_log_records')!.get();
    assert.equal(sent.values[0]?.value, 5);
    assert.ok(collectorMetrics(metrics!), 'metrics registry is the one reported');
  });

  test('SIGTERM shuts down gracefully and returns 0; a second signal aborts with 130', async () => {
    exporterShutdownMs = 0;
    const signals = new EventEmitter();
    const run = runCollector({
      config: await config('{ forever: true, batches: 1 }'),
      logger: logger(),
      buildInfo: { name: 't', version: '0' },
      signals,
      handleProcessErrors: false,
      onStarted: () => setImmediate(() => signals.emit('SIGTERM')),
    });
    assert.equal(await run, ExitCode.OK);
    assert.equal(signals.listenerCount('SIGTERM'), 0, 'signal handlers removed');

    exporterShutdownMs = 10_000; // a shutdown that would take far longer than the test
    const signals2 = new EventEmitter();
    const t0 = Date.now();
    const run2 = runCollector({
      config: await config('{ forever: true, batches: 1 }'),
      logger: logger(),
      buildInfo: { name: 't', version: '0' },
      signals: signals2,
      handleProcessErrors: false,
      onStarted: () =>
        setImmediate(() => {
          signals2.emit('SIGINT');
          setTimeout(() => signals2.emit('SIGINT'), 20);
        }),
    });
    assert.equal(await run2, ExitCode.ABORTED);
    assert.ok(Date.now() - t0 < 2000);
  });

  test('a shutdown that exceeds service.shutdown_timeout returns 1', async () => {
    exporterShutdownMs = 5_000;
    const signals = new EventEmitter();
    const code = await runCollector({
      config: await config('{ forever: true, batches: 0 }'),
      logger: logger(),
      buildInfo: { name: 't', version: '0' },
      signals,
      handleProcessErrors: false,
      onStarted: () => setImmediate(() => signals.emit('SIGTERM')),
    });
    assert.equal(code, ExitCode.RUNTIME_FAILURE);
  });
});
