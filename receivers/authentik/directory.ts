/**
 * Users and groups: a full listing every `interval` with exactly the parameters of Elastic's CEL programs
 * (users `include_groups=false`, groups `include_users=false`, plus `page` and `page_size`), and between full
 * listings only the users changed since (`last_updated__gt`, authentik 2025.8+). Pages are followed
 * through `pagination.next`, never computed from the requested size.
 */
import type { ComponentSettings } from '../../runtime/component.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { errorMessage } from '../../runtime/errors.ts';
import { sleep } from '../../runtime/exporterhelper/retry.ts';
import type { Config } from './config.ts';
import type { AuthentikClient, Page } from './client.ts';
import { InvalidPageError, StoppedError } from './client.ts';
import type { CheckpointStore, DirectoryState } from './checkpoint.ts';
import { checkDirectoryState, DIRECTORY_KEY } from './checkpoint.ts';
import type { Delivery } from './deliver.ts';
import { deliver } from './deliver.ts';
import type { ReceiverMetrics } from './metrics.ts';
import type { RecordFactory } from './records.ts';
import type { ListingInfo } from './listing.ts';
import { newListing } from './listing.ts';
import { parseMicros } from './time.ts';
import type { VersionState } from './version.ts';

export const USERS_PATH = '/api/v3/core/users/';
export const GROUPS_PATH = '/api/v3/core/groups/';

/** Wait after a listing failed for a reason retrying at once would not fix. */
const FAILURE_PAUSE_MS = 300_000;
/** Guard against a server whose `next` never reaches 0. */
const MAX_PAGES = 1_000_000;

export interface DirectoryDeps {
  client: AuthentikClient;
  store: CheckpointStore;
  delivery: Delivery;
  users: Config['users'];
  groups: Config['groups'];
  settings: ComponentSettings;
  metrics: ReceiverMetrics;
  records: RecordFactory;
  version: VersionState;
}

type Kind = 'users' | 'groups';

