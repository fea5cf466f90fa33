/**
 * The elasticsearch exporter against a real two-node OpenSearch cluster (test/peers/opensearch-cluster.sh,
 * started and stopped by this test unless one is already running for this checkout): both nodes listed in
 * `endpoints`, the authentik emulator in this process, the collector as a child process (the real CLI).
 * In the middle of the backfill node 2 is killed with SIGKILL:
 *
 * - nothing is lost and nothing is doubled: the data stream holds every event exactly once;
 * - the exporter fails over to node 1 (delivery goes on; the longest pause in delivery is measured);
 * - health says `recoverable_error` naming the dead node while node 1 serves, and
 *   `otelcol_exporter_elasticsearch_endpoint_up` is 0 for node 2, 1 for node 1;
 * - once node 2 runs again, the exporter's probe notices: health `ok`, the gauge back to 1.
 *
 * Node 2 is the data-only node: a two-node cluster keeps a cluster manager only while its one
 * manager-eligible node (node 1) runs (see the peer script).
 *
 * Needs Java and the OpenSearch zip (test/peers/searchserver.sh fetches it). Without them (or with
 * AC_SKIP_PEERS=1) the test is skipped with the reason; in CI (CI=true) it fails.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import {
  Cli,
  STACK_LINE,
  completeLines,
  metricSum,
  scrape,
  sleep,
  tail,
  telemetryYaml,
  tempDir,
  waitUntil,
  writeText,
} from './helpers.ts';
import { IN_CI, Search, clusterScript, countBy } from './search-helpers.ts';

const EVENTS = 5_000;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Cluster {
  urls: [string, string];
  startedHere: boolean;
}

/** The cluster, or why there is none. */
async function cluster(): Promise<Cluster | { error: string }> {
  const running = await clusterScript('status').then(
    () => true,
    () => false,
  );
  try {
    const env = await clusterScript('start');
    const urls = (env['OPENSEARCH_CLUSTER_URLS'] ?? '').split(',');
    if (urls.length !== 2)
      return { error: `opensearch-cluster.sh start printed no URLs: ${JSON.stringify(env)}` };
    return { urls: [urls[0]!, urls[1]!], startedHere: !running };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return {
      error: `test/peers/opensearch-cluster.sh start failed (it needs Java 11-23, and Maven once to fetch the OpenSearch zip): ${tail(e.stderr ?? e.message, 12)}`,
    };
  }
}

const peer: Cluster | { error: string } =
  process.env['AC_SKIP_PEERS'] === '1' ? { error: 'AC_SKIP_PEERS=1' } : await cluster();
const SKIP = 'error' in peer && !IN_CI ? `no two-node OpenSearch cluster: ${peer.error}` : false;
if (!('error' in peer) && peer.startedHere) {
  cleanups.push(async () => {
    await clusterScript('stop');
  });
}

interface Health {
  status: string;
  components: Record<string, { status: string; message?: string }>;
}

async function health(url: string): Promise<Health | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as Health;
  } catch {
    return undefined;
  }
}

