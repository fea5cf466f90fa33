/**
 * High availability without new machinery: two collectors with the same configuration file (each in its
 * own directory, so each has its own `file_storage`: checkpoints and persistent queue) against one authentik
 * (the emulator, in this process) and one search server. Both read everything and write everything; the
 * Elasticsearch exporter's `create` with the deterministic `_id` makes the second write of each event a 409
 * (counted as delivered), so the index holds every event once.
 *
 * - Collector A is killed with SIGKILL in the middle of the backfill; B keeps going, also through new
 *   events that arrive after the kill: the index holds every event exactly once.
 * - A is started again (its persistent queue replays, its receiver resumes from its checkpoint) and
 *   catches up: still every event once.
 *
 * Needs a search server: OPENSEARCH_URL or the first of ES_TEST_URLS (the peer scripts print them; npm
 * test sets them). Without one: skipped with the reason, and failed in CI (CI=true).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import {
  Cli,
  STACK_LINE,
  completeLines,
  freePort,
  metricSum,
  readStorageValue,
  scrape,
  tail,
  tempDir,
  waitUntil,
  writeText,
} from './helpers.ts';
import { IN_CI, SINGLE_SEARCH_URL, Search, countBy } from './search-helpers.ts';

const EVENTS = 4_000;
const NEW_EVENTS = 300;
const REASON =
  'no search server: set OPENSEARCH_URL or ES_TEST_URLS (`eval "$(test/peers/opensearch.sh start)"`; npm test does this)';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** One collector: its directory (same config file as the other), ports and process. */
interface Node {
  name: string;
  dir: string;
  metricsUrl: string;
  env: Record<string, string>;
  cli?: Cli;
}

