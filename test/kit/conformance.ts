/**
 * Shared conformance tests every component runs (style guideline 13): identity, config defaults,
 * unknown keys, lifecycle (create→shutdown without start, idempotent shutdown, start→consume→shutdown),
 * nothing emitted after shutdown (processors), and the receiver error contract (permanent errors are
 * counted as drops, retryable ones are retried).
 *
 * Usage, in a component's test file:
 * ```ts
 * describeComponent(factory, { dir: import.meta.dirname, minimalConfig: (tmp) => ({ path: `${tmp}/x` }) });
 * ```
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type {
  AnyFactory,
  Component,
  ComponentKind,
  Exporter,
  Host,
  LogsConsumer,
  Processor,
  Receiver,
} from '../../runtime/component.ts';
import { PermanentError, RetryableError } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from './index.ts';
import type { TestSettings } from './index.ts';

/** Options of {@link describeComponent}. */
export interface ConformanceOptions {
  /** The component's folder (`import.meta.dirname` of its test); its name must equal the type. */
  dir: string;
  /**
   * Smallest valid user config, for components with required options (or whose defaults point at
   * real paths). A function receives a fresh temp directory for file paths. Default: `{}`.
   */
  minimalConfig?: Record<string, unknown> | ((tmp: string) => Record<string, unknown>);
  /** The host passed to `start` (e.g. with a started storage extension). Default: `nopHost()`. */
  host?: (tmp: string) => Host | Promise<Host>;
  /** Records used by consume tests. Default: three small map-bodied records. */
  batch?: () => LogsBatch;
  /** Processors: true when every consumed record is forwarded (default true). */
  forwardsAll?: boolean;
  /**
   * Receivers that emit data on their own once started (e.g. from an input file written by
   * `minimalConfig`): run the downstream-error contract tests.
   */
  emitsData?: boolean;
  /**
   * The typed config that `<dir>/testdata/config.yaml` must parse to (guideline 13: a config fixture
   * per component). When set, the fixture file must exist.
   */
  expectedFixtureConfig?: unknown;
  /** How long the receiver error-contract tests wait for the receiver to act (default 5000 ms). */
  emitTimeoutMs?: number;
}

const KIND_FOLDERS: Record<ComponentKind, string> = {
  receiver: 'receivers',
  processor: 'processors',
  exporter: 'exporters',
  extension: 'extensions',
};

/** Default records for consume tests. */
export function sampleBatch(n = 3): LogsBatch {
  return Array.from({ length: n }, (_, i) => ({
    observedTimestamp: nowHrTime(),
    body: { message: `record ${i}`, n: i, nested: { ok: true } },
    attributes: { 'data_stream.dataset': 'conformance.test', seq: i },
  }));
}