describe(
  'elasticsearch exporter against a two-node OpenSearch cluster',
  { skip: SKIP, timeout: 300_000 },
  () => {
    test('node 2 killed mid-backfill: every event once, failover to node 1, health and metric name the dead node', async () => {
      if ('error' in peer) throw new Error(`CI=true and the cluster peer is not available: ${peer.error}`);
      const [url1, url2] = peer.urls;
      const node1 = new Search(url1);
      const namespace = `cl${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
      const stream = `logs-authentik.event-${namespace}`;
      cleanups.push(() => node1.deleteDataStreams(`logs-authentik.*-${namespace}`));

      // Slow API pages (one at a time, 120 ms each): the backfill takes long enough to kill a node mid-way.
      const emu = await startEmulator({
        events: EVENTS,
        users: 1,
        groups: 1,
        seed: 16,
        faults: { latencyMs: 120 },
      });
      cleanups.push(() => emu.close());
      const truth = emu.events.allPks();
      const { dir, cleanup } = await tempDir('cluster');
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
    max_concurrent_requests: 1
    events: { interval: 1s, page_size: 100, backfill: all }
    users: { enabled: false }
    groups: { enabled: false }
processors:
  authentik_ecs:
    namespace: ${namespace}
exporters:
  elasticsearch:
    endpoints: [${url1}, ${url2}]
    endpoint_cooldown: 3s
    timeout: 20s
    flush: { max_documents: 50 }
    retry: { initial_interval: 200ms, max_interval: 2s }
    dead_letter: { path: ./dead-letter.ndjson }
service:
  extensions: [file_storage]
${tel.yaml}  pipelines:
    logs:
      receivers: [authentik]
      processors: [authentik_ecs]
      exporters: [elasticsearch]
`,
      );
      const cli = new Cli(['run', '--config', cfg, '--log-format', 'json'], {
        cwd: dir,
        env: { AUTHENTIK_TOKEN: emu.token },
      });
      cleanups.push(() => cli.kill());

      // Delivered documents as the exporter counts them, sampled every 100 ms (for the failover pause).
      const delivered = async () => {
        const m = await scrape(tel.metricsUrl);
        return (
          metricSum(m, 'otelcol_exporter_elasticsearch_documents', { outcome: 'indexed' }) +
          metricSum(m, 'otelcol_exporter_elasticsearch_documents', { outcome: 'duplicate' })
        );
      };
      const samples: { at: number; n: number }[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          samples.push({ at: Date.now(), n: await delivered() });
          await sleep(100);
        }
      })();
      cleanups.push(async () => {
        sampling = false;
        await sampler;
      });

      // ---- kill node 2 once about a third of the events are in ----
      await waitUntil(
        async () => (await delivered()) >= EVENTS / 3 || !cli.running,
        120_000,
        `${EVENTS / 3} documents delivered`,
        () => tail(cli.stderr, 10),
        100,
      );
      assert.ok(cli.running, tail(cli.stderr));
      const atKill = await delivered();
      assert.ok(atKill < EVENTS * 0.8, `the kill happens mid-backfill (${atKill} of ${EVENTS} delivered)`);
      await clusterScript('kill-node', '2');
      const killedAt = Date.now();

      // ---- health names the dead node while node 1 serves; the gauge says which is down ----
      let detectedAt = 0;
      let lastHealth: Health | undefined;
      await waitUntil(
        async () => {
          lastHealth = await health(tel.healthUrl);
          const c = lastHealth?.components['exporter:elasticsearch'];
          if (c?.status === 'recoverable_error' && c.message?.includes(url2)) detectedAt ||= Date.now();
          return detectedAt > 0 || !cli.running;
        },
        60_000,
        'health to name the dead node',
        () => JSON.stringify(lastHealth),
        100,
      );
      const exp = lastHealth!.components['exporter:elasticsearch']!;
      assert.match(exp.message!, /1 of 2 endpoints unreachable/);
      assert.ok(exp.message!.includes(`delivering through ${url1}`), exp.message);
      const m = await scrape(tel.metricsUrl);
      assert.equal(
        metricSum(m, 'otelcol_exporter_elasticsearch_endpoint_up', { endpoint: url2 }),
        0,
        'node 2 down',
      );
      assert.equal(
        metricSum(m, 'otelcol_exporter_elasticsearch_endpoint_up', { endpoint: url1 }),
        1,
        'node 1 up',
      );

      // ---- every event arrives, through node 1 ----
      const deadLetters = async () => (await completeLines(join(dir, 'dead-letter.ndjson'))).length;
      let ids: string[] = [];
      await waitUntil(
        async () => {
          ids = await node1.eventIds(stream);
          return new Set(ids).size + (await deadLetters()) >= truth.length || !cli.running;
        },
        180_000,
        `all ${truth.length} events in the data stream`,
        () => `${new Set(ids).size} of ${truth.length}; stderr tail:\n${tail(cli.stderr, 10)}`,
        1000,
      );
      const doneAt = Date.now();
      assert.ok(cli.running, tail(cli.stderr));
      // still degraded: node 2 is down
      const during = (await health(tel.healthUrl))?.components['exporter:elasticsearch'];
      assert.equal(during?.status, 'recoverable_error', JSON.stringify(during));

      // ---- node 2 back: the probe marks it reachable, health ok ----
      const restartAt = Date.now();
      await clusterScript('start-node', '2');
      const restartMs = Date.now() - restartAt;
      await waitUntil(
        async () => {
          lastHealth = await health(tel.healthUrl);
          return lastHealth?.components['exporter:elasticsearch']?.status === 'ok';
        },
        60_000,
        'health ok once node 2 is back',
        () => JSON.stringify(lastHealth),
        250,
      );
      const okAt = Date.now();
      const m2 = await scrape(tel.metricsUrl);
      assert.equal(
        metricSum(m2, 'otelcol_exporter_elasticsearch_endpoint_up', { endpoint: url2 }),
        1,
        'node 2 up again',
      );
      assert.match(cli.stderr, /endpoint reachable again/);

      const exit = await cli.stop();
      sampling = false;
      await sampler;
      assert.equal(exit.code, 0, tail(cli.stderr));
      assert.doesNotMatch(cli.stderr, STACK_LINE, tail(cli.stderr));

      // ---- accounting ----
      ids = await node1.eventIds(stream);
      const { counts, dups } = countBy(ids);
      const dead = await deadLetters();
      const truthSet = new Set(truth);
      const missing = truth.filter((pk) => !counts.has(pk));
      assert.deepEqual(
        {
          missing: missing.length - dead,
          duplicated: dups.length,
          extra: [...counts.keys()].filter((k) => !truthSet.has(k)).length,
        },
        { missing: 0, duplicated: 0, extra: 0 },
        `missing e.g. ${missing.slice(0, 3).join(',')}; duplicated e.g. ${dups.slice(0, 3).join(',')}`,
      );
      assert.equal(dead, 0, 'no dead letters');

      // Longest time without progress in delivery after the kill (the failover pause).
      let pause = 0;
      let prev = samples.filter((s) => s.at <= killedAt).at(-1);
      for (const s of samples) {
        if (s.at <= killedAt || s.at > doneAt || !prev) continue;
        if (s.n > prev.n) {
          pause = Math.max(pause, s.at - prev.at);
          prev = s;
        }
      }
      console.log(
        `cluster failover: ${truth.length} events, ${atKill} delivered at the kill of node 2; ` +
          `health named it after ${detectedAt - killedAt} ms; longest delivery pause after the kill ${pause} ms; ` +
          `all delivered ${((doneAt - killedAt) / 1000).toFixed(1)} s after the kill; in the data stream ${ids.length} ` +
          `documents, ${counts.size} unique, ${dups.length} duplicated, ${missing.length} missing, ${dead} dead letters; ` +
          `node 2 restarted in ${(restartMs / 1000).toFixed(1)} s, health ok again after ${((okAt - restartAt - restartMs) / 1000).toFixed(1)} s more`,
      );
    });
  },
);
