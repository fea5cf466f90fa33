/**
 * The `authentik_changes` processor: watches the user and group snapshot records flowing through the
 * pipeline, compares each with the last known state of that user or group (kept in a storage
 * extension), and adds one ECS record per change (dataset `authentik.change`) to the batch. Every
 * record of the batch is forwarded unchanged (snapshots stay exactly as Elastic's); the listing
 * attributes the authentik receiver adds are removed.
 *
 * Delivery: the state moves on only after `next.consume` resolved for the batch that carried the
 * changes, so a refused batch is offered again with the same changes (same ids), a restart never
 * reports a change twice nor misses one made while the collector was down (the first listing after
 * the start is compared with the stored state). Deletions need a complete full listing: every record
 * of it seen (`authentik.listing.count`).
 */
import type { Counter } from 'prom-client';
import type {
  ComponentSettings,
  Host,
  LogsConsumer,
  Processor,
  StorageClient,
} from '../../runtime/component.ts';
import { isStorageExtension } from '../../runtime/component.ts';
import { CollectorError, ErrorCode, RetryableError, errorMessage } from '../../runtime/errors.ts';
import type { AnyValue, LogRecord, LogsBatch } from '../../runtime/model.ts';
import {
  ATTR_DATASET,
  ATTR_DOCUMENT_ID,
  ATTR_NAMESPACE,
  hrTimeToMillis,
  nowHrTime,
} from '../../runtime/model.ts';
import { counter } from '../../runtime/telemetry/metrics.ts';
import { ATTR_LISTING_COUNT, ATTR_LISTING_ID, ATTR_LISTING_MODE } from '../../receivers/authentik/listing.ts';
import type { Config } from './config.ts';
import type { Change, GroupState, UserState } from './diff.ts';
import { diffGroup, diffUser, groupFromRecord, sameGroup, sameUser, userFromRecord } from './diff.ts';
import { CHANGE_DATASET, changeDocument, changeId } from './document.ts';
import { InstanceStore } from './state.ts';
import type { InstanceState } from './state.ts';

export const CHANGES_METRIC = 'otelcol_processor_authentik_changes_records';

type Kind = 'users' | 'groups';

interface Listing {
  id: string;
  seen: Set<string>;
  count: number | undefined;
}

interface DirItem {
  kind: Kind;
  raw: Record<string, unknown>;
  instance: string;
  listing: { id: string; mode: string; count: number | undefined } | undefined;
  at: string;
}

