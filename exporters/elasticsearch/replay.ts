/**
 * `replay_check`: before documents that may already have been delivered are sent again, their `_id`s are
 * looked up in the target (the data stream, alias or index: every backing index behind it) and the ones
 * found are not sent.
 *
 * Why: `create` answers 409 only for an `_id` that exists in the index it writes to, which for a data
 * stream (or a rollover alias) is the current *write* index. A document delivered before a rollover sits in
 * an older backing index, so sending it again after the rollover indexes it a second time. Re-sends happen
 * after a restart (the persistent sending queue replays the batches whose delivery was not confirmed;
 * without a persistent queue the receiver re-reads the unconfirmed events) and when a second collector
 * delivers the same events late (high availability with two collectors).
 *
 * Modes: `replayed` checks only records observed before this exporter was created, i.e. read by an
 * earlier run and replayed from the persistent queue (cheap: nothing is looked up in normal operation);
 * `all` checks every document (one `_search` per target and chunk, for the receiver's re-reads without a
 * persistent queue and for two collectors writing the same events).
 *
 * The look-up is a search (`ids` query), which sees documents once the shard refreshed them (1 s by
 * default; a search-idle shard refreshes before it answers). A document still unrefreshed was written
 * within that second, i.e. into the current write index, where `create` + 409 already deduplicates it.
 * A failed look-up never holds up delivery: the documents are sent unchecked (a duplicate is possible
 * only across a rollover), logged and counted in `otelcol_exporter_elasticsearch_replay_checks`.
 */
import type { Logger } from '../../runtime/component.ts';
import { errorMessage } from '../../runtime/errors.ts';
import type { HrTime, LogRecord, LogsBatch } from '../../runtime/model.ts';
import type { EsClient } from './client.ts';
import { describeEsError } from './client.ts';
import type { BulkItem } from './document.ts';
import type { EsMetrics } from './metrics.ts';

export type ReplayCheckMode = 'none' | 'replayed' | 'all';

/** Ids per `_search` (well below the default `index.max_result_window` of 10,000). */
export const LOOKUP_CHUNK = 1000;

export interface ReplayCheckerOptions {
  client: EsClient;
  metrics: EsMetrics;
  logger: Logger;
  mode: Exclude<ReplayCheckMode, 'none'>;
  /** Records observed before this time (epoch ms) were read by an earlier run (mode `replayed`). */
  startedAtMs: number;
  /** Deadline of one look-up. */
  timeoutMs: number;
}

const hrMillis = (t: HrTime | undefined): number =>
  Array.isArray(t) ? t[0] * 1000 + t[1] / 1e6 : Number.POSITIVE_INFINITY;

interface SearchHits {
  hits?: { hits?: { _id?: unknown }[] };
}

export class ReplayChecker {
  readonly #o: ReplayCheckerOptions;
  /** A failing look-up is logged once per episode (and once when look-ups work again). */
  #failing = false;

  constructor(opts: ReplayCheckerOptions) {
    this.#o = opts;
  }

  /** Whether the record may have been delivered by an earlier run (mode `replayed`) or at all (`all`). */
  needsCheck(r: LogRecord): boolean {
    return this.#o.mode === 'all' || hrMillis(r.observedTimestamp) < this.#o.startedAtMs;
  }

  /**
   * Returns the items to send: `items` without those whose `_id` is already in their target. `onPresent`
   * is called for each item left out (it counts as delivered).
   */
  async skipPresent(
    items: BulkItem[],
    batch: LogsBatch,
    signal: AbortSignal,
    onPresent: (item: BulkItem) => void,
  ): Promise<BulkItem[]> {
    const byIndex = new Map<string, BulkItem[]>();
    for (const it of items) {
      if (it.id === undefined || !this.needsCheck(batch[it.pos]!)) continue;
      let list = byIndex.get(it.index);
      if (!list) byIndex.set(it.index, (list = []));
      list.push(it);
    }
    if (byIndex.size === 0) return items;
    const present = new Set<BulkItem>();
    for (const [index, list] of byIndex) {
      for (let i = 0; i < list.length && !signal.aborted; i += LOOKUP_CHUNK) {
        const chunk = list.slice(i, i + LOOKUP_CHUNK);
        const found = await this.#lookup(index, chunk, signal);
        for (const it of chunk) if (found?.has(it.id!)) present.add(it);
      }
    }
    if (present.size === 0) return items;
    for (const it of present) onPresent(it);
    this.#o.metrics.docs('replay_skipped', present.size);
    this.#o.logger.info('replay check: documents already in the target are not sent again', {
      skipped: present.size,
      checked: [...byIndex.values()].reduce((n, l) => n + l.length, 0),
      targets: [...byIndex.keys()],
    });
    return items.filter((it) => !present.has(it));
  }

  /** Ids of `chunk` present in `index`, or undefined when the look-up failed. */
  async #lookup(index: string, chunk: BulkItem[], signal: AbortSignal): Promise<Set<string> | undefined> {
    const ids = [...new Set(chunk.map((it) => it.id!))];
    // A target that does not exist (yet) answers 200 without hits: nothing of it was delivered.
    const path =
      `/${encodeURIComponent(index)}/_search?ignore_unavailable=true&allow_no_indices=true` +
      `&filter_path=hits.hits._id`;
    const body = JSON.stringify({
      size: ids.length,
      _source: false,
      track_total_hits: false,
      query: { ids: { values: ids } },
    });
    let problem: string;
    try {
      const res = await this.#o.client.request('POST', path, {
        body,
        headers: { 'content-type': 'application/json' },
        signal,
        timeoutMs: this.#o.timeoutMs,
      });
      if (res.status === 200) {
        const hits = (JSON.parse(res.body.toString('utf8')) as SearchHits).hits?.hits ?? [];
        this.#o.metrics.replayCheck('ok');
        if (this.#failing) {
          this.#failing = false;
          this.#o.logger.info('replay check: look-ups work again', { index });
        }
        return new Set(hits.map((h) => String(h._id)));
      }
      problem = `${res.status} ${describeEsError(res.body)}`;
    } catch (err) {
      if (signal.aborted) return undefined;
      problem = errorMessage(err);
    }
    this.#o.metrics.replayCheck('failed');
    if (!this.#failing) {
      this.#failing = true;
      this.#o.logger.warn(
        'replay check: cannot look up document ids; sending them unchecked (a document delivered before a rollover may be indexed twice)',
        { index, documents: chunk.length, error: problem },
      );
    }
    return undefined;
  }
}
