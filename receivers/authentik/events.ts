/**
 * Audit events: backfill on first start, then incremental polls, both oldest first and gap-free (see
 * scan.ts), with the checkpoint persisted only after the pipeline accepted each batch.
 *
 * Incremental state: `hw` (newest delivered `created`), the verified edge `E` and `window` (pks delivered
 * at or above E, whatever their position relative to hw). Invariant: every event alive older than E was
 * delivered (or skipped by `backfill`), and every event at or above E that was delivered is in the window.
 *
 * A poll reads page 1 of `-created`, sized to the events expected since the previous poll, and delivers
 * what is newer than hw (the gap-free scan continues when page 1 is all new). Events appearing *below*
 * hw (late commits) are found by counting: `pagination.count` must have grown by exactly the new events
 * since the previous poll; otherwise, and at least every `verify_interval`, the poll verifies the region
 * above E with one small page (the rank of E's boundary must equal the number of known events above E)
 * and re-reads the region only when that disagrees. A verification moves E up to hw − overlap. With
 * enterprise QL honoured, page 1 is `search=created >= "<E>"&ordering=-created`, whose count is the
 * region's count: every poll verifies. README "How events are read" has the reasoning and residual risk.
 */
import type { ComponentSettings } from '../../runtime/component.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { errorMessage } from '../../runtime/errors.ts';
import { sleep } from '../../runtime/exporterhelper/retry.ts';
import type { Config } from './config.ts';
import type { AuthentikClient, Health, Page } from './client.ts';
import { ApiError, InvalidPageError, StoppedError } from './client.ts';
import type { BackfillState, CheckpointStore, EventsState, FrontierJson } from './checkpoint.ts';
import { checkEventsState, CorruptCheckpointError, EVENTS_KEY } from './checkpoint.ts';
import type { Delivery } from './deliver.ts';
import { deliver } from './deliver.ts';
import type { ReceiverMetrics } from './metrics.ts';
import type { RecordFactory } from './records.ts';
import type { Frontier, Read, Row, ScanEmit, ScanParams, ServedSize } from './scan.ts';
import { StallDetector, STALL_DEFAULTS } from './stall.ts';
import { BackfillProgress } from './events-backfill.ts';
import {
  CONFIG_PATH,
  LICENSE_PATH,
  licenceValid,
  QL_REPROBE_MS,
  qlHonoured,
  QlNotHonoured,
} from './events-ql.ts';
import { countLate, forgetUnseen } from './events-rescan.ts';
import type { Outcome } from './events-decide.ts';
import { decideAfterNew, firstPageSize, judgeProbe, measure, probePlan } from './events-decide.ts';
import { frontierFromJson, frontierKey, frontierToJson } from './events-state.ts';
import { covered, scan } from './scan.ts';
import { floorSecond, formatMicros, msToMicros, nowMicros, parseMicros, qlSecond } from './time.ts';
import type { VersionState } from './version.ts';

export const EVENTS_PATH = '/api/v3/events/events/';

/** Polls whose new-event counts size page 1. */
const RATE_HISTORY = 12;

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
  /** Receiver health (stall conditions); optional in unit tests. */
  health?: Health;
  /** Overrides of the stall thresholds (tests). */
  stall?: Partial<typeof STALL_DEFAULTS>;
}

/**
 * Evidence (in nats) that the server orders ties by pk under `-created,pk` before responses are read
 * in the total order: the sum of ln(k!) over tied runs seen sorted (a run of k rows in random order
 * is sorted with probability 1/k!). ln(10^6): one chance in a million of trusting a server that
 * ignores the pk.
 */
const TOTAL_ORDER_EVIDENCE = Math.log(1e6);
/** Votes for one served page size before it is accepted as the server's clamp. */
const CLAMP_VOTES = 2;

function lnFactorial(k: number): number {
  let x = 0;
  for (let i = 2; i <= k; i++) x += Math.log(i);
  return x;
}

/** The stored state (older checkpoints lack `verified` and `pageSize`). */
type StoredEventsState = EventsState;

/** Counters of the incremental poller (observability and tests). */
export interface PollStats {
  /** Polls whose count check passed (the count grew by exactly the new events). */
  countOk: number;
  /** Verifications by count: free (page 1 reached the edge) or with one small request. */
  verified: number;
  /** Small requests made to verify. */
  probes: number;
  /** Verifications that disagreed. */
  mismatches: number;
  /** Full re-reads of the region above the verified edge. */
  rescans: number;
  /** Events delivered by re-reads that were older than hw (late commits). */
  late: number;
  /** Page size of the last poll's first request. */
  firstPageSize: number;
}