/** The raw API record of a snapshot or event record: the body itself, or the `event.original` of an ECS document. */
export function rawOf(body: AnyValue | undefined): Record<string, unknown> | undefined {
  let v: unknown = body;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return undefined;
  const o = v as Record<string, unknown>;
  const ev = o.event as Record<string, unknown> | undefined;
  if (typeof ev === 'object' && ev !== null && typeof ev.original === 'string' && o.ecs !== undefined) {
    try {
      const parsed = JSON.parse(ev.original) as unknown;
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  }
  return o;
}

function instanceOf(r: LogRecord): string {
  const v = r.resource?.['server.address'] ?? r.resource?.['host.name'];
  return typeof v === 'string' && v !== '' ? v : 'default';
}

function isoOf(r: LogRecord): string {
  const ms = hrTimeToMillis(r.timestamp ?? r.observedTimestamp);
  return new Date(Number.isFinite(ms) && ms > 0 ? Math.floor(ms) : Date.now()).toISOString();
}

function normIso(v: string | null): string | undefined {
  if (v === null) return undefined;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

export class AuthentikChangesProcessor implements Processor {
  readonly capabilities = { mutatesData: true };
  readonly #settings: ComponentSettings;
  readonly #config: Config;
  readonly #next: LogsConsumer;
  readonly #emitted: Counter<'action'>;
  #store: InstanceStore | undefined;
  readonly #listings = new Map<string, Listing>();
  /** Serialises batches that carry users or groups (diff, deliver, commit). */
  #lock: Promise<void> = Promise.resolve();
  #stopped = false;
  #loadError: string | undefined;
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(settings: ComponentSettings, config: Config, next: LogsConsumer) {
    this.#settings = settings;
    this.#config = config;
    this.#next = next;
    this.#emitted = counter(settings.metrics, {
      name: CHANGES_METRIC,
      help: 'Change records (dataset authentik.change) emitted by the authentik_changes processor, by event.action',
      labelNames: ['action'],
    });
  }

  async start(host: Host): Promise<void> {
    let client: StorageClient | undefined;
    const cfg = this.#config;
    if (cfg.storage !== undefined) {
      const ext = host.getExtension(cfg.storage);
      if (!ext) {
        throw new Error(
          `processors.${this.#settings.id}.storage: extension "${cfg.storage}" is not configured (declare it under extensions and list it in service.extensions)`,
        );
      }
      if (!isStorageExtension(ext)) {
        throw new Error(
          `processors.${this.#settings.id}.storage: extension "${cfg.storage}" is not a storage extension`,
        );
      }
      client = await ext.getClient('processor', this.#settings.id, cfg.storage_key ?? 'authentik_changes');
    } else {
      this.#settings.logger.warn(
        'authentik_changes: no storage configured: the known users and groups live in memory only, so after a restart the first listing is a new baseline (changes made while the collector was down are not reported); set storage: file_storage',
      );
    }
    this.#store = new InstanceStore(client, this.#settings.logger);
    this.#flushTimer = setInterval(() => {
      void this.#store?.flushCounts();
    }, cfg.counts_flush_interval);
    this.#flushTimer.unref();
  }

  async shutdown(): Promise<void> {
    this.#stopped = true;
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    await this.#lock.catch(() => undefined);
    await this.#store?.flushCounts();
    await this.#store?.idle();
  }

  async consume(batch: LogsBatch): Promise<void> {
    if (this.#stopped) throw new CollectorError(ErrorCode.SHUTTING_DOWN, `${this.#settings.id} is shut down`);
    const store = this.#store;
    if (!store) throw new CollectorError(ErrorCode.SHUTTING_DOWN, `${this.#settings.id} is not started`);
    const dir: DirItem[] = [];
    const counts = new Map<string, Map<number, number>>();
    for (const r of batch) {
      const ds = r.attributes[ATTR_DATASET];
      if (ds === 'authentik.user' || ds === 'authentik.group') {
        const a = r.attributes;
        const id = a[ATTR_LISTING_ID];
        const mode = a[ATTR_LISTING_MODE];
        const count = a[ATTR_LISTING_COUNT];
        delete a[ATTR_LISTING_ID];
        delete a[ATTR_LISTING_MODE];
        delete a[ATTR_LISTING_COUNT];
        const raw = rawOf(r.body);
        if (!raw) continue;
        dir.push({
          kind: ds === 'authentik.user' ? 'users' : 'groups',
          raw,
          instance: instanceOf(r),
          listing:
            typeof id === 'string' && typeof mode === 'string'
              ? { id, mode, count: typeof count === 'number' ? count : undefined }
              : undefined,
          at: isoOf(r),
        });
      } else if (ds === 'authentik.event') {
        const raw = rawOf(r.body);
        const user = raw?.user as Record<string, unknown> | undefined;
        const pk = typeof user === 'object' && user !== null ? user.pk : undefined;
        const n =
          typeof pk === 'number' ? pk : typeof pk === 'string' && /^\d+$/.test(pk) ? Number(pk) : undefined;
        if (n === undefined) continue;
        const inst = instanceOf(r);
        let m = counts.get(inst);
        if (!m) counts.set(inst, (m = new Map<number, number>()));
        m.set(n, (m.get(n) ?? 0) + 1);
      }
    }
    if (dir.length === 0) {
      await this.#next.consume(batch);
      for (const [inst, m] of counts) (await this.#state(store, inst)).addCounts(m);
      return;
    }
    const prev = this.#lock;
    let release!: () => void;
    this.#lock = new Promise<void>((r) => (release = r));
    await prev.catch(() => undefined);
    try {
      await this.#process(store, batch, dir, counts);
    } finally {
      release();
    }
  }

  async #process(
    store: InstanceStore,
    batch: LogsBatch,
    dir: DirItem[],
    counts: Map<string, Map<number, number>>,
  ): Promise<void> {
    const cfg = this.#config;
    const pendingUsers = new Map<string, Map<number, UserState | null>>();
    const pendingGroups = new Map<string, Map<string, GroupState | null>>();
    const ready = new Map<string, Set<Kind>>();
    const touched = new Map<string, { inst: string; kind: Kind; listing: Listing; nextListing: Listing }>();
    const out: LogRecord[] = [];
    const detectedAt = new Date().toISOString();
    const states = new Map<string, InstanceState>();
    for (const d of dir)
      if (!states.has(d.instance)) states.set(d.instance, await this.#state(store, d.instance));

    const groupLookup = (inst: string) => (pk: string) => {
      const p = pendingGroups.get(inst)?.get(pk);
      if (p !== undefined) return p ?? undefined;
      return states.get(inst)!.groups.get(pk);
    };
    const emit = (
      inst: string,
      c: Change,
      prevRev: string,
      listing: string,
      extra: { happenedAt?: string | undefined; eventsShipped?: number },
    ) => {
      const id = changeId(inst, c, prevRev);
      const doc = changeDocument(
        c,
        {
          instance: inst,
          namespace: cfg.namespace,
          prevRev,
          detectedAt,
          happenedAt: extra.happenedAt,
          group: groupLookup(inst),
          eventsShipped: extra.eventsShipped,
          listing,
        },
        id,
      );
      const now = nowHrTime();
      const ms = Date.parse(doc['@timestamp'] as string);
      out.push({
        timestamp: Number.isFinite(ms) ? [Math.floor(ms / 1000), (ms % 1000) * 1e6] : now,
        observedTimestamp: now,
        eventName: (doc.event as { action: string }).action,
        body: doc as AnyValue,
        attributes: {
          [ATTR_DATASET]: CHANGE_DATASET,
          [ATTR_NAMESPACE]: cfg.namespace,
          [ATTR_DOCUMENT_ID]: id,
        },
      });
    };

    // Groups first: user changes name the groups (and the superuser groups) known after this batch.
    const ordered = [...dir.filter((d) => d.kind === 'groups'), ...dir.filter((d) => d.kind === 'users')];
    for (const d of ordered) {
      const st = states.get(d.instance)!;
      const isReady = d.kind === 'users' ? st.usersReady : st.groupsReady;
      const mode = d.listing?.mode ?? 'replay';
      if (d.kind === 'groups') {
        const next = groupFromRecord(d.raw);
        if (!next) continue;
        let pg = pendingGroups.get(d.instance);
        if (!pg) pendingGroups.set(d.instance, (pg = new Map<string, GroupState | null>()));
        const p = pg.has(next.pk) ? pg.get(next.pk) : st.groups.get(next.pk);
        const prevState = p ?? undefined;
        if (!isReady) {
          pg.set(next.pk, { ...next, rev: prevState?.rev ?? 0 });
        } else {
          const changes = diffGroup(prevState, next);
          const prevRev = prevState ? String(prevState.rev) : 'new';
          if (changes.length > 0) pg.set(next.pk, { ...next, rev: (prevState?.rev ?? -1) + 1 });
          else if (prevState && !sameGroup(prevState, next)) pg.set(next.pk, { ...next, rev: prevState.rev });
          for (const c of changes) emit(d.instance, c, prevRev, mode, {});
        }
        this.#track(touched, d, next.pk);
      } else {
        const next = userFromRecord(d.raw);
        if (!next) continue;
        let pu = pendingUsers.get(d.instance);
        if (!pu) pendingUsers.set(d.instance, (pu = new Map<number, UserState | null>()));
        const p = pu.has(next.pk) ? pu.get(next.pk) : st.users.get(next.pk);
        const prevState = p ?? undefined;
        if (!isReady) {
          pu.set(next.pk, { ...next, rev: prevState?.rev ?? 0 });
        } else {
          const changes = diffUser(prevState, next);
          const prevRev = prevState ? String(prevState.rev) : `new:${next.uuid ?? ''}`;
          if (changes.length > 0) pu.set(next.pk, { ...next, rev: (prevState?.rev ?? -1) + 1 });
          else if (prevState && !sameUser(prevState, next)) pu.set(next.pk, { ...next, rev: prevState.rev });
          for (const c of changes) {
            let happenedAt: string | undefined;
            if (c.kind === 'password-changed') happenedAt = normIso(next.password_change_date);
            else if (
              c.kind === 'email-changed' ||
              c.kind === 'username-changed' ||
              c.kind === 'name-changed' ||
              c.kind === 'type-changed' ||
              c.kind === 'activated' ||
              c.kind === 'deactivated'
            ) {
              const a = normIso(next.last_updated);
              const b = prevState ? normIso(prevState.last_updated) : undefined;
              if (a !== undefined && (b === undefined || a > b)) happenedAt = a;
            }
            emit(d.instance, c, prevRev, mode, { happenedAt });
          }
        }
        this.#track(touched, d, String(next.pk));
      }
      if (!d.listing) {
        // No listing attributes (e.g. a file replay): every record is compared from the first one on.
        let s = ready.get(d.instance);
        if (!s) ready.set(d.instance, (s = new Set()));
        s.add(d.kind);
      }
    }

    // Complete full listings: whatever is known and was not listed is gone.
    const completed: string[] = [];
    for (const [key, t] of touched) {
      const l = t.nextListing;
      if (l.count === undefined || l.seen.size < l.count) continue;
      completed.push(key);
      const st = states.get(t.inst)!;
      const isReady = t.kind === 'users' ? st.usersReady : st.groupsReady;
      if (isReady) {
        if (t.kind === 'users') {
          let pu = pendingUsers.get(t.inst);
          if (!pu) pendingUsers.set(t.inst, (pu = new Map<number, UserState | null>()));
          const known = new Set<number>([...st.users.keys(), ...pu.keys()]);
          for (const pk of known) {
            if (l.seen.has(String(pk))) continue;
            const prevState = pu.has(pk) ? pu.get(pk) : st.users.get(pk);
            if (!prevState) continue;
            const shipped = st.counts.get(pk) ?? 0;
            for (const c of diffUser(prevState, undefined)) {
              emit(t.inst, c, String(prevState.rev), 'full', { eventsShipped: shipped });
            }
            pu.set(pk, null);
          }
        } else {
          let pg = pendingGroups.get(t.inst);
          if (!pg) pendingGroups.set(t.inst, (pg = new Map<string, GroupState | null>()));
          const known = new Set<string>([...st.groups.keys(), ...pg.keys()]);
          for (const pk of known) {
            if (l.seen.has(pk)) continue;
            const prevState = pg.has(pk) ? pg.get(pk) : st.groups.get(pk);
            if (!prevState) continue;
            for (const c of diffGroup(prevState, undefined))
              emit(t.inst, c, String(prevState.rev), 'full', {});
            pg.set(pk, null);
          }
        }
      }
      let s = ready.get(t.inst);
      if (!s) ready.set(t.inst, (s = new Set()));
      s.add(t.kind);
    }

    for (const r of out) batch.push(r);
    await this.#next.consume(batch);

    // Delivered: commit.
    for (const r of out) this.#emitted.inc({ action: r.eventName ?? 'unknown' });
    for (const [, t] of touched) this.#listings.set(`${t.inst}|${t.kind}`, t.nextListing);
    for (const key of completed) this.#listings.delete(key);
    for (const [inst, st] of states) {
      st.commit(pendingUsers.get(inst), pendingGroups.get(inst), ready.get(inst));
    }
    for (const [inst, m] of counts) (await this.#state(store, inst)).addCounts(m);
    await store.persist([...states.keys()]).catch((e: unknown) => {
      this.#settings.logger.error('authentik_changes: cannot persist the known users and groups', {
        reason: errorMessage(e),
      });
    });
  }

  /**
   * The state of an instance. A stored state that cannot be read stops this pipeline's batches
   * (retryable: nothing is dropped) with the health status `permanent_error` and one error line naming
   * the key to delete, instead of silently starting a new baseline.
   */
  async #state(store: InstanceStore, inst: string): Promise<InstanceState> {
    try {
      return await store.get(inst);
    } catch (e) {
      const msg = errorMessage(e);
      if (this.#loadError !== msg) {
        this.#loadError = msg;
        this.#settings.logger.error(msg);
        this.#settings.reportStatus('permanent_error', msg);
      }
      throw new RetryableError(msg, { retryAfterMs: 30_000 });
    }
  }

  /** Records that `id` was listed; the listing is copied so a refused batch leaves it as it was. */
  #track(
    touched: Map<string, { inst: string; kind: Kind; listing: Listing; nextListing: Listing }>,
    d: DirItem,
    id: string,
  ): void {
    if (!d.listing || d.listing.mode !== 'full') return;
    const key = `${d.instance}|${d.kind}`;
    let t = touched.get(key);
    if (!t || t.nextListing.id !== d.listing.id) {
      const cur = this.#listings.get(key);
      const base =
        cur && cur.id === d.listing.id
          ? cur
          : { id: d.listing.id, seen: new Set<string>(), count: undefined };
      t = {
        inst: d.instance,
        kind: d.kind,
        listing: base,
        nextListing: { id: base.id, seen: new Set(base.seen), count: base.count },
      };
      touched.set(key, t);
    }
    t.nextListing.seen.add(id);
    if (d.listing.count !== undefined) t.nextListing.count = d.listing.count;
  }
}
