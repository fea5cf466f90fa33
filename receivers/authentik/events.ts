/**
 * Audit events: backfill on first start, then incremental polls, both oldest first and gap-free (see
 * scan.ts), with the checkpoint persisted only after the pipeline accepted each batch.
 *
 * Incremental state: `hw` (newest delivered `created`) and `window` (pks delivered within `overlap`
 * below hw). A poll covers everything newer than hw − overlap that is not in the window; usually that
 * is one request (page 1 of `-created` reaches below hw − overlap). With enterprise QL honoured, a poll
 * is `search=created >= "<hw − overlap>"&ordering=created`, every returned `created` checked.
 */
import type { ComponentSettings } from '../../runtime/component.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { errorMessage } from '../../runtime/errors.ts';
import { sleep } from '../../runtime/exporterhelper/retry.ts';
import type { Config } from './config.ts';
import type { AuthentikClient, Page } from './client.ts';
import { ApiError, InvalidPageError, StoppedError } from './client.ts';
import type { BackfillState, CheckpointStore, EventsState, FrontierJson } from './checkpoint.ts';
import { checkEventsState, EVENTS_KEY } from './checkpoint.ts';
import type { Delivery } from './deliver.ts';
import { deliver } from './deliver.ts';
import type { ReceiverMetrics } from './metrics.ts';
import type { RecordFactory } from './records.ts';
import type { Frontier, Read, Row, ScanEmit } from './scan.ts';
import { covered, scan } from './scan.ts';
import { floorSecond, formatMicros, msToMicros, nowMicros, parseMicros, qlSecond } from './time.ts';
import type { VersionState } from './version.ts';

export const EVENTS_PATH = '/api/v3/events/events/';

/**
 * How long a negative QL probe is trusted before probing again (a license may be added). Long,
 * because on an unlicensed server the probe is a substring search over the whole event table.
 */
const QL_REPROBE_MS = 24 * 3_600_000;
/** Progress log cadence of the backfill. */
const PROGRESS_PAGES = 50;
const PROGRESS_MS = 30_000;

export interface EventsDeps {
  client: AuthentikClient;
  store: CheckpointStore;
  delivery: Delivery;
  cfg: Config['events'];
  maxConcurrent: number;
  settings: ComponentSettings;
  metrics: ReceiverMetrics;
  records: RecordFactory;
  version: VersionState;
}

function frontierFromJson(j: FrontierJson): Frontier {
  return { c: j.c === null ? null : BigInt(j.c), pks: new Set(j.pks) };
}

function frontierToJson(f: Frontier): FrontierJson {
  return { c: f.c === null ? null : f.c.toString(), pks: [...f.pks] };
}

