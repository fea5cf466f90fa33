import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import * as z from 'zod';
import type {
  ComponentSettings,
  Exporter,
  ExporterFactory,
  ExtensionFactory,
  LogsConsumer,
  Processor,
  ProcessorFactory,
  Receiver,
  ReceiverFactory,
} from '../component.ts';
import { ConfigError, FanoutError, isPermanent, PermanentError } from '../errors.ts';
import type { LogsBatch, LogRecord } from '../model.ts';
import type { CreateSendingQueue, SendingQueueConfig } from '../exporterhelper/queue.ts';
import { loadConfig } from '../config/load.ts';
import { ComponentRegistry } from '../plugins/registry.ts';
import { MemoryLogger } from '../../test/kit/index.ts';
import { collectorMetrics } from '../telemetry/metrics.ts';
import { StatusBoard } from '../telemetry/status.ts';
import { buildGraph, shutdownStages, startOrder } from './graph.ts';
import type { Graph } from './graph.ts';

/** Everything the fake components saw. */
interface World {
  receivers: { id: string; next: LogsConsumer }[];
  processors: { id: string; pipeline: string | undefined }[];
  exporters: { id: string; batches: LogsBatch[] }[];
  shutdowns: string[];
}

function fakes(world: World): ComponentRegistry {
  const src: ReceiverFactory<Record<string, never>> = {
    kind: 'receiver',
    type: 'src',
    description: 'pushes what the test gives it',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create(settings: ComponentSettings, _c, next): Receiver {
      world.receivers.push({ id: settings.id, next });
      return {
        start: async () => {},
        shutdown: () => Promise.resolve(void world.shutdowns.push(`receiver:${settings.id}`)),
      };
    },
  };
  const tag: ProcessorFactory<{ fail_create: boolean; cert?: string | undefined }> = {
    kind: 'processor',
    type: 'tag',
    description: 'adds an attribute naming itself (mutates)',
    configSchema: z.strictObject({ fail_create: z.boolean().default(false), cert: z.string().optional() }),
    createDefaultConfig: () => ({ fail_create: false }),
    create(settings, config, next): Processor {
      if (config.fail_create) throw new Error('cannot open the thing');
      if (config.cert !== undefined) {
        throw new ConfigError([{ path: 'cert', message: `cannot read ${config.cert}: ENOENT` }]);
      }
      world.processors.push({ id: settings.id, pipeline: settings.pipeline });
      return {
        capabilities: { mutatesData: true },
        start: async () => {},
        shutdown: () =>
          Promise.resolve(void world.shutdowns.push(`processor:${settings.id}@${settings.pipeline}`)),
        consume(batch) {
          for (const r of batch) r.attributes[`seen.${settings.pipeline}`] = settings.id;
          return next.consume(batch);
        },
      };
    },
  };
  const sink: ExporterFactory<{ fail: 'no' | 'permanent' | 'retryable'; mutates: boolean }> = {
    kind: 'exporter',
    type: 'sink',
    description: 'records batches',
    configSchema: z.strictObject({
      fail: z.enum(['no', 'permanent', 'retryable']).default('no'),
      mutates: z.boolean().default(false),
    }),
    createDefaultConfig: () => ({ fail: 'no', mutates: false }),
    create(settings, config): Exporter {
      const rec = { id: settings.id, batches: [] as LogsBatch[] };
      world.exporters.push(rec);
      return {
        capabilities: { mutatesData: config.mutates },
        start: async () => {},
        shutdown: () => Promise.resolve(void world.shutdowns.push(`exporter:${settings.id}`)),
        async consume(batch) {
          await new Promise((r) => setTimeout(r, 1));
          if (config.fail === 'permanent') throw new PermanentError('rejected by the peer');
          if (config.fail === 'retryable') throw new Error('peer unavailable');
          rec.batches.push(batch);
        },
      };
    },
  };
  const store: ExtensionFactory<Record<string, never>> = {
    kind: 'extension',
    type: 'store',
    description: 'a storage extension that stores nothing',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create: () => ({
      start: async () => {},
      shutdown: async () => {},
      getClient: () => Promise.reject(new Error('unused')),
      getDirectory: () => Promise.reject(new Error('unused')),
    }),
  };
  const r = new ComponentRegistry();
  for (const f of [src, tag, sink, store]) r.add(f, { kind: 'builtin', file: 'test' });
  return r;
}