export class DirectoryCollector {
  readonly #d: DirectoryDeps;
  #state: DirectoryState = {
    v: 1,
    usersFullAt: null,
    usersChangesAt: null,
    usersHw: null,
    groupsFullAt: null,
  };
  #saving: Promise<void> = Promise.resolve();
  readonly #lastError: Record<Kind, string | undefined> = { users: undefined, groups: undefined };
  /** Completed listings (tests). */
  readonly runs = { usersFull: 0, usersChanges: 0, groupsFull: 0 };

  constructor(d: DirectoryDeps) {
    this.#d = d;
  }

  async load(): Promise<void> {
    const s = await this.#d.store.load(DIRECTORY_KEY, checkDirectoryState);
    if (s) this.#state = s;
  }

  #save(): Promise<void> {
    const snapshot = { ...this.#state };
    this.#saving = this.#saving
      .then(() => this.#d.store.save(DIRECTORY_KEY, snapshot))
      .catch((e: unknown) => {
        this.#d.settings.logger.error('cannot persist the directory checkpoint', { reason: errorMessage(e) });
      });
    return this.#saving;
  }

  /** Users loop: full listings every interval, changed users in between. Returns on shutdown. */
  async runUsers(signal: AbortSignal): Promise<void> {
    const cfg = this.#d.users;
    for (;;) {
      const now = Date.now();
      const fullDue = (this.#state.usersFullAt ?? 0) + cfg.interval;
      const changesOn =
        cfg.changes_interval > 0 && this.#d.version.caps.lastUpdatedFilter && this.#state.usersHw !== null;
      const changesDue = changesOn
        ? Math.max(this.#state.usersFullAt ?? 0, this.#state.usersChangesAt ?? 0) + cfg.changes_interval
        : Number.POSITIVE_INFINITY;
      let wait: number;
      if (now >= fullDue) wait = await this.#attempt('users', () => this.#listUsers(signal, false), signal);
      else if (now >= changesDue)
        wait = await this.#attempt('users', () => this.#listUsers(signal, true), signal);
      else wait = Math.min(fullDue, changesDue) - now;
      if (wait < 0) return;
      if (wait > 0 && (await sleep(wait, signal))) return;
    }
  }

  /** Groups loop: a full listing every interval. Returns on shutdown. */
  async runGroups(signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      const due = (this.#state.groupsFullAt ?? 0) + this.#d.groups.interval;
      let wait = due - now;
      if (now >= due) wait = await this.#attempt('groups', () => this.#listGroups(signal), signal);
      if (wait < 0) return;
      if (wait > 0 && (await sleep(wait, signal))) return;
    }
  }

  /** Runs one listing; returns how long to wait before the next decision (-1 = stopped). */
  async #attempt(kind: Kind, fn: () => Promise<void>, signal: AbortSignal): Promise<number> {
    const t0 = performance.now();
    try {
      await fn();
      if (this.#lastError[kind] !== undefined) {
        this.#d.settings.logger.info(`${kind} listings succeed again`);
        this.#lastError[kind] = undefined;
      }
      this.#d.metrics.poll(kind, (performance.now() - t0) / 1000);
      return 0;
    } catch (e) {
      if (e instanceof StoppedError || signal.aborted) return -1;
      const msg = errorMessage(e);
      if (msg !== this.#lastError[kind]) {
        this.#d.settings.logger.error(`${kind} listing failed; trying again later`, { reason: msg });
        this.#lastError[kind] = msg;
      }
      const interval = kind === 'users' ? this.#d.users.interval : this.#d.groups.interval;
      return Math.min(interval, FAILURE_PAUSE_MS);
    }
  }

  async #listUsers(signal: AbortSignal, changesOnly: boolean): Promise<void> {
    const caps = this.#d.version.caps;
    const startedAt = Date.now();
    // Exactly what Elastic's CEL program sends (packages/authentik/data_stream/user/agent/stream/
    // cel.yml.hbs: include_groups=false, page, page_size; no ordering, no include_roles), so that each
    // record, hence event.original and the document _id, equals Elastic Agent's. Servers before 2024.4
    // ignore include_groups, as they do for Elastic.
    const base: Record<string, string | number> = { include_groups: 'false' };
    if (changesOnly && caps.lastUpdatedFilter) {
      base.last_updated__gt = this.#state.usersHw!;
      base.ordering = 'last_updated';
    }
    base.page_size = this.#d.users.page_size;
    let hw = this.#state.usersHw;
    let hwUs = hw === null ? undefined : parseMicros(hw);
    const listing = newListing('users', changesOnly ? 'changes' : 'full', startedAt);
    const n = await this.#paginate('users', USERS_PATH, base, signal, listing, (raw) => {
      const lu = raw.last_updated;
      const us = parseMicros(lu);
      if (us !== undefined && (hwUs === undefined || us > hwUs)) {
        hwUs = us;
        hw = lu as string;
      }
    });
    this.#state.usersHw = hw;
    if (changesOnly) {
      this.#state.usersChangesAt = startedAt;
      this.runs.usersChanges++;
    } else {
      this.#state.usersFullAt = startedAt;
      this.#state.usersChangesAt = startedAt;
      this.runs.usersFull++;
      this.#d.settings.logger.info('users: full listing delivered', { users: n, ms: Date.now() - startedAt });
    }
    await this.#save();
  }

  async #listGroups(signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    // As Elastic's CEL program (data_stream/group/agent/stream/cel.yml.hbs): include_users=false, page, page_size.
    const base: Record<string, string | number> = {
      include_users: 'false',
      page_size: this.#d.groups.page_size,
    };
    const listing = newListing('groups', 'full', startedAt);
    const n = await this.#paginate('groups', GROUPS_PATH, base, signal, listing, () => undefined);
    this.#state.groupsFullAt = startedAt;
    this.runs.groupsFull++;
    this.#d.settings.logger.info('groups: full listing delivered', { groups: n, ms: Date.now() - startedAt });
    await this.#save();
  }

  /** Follows `pagination.next` from page 1, delivering each page; a record is emitted once per listing. */
  async #paginate(
    kind: Kind,
    path: string,
    base: Record<string, string | number>,
    signal: AbortSignal,
    listing: ListingInfo,
    each: (raw: Record<string, unknown>) => void,
  ): Promise<number> {
    const seen = new Set<string>();
    let page = 1;
    let total = 0;
    for (let i = 0; i < MAX_PAGES; i++) {
      // Keys in the order Go's url.Values.Encode writes them (sorted), as Elastic Agent does.
      const all: Record<string, string | number> = { ...base, page };
      const query: Record<string, string | number> = {};
      for (const k of Object.keys(all).sort()) query[k] = all[k]!;
      let pg: Page;
      try {
        pg = await this.#d.client.page(kind, path, query, signal);
      } catch (e) {
        // The list shrank between pages; what is left will be in the next listing.
        if (e instanceof InvalidPageError) break;
        throw e;
      }
      this.#d.version.refine(kind, pg.envelope, pg.results);
      const fresh: Record<string, unknown>[] = [];
      for (const raw of pg.results) {
        const id = String(raw.pk);
        if (seen.has(id)) continue; // shifted pages repeat a row
        seen.add(id);
        fresh.push(raw);
        each(raw);
      }
      if (fresh.length > 0) {
        const collectedAt = nowHrTime();
        const rec = kind === 'users' ? 'user' : 'group';
        const records = this.#d.records;
        const text = pg.text;
        const ids = fresh.map((r) => String(r.pk));
        const info: ListingInfo = { ...listing, count: pg.count };
        const make = (attempt: number) => {
          if (attempt === 1) return fresh.map((r) => records.directory(r, rec, collectedAt, info));
          const parsed = JSON.parse(text) as { results: Record<string, unknown>[] };
          const byId = new Map(parsed.results.map((r) => [String(r.pk), r]));
          return ids.map((id, k) => records.directory(byId.get(id) ?? fresh[k]!, rec, collectedAt, info));
        };
        if (await deliver(this.#d.delivery, kind, fresh.length, make))
          this.#d.metrics.emitted(kind, fresh.length);
        total += fresh.length;
      }
      if (pg.next === 0 || pg.next === page) break;
      page = pg.next;
    }
    return total;
  }

  /** Waits for pending checkpoint writes. */
  async flush(): Promise<void> {
    await this.#saving;
  }
}