describe(
  'two collectors with the same configuration (high availability)',
  { skip: SINGLE_SEARCH_URL || IN_CI ? false : REASON, timeout: 300_000 },
  () => {
    test('kill -9 one mid-backfill: the other keeps going, the index holds each event once; the killed one catches up', async () => {
      if (!SINGLE_SEARCH_URL) throw new Error(`CI=true and ${REASON}`);
      const search = new Search(SINGLE_SEARCH_URL);
      assert.ok(await search.reachable(), `the search server at ${search.base} does not answer`);
      const namespace = `ha${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
      const stream = `logs-authentik.event-${namespace}`;
      cleanups.push(() => search.deleteDataStreams(`logs-authentik.*-${namespace}`));

      // Slowed pages (150 ms each, one at a time): the kill lands in the middle of reading the history.
      const emu = await startEmulator({
        events: EVENTS,
        users: 1,
        groups: 1,
        seed: 1616,
        faults: { latencyMs: 150 },
      });
      cleanups.push(() => emu.close());

      // The one configuration file both run (telemetry addresses come from the environment).
      const config = `extensions:
  file_storage: { directory: ./state }
receivers:
  authentik:
    endpoint: \${env:AUTHENTIK_URL}
    token: \${env:AUTHENTIK_TOKEN}
    storage: file_storage
    max_concurrent_requests: 1
    events: { interval: 1s, page_size: 100, backfill: all }
    users: { enabled: false }
    groups: { enabled: false }
processors:
  authentik_ecs:
    namespace: ${namespace}
exporters:
  elasticsearch:
    endpoints: ["\${env:SEARCH_URL}"]
    flush: { max_documents: 200 }
    retry: { initial_interval: 200ms, max_interval: 2s }
    dead_letter: { path: ./dead-letter.ndjson }
    sending_queue: { storage: file_storage }
service:
  extensions: [file_storage]
  telemetry:
    metrics: { address: "\${env:METRICS_ADDRESS}" }
    health: { address: "none" }
  pipelines:
    logs:
      receivers: [authentik]
      processors: [authentik_ecs]
      exporters: [elasticsearch]
`;
      const node = async (name: string): Promise<Node> => {
        const { dir, cleanup } = await tempDir(`ha-${name}`);
        cleanups.push(cleanup);
        await writeText(dir, 'collector.yaml', config);
        const port = await freePort();
        return {
          name,
          dir,
          metricsUrl: `http://127.0.0.1:${port}/metrics`,
          env: {
            AUTHENTIK_URL: emu.url,
            AUTHENTIK_TOKEN: emu.token,
            SEARCH_URL: search.base,
            METRICS_ADDRESS: `127.0.0.1:${port}`,
          },
        };
      };
      const start = (n: Node): Cli => {
        const cli = new Cli(['run', '--config', join(n.dir, 'collector.yaml'), '--log-format', 'json'], {
          cwd: n.dir,
          env: n.env,
        });
        cleanups.push(() => cli.kill());
        n.cli = cli;
        return cli;
      };
      /** Documents the collector's exporter settled: created, and already there (409). */
      const delivered = async (n: Node) => {
        const m = await scrape(n.metricsUrl);
        const get = (outcome: string) =>
          metricSum(m, 'otelcol_exporter_elasticsearch_documents', { outcome });
        return { indexed: get('indexed'), duplicate: get('duplicate') };
      };
      const deadLetters = async (n: Node) => (await completeLines(join(n.dir, 'dead-letter.ndjson'))).length;
      const incremental = (n: Node) => {
        const v = readStorageValue(join(n.dir, 'state'), 'events');
        return v !== undefined && (JSON.parse(v) as { phase?: string }).phase === 'incremental';
      };

      const a = await node('a');
      const b = await node('b');
      const cliA = start(a);
      const cliB = start(b);

      // ---- A is killed with about a third of the history delivered by it ----
      await waitUntil(
        async () => {
          const d = await delivered(a);
          return d.indexed + d.duplicate >= EVENTS / 3 || !cliA.running;
        },
        120_000,
        'collector A to deliver a third of the events',
        () => tail(cliA.stderr, 10),
        100,
      );
      assert.ok(cliA.running && cliB.running, tail(cliA.stderr) + tail(cliB.stderr));
      const aAtKill = await delivered(a);
      const bAtKill = await delivered(b);
      cliA.signal('SIGKILL');
      await cliA.wait(10_000);
      const inIndexAtKill = await search.count(stream);
      assert.ok(
        inIndexAtKill < EVENTS,
        `the kill lands mid-backfill (${inIndexAtKill} of ${EVENTS} in the index)`,
      );

      // ---- new events arrive while only B runs ----
      emu.events.insert(NEW_EVENTS);
      const truth = emu.events.allPks();
      let ids: string[] = [];
      await waitUntil(
        async () => {
          ids = await search.eventIds(stream);
          return new Set(ids).size + (await deadLetters(b)) >= truth.length || !cliB.running;
        },
        180_000,
        `all ${truth.length} events in the index through B`,
        () => `${new Set(ids).size} of ${truth.length}; B stderr:\n${tail(cliB.stderr, 10)}`,
        1000,
      );
      assert.ok(cliB.running, tail(cliB.stderr));
      const bDone = await delivered(b);
      const check = async (when: string) => {
        ids = await search.eventIds(stream);
        const { counts, dups } = countBy(ids);
        const truthSet = new Set(truth);
        const missing = truth.filter((pk) => !counts.has(pk));
        assert.deepEqual(
          {
            missing: missing.length,
            duplicated: dups.length,
            extra: [...counts.keys()].filter((k) => !truthSet.has(k)).length,
            deadLetters: (await deadLetters(a)) + (await deadLetters(b)),
          },
          { missing: 0, duplicated: 0, extra: 0, deadLetters: 0 },
          `${when}: missing e.g. ${missing.slice(0, 3).join(',')}; duplicated e.g. ${dups.slice(0, 3).join(',')}`,
        );
        assert.equal(ids.length, truth.length, `${when}: one document per event`);
      };
      await check('after the kill');
      assert.ok(
        bDone.indexed + bDone.duplicate >= truth.length,
        `B delivered every event itself: ${JSON.stringify(bDone)}`,
      );

      // ---- A comes back and catches up (queue replay, checkpoint resume): still each event once ----
      const cliA2 = start(a);
      // It replays what its persistent queue held at the kill, reads the events after its checkpoint (at
      // least the new ones) and delivers all of it: every document answers 409 (B delivered them).
      const replayed = () => {
        const line = cliA2
          .logLines()
          .find((l) => l['msg'] === 'sending queue: replaying batches left by the previous run');
        return line === undefined ? 0 : Number(line['records']);
      };
      let last = '';
      await waitUntil(
        async () => {
          const m = await scrape(a.metricsUrl);
          const d = await delivered(a);
          last = `${JSON.stringify(d)}, replayed ${replayed()}, incremental ${incremental(a)}`;
          return (
            (incremental(a) &&
              d.indexed + d.duplicate >= NEW_EVENTS + replayed() &&
              metricSum(m, 'otelcol_exporter_queue_size') === 0) ||
            !cliA2.running
          );
        },
        120_000,
        'collector A to catch up after its restart',
        () => `${last}\n${tail(cliA2.stderr, 10)}`,
        250,
      );
      const aAfter = await delivered(a);
      assert.ok(cliA2.running, tail(cliA2.stderr));
      const exitA = await cliA2.stop();
      const exitB = await cliB.stop();
      for (const [n, cli, exit] of [
        ['A', cliA2, exitA],
        ['B', cliB, exitB],
      ] as const) {
        assert.equal(exit.code, 0, `${n}: ${tail(cli.stderr)}`);
        assert.doesNotMatch(cli.stderr, STACK_LINE, `${n}: ${tail(cli.stderr)}`);
        assert.ok(!cli.stderr.includes(emu.token), `${n}: the token never appears in the logs`);
      }
      await check('after A caught up');
      console.log(
        `high availability: ${truth.length} events (${EVENTS} + ${NEW_EVENTS} after the kill); A killed after ` +
          `${aAtKill.indexed} created + ${aAtKill.duplicate} already there (B then ${bAtKill.indexed} + ${bAtKill.duplicate}); ` +
          `B in total ${bDone.indexed} created + ${bDone.duplicate} answered 409; A after its restart (${replayed()} ` +
          `records replayed from its queue) ${aAfter.indexed} created + ${aAfter.duplicate} answered 409; index: ${ids.length} documents, 0 duplicates, 0 missing`,
      );
    });
  },
);