const rec = (n: number): LogRecord => ({ observedTimestamp: [0, 0], attributes: {}, body: { n } });

describe('buildGraph', () => {
  let dir: string;
  let seq = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'graph-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function build(
    yaml: string,
    createSendingQueue: CreateSendingQueue = (_s, _c, exporter) => exporter,
  ): Promise<{ graph: Graph; world: World; registry: Registry; logger: MemoryLogger }> {
    const world: World = { receivers: [], processors: [], exporters: [], shutdowns: [] };
    const file = join(dir, `c${seq++}.yaml`);
    writeFileSync(file, yaml);
    const config = await loadConfig([file], { registry: fakes(world), env: {} });
    const registry = new Registry();
    const metrics = collectorMetrics(registry);
    const logger = new MemoryLogger();
    const graph = await buildGraph(config, {
      logger,
      registry,
      metrics,
      status: new StatusBoard(metrics),
      buildInfo: { name: 't', version: '0' },
      configDir: dir,
      // The real queue retries retryable failures forever; these tests look at the graph itself.
      createSendingQueue,
    });
    return { graph, world, registry, logger };
  }
  const value = async (registry: Registry, name: string, labels: Record<string, string>) => {
    const m = await registry.getSingleMetric(name)!.get();
    return m.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
  };

  test('fan-in: several receivers feed one pipeline', async () => {
    const { world } = await build(`
receivers: { src/a: {}, src/b: {} }
exporters: { sink: {} }
service: { pipelines: { logs: { receivers: [src/a, src/b], exporters: [sink] } } }
`);
    assert.deepEqual(
      world.receivers.map((r) => r.id),
      ['src/a', 'src/b'],
    );
    await world.receivers[0]!.next.consume([rec(1)]);
    await world.receivers[1]!.next.consume([rec(2)]);
    assert.deepEqual(
      world.exporters[0]!.batches.flat().map((r) => r.body),
      [{ n: 1 }, { n: 2 }],
    );
  });

  test('fan-out: a pipeline feeds every exporter; only mutating ones get a copy', async () => {
    const { world } = await build(`
receivers: { src: {} }
exporters: { sink/ro: {}, sink/rw: { mutates: true } }
service: { pipelines: { logs: { receivers: [src], exporters: [sink/ro, sink/rw] } } }
`);
    const batch = [rec(1)];
    await world.receivers[0]!.next.consume(batch);
    const [ro, rw] = world.exporters;
    assert.equal(ro!.batches[0], batch, 'read-only consumer shares the batch');
    assert.notEqual(rw!.batches[0], batch, 'mutating consumer gets its own copy');
    assert.deepEqual(rw!.batches[0], batch);
    assert.notEqual(rw!.batches[0][0]?.body, batch[0]?.body, 'deep copy of the body');
  });

  test('a receiver in several pipelines is one instance; processors are one per pipeline; exporters one per id', async () => {
    const { graph, world } = await build(`
receivers: { src: {} }
processors: { tag: {} }
exporters: { sink/a: {}, sink/b: {} }
service:
  pipelines:
    logs/one: { receivers: [src], processors: [tag], exporters: [sink/a] }
    logs/two: { receivers: [src], processors: [tag], exporters: [sink/a, sink/b] }
`);
    assert.equal(world.receivers.length, 1);
    assert.deepEqual(world.processors, [
      { id: 'tag', pipeline: 'logs/one' },
      { id: 'tag', pipeline: 'logs/two' },
    ]);
    assert.deepEqual(
      world.exporters.map((e) => e.id),
      ['sink/a', 'sink/b'],
    );
    assert.deepEqual(
      graph.exporters.map((n) => n.id),
      ['sink/a', 'sink/b'],
    );
    await world.receivers[0]!.next.consume([rec(7)]);
    const a = world.exporters[0]!.batches.flat();
    const b = world.exporters[1]!.batches.flat();
    assert.equal(a.length, 2, 'sink/a receives the record once per pipeline');
    assert.equal(b.length, 1);
    // Each pipeline's processor worked on its own copy: no cross-talk between pipelines.
    assert.deepEqual(a.map((r) => Object.keys(r.attributes)).sort(), [['seen.logs/one'], ['seen.logs/two']]);
    assert.deepEqual(Object.keys(b[0]!.attributes), ['seen.logs/two']);
  });

  test('fan-out failure: only the failing branch is retried; the healthy exporter gets the batch once', async () => {
    const { graph, world, registry } = await build(`
receivers: { src: {} }
exporters: { sink/ok: {}, sink/bad: { fail: retryable } }
service: { pipelines: { logs: { receivers: [src], exporters: [sink/ok, sink/bad] } } }
`);
    const p = world.receivers[0]!.next.consume([rec(1), rec(2), rec(3)]).then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 1700));
    graph.stopping!.abort(); // shutdown: the fan-out stops retrying
    const err = await p;
    assert.ok(err instanceof FanoutError, `got ${String(err)}`);
    assert.deepEqual(
      err.errors.map((e) => e.id),
      ['exporter "sink/bad"'],
    );
    assert.equal(isPermanent(err), false);
    assert.equal(world.exporters[0]!.batches.length, 1, 'delivered to the healthy exporter once');
    assert.equal(await value(registry, 'otelcol_exporter_sent_log_records', { exporter: 'sink/ok' }), 3);
    assert.ok(
      (await value(registry, 'otelcol_exporter_send_failed_log_records', { exporter: 'sink/bad' })) >= 6,
      'retried',
    );
    assert.equal(await value(registry, 'otelcol_exporter_sent_log_records', { exporter: 'sink/bad' }), 0);
    assert.equal(await value(registry, 'otelcol_receiver_refused_log_records', { receiver: 'src' }), 3);
    assert.equal(await value(registry, 'otelcol_receiver_accepted_log_records', { receiver: 'src' }), 0);
  });

  test('exporter isolation: exporters sharing a receiver get persistent queues in the first storage extension', async () => {
    const seen = new Map<string, SendingQueueConfig>();
    const capture: CreateSendingQueue = (settings, config, exporter) => {
      seen.set(settings.id, config);
      return exporter;
    };
    const { logger } = await build(
      `
extensions: { store: {}, store/b: {} }
receivers: { src: {}, src/solo: {} }
exporters: { sink/a: {}, sink/b: { sending_queue: { storage: store/b } }, sink/c: { sending_queue: { storage: none } }, sink/solo: {} }
service:
  extensions: [store, store/b]
  pipelines:
    logs: { receivers: [src], exporters: [sink/a, sink/b, sink/c] }
    logs/solo: { receivers: [src/solo], exporters: [sink/solo] }
`,
      capture,
    );
    assert.equal(seen.get('sink/a')!.storage, 'store', 'automatic');
    assert.equal(seen.get('sink/a')!.queue_size, 10_000, 'the disk bound governs');
    assert.equal(seen.get('sink/b')!.queue_size, 100, 'explicit persistent queues keep their size');
    assert.equal(seen.get('sink/b')!.storage, 'store/b', 'explicit wins');
    assert.equal(seen.get('sink/c')!.storage, 'none', 'opted out');
    assert.equal(seen.get('sink/solo')!.storage, undefined, 'alone: in memory (wait for delivery)');
    const warns = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    assert.equal(warns.length, 1, warns.join('\n'));
    assert.match(
      warns[0]!,
      /^exporters\.sink\/c: while this exporter cannot deliver it stalls "sink\/a", "sink\/b"/,
    );
  });

  test('exporter isolation: without a storage extension every shared exporter is warned about', async () => {
    const { logger } = await build(`
receivers: { src: {} }
exporters: { sink/a: {}, sink/b: {} }
service: { pipelines: { logs: { receivers: [src], exporters: [sink/a, sink/b] } } }
`);
    const warns = logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
    assert.equal(warns.length, 2);
    assert.ok(warns.every((w) => /no storage extension/.test(w)));
  });

  test('permanent only when every branch failed permanently', async () => {
    const { world } = await build(`
receivers: { src: {} }
exporters: { sink/p1: { fail: permanent }, sink/p2: { fail: permanent } }
service: { pipelines: { logs: { receivers: [src], exporters: [sink/p1, sink/p2] } } }
`);
    const err = await world.receivers[0]!.next.consume([rec(1)]).catch((e: unknown) => e);
    assert.ok(err instanceof FanoutError);
    assert.equal(err.errors.length, 2);
    assert.equal(isPermanent(err), true);
  });

  test('processor metrics count incoming and outgoing per pipeline; accepted per receiver', async () => {
    const { world, registry } = await build(`
receivers: { src: {} }
processors: { tag: {} }
exporters: { sink: {} }
service: { pipelines: { logs: { receivers: [src], processors: [tag], exporters: [sink] } } }
`);
    await world.receivers[0]!.next.consume([rec(1), rec(2)]);
    const labels = { processor: 'tag', pipeline: 'logs' };
    assert.equal(await value(registry, 'otelcol_processor_incoming_log_records', labels), 2);
    assert.equal(await value(registry, 'otelcol_processor_outgoing_log_records', labels), 2);
    assert.equal(await value(registry, 'otelcol_receiver_accepted_log_records', { receiver: 'src' }), 2);
  });

  test('start and shutdown order follow the topology', async () => {
    const { graph } = await build(`
receivers: { src: {} }
processors: { tag/1: {}, tag/2: {} }
exporters: { sink: {} }
service: { pipelines: { logs: { receivers: [src], processors: [tag/1, tag/2], exporters: [sink] } } }
`);
    assert.deepEqual(
      startOrder(graph).map((n) => n.key),
      ['exporter:sink', 'processor:tag/2@logs', 'processor:tag/1@logs', 'receiver:src'],
    );
    assert.deepEqual(
      shutdownStages(graph).map((s) => s.map((n) => n.key)),
      [['receiver:src'], ['processor:tag/1@logs'], ['processor:tag/2@logs'], ['exporter:sink']],
    );
  });

  test('every exporter is wrapped in its sending queue, with the parsed sending_queue options', async () => {
    const seen: { id: string; config: SendingQueueConfig }[] = [];
    const { graph, world } = await build(
      `
receivers: { src: {} }
exporters: { sink/a: { sending_queue: { num_consumers: 7 } }, sink/b: {} }
service: { pipelines: { logs: { receivers: [src], exporters: [sink/a, sink/b] } } }
`,
      (settings, config, exporter) => {
        seen.push({ id: settings.id, config });
        return {
          ...exporter,
          consume: (b) => exporter.consume(b),
          start: (h) => exporter.start(h),
          shutdown: () => exporter.shutdown(),
        };
      },
    );
    assert.deepEqual(
      seen.map((s) => [s.id, s.config.num_consumers]),
      [
        ['sink/a', 7],
        ['sink/b', 2],
      ],
    );
    assert.equal(graph.exporters.length, 2);
    await world.receivers[0]!.next.consume([rec(1)]);
    assert.equal(world.exporters[0]!.batches.length, 1);
  });

  test('a component whose create throws is a config problem; created ones are released', async () => {
    const err = await build(`
receivers: { src: {} }
processors: { tag: { fail_create: true } }
exporters: { sink: {} }
service: { pipelines: { logs: { receivers: [src], processors: [tag], exporters: [sink] } } }
`).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0]!.path, 'processors.tag');
    assert.match(
      err.problems[0]!.message,
      /cannot create processor "tag" for pipeline "logs": cannot open the thing/,
    );
    assert.match(err.problems[0]!.location ?? '', /:3:15$/);
  });

  test('config problems a component finds at creation are reported at their own path and position', async () => {
    const err = await build(`
receivers: { src: {} }
processors:
  tag:
    cert: /nope.pem
exporters: { sink: {} }
service: { pipelines: { logs: { receivers: [src], processors: [tag], exporters: [sink] } } }
`).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(
      err.problems.map((p) => [p.path, p.message, p.location?.replace(/^.*\//, '')]),
      [['processors.tag.cert', 'cannot read /nope.pem: ENOENT', `c${seq - 1}.yaml:5:11`]],
    );
  });
});
