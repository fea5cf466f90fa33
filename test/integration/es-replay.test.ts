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
 * Needs ES_TEST_URLS and/or OPENSEARCH_URL (printed by the peer scripts' `start`; npm test sets them).
 * Without them: skipped with the reason, and failed in CI (CI=true).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../runtime/model.ts';
import { cloneRecord, hrTimeFromMillis } from '../../runtime/model.ts';
import { nopHost, nopSettings } from '../kit/index.ts';
import type { TestSettings } from '../kit/index.ts';
import { factory } from '../../exporters/elasticsearch/factory.ts';
import type { ElasticsearchExporter } from '../../exporters/elasticsearch/exporter.ts';
import { metricSum } from './helpers.ts';
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
      return metricSum(await s.metrics.metrics(), 'otelcol_exporter_elasticsearch_documents_total', {
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
        'otelcol_exporter_elasticsearch_replay_checks_total',
      );
      await second.exp.consume(records(ns, 300, 20, Date.now()));
      assert.equal(
        metricSum(
          await second.settings.metrics.metrics(),
          'otelcol_exporter_elasticsearch_replay_checks_total',
        ),
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
  });
}