export class EventsCollector {
  readonly #d: EventsDeps;
  readonly #overlap: bigint;
  #pageSize: number;
  /** The server's page-size clamp, accepted on repeated evidence; undefined: not seen. */
  #clamp: number | undefined;
  readonly #clampVotes = new Map<number, number>();
  readonly #served: ServedSize = { atLeast: 0 };
  /** The server ignores the pk in `ordering=-created,pk` (ties came back out of pk order). */
  #pkIgnored = false;
  #tieEvidence = 0;
  readonly #stall: StallDetector;
  #phase: 'backfill' | 'incremental' = 'incremental';
  #hw: bigint | null = null;
  readonly #window = new Map<string, bigint>();
  /** Verified edge E (µs); null: the whole list (nothing was there at the first start). */
  #edge: bigint | null = null;
  /** pagination.count when the known events were last consistent with the list; null: unknown. */
  #countRef: number | null = null;
  /** When E was last verified (Date.now()); 0 = not since start. */
  #verifiedAt = 0;
  /** New events per poll (and the time since the previous poll) of recent polls. */
  readonly #rates: { ms: number; n: number }[] = [];
  #lastPollAt: number | undefined;
  #backfill: BackfillState | null = null;
  #ql: 'unknown' | 'yes' | 'no' = 'unknown';
  #qlProbeAfter = 0;
  #configFailLogged = false;
  readonly #malformed = new Set<string>();
  #lastPollError: string | undefined;
  #initialized = false;
  #dirty = false;
  /** Requests of the last poll (observability and tests). */
  lastPollRequests = 0;
  /** Completed polls. */
  polls = 0;
  /** Counters of the incremental poller. */
  readonly stats: PollStats = {
    countOk: 0,
    verified: 0,
    probes: 0,
    mismatches: 0,
    rescans: 0,
    late: 0,
    firstPageSize: 0,
  };

