/**
 * The rollover limit of `create` + 409 and the exporter's `replay_check` option, against the real search
 * servers (test/peers/opensearch.sh, test/peers/elasticsearch.sh):
 *
 * 1. documents are delivered into a data stream, then the stream is rolled over (`POST <stream>/_rollover`);
 * 2. a "restarted" exporter (created after the delivery) gets the same documents again, marked as read by
 *    the earlier run (observed before it started: what the persistent queue replays), plus new ones:
 *    with `replay_check: replayed` the stream holds every document once;
 * 3. the same re-send without `replay_check` duplicates every document (the limit the option removes);
 * 4. `replay_check: all` also skips re-sends of documents observed by this run (a second collector, or the
 *    receiver's re-read without a persistent queue).
 *
 * And end to end through the CLI with a persistent sending queue: a proxy in front of the server lets the
 * `_bulk` requests through but never returns their answers, so the server holds documents whose delivery
 * the collector never saw; the collector is killed with SIGKILL, the stream rolled over, and the collector
 * restarted (straight to the server) with `replay_check: replayed`: its queue replays every batch, the
 * ones the server holds are found and skipped, the stream holds every event once.
 *
 * Needs ES_TEST_URLS and/or OPENSEARCH_URL (printed by the peer scripts' `start`; npm test sets them).
 * Without them: skipped with the reason, and failed in CI (CI=true).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../runtime/model.ts';
import { cloneRecord, hrTimeFromMillis } from '../../runtime/model.ts';
import { nopHost, nopSettings } from '../kit/index.ts';
import type { TestSettings } from '../kit/index.ts';
import { factory } from '../../exporters/elasticsearch/factory.ts';
import type { ElasticsearchExporter } from '../../exporters/elasticsearch/exporter.ts';
import { request } from 'undici';
import { startEmulator } from '../emulator/index.ts';
import {
  Cli,
  STACK_LINE,
  metricSum,
  readStorageValue,
  scrape,
  tail,
  telemetryYaml,
  tempDir,
  waitUntil,
  writeText,
} from './helpers.ts';
import { IN_CI, Search, countBy } from './search-helpers.ts';

const servers = [
  ...(process.env['ES_TEST_URLS'] ?? '').split(','),
  ...(process.env['OPENSEARCH_URL'] ?? '').split(','),
]
  .map((s) => s.trim())
  .filter((s) => s !== '');
const REASON =
  'ES_TEST_URLS / OPENSEARCH_URL not set: start a server with `eval "$(test/peers/opensearch.sh start)"` ' +
  'or `eval "$(test/peers/elasticsearch.sh start)"` and export the variable (npm test does this)';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

if (servers.length === 0) {
  test('replay_check against real search servers', { skip: IN_CI ? false : REASON }, () => {
    assert.fail(`CI=true but no search server peer: ${REASON}`);
  });
}

/** `n` event records with document ids `<ns>-<i>`, observed at `observedMs`. */
function records(ns: string, from: number, n: number, observedMs: number): LogRecord[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return {
      timestamp: hrTimeFromMillis(Date.UTC(2026, 0, 1) + i * 1000),
      observedTimestamp: hrTimeFromMillis(observedMs),
      attributes: {
        'data_stream.dataset': 'authentik.event',
        'data_stream.namespace': ns,
        'elasticsearch.document_id': `${ns}-${i}`,
      },
      body: { event: { action: 'login', id: `${ns}-${i}` }, user: { name: `u${i % 7}` } },
    };
  });
}

