/**
 * The `authentik_dedupe` processor. An authentik event can reach a pipeline more than once: pushed
 * by the `authentik_webhook` receiver and polled by the `authentik` receiver, re-sent by authentik
 * after a timeout, or re-delivered by a receiver after a crash. This processor forwards each event pk
 * once:
 *
 * - A pk is remembered only after the downstream `consume` resolved (delivered or durably queued)
 *   and the memory was written to storage; only then does this `consume` resolve.
 * - A record whose pk is remembered is dropped and acknowledged (counted as a duplicate, not as lost:
 *   its first copy was delivered), so the sender's checkpoint advances.
 * - A record whose pk is in flight in another batch waits for that batch: dropped if it was delivered,
 *   forwarded if it failed. So two paths never deliver the same event at the same time.
 * - Memory is bucketed by minute of `created`; a bucket older than `ttl` is forgotten. Writes of one
 *   bucket are coalesced (one storage write covers every pk added while the previous one ran).
 *
 * Records that are not authentik events (users, groups, other datasets, no pk) pass through.
 */
import type {
  ComponentSettings,
  Host,
  LogsConsumer,
  Processor,
  StorageClient,
} from '../../runtime/component.ts';
import { isStorageExtension, once } from '../../runtime/component.ts';
import { CollectorError, ErrorCode } from '../../runtime/errors.ts';
import type { LogRecord, LogsBatch } from '../../runtime/model.ts';
import { ATTR_DATASET, hrTimeFromIso, hrTimeToMillis } from '../../runtime/model.ts';
import type { Config } from './config.ts';
import { DedupeMetrics } from './metrics.ts';

const BUCKET_MS = 60_000;
const KEY_PREFIX = 'seen-';
const INDEX_KEY = 'buckets';

/** Which path a record came from (metrics label), from its instrumentation scope. */
export function sourceOf(r: LogRecord): 'push' | 'poll' | 'other' {
  const s = r.scope?.name ?? '';
  if (s.endsWith('/authentik_webhook')) return 'push';
  if (s.endsWith('/authentik')) return 'poll';
  return 'other';
}

/** The event pk and created (ms) of an authentik event record, or undefined for anything else. */
export function eventKey(r: LogRecord): { pk: string; createdMs: number } | undefined {
  if (r.attributes[ATTR_DATASET] !== 'authentik.event') return undefined;
  const b = r.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return undefined;
  const o = b as Record<string, unknown>;
  // Raw API record (before authentik_ecs) or an ECS document (event.id) after it.
  let pk: unknown = o.pk;
  let created: unknown = o.created;
  if (pk === undefined && typeof o.event === 'object' && o.event !== null) {
    const ev = o.event as Record<string, unknown>;
    pk = ev.id;
    created = ev.created ?? o['@timestamp'];
  }
  if (typeof pk !== 'string' || pk === '') return undefined;
  const t = typeof created === 'string' ? hrTimeFromIso(created) : undefined;
  const createdMs = t ? hrTimeToMillis(t) : r.timestamp ? hrTimeToMillis(r.timestamp) : Date.now();
  return { pk: pk.toLowerCase(), createdMs };
}

interface Bucket {
  pks: Set<string>;
  /** A write that has not started yet (joins later additions). */
  pending: Promise<void> | undefined;
  /** The write in progress. */
  current: Promise<void> | undefined;
}

export class DedupeProcessor implements Processor {
  readonly capabilities = { mutatesData: false };
  readonly #settings: ComponentSettings;
  readonly #config: Config;
  readonly #next: LogsConsumer;
  readonly #metrics: DedupeMetrics;
  readonly #buckets = new Map<number, Bucket>();
  /** pk → bucket, for O(1) lookups. */
  readonly #seen = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<boolean>>();
  #storage: StorageClient | undefined;
  #stopped = false;
  #active = 0;
  #idle: (() => void) | undefined;
  #lastPrune = 0;

