/**
 * Issue 5 acceptance through the real command line: a pipeline authentik receiver → authentik_ecs →
 * [elasticsearch, otlphttp] against the authentik emulator (in this process), a search server and a
 * real OpenTelemetry Collector, delivers every record to both. Then, with the OTLP endpoint down for a
 * while (our own collector instance is stopped while new events arrive), the receiver's checkpoint does
 * not advance; when the collector is back on the same port, nothing is lost and both sides have every
 * event.
 *
 * Needs OTELCOL_OTLP_URL (the collector peer is built and usable; this test starts its own instance
 * with test/peers/otelcol.sh on a port of its own). The search server is OPENSEARCH_URL or the first of
 * ES_TEST_URLS; without one the Elasticsearch side is an in-process fake `_bulk` endpoint (named in the
 * test title).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startEmulator } from '../emulator/index.ts';
import type { Emulator } from '../emulator/index.ts';
import { needShared } from '../kit/shared.ts';
import { FakeElasticsearch } from '../../exporters/elasticsearch/testing.ts';
import {
  Cli,
  GEOIP,
  ROOT,
  STACK_LINE,
  completeLines,
  freePort,
  readStorageValue,
  sleep,
  tail,
  telemetryYaml,
  tempDir,
  waitUntil,
  writeText,
} from './helpers.ts';

const run = promisify(execFile);
const OTELCOL_SH = join(ROOT, 'test', 'peers', 'otelcol.sh');
const SKIP_OTLP =
  (process.env['OTELCOL_OTLP_URL']
    ? false
    : 'OTELCOL_OTLP_URL not set: the OpenTelemetry Collector peer is not available (build/start it with ' +
      '`eval "$(test/peers/otelcol.sh start)"`; npm test does this). This test starts its own instance.') ||
  needShared('geoip');
const SEARCH_URL =
  process.env['OPENSEARCH_URL']?.trim() ||
  (process.env['ES_TEST_URLS'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .find((s) => s !== '');

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

// ------------------------------------------------------------------------------------------------
// The OTel Collector: our own instance (stopped and restarted on the same port by the test)
// ------------------------------------------------------------------------------------------------

interface Otelcol {
  url: string;
  output: string;
  dir: string;
}

async function startOtelcol(port: number): Promise<Otelcol> {
  const { stdout } = await run('bash', [OTELCOL_SH, 'start'], {
    env: { ...process.env, OTELCOL_PORT: String(port) },
    timeout: 120_000,
  });
  const env = Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const url = env['OTELCOL_OTLP_URL'];
  const output = env['OTELCOL_OUTPUT'];
  const dir = env['OTELCOL_DIR'];
  if (!url || !output || !dir) throw new Error(`otelcol.sh start printed no instance:\n${stdout}`);
  const inst = { url, output, dir };
  cleanups.push(() => stopOtelcol(inst));
  return inst;
}

async function stopOtelcol(inst: Otelcol): Promise<void> {
  if (!existsSync(inst.dir)) return;
  await run('bash', [OTELCOL_SH, 'stop', inst.dir], { timeout: 30_000 });
}

type Kv = {
  stringValue?: string;
  kvlistValue?: { values?: { key: string; value: Kv }[] };
};

/** `event.id` (the authentik pk) and `data_stream.dataset` of every log record the collector wrote. */
async function otlpRecords(
  output: string,
): Promise<{ id: string | undefined; dataset: string | undefined }[]> {
  const out: { id: string | undefined; dataset: string | undefined }[] = [];
  const field = (body: Kv | undefined, path: string[]): string | undefined => {
    let cur = body;
    for (let i = 0; i < path.length; i++) {
      const values = cur?.kvlistValue?.values ?? [];
      const dotted = values.find((v) => v.key === path.slice(i).join('.'));
      if (dotted) return dotted.value.stringValue;
      cur = values.find((v) => v.key === path[i])?.value;
    }
    return cur?.stringValue;
  };
  for (const line of await completeLines(output)) {
    if (line.trim() === '') continue;
    const req = JSON.parse(line) as {
      resourceLogs?: {
        scopeLogs?: {
          logRecords?: { body?: Kv; attributes?: { key: string; value: Kv }[] }[];
        }[];
      }[];
    };
    for (const rl of req.resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          const attr = r.attributes?.find((a) => a.key === 'data_stream.dataset')?.value.stringValue;
          out.push({
            id: field(r.body, ['event', 'id']),
            dataset: attr ?? field(r.body, ['data_stream', 'dataset']),
          });
        }
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// The Elasticsearch side: a real server, or the in-process fake
// ------------------------------------------------------------------------------------------------

interface SearchSide {
  url: string;
  real: boolean;
  /** `event.id` of every document of the namespace's event data stream. */
  eventIds(): Promise<string[]>;
  /** Documents per dataset. */
  count(dataset: string): Promise<number>;
}

async function searchSide(namespace: string): Promise<SearchSide> {
  if (SEARCH_URL) {
    const base = SEARCH_URL.replace(/\/+$/, '');
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(20_000),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    try {
      await call('GET', '/');
    } catch (err) {
      throw new Error(
        `the search server at ${base} (OPENSEARCH_URL / ES_TEST_URLS) does not answer: ${(err as Error).message}`,
        { cause: err },
      );
    }
    cleanups.push(async () => {
      await call('DELETE', `/_data_stream/logs-authentik.*-${namespace}`);
    });
    const ds = (dataset: string) => `logs-${dataset}-${namespace}`;
    return {
      url: base,
      real: true,
      async eventIds() {
        const index = ds('authentik.event');
        let r = { status: 0, json: {} as Record<string, unknown> };
        // A fresh data stream's shard may answer 503 for a moment.
        for (let attempt = 0; attempt < 20; attempt++) {
          await call('POST', `/${index}/_refresh`);
          r = await call('POST', `/${index}/_search`, {
            size: 10_000,
            _source: ['event.id'],
            query: { match_all: {} },
          });
          if (r.status !== 503) break;
          await sleep(500);
        }
        if (r.status === 404) return [];
        assert.equal(r.status, 200, JSON.stringify(r.json));
        const hits = (r.json['hits'] as { hits: { _source: { event?: { id?: string } } }[] }).hits;
        return hits.map((h) => String(h._source.event?.id));
      },
      async count(dataset: string) {
        const index = ds(dataset);
        await call('POST', `/${index}/_refresh`);
        const r = await call('GET', `/${index}/_count`);
        if (r.status !== 200) return 0; // absent (404) or not ready yet (503)
        return Number(r.json['count']);
      },
    };
  }
  const fake = new FakeElasticsearch({ flavor: 'elasticsearch' });
  const url = await fake.start();
  cleanups.push(() => fake.close());
  const docsOf = (dataset: string) =>
    [...fake.docs.values()].filter((d) => d.index === `logs-${dataset}-${namespace}`);
  return {
    url,
    real: false,
    eventIds() {
      return Promise.resolve(
        docsOf('authentik.event').map((d) => String((d.source['event'] as { id?: string } | undefined)?.id)),
      );
    },
    count(dataset: string) {
      return Promise.resolve(docsOf(dataset).length);
    },
  };
}

// ------------------------------------------------------------------------------------------------

function eventsCheckpoint(stateDir: string): { phase: string; hw: string | null } | undefined {
  const v = readStorageValue(stateDir, 'events');
  return v === undefined ? undefined : (JSON.parse(v) as { phase: string; hw: string | null });
}

const countBy = (ids: (string | undefined)[]) => {
  const m = new Map<string, number>();
  for (const id of ids) if (id !== undefined) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
};

describe(
  'fan-out to elasticsearch and otlphttp through the CLI',
  { skip: SKIP_OTLP, timeout: 170_000 },
  () => {
    const searchName = SEARCH_URL
      ? `the search server at ${SEARCH_URL}`
      : 'an in-process fake _bulk endpoint';
    test(`every record reaches both ${searchName} and a real OTel Collector; an OTLP outage loses nothing and holds the checkpoint`, async (t) => {
      const namespace = `fan${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
      const es = await searchSide(namespace);
      const port = await freePort();
      let otel = await startOtelcol(port);
      const outputs: string[] = [];
      const otlpAll = async () => {
        const recs = [];
        for (const o of [...outputs, otel.output]) recs.push(...(await otlpRecords(o)));
        return recs;
      };

      const emu: Emulator = await startEmulator({
        events: 2_000,
        users: 20,
        groups: 6,
        version: '2026.2',
        seed: 55,
      });
      cleanups.push(() => emu.close());
      const { dir, cleanup } = await tempDir('fanout');
      cleanups.push(cleanup);
      const tel = await telemetryYaml();
      const cfg = await writeText(
        dir,
        'collector.yaml',
        `extensions:
  file_storage: { directory: ./state }
receivers:
  authentik:
    endpoint: ${emu.url}
    token: \${env:AUTHENTIK_TOKEN}
    storage: file_storage
    events: { interval: 1s, page_size: 100, backfill: all }
    users: { interval: 1h }
    groups: { interval: 1h }
processors:
  authentik_ecs:
    geoip: { city_database: ${JSON.stringify(join(GEOIP, 'GeoLite2-City-Test.mmdb'))} }
    namespace: ${namespace}
exporters:
  elasticsearch:
    endpoints: [${es.url}]
    retry: { initial_interval: 200ms, max_interval: 2s }
    dead_letter: { path: ./dead-letter.ndjson }
    # In-memory queues on purpose: this test checks the wait-for-delivery path (the checkpoint is held
    # while one exporter is down). By default exporters sharing data get persistent queues (issue 16,
    # test/integration/isolation.test.ts covers that path).
    sending_queue: { storage: none }
  otlphttp:
    endpoint: ${otel.url}
    encoding: proto
    timeout: 5s
    retry: { initial_interval: 200ms, max_interval: 1s }
    sending_queue: { storage: none }
service:
  extensions: [file_storage]
${tel.yaml}  pipelines:
    logs:
      receivers: [authentik]
      processors: [authentik_ecs]
      exporters: [elasticsearch, otlphttp]
`,
      );
      const cli = new Cli(['run', '--config', cfg, '--log-format', 'json'], {
        cwd: dir,
        env: { AUTHENTIK_TOKEN: emu.token },
      });
      cleanups.push(() => cli.kill());
      const state = join(dir, 'state');

      // ---- phase 1: everything reaches both sides ----
      const truth1 = emu.events.allPks();
      /** Events the search server refused for good (dead-letter file): pk → action and reason. */
      const deadLetters = async () => {
        const m = new Map<string, string>();
        for (const line of await completeLines(join(dir, 'dead-letter.ndjson'))) {
          const d = JSON.parse(line) as {
            document?: { event?: { id?: string; action?: string } };
            error?: { type?: string; reason?: string };
          };
          const id = d.document?.event?.id;
          if (id !== undefined) {
            const reason = (d.error?.reason ?? '')
              .replace(/^\[\d+:\d+\] /, '')
              .replace(/ in document with id '[^']*'/, '')
              .replace(/\. Preview of field's value.*$/s, '');
            m.set(id, `${d.document?.event?.action}: ${d.error?.type} ${reason}`.slice(0, 300));
          }
        }
        return m;
      };
      const bothHave = async (truth: readonly string[]) => {
        const dead = await deadLetters();
        const esIds = new Set([...(await es.eventIds()), ...dead.keys()]);
        const otIds = new Set((await otlpAll()).map((r) => r.id));
        const esMissing = truth.filter((pk) => !esIds.has(pk)).length;
        const otMissing = truth.filter((pk) => !otIds.has(pk)).length;
        return { esMissing, otMissing };
      };
      let last = { esMissing: -1, otMissing: -1 };
      await waitUntil(
        async () => {
          last = await bothHave(truth1);
          return (last.esMissing === 0 && last.otMissing === 0) || !cli.running;
        },
        120_000,
        'every event in both backends',
        () => `last: ${JSON.stringify(last)}\n${tail(cli.stderr, 10)}`,
        500,
      );
      assert.ok(cli.running, tail(cli.stderr));
      // users and groups too (full listings), in both
      await waitUntil(
        async () =>
          (await es.count('authentik.user')) === emu.users.count() &&
          (await es.count('authentik.group')) === emu.groups.count(),
        30_000,
        'users and groups in the search server',
      );
      const otByDataset = countBy((await otlpAll()).map((r) => r.dataset));
      assert.equal(otByDataset.get('authentik.user'), emu.users.count(), 'users in the collector');
      assert.equal(otByDataset.get('authentik.group'), emu.groups.count(), 'groups in the collector');

      // the incremental phase has begun and its checkpoint covers the history
      await waitUntil(
        () => eventsCheckpoint(state)?.phase === 'incremental' && eventsCheckpoint(state)?.hw !== null,
        20_000,
        'an incremental checkpoint',
      );

      // ---- phase 2: the OTLP endpoint goes down while new events arrive ----
      await sleep(1_500);
      const before = eventsCheckpoint(state)!;
      outputs.push(otel.output);
      const keep = await completeLines(otel.output); // stop removes the instance directory
      await stopOtelcol(otel);
      const savedOutput = join(dir, 'otelcol-output-1.json');
      await writeText(dir, 'otelcol-output-1.json', keep.length ? keep.join('\n') + '\n' : '');
      outputs[outputs.length - 1] = savedOutput;

      const outageStart = Date.now();
      const fresh = emu.events.insert(60);
      const truth2 = emu.events.allPks();
      await sleep(8_000); // several polls and export retries while the endpoint is down
      const during = eventsCheckpoint(state)!;
      assert.deepEqual(
        { phase: during.phase, hw: during.hw },
        { phase: before.phase, hw: before.hw },
        'the checkpoint does not advance while the OTLP endpoint is down',
      );
      // The receiver did read the new events during the outage (so the held checkpoint means something).
      assert.ok(
        emu.requests.some(
          (e) => e.path === '/api/v3/events/events/' && e.status === 200 && e.at >= outageStart,
        ),
        'the receiver polled during the outage',
      );
      const esDuring = new Set(await es.eventIds());
      const freshInEs = fresh.filter((pk) => esDuring.has(pk)).length;
      assert.ok(cli.running, tail(cli.stderr));

      // ---- phase 3: the collector comes back on the same port ----
      otel = await startOtelcol(port);
      await waitUntil(
        async () => {
          last = await bothHave(truth2);
          return (last.esMissing === 0 && last.otMissing === 0) || !cli.running;
        },
        90_000,
        'every event (old and new) in both backends after the outage',
        () => `last: ${JSON.stringify(last)}\n${tail(cli.stderr, 10)}`,
        500,
      );
      await waitUntil(
        () => {
          const c = eventsCheckpoint(state);
          return c !== undefined && c.hw !== null && BigInt(c.hw) > BigInt(before.hw!);
        },
        20_000,
        'the checkpoint to advance once both have the data',
      );
      await sleep(1_500);
      const exit = await cli.stop();
      assert.equal(exit.code, 0, tail(cli.stderr));
      assert.doesNotMatch(cli.stderr, STACK_LINE, tail(cli.stderr));
      assert.ok(!cli.stderr.includes(emu.token), 'the token never appears in the logs');

      // Final accounting: ES holds each event once (document ids) or refused it for good (dead letter,
      // counted and logged); the collector got every event.
      const esIds = await es.eventIds();
      const dead = await deadLetters();
      const esCounts = countBy(esIds);
      const otRecs = await otlpAll();
      const otCounts = countBy(otRecs.filter((r) => r.dataset === 'authentik.event').map((r) => r.id));
      const truthSet = new Set(truth2);
      assert.equal(esIds.length, esCounts.size, 'search server: no event twice');
      assert.deepEqual(
        truth2.filter((pk) => !esCounts.has(pk) && !dead.has(pk)),
        [],
        'search server: every event indexed or dead-lettered (nothing lost silently)',
      );
      assert.deepEqual(
        [...esCounts.keys()].filter((k) => !truthSet.has(k)),
        [],
        'search server: nothing else',
      );
      assert.deepEqual(
        truth2.filter((pk) => !otCounts.has(pk)),
        [],
        'collector: every event',
      );
      assert.deepEqual(
        [...otCounts.keys()].filter((k) => !truthSet.has(k)),
        [],
        'collector: nothing else',
      );
      const otDups = [...otCounts.values()].filter((n) => n > 1).length;
      console.log(
        `fan-out (${es.real ? 'real search server' : 'fake _bulk'}): ${truth2.length} events; during the OTLP ` +
          `outage ${freshInEs}/${fresh.length} new events reached the search server while the checkpoint stayed ` +
          `at ${before.hw}; collector duplicates ${otDups}`,
      );
      assert.equal(otDups, 0, 'the collector received no event twice (the export was retried, not re-read)');

      await t.test('the search server accepted every event (none dead-lettered)', () => {
        const reasons = countBy([...dead.values()]);
        assert.equal(
          dead.size,
          0,
          `${dead.size} of ${truth2.length} events refused by the search server:\n` +
            [...reasons].map(([r, n]) => `${n} × ${r}`).join('\n'),
        );
      });
    });
  },
);