for (const base of servers) {
  describe(`replay_check against ${base}`, { timeout: 120_000 }, () => {
    const search = new Search(base);

    async function exporter(
      replayCheck: string,
    ): Promise<{ exp: ElasticsearchExporter; settings: TestSettings }> {
      const dir = await mkdtemp(join(tmpdir(), 'es-replay-'));
      const settings = nopSettings('elasticsearch', 'exporter', dir);
      const config = factory.configSchema.parse({
        endpoints: [base],
        replay_check: replayCheck,
        retry: { initial_interval: '200ms', max_interval: '2s', max_elapsed_time: '60s' },
        flush: { max_documents: 100 },
      });
      const exp = (await factory.create(settings, config)) as ElasticsearchExporter;
      await exp.start(nopHost());
      await exp.whenSetUp();
      cleanups.push(async () => {
        await exp.shutdown();
        await rm(dir, { recursive: true, force: true });
      });
      return { exp, settings };
    }

    async function replaySkipped(s: TestSettings): Promise<number> {
      return metricSum(await s.metrics.metrics(), 'otelcol_exporter_elasticsearch_documents', {
        outcome: 'replay_skipped',
      });
    }

    test('a re-send after a rollover: replay_check keeps each document once; without it every one is doubled', async () => {
      const ns = `rp${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
      const stream = `logs-authentik.event-${ns}`;
      cleanups.push(() => search.deleteDataStreams(`logs-authentik.*-${ns}`));
      const firstRunObserved = Date.now() - 60_000;
      const delivered = records(ns, 0, 200, firstRunObserved);

      // ---- the first run delivers 200 documents ----
      const first = await exporter('none');
      await first.exp.consume(delivered.map((r) => cloneRecord(r)));
      assert.equal(await search.count(stream), 200);

      // ---- the stream rolls over (ILM / ISM / a user) ----
      const ro = await search.call('POST', `/${stream}/_rollover`);
      assert.equal(ro.status, 200, JSON.stringify(ro.json));
      assert.equal(ro.json['rolled_over'], true, JSON.stringify(ro.json));
      const backing = await search.backingIndices(stream);
      assert.equal(backing.length, 2, `two backing indices after the rollover: ${backing.join(', ')}`);
      // The old backing index is refreshed, as it is by the time a restarted collector replays (1 s).
      await search.call('POST', `/${stream}/_refresh`);

      // ---- the restarted run replays them (observed before it started) plus 100 new documents ----
      const second = await exporter('replayed');
      const replay = [...delivered.map((r) => cloneRecord(r)), ...records(ns, 200, 100, firstRunObserved)];
      await second.exp.consume(replay);
      assert.equal(await search.count(stream), 300, 'replay_check: replayed — every document once');
      assert.equal(
        await replaySkipped(second.settings),
        200,
        'the 200 delivered documents were not sent again',
      );
      assert.ok(
        second.settings.logger.lines.some((l) =>
          l.msg.startsWith('replay check: documents already in the target'),
        ),
        second.settings.logger.text(),
      );
      // documents of this run are not looked up in mode `replayed`
      const searchesBefore = metricSum(
        await second.settings.metrics.metrics(),
        'otelcol_exporter_elasticsearch_replay_checks',
      );
      await second.exp.consume(records(ns, 300, 20, Date.now()));
      assert.equal(
        metricSum(await second.settings.metrics.metrics(), 'otelcol_exporter_elasticsearch_replay_checks'),
        searchesBefore,
        'no look-up for records of this run',
      );
      assert.equal(await search.count(stream), 320);

      // ---- the limit: the same replay without replay_check doubles every document ----
      const unchecked = await exporter('none');
      await unchecked.exp.consume(delivered.slice(0, 50).map((r) => cloneRecord(r)));
      const ids = await search.eventIds(stream);
      const { counts, dups } = countBy(ids);
      assert.equal(counts.size, 320);
      assert.equal(dups.length, 50, 'without replay_check a re-send across a rollover duplicates');

      // ---- mode all: documents observed by this run are looked up as well ----
      const all = await exporter('all');
      await all.exp.consume(records(ns, 100, 100, Date.now()));
      assert.equal(await search.count(stream), 370, 'replay_check: all — nothing indexed again');
      assert.equal(await replaySkipped(all.settings), 100);
      console.log(
        `replay_check on ${base}: 200 delivered, rollover to ${backing.length} backing indices; replay of 200 + 100 new ` +
          `with replay_check → 300 documents (0 duplicates, 200 skipped); the same replay of 50 without it → 50 duplicates`,
      );
    });

    test('CLI: kill -9 with delivered but unconfirmed batches, rollover, restart with replay_check: replayed — each event once', async () => {
      const ns = `rq${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
      const stream = `logs-authentik.event-${ns}`;
      cleanups.push(() => search.deleteDataStreams(`logs-authentik.*-${ns}`));
      const proxy = await blackHoleProxy(base);
      cleanups.push(() => proxy.close());
      const emu = await startEmulator({ events: 1_000, users: 1, groups: 1, seed: 77 });
      cleanups.push(() => emu.close());
      const truth = emu.events.allPks();
      const { dir, cleanup } = await tempDir('replay-cli');
      cleanups.push(cleanup);
      const writeConfig = async (endpoint: string, replayCheck: string) => {
        const tel = await telemetryYaml();
        await writeText(
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
    users: { enabled: false }
    groups: { enabled: false }
processors:
  authentik_ecs:
    namespace: ${ns}
exporters:
  elasticsearch:
    endpoints: [${endpoint}]
    timeout: 120s
    replay_check: ${replayCheck}
    retry: { initial_interval: 200ms, max_interval: 2s }
    sending_queue: { storage: file_storage, num_consumers: 2 }
service:
  extensions: [file_storage]
${tel.yaml}  pipelines:
    logs:
      receivers: [authentik]
      processors: [authentik_ecs]
      exporters: [elasticsearch]
`,
        );
        return tel;
      };
      const run = () => {
        const cli = new Cli(['run', '--config', join(dir, 'collector.yaml'), '--log-format', 'json'], {
          cwd: dir,
          env: { AUTHENTIK_TOKEN: emu.token },
        });
        cleanups.push(() => cli.kill());
        return cli;
      };

      // ---- first run, through the proxy: the server indexes what the collector never hears back about ----
      await writeConfig(proxy.url, 'none');
      const first = run();
      await waitUntil(
        () => {
          const v = readStorageValue(join(dir, 'state'), 'events');
          return (
            (v !== undefined &&
              (JSON.parse(v) as { phase?: string }).phase === 'incremental' &&
              proxy.held >= 2) ||
            !first.running
          );
        },
        90_000,
        'the history read into the queue and two _bulk answers held back',
        () => `held ${proxy.held}; ${tail(first.stderr, 10)}`,
        200,
      );
      assert.ok(first.running, tail(first.stderr));
      const inServer = await waitForStable(() => search.count(stream));
      assert.ok(inServer > 0 && inServer < truth.length, `some but not all events delivered (${inServer})`);
      first.signal('SIGKILL');
      await first.wait(10_000);

      // ---- rollover, then the restart straight to the server with replay_check ----
      const ro = await search.call('POST', `/${stream}/_rollover`);
      assert.equal(ro.status, 200, JSON.stringify(ro.json));
      await search.call('POST', `/${stream}/_refresh`);
      const tel = await writeConfig(base, 'replayed');
      const second = run();
      let ids: string[] = [];
      await waitUntil(
        async () => {
          ids = await search.eventIds(stream);
          return new Set(ids).size >= truth.length || !second.running;
        },
        90_000,
        'every event in the stream after the restart',
        () => `${new Set(ids).size} of ${truth.length}; ${tail(second.stderr, 10)}`,
        500,
      );
      assert.ok(second.running, tail(second.stderr));
      const m = await scrape(tel.metricsUrl);
      const skipped = metricSum(m, 'otelcol_exporter_elasticsearch_documents', {
        outcome: 'replay_skipped',
      });
      const replayedLine = second
        .logLines()
        .find((l) => l['msg'] === 'sending queue: replaying batches left by the previous run');
      const exit = await second.stop();
      assert.equal(exit.code, 0, tail(second.stderr));
      assert.doesNotMatch(second.stderr, STACK_LINE, tail(second.stderr));
      ids = await search.eventIds(stream);
      const { counts, dups } = countBy(ids);
      assert.deepEqual(
        { unique: counts.size, documents: ids.length, duplicated: dups.length },
        { unique: truth.length, documents: truth.length, duplicated: 0 },
      );
      // (the skipped count proves the replay; the queue's log line only adds how much it replayed)
      assert.equal(skipped, inServer, 'every document the server already held was found and skipped');
      console.log(
        `replay_check through the CLI on ${base}: ${truth.length} events; ${inServer} indexed with their answers held ` +
          `back, kill -9, rollover; restart replayed ${replayedLine ? Number(replayedLine['records']) : '?'} records from the queue, ` +
          `${skipped} found and skipped; stream: ${ids.length} documents, 0 duplicates`,
      );
    });
  });
}

/** Polls `read` until it returns the same value twice in a row 1 s apart. */
async function waitForStable(read: () => Promise<number>): Promise<number> {
  let prev = await read();
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const n = await read();
    if (n === prev) return n;
    prev = n;
  }
  return prev;
}

/**
 * A proxy to `target` that forwards every request; `_bulk` requests reach the server (which indexes their
 * documents) but their answers are never returned: the collector sees an in-flight request until it dies.
 */
async function blackHoleProxy(
  target: string,
): Promise<{ url: string; held: number; close: () => Promise<void> }> {
  const held: ServerResponse[] = [];
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) {
          if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v;
        }
        const body = Buffer.concat(chunks);
        const r = await request(`${target}${req.url ?? '/'}`, {
          method: (req.method ?? 'GET') as 'GET',
          headers,
          ...(body.length > 0 ? { body } : {}),
        });
        const answer = Buffer.from(await r.body.arrayBuffer());
        if ((req.url ?? '').startsWith('/_bulk')) {
          held.push(res); // indexed by the server; the collector never hears about it
          return;
        }
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(r.headers)) {
          if (
            typeof v === 'string' &&
            !['connection', 'transfer-encoding', 'content-length', 'keep-alive'].includes(k)
          )
            out[k] = v;
        }
        res.writeHead(r.statusCode, out);
        res.end(answer);
      })().catch((err: unknown) => {
        res.writeHead(502);
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return {
    url,
    get held() {
      return held.length;
    },
    close: async () => {
      for (const r of held) r.destroy();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}