  constructor(settings: ComponentSettings, config: Config, next: LogsConsumer) {
    this.#settings = settings;
    this.#config = config;
    this.#next = next;
    this.#metrics = new DedupeMetrics(settings.metrics, settings.id, settings.pipeline ?? '');
  }

  /** Number of remembered pks (tests, metrics). */
  get remembered(): number {
    return this.#seen.size;
  }

  async start(host: Host): Promise<void> {
    const cfg = this.#config;
    if (cfg.storage === undefined) {
      this.#settings.logger.warn(
        'authentik_dedupe without storage: delivered pks are remembered in memory only, so after a restart an event pushed before it can be delivered again by the poller; set storage: file_storage',
      );
      return;
    }
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
    const pipeline = this.#settings.pipeline ?? 'logs';
    this.#storage = await ext.getClient(
      'processor',
      `${this.#settings.id}@${pipeline}`,
      cfg.storage_key ?? `authentik_dedupe:${pipeline}`,
    );
    await this.#load();
  }

  async #load(): Promise<void> {
    const st = this.#storage!;
    const index = await st.get(INDEX_KEY);
    const horizon = this.#bucketOf(Date.now() - this.#config.ttl);
    const ids = index ? index.toString('utf8').split(',').filter(Boolean).map(Number) : [];
    let loaded = 0;
    for (const id of ids) {
      if (!Number.isInteger(id)) continue;
      if (id < horizon) {
        await st.delete(`${KEY_PREFIX}${id}`);
        continue;
      }
      const v = await st.get(`${KEY_PREFIX}${id}`);
      if (!v) continue;
      const b = this.#bucket(id);
      for (const pk of v.toString('utf8').split('\n')) {
        if (pk === '') continue;
        b.pks.add(pk);
        this.#seen.set(pk, id);
        loaded++;
      }
    }
    await this.#writeIndex();
    this.#metrics.remembered(this.#seen.size);
    this.#settings.logger.info('authentik_dedupe: loaded delivered event pks', {
      pks: loaded,
      buckets: this.#buckets.size,
    });
  }

  #bucketOf(ms: number): number {
    return Math.floor(ms / BUCKET_MS);
  }

  #bucket(id: number): Bucket {
    let b = this.#buckets.get(id);
    if (!b) {
      b = { pks: new Set(), pending: undefined, current: undefined };
      this.#buckets.set(id, b);
    }
    return b;
  }

  async consume(batch: LogsBatch): Promise<void> {
    if (this.#stopped)
      throw new CollectorError(ErrorCode.SHUTTING_DOWN, 'authentik_dedupe processor is shut down');
    this.#active++;
    try {
      await this.#consume(batch);
    } finally {
      this.#active--;
      if (this.#active === 0) this.#idle?.();
    }
  }

  async #consume(batch: LogsBatch): Promise<void> {
    // Wait until no pk of this batch is in flight elsewhere; then decide synchronously.
    for (;;) {
      const waits: Promise<boolean>[] = [];
      for (const r of batch) {
        const k = eventKey(r);
        const p = k ? this.#inflight.get(k.pk) : undefined;
        if (p) waits.push(p);
      }
      if (waits.length === 0) break;
      await Promise.allSettled(waits);
    }
    if (this.#stopped)
      throw new CollectorError(ErrorCode.SHUTTING_DOWN, 'authentik_dedupe processor is shut down');
    this.#prune();
    const forward: LogsBatch = [];
    const fresh: { pk: string; createdMs: number; source: 'push' | 'poll' | 'other' }[] = [];
    const inBatch = new Set<string>();
    const dups = { push: 0, poll: 0, other: 0 };
    for (const r of batch) {
      const k = eventKey(r);
      if (!k) {
        forward.push(r);
        continue;
      }
      const src = sourceOf(r);
      if (this.#seen.has(k.pk) || inBatch.has(k.pk)) {
        dups[src]++;
        continue;
      }
      inBatch.add(k.pk);
      fresh.push({ ...k, source: src });
      forward.push(r);
    }
    for (const [src, n] of Object.entries(dups)) if (n > 0) this.#metrics.duplicates(src, n);
    if (fresh.length > 0 && this.#settings.logger.debugEnabled && (dups.push > 0 || dups.poll > 0)) {
      this.#settings.logger.debug('authentik_dedupe dropped duplicates', dups);
    }
    if (forward.length === 0) return;
    let settle!: (delivered: boolean) => void;
    const done = new Promise<boolean>((r) => (settle = r));
    for (const f of fresh) this.#inflight.set(f.pk, done);
    let delivered = false;
    try {
      await this.#next.consume(forward);
      const now = Date.now();
      for (const f of fresh) this.#metrics.forwarded(f.source, (now - f.createdMs) / 1000);
      await this.#remember(fresh);
      delivered = true;
    } finally {
      for (const f of fresh) if (this.#inflight.get(f.pk) === done) this.#inflight.delete(f.pk);
      settle(delivered);
    }
  }

  /** Adds the pks to memory and waits until storage holds them. */
  async #remember(items: { pk: string; createdMs: number }[]): Promise<void> {
    const horizon = this.#bucketOf(Date.now() - this.#config.ttl);
    const touched = new Set<number>();
    for (const it of items) {
      const id = this.#bucketOf(it.createdMs);
      if (id < horizon) continue; // older than ttl: nothing can be compared against it anyway
      this.#bucket(id).pks.add(it.pk);
      this.#seen.set(it.pk, id);
      touched.add(id);
    }
    this.#metrics.remembered(this.#seen.size);
    if (!this.#storage || touched.size === 0) return;
    const newBucket = [...touched].some((id) => !this.#indexed.has(id));
    await Promise.all([...touched].map((id) => this.#write(id)));
    if (newBucket) await this.#writeIndex();
  }

  readonly #indexed = new Set<number>();
  #indexWrite: Promise<void> = Promise.resolve();

  #writeIndex(): Promise<void> {
    const run = async () => {
      const ids = [...this.#buckets.keys()].sort((a, b) => a - b);
      await this.#storage?.set(INDEX_KEY, Buffer.from(ids.join(',')));
      this.#indexed.clear();
      for (const id of ids) this.#indexed.add(id);
    };
    this.#indexWrite = this.#indexWrite.then(run, run);
    return this.#indexWrite;
  }

  /** Coalesced write of one bucket: resolves once a write that started after this call finished. */
  #write(id: number): Promise<void> {
    const b = this.#bucket(id);
    if (b.pending) return b.pending;
    const prev = b.current ?? Promise.resolve();
    const p = prev
      .catch(() => undefined)
      .then(async () => {
        b.pending = undefined;
        const run = this.#storage!.set(`${KEY_PREFIX}${id}`, Buffer.from([...b.pks].join('\n')));
        b.current = run;
        try {
          await run;
        } finally {
          if (b.current === run) b.current = undefined;
        }
      });
    b.pending = p;
    return p;
  }

  #prune(): void {
    const now = Date.now();
    if (now - this.#lastPrune < BUCKET_MS) return;
    this.#lastPrune = now;
    const horizon = this.#bucketOf(now - this.#config.ttl);
    let dropped = false;
    for (const [id, b] of this.#buckets) {
      if (id >= horizon || b.pending || b.current) continue;
      for (const pk of b.pks) if (this.#seen.get(pk) === id) this.#seen.delete(pk);
      this.#buckets.delete(id);
      dropped = true;
      void this.#storage?.delete(`${KEY_PREFIX}${id}`).catch(() => undefined);
    }
    if (dropped) {
      this.#metrics.remembered(this.#seen.size);
      void this.#writeIndex().catch(() => undefined);
    }
  }

  readonly shutdown = once(async () => {
    this.#stopped = true;
    if (this.#active > 0) {
      await new Promise<void>((r) => {
        this.#idle = r;
        setTimeout(r, 10_000).unref();
      });
    }
    await this.#indexWrite.catch(() => undefined);
    await this.#storage?.close();
  });
}