function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export class EventsCollector {
  readonly #d: EventsDeps;
  readonly #overlap: bigint;
  #pageSize: number;
  #phase: 'backfill' | 'incremental' = 'incremental';
  #hw: bigint | null = null;
  readonly #window = new Map<string, bigint>();
  #floor: Frontier | null = null;
  #backfill: BackfillState | null = null;
  #ql: 'unknown' | 'yes' | 'no' = 'unknown';
  #qlProbeAfter = 0;
  readonly #malformed = new Set<string>();
  #lastPollError: string | undefined;
  #initialized = false;
  #dirty = false;
  /** Requests of the last poll (observability and tests). */
  lastPollRequests = 0;
  /** Completed polls. */
  polls = 0;

  constructor(d: EventsDeps) {
    this.#d = d;
    this.#overlap = msToMicros(d.cfg.overlap);
    this.#pageSize = d.cfg.page_size;
  }

  /** Current phase, for tests and status. */
  get phase(): 'backfill' | 'incremental' {
    return this.#phase;
  }

  /** Whether QL search is in use. */
  get ql(): 'unknown' | 'yes' | 'no' {
    return this.#ql;
  }

  /** Runs until `signal` aborts. Never rejects except with StoppedError. */
  async run(signal: AbortSignal): Promise<void> {
    const log = this.#d.settings.logger;
    // Start-up (checkpoint or first-run position) and backfill, retried until they succeed.
    for (;;) {
      try {
        if (!this.#initialized) {
          await this.#init(signal);
          this.#initialized = true;
        }
        if (this.#phase === 'backfill') await this.#runBackfill(signal);
        break;
      } catch (e) {
        if (e instanceof StoppedError || signal.aborted) return;
        this.#pollFailed(e);
        if (await sleep(this.#d.cfg.interval, signal)) return;
      }
    }
    for (;;) {
      const t0 = performance.now();
      try {
        await this.poll(signal);
        if (this.#lastPollError !== undefined) {
          log.info('event polls succeed again');
          this.#lastPollError = undefined;
        }
      } catch (e) {
        if (e instanceof StoppedError || signal.aborted) return;
        this.#pollFailed(e);
      }
      const elapsed = performance.now() - t0;
      this.#d.metrics.poll('events', elapsed / 1000);
      if (await sleep(Math.max(0, this.#d.cfg.interval - elapsed), signal)) return;
    }
  }

  #pollFailed(e: unknown): void {
    const msg = errorMessage(e);
    if (msg !== this.#lastPollError) {
      // HTTP failures were already logged once by the client; log other causes once per episode.
      if (!(e instanceof ApiError) || e.kind === 'bad_order' || e.kind === 'locate_failed') {
        this.#d.settings.logger.error('event poll failed; retrying at the next interval', { reason: msg });
      }
      this.#lastPollError = msg;
    } else {
      this.#d.settings.logger.debug('event poll failed again', { reason: msg });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------

  /** Loads the checkpoint, or positions a first run according to `backfill`. */
  async #init(signal: AbortSignal): Promise<void> {
    const log = this.#d.settings.logger;
    const loaded = await this.#d.store.load(EVENTS_KEY, checkEventsState);
    if (loaded) {
      this.#apply(loaded);
      log.info('events: resuming from checkpoint', {
        phase: loaded.phase,
        highWater: this.#hw === null ? null : formatMicros(this.#hw),
        backfillPagesDone: loaded.backfill?.pagesDone,
      });
      return;
    }
    const page = await this.#fetchDesc(this.#pageSize, 1, signal);
    if (page.next !== 0 && page.results.length > 0 && page.results.length < this.#pageSize) {
      this.#pageSize = page.results.length; // the server clamps the page size (2025.12+)
    }
    const rows = this.#parse(page);
    const top = rows[0];
    const mode = this.#d.cfg.backfill;
    const initial: EventsState = {
      v: 1,
      phase: 'incremental',
      hw: null,
      window: [],
      floor: null,
      backfill: null,
    };
    if (top === undefined) {
      log.info('events: no events yet; collecting everything from now on');
    } else if (
      mode.kind === 'none' ||
      (mode.kind === 'duration' && top.c < nowMicros() - msToMicros(mode.ms))
    ) {
      // Start from now: the events present now are not emitted.
      initial.hw = top.c.toString();
      initial.window = rows.filter((r) => r.c >= top.c - this.#overlap).map((r) => [r.pk, r.c.toString()]);
      initial.floor = { c: top.c.toString(), pks: rows.filter((r) => r.c === top.c).map((r) => r.pk) };
      log.info('events: starting from now (no backfill)', {
        newest: formatMicros(top.c),
        retained: page.count,
      });
    } else {
      let frontier: FrontierJson = { c: null, pks: [] };
      let hint = Math.max(0, page.count - 1);
      if (mode.kind === 'duration') {
        const cutoff = nowMicros() - msToMicros(mode.ms);
        frontier = { c: cutoff.toString(), pks: [] };
        const idx = rows.findIndex((r) => r.c < cutoff);
        if (idx >= 0 || page.next === 0) hint = idx >= 0 ? idx : rows.length;
        else {
          // Interpolate from page 1's density; the scan gallops and bisects from there.
          const bottom = rows[rows.length - 1]!.c;
          const span = Number(top.c - bottom);
          const perUs = span > 0 ? rows.length / span : 0;
          hint = Math.min(page.count - 1, Math.max(rows.length, Math.round(Number(top.c - cutoff) * perUs)));
        }
      }
      initial.phase = 'backfill';
      initial.backfill = {
        upper: top.c.toString(),
        frontier,
        hint,
        count: page.count,
        pagesDone: 0,
        pagesTotal: Math.ceil((hint + 1) / this.#pageSize),
        emitted: 0,
        startedAt: Date.now(),
        handover: [],
      };
      log.info('events: first start, backfilling', {
        backfill: mode.kind === 'all' ? 'all' : `${mode.kind === 'duration' ? mode.ms / 1000 : 0}s`,
        retained: page.count,
        upTo: formatMicros(top.c),
        estimatedPages: initial.backfill.pagesTotal,
      });
    }
    this.#apply(initial);
    await this.#save();
  }

  #apply(s: EventsState): void {
    this.#phase = s.phase;
    this.#hw = s.hw === null ? null : BigInt(s.hw);
    this.#window.clear();
    for (const [pk, c] of s.window) this.#window.set(pk, BigInt(c));
    this.#floor = s.floor === null ? null : frontierFromJson(s.floor);
    this.#backfill = s.backfill;
    if (this.#hw !== null) this.#d.metrics.highWater(this.#hw);
  }

  #snapshot(): EventsState {
    return {
      v: 1,
      phase: this.#phase,
      hw: this.#hw === null ? null : this.#hw.toString(),
      window: [...this.#window].map(([pk, c]) => [pk, c.toString()]),
      floor: this.#floor === null ? null : frontierToJson(this.#floor),
      backfill: this.#backfill,
    };
  }

  async #save(): Promise<void> {
    this.#dirty = false;
    await this.#d.store.save(EVENTS_KEY, this.#snapshot());
  }

  /** The covered edge of the incremental poller. */
  #lower(): Frontier {
    if (this.#hw === null) return this.#floor ?? { c: null, pks: new Set() };
    const edge: Frontier = { c: this.#hw - this.#overlap, pks: new Set() };
    if (this.#floor && this.#floor.c !== null && this.#floor.c >= edge.c!) return this.#floor;
    return edge;
  }

  /** Records delivered rows: raises hw, extends the window, forgets what fell out of the overlap. */
  #advance(rows: Row[], top: bigint | null): void {
    for (const r of rows) {
      this.#window.set(r.pk, r.c);
      if (this.#hw === null || r.c > this.#hw) this.#hw = r.c;
      this.#dirty = true;
    }
    if (top !== null && (this.#hw === null || top > this.#hw)) {
      this.#hw = top;
      this.#dirty = true;
    }
    if (this.#hw === null) return;
    const edge = this.#hw - this.#overlap;
    for (const [pk, c] of this.#window) {
      if (c < edge) {
        this.#window.delete(pk);
        this.#dirty = true;
      }
    }
    if (this.#floor && this.#floor.c !== null && this.#floor.c < edge) {
      this.#floor = null;
      this.#dirty = true;
    }
    this.#d.metrics.highWater(this.#hw);
  }

  // ---------------------------------------------------------------------------------------------
  // Requests and rows
  // ---------------------------------------------------------------------------------------------

  async #fetchDesc(size: number, page: number, signal: AbortSignal): Promise<Page> {
    const p = await this.#d.client.page(
      'events',
      EVENTS_PATH,
      { ordering: '-created', page_size: size, page },
      signal,
    );
    this.lastPollRequests++;
    return p;
  }

  /** Rows of a page; malformed records (no pk, bad `created`) are counted as dropped once each. */
  #parse(page: Page): Row[] {
    this.#d.version.refine('events', page.envelope, page.results);
    const rows: Row[] = [];
    for (const raw of page.results) {
      const pk = raw.pk;
      const c = parseMicros(raw.created);
      if (typeof pk !== 'string' || pk === '' || c === undefined) {
        const id = typeof pk === 'string' ? pk : JSON.stringify(raw).slice(0, 300);
        if (!this.#malformed.has(id)) {
          if (this.#malformed.size > 10_000) this.#malformed.clear();
          this.#malformed.add(id);
          this.#d.settings.reportDropped(1, 'event without a string pk or a valid created timestamp', {
            pk: typeof pk === 'string' ? pk : undefined,
          });
        }
        continue;
      }
      rows.push({ pk, c, raw });
    }
    return rows;
  }

  /** Delivers rows (oldest first) as one batch; rebuilds records from the page text on re-offers. */
  async #deliver(rows: Row[], page: Page | undefined): Promise<void> {
    if (rows.length === 0) return;
    const observed = nowHrTime();
    const records = this.#d.records;
    const make = (attempt: number) => {
      if (attempt === 1 || page === undefined) return rows.map((r) => records.event(r.raw, observed));
      const fresh = new Map<string, Record<string, unknown>>();
      const parsed = JSON.parse(page.text) as { results: Record<string, unknown>[] };
      for (const raw of parsed.results) if (typeof raw.pk === 'string') fresh.set(raw.pk, raw);
      return rows.map((r) => records.event(fresh.get(r.pk) ?? r.raw, observed));
    };
    if (await deliver(this.#d.delivery, 'events', rows.length, make))
      this.#d.metrics.emitted('events', rows.length);
  }

  #scanCallbacks(signal: AbortSignal) {
    return {
      fetch: (size: number, page: number, s: AbortSignal) => this.#fetchDesc(size, page, s),
      parse: (page: Page) => this.#parse(page),
      pageSize: () => this.#pageSize,
      clamp: (size: number) => {
        if (size < this.#pageSize) {
          this.#d.settings.logger.info('authentik clamps the page size; following its pages', {
            requested: this.#d.cfg.page_size,
            served: size,
          });
          this.#pageSize = size;
        }
      },
      concurrency: this.#d.maxConcurrent,
      onResync: (reason: string) => {
        this.#d.metrics.resync();
        this.#d.settings.logger.debug('event pages shifted while reading; re-locating the scan position', {
          reason,
        });
      },
      signal,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Backfill
  // ---------------------------------------------------------------------------------------------

  async #runBackfill(signal: AbortSignal): Promise<void> {
    const bf = this.#backfill!;
    const log = this.#d.settings.logger;
    const upper = BigInt(bf.upper);
    const handoverEdge = upper - this.#overlap;
    const handover = new Map(bf.handover);
    const t0 = Date.now();
    const emittedAtStart = bf.emitted;
    const pagesAtStart = bf.pagesDone;
    let lastLogPages = bf.pagesDone;
    let lastLogAt = Date.now();
    if (bf.pagesDone > 0) {
      log.info('events: resuming backfill', {
        pagesDone: bf.pagesDone,
        pagesTotal: bf.pagesTotal,
        events: bf.emitted,
      });
    }
    this.#d.metrics.backfill(bf.pagesDone, bf.pagesTotal);
    const progress = (force: boolean) => {
      const now = Date.now();
      if (!force && bf.pagesDone - lastLogPages < PROGRESS_PAGES && now - lastLogAt < PROGRESS_MS) return;
      lastLogPages = bf.pagesDone;
      lastLogAt = now;
      const secs = (now - t0) / 1000;
      const rate = secs > 0 ? (bf.emitted - emittedAtStart) / secs : 0;
      const pageRate = secs > 0 ? (bf.pagesDone - pagesAtStart) / secs : 0;
      const remaining = Math.max(0, bf.pagesTotal - bf.pagesDone);
      const eta = pageRate > 0 ? (remaining / pageRate) * 1000 : NaN;
      log.info(
        `events backfill: ${bf.pagesDone}/${bf.pagesTotal} pages, ${bf.emitted} events, ${Math.round(rate)} events/s, ETA ${fmtDuration(eta)}`,
        {
          pagesDone: bf.pagesDone,
          pagesTotal: bf.pagesTotal,
          events: bf.emitted,
          eventsPerSecond: Math.round(rate),
          etaSeconds: Number.isFinite(eta) ? Math.round(eta / 1000) : null,
        },
      );
    };

    await scan({
      ...this.#scanCallbacks(signal),
      frontier: frontierFromJson(bf.frontier),
      upper,
      hint: bf.hint,
      hintCount: bf.count,
      accept: () => true,
      emit: async (e: ScanEmit) => {
        await this.#deliver(e.rows, e.read.page);
        for (const r of e.rows) if (r.c >= handoverEdge) handover.set(r.pk, r.c.toString());
        bf.frontier = frontierToJson(e.frontier);
        bf.hint = e.hint;
        bf.count = e.count;
        bf.pagesDone++;
        bf.emitted += e.rows.length;
        bf.pagesTotal = Math.max(bf.pagesTotal, bf.pagesDone + Math.ceil(e.hint / this.#pageSize));
        if (e.read.s === 0) bf.pagesTotal = bf.pagesDone;
        bf.handover = [...handover];
        await this.#save();
        this.#d.metrics.backfill(bf.pagesDone, bf.pagesTotal);
        progress(false);
      },
    });
    bf.pagesTotal = bf.pagesDone;
    this.#d.metrics.backfill(bf.pagesDone, bf.pagesTotal);
    progress(true);
    // Hand over to the incremental poller: everything up to `upper` was delivered.
    this.#phase = 'incremental';
    this.#backfill = null;
    this.#hw = upper;
    this.#window.clear();
    for (const [pk, c] of handover) this.#window.set(pk, BigInt(c));
    this.#floor = null;
    this.#advance([], null);
    await this.#save();
    const secs = (Date.now() - bf.startedAt) / 1000;
    log.info('events: backfill complete', {
      events: bf.emitted,
      pages: bf.pagesDone,
      seconds: Math.round(secs),
      eventsPerSecond: secs > 0 ? Math.round(bf.emitted / secs) : null,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Incremental
  // ---------------------------------------------------------------------------------------------

  /** One incremental poll. */
  async poll(signal: AbortSignal): Promise<void> {
    this.lastPollRequests = 0;
    if (this.#phase !== 'incremental') throw new Error('poll() during backfill');
    if (this.#ql === 'yes') {
      const r = await this.#pollQl(signal);
      if (r === 'ok') {
        this.polls++;
        return;
      }
      const bound = this.#lower().c;
      const first = await this.#pollScan(signal);
      if (r === 'broken' || (bound !== null && first?.rows.some((x) => x.c >= floorSecond(bound)))) {
        this.#qlOff('the server stopped honouring it (license expired?)');
      }
      this.polls++;
      return;
    }
    const first = await this.#pollScan(signal);
    this.polls++;
    if (
      this.#ql === 'unknown' &&
      this.#d.cfg.use_ql &&
      this.#d.version.caps.qlCandidate &&
      Date.now() >= this.#qlProbeAfter &&
      first
    ) {
      await this.#probeQl(first, signal);
    }
  }

  async #pollScan(signal: AbortSignal): Promise<Read | undefined> {
    const lower = this.#lower();
    const res = await scan({
      ...this.#scanCallbacks(signal),
      frontier: lower,
      upper: null,
      hint: 0,
      hintCount: undefined,
      accept: (r) => !this.#window.has(r.pk),
      emit: async (e: ScanEmit) => {
        await this.#deliver(e.rows, e.read.page);
        this.#advance(e.rows, e.frontier.c);
        if (this.#dirty) await this.#save();
      },
    });
    return res.firstRead;
  }

  #qlOff(why: string): void {
    if (this.#ql === 'yes') {
      this.#d.settings.logger.warn(
        `events: not using QL search any more: ${why}; polling with ordering=-created`,
      );
    }
    this.#ql = 'no';
    this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
  }

  /**
   * Checks whether `search=created >= "…"` is honoured: the events of page 1 at or after the newest
   * event's second must come back, and nothing older. A silent substring fallback fails this.
   */
  async #probeQl(page1: Read, signal: AbortSignal): Promise<void> {
    const rows = page1.rows;
    if (rows.length < 2) return;
    const bound = floorSecond(rows[0]!.c);
    if (!rows.some((r) => r.c < bound)) return; // cannot tell yet: all of page 1 is in one second
    const expected = rows.filter((r) => r.c >= bound).map((r) => r.pk);
    let got: Row[];
    try {
      const page = await this.#d.client.page(
        'events',
        EVENTS_PATH,
        { search: `created >= "${qlSecond(bound)}"`, ordering: 'created', page_size: this.#pageSize },
        signal,
      );
      this.lastPollRequests++;
      got = this.#parse(page);
    } catch (e) {
      if (e instanceof StoppedError) throw e;
      this.#ql = 'no';
      this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
      return;
    }
    const pks = new Set(got.map((r) => r.pk));
    const honoured = got.every((r) => r.c >= bound) && expected.every((pk) => pks.has(pk));
    if (honoured) {
      this.#ql = 'yes';
      this.#d.settings.logger.info(
        'events: the server honours enterprise QL search; polls use search=created >= "…" (verified client-side)',
      );
    } else {
      this.#ql = 'no';
      this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
      this.#d.settings.logger.debug(
        'events: QL search not honoured (no enterprise license?); polling with ordering=-created',
      );
    }
  }

  /**
   * A poll through QL keyset pages: each query asks for `created >=` the second of the newest event
   * seen so far. 'ok', or why the caller must fall back to a scan ('empty' is ambiguous: the events
   * of the window may have been deleted).
   */
  async #pollQl(signal: AbortSignal): Promise<'ok' | 'broken' | 'empty'> {
    const lower = this.#lower();
    if (lower.c === null) return 'empty';
    let bound = floorSecond(lower.c);
    let page = 1;
    for (let i = 0; i < 100_000; i++) {
      let pg: Page;
      try {
        pg = await this.#d.client.page(
          'events',
          EVENTS_PATH,
          { search: `created >= "${qlSecond(bound)}"`, ordering: 'created', page_size: this.#pageSize, page },
          signal,
        );
        this.lastPollRequests++;
      } catch (e) {
        if (e instanceof InvalidPageError) {
          page = 1; // the result shrank between pages: ask again from the bound
          continue;
        }
        throw e;
      }
      const rows = this.#parse(pg);
      for (let k = 0; k < rows.length; k++) {
        if (rows[k]!.c < bound || (k > 0 && rows[k]!.c < rows[k - 1]!.c)) return 'broken';
      }
      if (i === 0 && rows.length === 0 && this.#window.size > 0) return 'empty';
      const edge = this.#lower();
      const fresh = rows.filter((r) => !covered(r, edge) && !this.#window.has(r.pk));
      fresh.sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : a.pk < b.pk ? -1 : 1));
      if (fresh.length > 0) {
        await this.#deliver(fresh, pg);
        this.#advance(fresh, null);
        await this.#save();
      }
      if (pg.next === 0 || rows.length === 0) return 'ok';
      const lastSec = floorSecond(rows[rows.length - 1]!.c);
      if (lastSec > bound) {
        bound = lastSec;
        page = 1;
      } else page = pg.next;
    }
    return 'ok';
  }
}