/** Registers the conformance suite for `factory` (call at the top level of a test file). */
export function describeComponent(factory: AnyFactory, opts: ConformanceOptions): void {
  describe(`${factory.kind} ${factory.type}: conformance`, () => {
    let tmpRoot = '';
    before(async () => {
      tmpRoot = await mkdtemp(join(tmpdir(), `conformance-${factory.type}-`));
    });
    after(async () => {
      await rm(tmpRoot, { recursive: true, force: true });
    });
    async function freshTmp(): Promise<string> {
      const d = await mkdtemp(join(tmpRoot, 'case-'));
      return d;
    }
    function userConfig(tmp: string): Record<string, unknown> {
      const m = opts.minimalConfig;
      return typeof m === 'function' ? m(tmp) : { ...(m ?? {}) };
    }
    function parse(raw: unknown): unknown {
      const r = factory.configSchema.safeParse(raw);
      if (!r.success) {
        assert.fail(
          `config ${JSON.stringify(raw)} should validate: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        );
      }
      return r.data;
    }

    interface Built {
      component: Component;
      settings: TestSettings;
      sink: SinkConsumer;
      host: Host;
    }
    async function build(next?: LogsConsumer): Promise<Built> {
      const tmp = await freshTmp();
      const settings = nopSettings(factory.type, factory.kind, tmp);
      const config = parse(userConfig(tmp));
      const sink = new SinkConsumer();
      const host = opts.host ? await opts.host(tmp) : nopHost();
      const downstream = next ?? sink;
      let component: Component;
      switch (factory.kind) {
        case 'receiver':
        case 'processor':
          component = await factory.create(settings, config, downstream);
          break;
        case 'exporter':
        case 'extension':
          component = await factory.create(settings, config);
          break;
      }
      return { component, settings, sink, host };
    }

    test('type matches its folder and kind', () => {
      assert.match(factory.type, /^[a-z][a-z0-9_]*$/, 'type must be lower_snake_case');
      assert.equal(basename(opts.dir), factory.type, 'folder name must equal the type');
      assert.equal(basename(dirname(opts.dir)), KIND_FOLDERS[factory.kind], 'folder must sit under its kind');
      assert.ok(factory.description.trim().length > 0, 'description must not be empty');
    });

    test('default config validates and agrees with createDefaultConfig()', async () => {
      const a = factory.createDefaultConfig();
      const b = factory.createDefaultConfig();
      assert.deepEqual(a, b, 'createDefaultConfig must be deterministic');
      assert.notEqual(a, b, 'createDefaultConfig must return a fresh object');
      const minimal = userConfig(await freshTmp());
      const fromDefaults = parse({ ...a, ...minimal });
      const fromSchema = parse(minimal);
      assert.deepEqual(fromDefaults, fromSchema, 'schema defaults must equal createDefaultConfig()');
    });

    if (opts.expectedFixtureConfig !== undefined) {
      test('testdata/config.yaml parses to the expected config', async () => {
        const raw: unknown = parseYaml(await readFile(join(opts.dir, 'testdata', 'config.yaml'), 'utf8'));
        assert.deepEqual(parse(raw), opts.expectedFixtureConfig);
      });
    }

    test('unknown keys are rejected', async () => {
      const r = factory.configSchema.safeParse({ ...userConfig(await freshTmp()), no_such_option_xyz: 1 });
      assert.equal(r.success, false, 'a typo must fail validation');
      assert.ok(r.error.issues.some((i) => i.code === 'unrecognized_keys'));
    });

    test('create then shutdown without start', async () => {
      const { component } = await build();
      await component.shutdown();
    });

    test('shutdown is idempotent (sequential and concurrent calls)', async () => {
      const { component, host } = await build();
      await component.start(host);
      await Promise.all([component.shutdown(), component.shutdown()]);
      await component.shutdown();
    });

    test('start, consume, shutdown', async () => {
      const { component, sink, host } = await build();
      await component.start(host);
      if (factory.kind === 'processor' || factory.kind === 'exporter') {
        const batch = (opts.batch ?? sampleBatch)();
        const n = batch.length;
        await (component as Processor | Exporter).consume(batch);
        if (factory.kind === 'processor' && (opts.forwardsAll ?? true)) {
          assert.equal(sink.count(), n, 'a processor must have delivered the records when consume resolves');
        }
      }
      await component.shutdown();
    });

    if (factory.kind === 'processor') {
      test('nothing is emitted after shutdown', async () => {
        const { component, sink, host } = await build();
        const p = component as Processor;
        await p.start(host);
        const inFlight = p.consume((opts.batch ?? sampleBatch)());
        await p.shutdown();
        await inFlight.catch(() => undefined);
        const seen = sink.count();
        const late = await p.consume((opts.batch ?? sampleBatch)()).then(
          () => 'resolved',
          () => 'rejected',
        );
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(sink.count(), seen, `records were emitted after shutdown (late consume ${late})`);
      });
    }

    if (factory.kind === 'receiver' && opts.emitsData) {
      test('a permanent downstream error is counted as dropped, not retried forever', async () => {
        let calls = 0;
        const failing: LogsConsumer = {
          capabilities: { mutatesData: false },
          consume: () => {
            calls++;
            return Promise.reject(new PermanentError('conformance: permanent'));
          },
        };
        const { component, settings, host } = await build(failing);
        const r = component as Receiver;
        await r.start(host);
        await waitFor(() => settings.drops.length > 0, opts.emitTimeoutMs ?? 5000);
        const dropped = settings.drops.reduce((n, d) => n + d.count, 0);
        assert.ok(dropped > 0 && calls > 0);
        await r.shutdown();
      });

      test('a retryable downstream error is retried until delivered', async () => {
        const sink = new SinkConsumer();
        sink.failWith = (_b, call) => (call <= 2 ? new RetryableError('conformance: later') : undefined);
        const { component, settings, host } = await build(sink);
        const r = component as Receiver;
        await r.start(host);
        await waitFor(() => sink.count() > 0, opts.emitTimeoutMs ?? 5000);
        assert.equal(settings.drops.length, 0, 'retryable errors must not drop data');
        await r.shutdown();
      });
    }
  });
}