  constructor(d: EventsDeps) {
    this.#d = d;
    this.#overlap = msToMicros(d.cfg.overlap);
    this.#pageSize = d.cfg.page_size;
    this.#stall = new StallDetector({
      ...STALL_DEFAULTS,
      ...d.stall,
      onChange: (reason, fields) => {
        d.metrics.stall(reason !== undefined);
        if (d.health) d.health.condition('events', reason, fields);
        else if (reason !== undefined) d.settings.logger.warn(reason, fields);
      },
    });
  }

  /** Whether the scan is currently stalled (tests, diagnostics). */
  get stalled(): boolean {
    return this.#stall.stalled;
  }

  /** Whether responses are read in the total order `-created,pk` (verified from the responses). */
  get totalOrder(): boolean {
    return !this.#pkIgnored && this.#tieEvidence >= TOTAL_ORDER_EVIDENCE;
  }

  /** `ordering` of plain event requests: the total order unless the server was seen to ignore it. */
  #ordering(): string {
    return this.#pkIgnored ? '-created' : '-created,pk';
  }

  #ties(runs: number[], sorted: boolean): void {
    if (this.#pkIgnored) return;
    if (!sorted) {
      this.#pkIgnored = true;
      this.#tieEvidence = 0;
      this.#d.settings.logger.warn(
        'events: authentik does not order tied events by pk (ordering=-created,pk ignored); reading with ordering=-created, exact but unable to cross a block of about a page or more of identical created values',
      );
      return;
    }
    for (const k of runs) this.#tieEvidence += lnFactorial(k);
  }

  /** A response showed the size the server served; a smaller one becomes the clamp on repeated evidence. */
  #servedSize(requested: number, served: number, exact: boolean): void {
    if (served >= requested) {
      if (this.#clamp !== undefined && served > this.#clamp) {
        this.#d.settings.logger.info('authentik serves larger pages than before; following them', {
          before: this.#clamp,
          served,
        });
        this.#clamp = undefined;
        this.#clampVotes.clear();
        this.#pageSize = this.#d.cfg.page_size;
        this.#dirty = true;
      }
      return;
    }
    if (this.#clamp !== undefined && served >= this.#clamp) return;
    const votes = (this.#clampVotes.get(served) ?? 0) + (exact ? 1 : 1);
    this.#clampVotes.set(served, votes);
    if (votes < CLAMP_VOTES) return;
    this.#clampVotes.clear();
    this.#clamp = served;
    this.#d.settings.logger.info('authentik clamps the page size; following its pages', {
      requested,
      served,
    });
    this.#pageSize = Math.max(1, Math.min(this.#d.cfg.page_size, served));
    this.#dirty = true;
  }

  /**
   * Largest slice the scan asks for: twice `page_size` (consecutive slices must overlap, so a slice
   * of at most `page_size` rows would advance by much less than a page), at most the server's clamp.
   */
  #scanCeiling(): number {
    const want = 2 * this.#d.cfg.page_size;
    return Math.max(1, this.#clamp !== undefined ? Math.min(want, this.#clamp) : want);
  }

  #preloaded: { state: StoredEventsState | undefined } | undefined;

  /**
   * Reads the checkpoint (called by the receiver's start, so that a damaged one stops the collector
   * before anything is read). Throws a message naming the file and the way out, unless
   * `on_corrupt_checkpoint: backfill`, which logs it and starts as on a first start.
   */
  async load(): Promise<StoredEventsState | undefined> {
    try {
      const state = await this.#d.store.load(EVENTS_KEY, checkEventsState, { strict: true });
      this.#preloaded = { state };
      return state;
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      if (this.#d.cfg.on_corrupt_checkpoint === 'backfill') {
        this.#d.settings.logger.error(
          'events checkpoint is damaged; on_corrupt_checkpoint: backfill, so starting over as on a first start (events.backfill)',
          { file: e.file, key: e.key, reason: e.reason, backfill: this.#d.cfg.backfill.kind },
        );
        this.#preloaded = { state: undefined };
        return undefined;
      }
      throw new Error(
        `events checkpoint ${e.file !== undefined ? `file ${e.file}` : `"${e.key}"`} is damaged (${e.reason}); ` +
          'nothing was read, so nothing is lost. Restore the file from a backup, or delete it, or set ' +
          'events.on_corrupt_checkpoint: backfill to start over as on a first start (events.backfill ' +
          'decides how much history is read again; with "all" events already delivered are delivered again)',
        { cause: e },
      );
    }
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
        this.#stall.progress();
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
    const loaded = this.#preloaded !== undefined ? this.#preloaded.state : await this.load();
    this.#preloaded = undefined;
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
    // A short page 1 that is not the last one hints at the server's clamp (2025.12+): one vote.
    if (page.next !== 0 && page.results.length > 0 && page.results.length < this.#pageSize)
      this.#servedSize(this.#pageSize, page.results.length, false);
    const rows = this.#parse(page);
    const top = rows[0];
    const mode = this.#d.cfg.backfill;
    const initial: StoredEventsState = {
      v: 1,
      phase: 'incremental',
      hw: null,
      window: [],
      floor: null,
      backfill: null,
      verified: null,
    };
    if (top === undefined) {
      log.info('events: no events yet; collecting everything from now on');
    } else if (
      mode.kind === 'none' ||
      (mode.kind === 'duration' && top.c < nowMicros() - msToMicros(mode.ms))
    ) {
      // Start from now: the events present now are not emitted.
      // Everything older than the newest event is skipped; the events at its microsecond are known.
      initial.hw = top.c.toString();
      initial.window = rows.filter((r) => r.c === top.c).map((r) => [r.pk, r.c.toString()]);
      initial.verified = top.c.toString();
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

  #apply(s: StoredEventsState): void {
    this.#phase = s.phase;
    this.#hw = s.hw === null ? null : BigInt(s.hw);
    this.#window.clear();
    for (const [pk, c] of s.window) this.#window.set(pk, BigInt(c));
    this.#backfill = s.backfill;
    // The verified edge; checkpoints of earlier versions hold the window down to hw − overlap, and
    // `floor` (backfill none) marks where skipped events end.
    const floor = s.floor === null ? null : frontierFromJson(s.floor);
    // The page size the server served last time (its clamp): positions the first request correctly.
    if (s.pageSize !== undefined) {
      this.#clamp = Math.max(1, s.pageSize);
      this.#pageSize = Math.max(1, Math.min(this.#d.cfg.page_size, s.pageSize));
    }
    if (typeof s.verified === 'string') this.#edge = BigInt(s.verified);
    else if (this.#hw === null) this.#edge = floor?.c ?? null;
    else {
      this.#edge = this.#hw - this.#overlap;
      if (floor && floor.c !== null && floor.c > this.#edge) this.#edge = floor.c;
    }
    if (this.#edge !== null && this.#hw !== null && this.#edge > this.#hw) this.#edge = this.#hw;
    this.#countRef = null;
    if (this.#hw !== null) this.#d.metrics.highWater(this.#hw);
  }

  #snapshot(): StoredEventsState {
    return {
      v: 1,
      phase: this.#phase,
      hw: this.#hw === null ? null : this.#hw.toString(),
      window: [...this.#window].map(([pk, c]) => [pk, c.toString()]),
      floor: null,
      backfill: this.#backfill,
      verified: this.#edge === null ? null : this.#edge.toString(),
      ...(this.#clamp !== undefined ? { pageSize: this.#clamp } : {}),
    };
  }

  async #save(): Promise<void> {
    this.#dirty = false;
    await this.#d.store.save(EVENTS_KEY, this.#snapshot());
  }

  /** The region's lower edge as a frontier: everything older than E is covered. */
  #regionFrontier(): Frontier {
    return { c: this.#edge, pks: new Set() };
  }

  /** Everything up to hw is covered (for new events only; late ones are the verification's business). */
  #hwFrontier(): Frontier {
    if (this.#hw === null) return this.#regionFrontier();
    const pks = new Set<string>();
    for (const [pk, c] of this.#window) if (c === this.#hw) pks.add(pk);
    return { c: this.#hw, pks };
  }

  /** Known (delivered or skipped) events at or above `x` (null: all). */
  #known(x: bigint | null): number {
    if (x === null) return this.#window.size;
    let n = 0;
    for (const c of this.#window.values()) if (c >= x) n++;
    return n;
  }

  /** Records delivered rows: raises hw, extends the window, forgets what lies below the verified edge. */
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
    if (this.#edge !== null) {
      // Keep the whole second of the edge: QL bounds are whole seconds.
      const keep = floorSecond(this.#edge);
      for (const [pk, c] of this.#window) {
        if (c < keep) {
          this.#window.delete(pk);
          this.#dirty = true;
        }
      }
    }
    this.#d.metrics.highWater(this.#hw);
  }

  /** The region above E was found consistent now: E moves up to hw − overlap. */
  #verifiedNow(count: number | null): void {
    this.stats.verified++;
    this.#d.metrics.verification('verified');
    this.#verifiedAt = Date.now();
    this.#countRef = count;
    if (this.#hw !== null) {
      const e = this.#hw - this.#overlap;
      if (this.#edge === null || e > this.#edge) {
        this.#edge = e;
        this.#dirty = true;
      }
    }
    this.#advance([], null);
  }

  // ---------------------------------------------------------------------------------------------
  // Requests and rows
  // ---------------------------------------------------------------------------------------------

  async #fetchDesc(size: number, page: number, signal: AbortSignal): Promise<Page> {
    await this.#beforeRequest(signal);
    const p = await this.#d.client.page(
      'events',
      EVENTS_PATH,
      { ordering: this.#ordering(), page_size: size, page },
      signal,
    );
    this.lastPollRequests++;
    return p;
  }

  /** Stall accounting before each events request; waits out the rate cap while stalled. */
  async #beforeRequest(signal: AbortSignal): Promise<void> {
    const wait = this.#stall.beforeRequest();
    if (wait > 0 && (await sleep(wait, signal))) throw new StoppedError();
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
  async #deliver(rows: Row[], page: Page | undefined | (Page | undefined)[]): Promise<void> {
    if (rows.length === 0) return;
    const observed = nowHrTime();
    const records = this.#d.records;
    const pages = (Array.isArray(page) ? page : [page]).filter((p) => p !== undefined);
    const make = (attempt: number) => {
      if (attempt === 1 || pages.length === 0) return rows.map((r) => records.event(r.raw, observed));
      const fresh = new Map<string, Record<string, unknown>>();
      for (const pg of pages) {
        const parsed = JSON.parse(pg.text) as { results: Record<string, unknown>[] };
        for (const raw of parsed.results) if (typeof raw.pk === 'string') fresh.set(raw.pk, raw);
      }
      return rows.map((r) => records.event(fresh.get(r.pk) ?? r.raw, observed));
    };
    if (await deliver(this.#d.delivery, 'events', rows.length, make))
      this.#d.metrics.emitted('events', rows.length);
    this.#stall.progress();
  }

  #scanCallbacks(signal: AbortSignal) {
    return {
      fetch: (size: number, page: number, s: AbortSignal) => this.#fetchDesc(size, page, s),
      parse: (page: Page) => this.#parse(page),
      pageSize: () => this.#scanCeiling(),
      totalOrder: () => this.totalOrder,
      ties: (runs: number[], sorted: boolean) => this.#ties(runs, sorted),
      served: this.#served,
      servedSize: (requested: number, served: number, exact: boolean) =>
        this.#servedSize(requested, served, exact),
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
    if (bf.pagesDone > 0) {
      log.info('events: resuming backfill', {
        pagesDone: bf.pagesDone,
        pagesTotal: bf.pagesTotal,
        events: bf.emitted,
      });
    }
    this.#d.metrics.backfill(bf.pagesDone, bf.pagesTotal);
    const progress = new BackfillProgress(bf, log);

    await scan({
      ...this.#scanCallbacks(signal),
      frontier: frontierFromJson(bf.frontier),
      upper,
      hint: bf.hint,
      hintCount: bf.count,
      accept: () => true,
      emit: async (e: ScanEmit) => {
        await this.#deliver(e.rows, e.pages ?? e.read.page);
        if (e.rows.length === 0 && frontierKey(e.frontier) !== frontierKey(frontierFromJson(bf.frontier)))
          this.#stall.progress();
        for (const r of e.rows) if (r.c >= handoverEdge) handover.set(r.pk, r.c.toString());
        bf.frontier = frontierToJson(e.frontier);
        bf.hint = e.hint;
        bf.count = e.count;
        progress.delivered(e.pages?.length ?? 1, e.rows.length, e.hint, this.#pageSize, e.read.s === 0);
        bf.handover = [...handover];
        await this.#save();
        this.#d.metrics.backfill(bf.pagesDone, bf.pagesTotal);
        progress.report(false);
      },
    });
    bf.pagesTotal = bf.pagesDone;
    this.#d.metrics.backfill(bf.pagesDone, bf.pagesTotal);
    progress.report(true);
    // Hand over to the incremental poller: everything up to `upper` was delivered.
    this.#phase = 'incremental';
    this.#backfill = null;
    this.#hw = upper;
    this.#window.clear();
    for (const [pk, c] of handover) this.#window.set(pk, BigInt(c));
    this.#edge = handoverEdge;
    this.#countRef = null;
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
    if (this.#ql === 'yes' && this.#edge !== null) {
      const bound = floorSecond(this.#edge);
      const r = await this.#pollQl(signal);
      if (r !== 'ok') {
        // Redo the poll without QL; if the list holds events the QL answer lacked, QL is not honoured.
        const res = await this.#rescan(signal, 0, undefined);
        if (r === 'broken' || res.regionRows > 0 || res.firstRead?.rows.some((x) => x.c >= bound)) {
          this.#qlOff('the server stopped honouring it (license expired?)');
        }
      }
      this.polls++;
      return;
    }
    const first = await this.#pollPlain(signal);
    this.polls++;
    if (
      this.#ql === 'unknown' &&
      this.#d.cfg.use_ql &&
      this.#d.version.caps.qlCandidate &&
      Date.now() >= this.#qlProbeAfter &&
      first &&
      (this.#d.version.caps.qlWithoutLicence || (await this.#enterprise(signal)))
    ) {
      await this.#probeQl(first, signal);
    }
  }

  /**
   * Whether the server announces an enterprise licence (`is_enterprise` in the anonymous, cheap
   * `/api/v3/root/config/`). Without one, the QL probe would be a full-table substring search (authentik's
   * SearchFilter falls back to it silently), costing seconds to minutes on a large instance; it is then
   * skipped, and asked again after QL_REPROBE_MS (a licence may be added).
   */
  async #enterprise(signal: AbortSignal): Promise<boolean> {
    const r = await this.#d.client.tryJson('version', CONFIG_PATH, signal);
    this.lastPollRequests++;
    let caps: unknown;
    if ('body' in r && r.body !== null && typeof r.body === 'object')
      caps = (r.body as Record<string, unknown>).capabilities;
    if (!Array.isArray(caps))
      return this.#noQl(`could not read ${CONFIG_PATH}`, 'kind' in r ? r.kind : 'no capabilities');
    if (!caps.includes('is_enterprise')) {
      this.#ql = 'no';
      this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
      this.#d.settings.logger.debug(
        'events: the enterprise app is not installed (root/config); QL search not probed, polling with ordering=-created,pk',
      );
      return false;
    }
    // `is_enterprise` only says the enterprise app is installed (real 2023.10.7 and 2025.12.4 list it
    // without a licence): the licence summary says whether QL is honoured.
    const l = await this.#d.client.tryJson('version', LICENSE_PATH, signal);
    this.lastPollRequests++;
    const licensed = 'body' in l ? licenceValid(l.body) : undefined;
    if (licensed === true) return true;
    if (licensed === false) {
      this.#ql = 'no';
      this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
      this.#d.settings.logger.debug('events: no valid enterprise licence; QL search not probed');
      return false;
    }
    return this.#noQl(`could not read ${LICENSE_PATH}`, 'kind' in l ? l.kind : 'unexpected body');
  }

  #noQl(why: string, reason: string): false {
    this.#ql = 'no';
    this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
    if (!this.#configFailLogged) {
      this.#configFailLogged = true;
      this.#d.settings.logger.info(
        `events: ${why} to check for an enterprise licence; not using QL search, polling with ordering=-created,pk`,
        { reason },
      );
    }
    return false;
  }

  /**
   * Page size of the poll's first request: the new events expected since the previous poll (recent
   * rate × elapsed time), plus the largest recent excess over that rate, plus 2 known events (page 1
   * must reach an event strictly older than hw to prove it left no gap). Clamped to [10, page_size].
   */
  #firstPageSize(now: number): number {
    return firstPageSize(this.#rates, this.#lastPollAt, now, this.#pageSize);
  }

  /**
   * Reads what is newer than hw: page 1 of the (QL-filtered) `-created` list sized by #firstPageSize,
   * and more pages only when page 1 holds nothing older than hw. Returns the number of new events and
   * the responses the scan started and ended with.
   */
  async #readNew(
    signal: AbortSignal,
    fetch?: ScanParams['fetch'],
    parse?: ScanParams['parse'],
    beforeTop?: (n: number, read: Read, fresh: Row[]) => Promise<void>,
  ): Promise<{ n: number; first: Read | undefined; last: Read | undefined }> {
    const now = performance.now();
    const k = this.#firstPageSize(now);
    this.stats.firstPageSize = k;
    let n = 0;
    const res = await scan({
      ...this.#scanCallbacks(signal),
      ...(fetch ? { fetch } : {}),
      ...(parse ? { parse } : {}),
      frontier: this.#hwFrontier(),
      upper: null,
      hint: 0,
      hintCount: undefined,
      firstSize: k,
      accept: (r) => !this.#window.has(r.pk),
      emit: async (e: ScanEmit) => {
        n += e.rows.length;
        // The read at the top ends the scan: the caller looks at it before the delivery.
        if (e.read.s === 0 && beforeTop) await beforeTop(n, e.read, e.rows);
        await this.#deliver(e.rows, e.pages ?? e.read.page);
        this.#advance(e.rows, e.frontier.c);
        if (this.#dirty) await this.#save();
      },
    });
    if (this.#lastPollAt !== undefined) {
      this.#rates.push({ ms: now - this.#lastPollAt, n });
      if (this.#rates.length > RATE_HISTORY) this.#rates.shift();
    }
    this.#lastPollAt = now;
    return { n, first: res.firstRead, last: res.lastRead };
  }

  /** A poll with `ordering=-created` pages. Returns its first response (for the QL probe). */
  async #pollPlain(signal: AbortSignal): Promise<Read | undefined> {
    if (this.#hw === null) {
      // Nothing delivered yet (the list was empty at the first start): read all of it.
      const res = await this.#rescan(signal, 0, undefined);
      return res.firstRead;
    }
    // Decide on the page at the top before delivering its events, so that a verification request
    // follows page 1 within one round trip (fewer inserts in between to make it disagree).
    let outcome: Outcome | undefined;
    const { n, first, last } = await this.#readNew(signal, undefined, undefined, async (n, read, fresh) => {
      outcome = await this.#decide(signal, n, read, new Set(fresh.map((r) => r.pk)));
    });
    outcome ??= await this.#decide(signal, n, last, new Set());
    const o: Outcome = outcome;
    switch (o.kind) {
      case 'count':
        this.#countRef = o.count;
        if (o.verified) this.#verifiedNow(o.count);
        break;
      case 'verified':
        this.#verifiedNow(o.countRef);
        break;
      case 'reread':
        await this.#rescan(signal, this.#known(this.#edge), o.count);
        break;
      case 'mismatch':
        this.stats.mismatches++;
        this.#d.metrics.verification('mismatch');
        this.#d.settings.logger.debug('events: the count of the verified region disagrees; re-reading it', {
          edge: this.#edge === null ? null : formatMicros(this.#edge),
          known: this.#known(this.#edge),
          found: o.rank,
        });
        await this.#rescan(signal, o.rank ?? this.#known(this.#edge), o.count);
        break;
    }
    if (this.#dirty) await this.#save();
    return first;
  }

  /**
   * What the poll must do after reading the new events: nothing more (the count check passed), or
   * verify the region above E (free when page 1 reaches it, else one small request), or re-read it.
   * `n`: new events of this poll; `last`: the read at the top; `fresh`: events of `last` not yet in
   * the window (about to be delivered; all above hw, hence above E).
   */
  async #decide(
    signal: AbortSignal,
    n: number,
    last: Read | undefined,
    fresh: ReadonlySet<string>,
  ): Promise<Outcome> {
    const count = last?.count;
    const known = this.#known(this.#edge) + fresh.size;
    const isKnown = (pk: string) => this.#window.has(pk) || fresh.has(pk);
    const d = decideAfterNew({
      countRef: this.#countRef,
      count,
      n,
      due: Date.now() - this.#verifiedAt >= this.#d.cfg.verify_interval,
      verifyReread: this.#d.cfg.verify_reread,
      known,
      top: this.#measureTop(last),
      isKnown,
    });
    if (d.consistent) this.stats.countOk++;
    if (d.outcome !== 'probe') return d.outcome;
    const { size, page } = probePlan(known, this.#pageSize);
    this.stats.probes++;
    this.#d.metrics.verifyRequest();
    let pg: Page;
    try {
      pg = await this.#fetchDesc(size, page, signal);
    } catch (e) {
      if (e instanceof InvalidPageError) return { kind: 'mismatch', rank: undefined, count: undefined };
      throw e;
    }
    this.#d.version.refine('events', pg.envelope, pg.results);
    const s = pg.results.length > 0 && pg.startIndex > 0 ? pg.startIndex - 1 : (page - 1) * size;
    const m = measure(pg.results, s, pg.next === 0, this.#edge);
    return judgeProbe(m, known, isKnown, count, pg.count);
  }

  /** #measure on the poll's last response when it is page 1 (the top of the list). */
  #measureTop(last: Read | undefined): { rank: number; above: string[] } | undefined {
    if (!last || last.s !== 0 || !last.page || last.invalid) return undefined;
    return measure(last.page.results, 0, last.last, this.#edge);
  }

  /**
   * Re-reads everything at or above E (gap-free, from rank `hint`), delivers the events not known yet
   * (late commits, and new ones), and forgets known events that are gone (deleted). E then moves to
   * hw − overlap as of the start; the next poll verifies again (late commits during the re-read).
   */
  async #rescan(
    signal: AbortSignal,
    hint: number,
    hintCount: number | undefined,
  ): Promise<{ firstRead: Read | undefined; regionRows: number }> {
    const x = this.#edge;
    const hwStart = this.#hw;
    const seen = new Set<string>();
    let late = 0;
    if (hwStart !== null) {
      this.stats.rescans++;
      this.#d.metrics.reread();
    }
    const res = await scan({
      ...this.#scanCallbacks(signal),
      frontier: this.#regionFrontier(),
      upper: null,
      hint,
      hintCount,
      accept: (r) => !this.#window.has(r.pk),
      emit: async (e: ScanEmit) => {
        for (const r of e.read.rows) if (x === null || r.c >= x) seen.add(r.pk);
        late += countLate(e.rows, hwStart);
        await this.#deliver(e.rows, e.pages ?? e.read.page);
        this.#advance(e.rows, e.frontier.c);
        if (this.#dirty) await this.#save();
      },
    });
    // The scan saw every event alive at or above E at the time its slice was read: known events it did
    // not see were deleted (retention, GDPR) and no longer count.
    const gone = forgetUnseen(this.#window, x, seen);
    this.#afterRescan(x, hwStart, late, gone);
    if (this.#dirty) await this.#save();
    return { firstRead: res.firstRead, regionRows: seen.size };
  }

  #afterRescan(x: bigint | null, hwStart: bigint | null, late: number, gone: number): void {
    if (hwStart !== null) {
      const e = hwStart - this.#overlap;
      if (x === null || e > x) this.#edge = e;
      this.#dirty = true;
    }
    this.#countRef = null;
    this.stats.late += late;
    this.#d.metrics.late(late);
    if (gone > 0) this.#dirty = true;
    if (late > 0) {
      this.#d.settings.logger.info('events: delivered events that became visible late (commit lag)', {
        late,
        edge: x === null ? null : formatMicros(x),
      });
    }
    if (gone > 0) this.#d.settings.logger.debug('events: known events were deleted on the server', { gone });
    this.#advance([], null);
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
      await this.#beforeRequest(signal);
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
    const honoured = qlHonoured(got, bound, expected);
    if (honoured) {
      this.#ql = 'yes';
      this.#d.settings.logger.info(
        `events: the server honours ${this.#d.version.caps.qlWithoutLicence ? 'AKQL' : 'enterprise QL'} search; polls use search=created >= "…" (verified client-side)`,
      );
    } else {
      this.#ql = 'no';
      this.#qlProbeAfter = Date.now() + QL_REPROBE_MS;
      this.#d.settings.logger.debug(
        this.#d.version.caps.qlWithoutLicence
          ? 'events: QL search not honoured (AKQL not in this release?); polling with ordering=-created'
          : 'events: QL search not honoured (no enterprise license?); polling with ordering=-created',
      );
    }
  }

  /**
   * A poll through QL: page 1 of `search=created >= "<E, to the second>"&ordering=-created`, sized like
   * the plain poll. Its count is the region's count, so every poll verifies: equal to the known events
   * at or above that second, E moves up; otherwise the region is re-read through QL keyset pages. 'ok',
   * or why the caller must redo the poll without QL ('empty' is ambiguous: the region's events may
   * have been deleted).
   */
  async #pollQl(signal: AbortSignal): Promise<'ok' | 'broken' | 'empty'> {
    const x = this.#edge!;
    const bound = floorSecond(x);
    const search = `created >= "${qlSecond(bound)}"`;
    let got: { n: number; first: Read | undefined; last: Read | undefined };
    try {
      got = await this.#readNew(
        signal,
        async (size, page, s) => {
          await this.#beforeRequest(s);
          const p = await this.#d.client.page(
            'events',
            EVENTS_PATH,
            { search, ordering: '-created', page_size: size, page },
            s,
          );
          this.lastPollRequests++;
          return p;
        },
        (page) => {
          const rows = this.#parse(page);
          if (rows.some((r) => r.c < bound)) throw new QlNotHonoured();
          return rows;
        },
      );
    } catch (e) {
      if (e instanceof QlNotHonoured) return 'broken';
      throw e;
    }
    const due = this.#d.cfg.verify_reread && Date.now() - this.#verifiedAt >= this.#d.cfg.verify_interval;
    if (!due && got.last !== undefined && got.last.count === this.#known(bound)) {
      this.stats.countOk++;
      this.#verifiedNow(null);
      if (this.#dirty) await this.#save();
      return 'ok';
    }
    if (!due) {
      this.stats.mismatches++;
      this.#d.metrics.verification('mismatch');
    }
    return this.#readQlRegion(signal, x, bound);
  }

  /**
   * Reads the whole region at or above `bound` through QL keyset pages (`ordering=created`, the bound
   * moved to the second of the newest event seen), every returned `created` checked.
   */
  async #readQlRegion(signal: AbortSignal, x: bigint, bound0: bigint): Promise<'ok' | 'broken' | 'empty'> {
    const hwStart = this.#hw;
    const edge: Frontier = { c: x, pks: new Set() };
    const seen = new Set<string>();
    let deepPage = false;
    let late = 0;
    let bound = bound0;
    let page = 1;
    this.stats.rescans++;
    this.#d.metrics.reread();
    for (let i = 0; i < 100_000; i++) {
      let pg: Page;
      try {
        await this.#beforeRequest(signal);
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
      if (i === 0 && rows.length === 0 && this.#known(bound0) > 0) return 'empty';
      for (const r of rows) {
        seen.add(r.pk);
        // Events of the edge's second below E are covered: known from now on (the count includes them).
        if (covered(r, edge) && !this.#window.has(r.pk)) {
          this.#window.set(r.pk, r.c);
          this.#dirty = true;
        }
      }
      const fresh = rows.filter((r) => !covered(r, edge) && !this.#window.has(r.pk));
      fresh.sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : a.pk < b.pk ? -1 : 1));
      if (fresh.length > 0) {
        late += countLate(fresh, hwStart);
        await this.#deliver(fresh, pg);
        this.#advance(fresh, null);
      }
      if (this.#dirty) await this.#save();
      if (pg.next === 0 || rows.length === 0) break;
      const lastSec = floorSecond(rows[rows.length - 1]!.c);
      if (lastSec > bound) {
        bound = lastSec;
        page = 1;
      } else {
        page = pg.next;
        deepPage = true; // pages within one second may shift under deletes: no pruning below
      }
    }
    const gone = deepPage ? 0 : forgetUnseen(this.#window, bound0, seen);
    this.#afterRescan(x, hwStart, late, gone);
    // A full read of the region is a verification (late commits during it are caught by the next poll).
    this.#verifiedAt = Date.now();
    if (this.#dirty) await this.#save();
    return 'ok';
  }
}
