/**
 * The emulator's HTTP server: authentik's /api/v3 semantics for events, users, groups, version and
 * root config, plus fault injection, a request log and CPU accounting.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { EventGenerator, US_PER_DAY, isSuperuser, isoMicros, makeDirectory, parseIsoMicros } from './data.ts';
import type { EventObject, GroupRec, UserRec } from './data.ts';
import { PROFILE_INFO } from './profiles.ts';
import type { ProfileInfo, VersionProfile } from './profiles.ts';
import {
  QlError,
  createdRangeOf,
  evalEventQl,
  jsonbText,
  matchesTerms,
  parseOrdering,
  parseQl,
  searchTerms,
  sortBy,
  validateEventQl,
} from './query.ts';
import type { CreatedRange, OrderTerm, QlNode } from './query.ts';
import { Stream, eventIndexOf, eventUuid, h32, rand } from './rng.ts';
import { EventStore } from './store.ts';
import { createNotifications } from './notifications.ts';
import type {
  Dataset,
  Emulator,
  EmulatorOptions,
  EmulatorStats,
  FaultConfig,
  FaultKind,
  RequestLogEntry,
} from './index.ts';
import { SETTINGS_PATH, settingsBody } from './settings.ts';

type Query = Record<string, string | string[]>;

interface Resp {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Resp =>
  headers ? { status, body, headers } : { status, body };

const DETAIL = {
  notProvided: 'Authentication credentials were not provided.',
  invalid: 'Token invalid/expired',
  denied: 'You do not have permission to perform this action.',
  invalidPage: 'Invalid page.',
};

const DEFAULT_FAULT_KINDS: FaultKind[] = [
  '500',
  '502',
  '503',
  '504',
  '429',
  'reset',
  'truncated',
  'non_json',
];

const HTML_500 =
  '\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n';
const htmlGateway = (code: number, text: string) =>
  `<html>\r\n<head><title>${code} ${text}</title></head>\r\n<body>\r\n<center><h1>${code} ${text}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;

/** Last value of a query parameter, like Django's QueryDict.get(). */
function qget(q: Query, k: string): string | undefined {
  const v = q[k];
  return Array.isArray(v) ? v[v.length - 1] : v;
}
function qlist(q: Query, k: string): string[] {
  const v = q[k];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Python int() on a query string value (whitespace and sign allowed), or undefined. */
function pyInt(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^\s*([+-]?\d+)\s*$/.exec(s);
  return m ? Number(m[1]) : undefined;
}

/** authentik's include_* handling: absent → default; present → value.lower() == "true". */
function flag(q: Query, k: string, def: boolean): boolean {
  const v = qget(q, k);
  return v === undefined ? def : v.toLowerCase() === 'true';
}

/** django-filter BooleanFilter: true/True/1 and false/False/0; anything else → no filtering. */
function boolFilter(q: Query, k: string): boolean | undefined {
  const v = qget(q, k);
  if (v === undefined) return undefined;
  if (['true', 'True', '1'].includes(v)) return true;
  if (['false', 'False', '0'].includes(v)) return false;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Pagination (authentik.api.pagination.Pagination over Django's Paginator)
// ---------------------------------------------------------------------------------------------

interface PageSlice {
  offset: number;
  size: number;
  pagination: Record<string, number>;
}

function paginate(q: Query, count: number, defSize: number, maxSize: number | undefined): PageSlice | Resp {
  let size = defSize;
  const req = pyInt(qget(q, 'page_size'));
  if (req !== undefined && req > 0) size = req;
  if (maxSize !== undefined) size = Math.min(size, maxSize);
  const numPages = count === 0 ? 1 : Math.ceil(count / size);
  const rawPage = qget(q, 'page') || '1';
  const page = rawPage === 'last' ? numPages : /^\s*[+-]?\d+\s*$/.test(rawPage) ? Number(rawPage) : NaN;
  if (!Number.isInteger(page) || page < 1 || page > numPages) {
    return json(404, { detail: DETAIL.invalidPage });
  }
  const offset = (page - 1) * size;
  return {
    offset,
    size,
    pagination: {
      next: page < numPages ? page + 1 : 0,
      previous: page > 1 ? page - 1 : 0,
      count,
      current: page,
      total_pages: numPages,
      start_index: count === 0 ? 0 : offset + 1,
      end_index: page === numPages ? count : page * size,
    },
  };
}

function scalarText(v: unknown): string {
  return typeof v === 'string'
    ? v
    : typeof v === 'number' || typeof v === 'boolean'
      ? String(v)
      : JSON.stringify(v);
}

function isResp(x: PageSlice | Resp): x is Resp {
  return (x as Resp).status !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Event views: a contiguous range of the `created` order (fast path), or an explicit list
// ---------------------------------------------------------------------------------------------

type EventView =
  { kind: 'range'; lo: number; hi: number; desc: boolean } | { kind: 'list'; gis: Int32Array; desc: boolean };

const EVENT_ORDER_FIELDS = [
  'pk',
  'user',
  'action',
  'app',
  'context',
  'client_ip',
  'created',
  'expires',
  'brand',
];
const USER_ORDER_FIELDS = [
  'pk',
  'username',
  'name',
  'email',
  'is_active',
  'last_login',
  'date_joined',
  'last_updated',
  'path',
  'type',
  'uuid',
  'uid',
];
const GROUP_ORDER_FIELDS = ['pk', 'num_pk', 'name', 'is_superuser'];

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const seed = (opts.seed ?? 1) >>> 0;
  const profile: VersionProfile = opts.version ?? '2026.2';
  const info: ProfileInfo = PROFILE_INFO[profile];
  if (!info) throw new Error(`unknown version profile ${String(profile)}`);
  const enterprise = opts.enterprise ?? false;
  const enterpriseApp = opts.enterpriseApp ?? true;
  const honourPk = opts.honourPkOrdering ?? true;
  /** One-shot hooks run between a list's COUNT and its rows (see listEvents). */
  const betweenCountAndRows: (() => void)[] = [];
  const defSize = opts.defaultPageSize ?? info.defaultPageSize;
  const maxSize = opts.maxPageSize ?? info.maxPageSize;
  const denied = new Set<Dataset>(opts.denyDatasets ?? []);
  const appPasswords = new Set(opts.appPasswords ?? []);
  const logRequests = opts.logRequests ?? true;
  const maxLog = opts.maxLogEntries ?? 200_000;
  let token = opts.token ?? 'emulator-token';
  const retiredTokens = new Set<string>();
  let rotations = 0;

  const nEvents = Math.max(0, Math.floor(opts.events ?? 1000));
  const nowUs = Date.now() * 1000;

  // ---- directory ----
  const dir = makeDirectory({
    seed,
    users: Math.max(0, Math.floor(opts.users ?? 50)),
    groups: Math.max(0, Math.floor(opts.groups ?? 12)),
    nowUs,
  });
  const users = dir.users;
  const groups = dir.groups;
  const roles = dir.roles;

  // ---- events ----
  const gen = new EventGenerator({
    seed,
    profile,
    actors: dir.actors,
    legacyTenantBelow: Math.floor(nEvents * (opts.legacyTenantShare ?? 0.02)),
  });
  const store = new EventStore(Math.max(1024, nEvents + 1024));
  {
    let spacingUs = (opts.spacingMs ?? 30_000) * 1000;
    const span = 330 * US_PER_DAY;
    if (opts.spacingMs === undefined && nEvents * spacingUs > span) spacingUs = Math.floor(span / nEvents);
    spacingUs = Math.max(1, spacingUs);
    const created = new Float64Array(nEvents);
    let t = 0;
    for (let i = 0; i < nEvents; i++) {
      const r = rand(seed, i, 100);
      let gap: number;
      if (spacingUs >= 2_000_000) {
        // bursts: a quarter of events follow the previous one within the same second or so
        const big = (spacingUs - 112_500) / 0.975;
        gap =
          r < 0.25
            ? 1 + Math.floor((r / 0.25) * 900_000)
            : Math.floor(big * (0.2 + ((r - 0.25) / 0.75) * 2.2));
      } else gap = Math.max(1, Math.floor(spacingUs * (0.5 + r)));
      t += i === 0 ? 0 : gap;
      created[i] = t;
    }
    const startUs =
      opts.startTime !== undefined
        ? opts.startTime.getTime() * 1000
        : nowUs - 60_000_000 - (created[nEvents - 1] ?? 0);
    const jitterUs = (h32(seed, 0, 101) % 1000) + 1;
    for (let i = 0; i < nEvents; i++) created[i] = Math.floor(startUs + jitterUs + created[i]!);
    store.appendSorted(created);
  }

  const pkOf = (gi: number) => eventUuid(seed, gi);
  const giOf = (pk: string): number | undefined => {
    const gi = eventIndexOf(seed, pk.toLowerCase());
    if (gi === undefined || !store.isAlive(gi) || pkOf(gi) !== pk.toLowerCase()) return undefined;
    return gi;
  };
  /** Events written by tests (`events.insertRecords`), by generator index; rendered in the API's key order. */
  const custom = new Map<number, Omit<EventObject, 'pk' | 'created' | 'expires'>>();
  const materialise = (gi: number): EventObject => {
    const c = custom.get(gi);
    if (c === undefined) return gen.make(gi, store.createdOf(gi));
    const us = store.createdOf(gi);
    const { user, action, app, context, client_ip, brand } = c;
    return {
      pk: pkOf(gi),
      user,
      action,
      app,
      context,
      client_ip,
      created: isoMicros(us),
      expires: isoMicros(us + 365 * US_PER_DAY),
      brand,
    };
  };
  const userPkOf = (gi: number): number => {
    const c = custom.get(gi);
    if (c === undefined) return gen.userPkOf(gi);
    const pk = (c.user as { pk?: unknown } | undefined)?.pk;
    return typeof pk === 'number' ? pk : 0;
  };

  // ---- stats / log ----
  const emptyStats = (): EmulatorStats => ({
    requests: 0,
    bytes: 0,
    cpuMs: 0,
    byPath: {},
    byStatus: {},
    faults: {},
  });
  const requests: RequestLogEntry[] = [];
  const stats = emptyStats();
  const measureCpu = opts.measureCpu ?? true;
  const cpu = <T>(fn: () => T): T => {
    if (!measureCpu) return fn();
    const c0 = process.cpuUsage();
    try {
      return fn();
    } finally {
      const d = process.cpuUsage(c0);
      stats.cpuMs += (d.user + d.system) / 1000;
    }
  };

  // ---- faults ----
  let faults: FaultConfig | undefined = opts.faults;
  let faultRng = new Stream(seed ^ 0xfa017);

  // ---- derived-view cache for filtered / non-created orderings ----
  interface CachedView {
    version: number;
    generated: number;
    gis: Int32Array;
  }
  const viewCache = new Map<string, CachedView>();

  /**
   * Incremental refresh of a cached created-ordered list: drop rows deleted since, scan only rows
   * generated since (appends and commit-lag inserts), merge by created.
   */
  async function refreshList(
    hit: CachedView,
    range: CreatedRange | undefined,
    preds: Array<(gi: number, ev: () => EventObject) => boolean>,
  ): Promise<Int32Array> {
    const kept = cpu(() => hit.gis.filter((gi) => store.isAlive(gi)));
    const fresh: number[] = [];
    const inRange = (us: number) =>
      !range ||
      ((range.loIncl ? us >= range.lo : us > range.lo) && (range.hiIncl ? us <= range.hi : us < range.hi));
    for (let gi = hit.generated; gi < store.generated;) {
      const end = Math.min(store.generated, gi + 20_000);
      cpu(() => {
        for (; gi < end; gi++) {
          if (!store.isAlive(gi) || !inRange(store.createdOf(gi))) continue;
          let cached: EventObject | undefined;
          const g = gi;
          const ev = () => (cached ??= materialise(g));
          if (preds.every((p) => p(g, ev))) fresh.push(g);
        }
      });
      if (gi < store.generated) await new Promise((r) => setImmediate(r));
    }
    if (fresh.length === 0) return kept;
    return cpu(() => {
      fresh.sort((a, b) => store.createdOf(a) - store.createdOf(b));
      const out = new Int32Array(kept.length + fresh.length);
      let i = 0;
      let j = 0;
      let k = 0;
      while (i < kept.length || j < fresh.length) {
        if (
          j >= fresh.length ||
          (i < kept.length && store.createdOf(kept[i]!) < store.createdOf(fresh[j]!))
        ) {
          out[k++] = kept[i++]!;
        } else out[k++] = fresh[j++]!;
      }
      return out;
    });
  }

  /** builds the explicit list of matching gis for generic filters/orderings, yielding every 20k rows */
  async function buildList(
    lo: number,
    hi: number,
    preds: Array<(gi: number, ev: () => EventObject) => boolean>,
    order: OrderTerm[] | undefined,
  ): Promise<Int32Array> {
    const out: number[] = [];
    const keys: unknown[][] = [];
    const fields = order?.map((t) => t.field) ?? [];
    for (let k = lo; k < hi;) {
      const end = Math.min(hi, k + 20_000);
      cpu(() => {
        for (; k < end; k++) {
          const gi = store.at(k);
          let cached: EventObject | undefined;
          const ev = () => (cached ??= materialise(gi));
          if (preds.every((p) => p(gi, ev))) {
            out.push(gi);
            if (order)
              keys.push(
                fields.map((f) => (f === 'created' || f === 'expires' ? store.createdOf(gi) : ev()[f])),
              );
          }
        }
      });
      if (k < hi) await new Promise((r) => setImmediate(r));
    }
    if (!order) return Int32Array.from(out);
    const idx = out.map((_, i) => i);
    const terms = order.map((t, i) => ({ field: String(i), desc: t.desc }));
    cpu(() => sortBy(idx, terms, (i, f) => keys[i]![Number(f)]));
    return Int32Array.from(idx.map((i) => out[i]!));
  }

  async function listEvents(q: Query): Promise<Resp> {
    // ---- filters (EventsFilter) ----
    const preds: Array<(gi: number, ev: () => EventObject) => boolean> = [];
    const keyParts: string[] = [];
    const action = qget(q, 'action');
    if (action !== undefined && action !== '') {
      const a = action.toLowerCase();
      preds.push((gi) => gen.actionOf(gi).toLowerCase().includes(a));
      keyParts.push(`action=${action}`);
    }
    if (info.actionsFilter) {
      const acts = qlist(q, 'actions').filter((a) => a !== '');
      if (acts.length > 0) {
        const bad = acts.find((a) => !gen.actions.includes(a));
        if (bad !== undefined) {
          return json(400, {
            actions: [`Select a valid choice. ${bad} is not one of the available choices.`],
          });
        }
        const set = new Set(acts);
        preds.push((gi) => set.has(gen.actionOf(gi)));
        keyParts.push(`actions=${acts.join(',')}`);
      }
    }
    const eq = (param: string, get: (ev: EventObject) => unknown) => {
      const v = qget(q, param);
      if (v === undefined || v === '') return;
      preds.push((_gi, ev) => {
        const x = get(ev());
        return x !== undefined && x !== null && scalarText(x) === v;
      });
      keyParts.push(`${param}=${v}`);
    };
    const ctx = (ev: EventObject) =>
      (ev.context ?? {}) as Record<string, Record<string, unknown> | undefined>;
    eq('brand_name', (ev) => (ev.brand as Record<string, unknown>).name);
    eq('client_ip', (ev) => ev.client_ip);
    eq('context_authorized_app', (ev) => ctx(ev).authorized_application?.pk);
    eq('context_model_app', (ev) => ctx(ev).model?.app);
    eq('context_model_name', (ev) => ctx(ev).model?.model_name);
    {
      const v = qget(q, 'context_model_pk');
      if (v !== undefined && v !== '') {
        const want = v.replace(/-/g, '');
        preds.push((_gi, ev) => {
          const pk = ctx(ev()).model?.pk;
          return pk !== undefined && scalarText(pk).replace(/-/g, '') === want;
        });
        keyParts.push(`context_model_pk=${want}`);
      }
    }
    {
      const v = qget(q, 'username');
      if (v !== undefined && v !== '') {
        preds.push((_gi, ev) => {
          const e = ev();
          return (
            (e.user as Record<string, unknown>).username === v ||
            (e.context as Record<string, unknown>).username === v
          );
        });
        keyParts.push(`username=${v}`);
      }
    }

    // ---- search: enterprise QL or plain SearchFilter ----
    let lo = 0;
    let hi = store.size;
    let range: CreatedRange | undefined;
    const search = qget(q, 'search');
    if (search !== undefined && search !== '') {
      let ast: QlNode | undefined;
      // 2025.8–2026.2: DjangoQL only with a licence; AKQL (2026.5 profile) without one.
      if ((enterprise || info.qlOpen) && info.qlSearch) {
        try {
          ast = parseQl(search);
          validateEventQl(ast);
        } catch (e) {
          if (!(e instanceof QlError)) throw e;
          ast = undefined;
        }
      }
      if (ast) {
        range = createdRangeOf(ast);
        if (range) {
          lo = Number.isFinite(range.lo) ? store.lowerBound(range.lo, !range.loIncl) : 0;
          hi = Number.isFinite(range.hi) ? store.lowerBound(range.hi, range.hiIncl) : store.size;
          if (hi < lo) hi = lo;
          keyParts.push(
            `range=${range.lo}${range.loIncl ? '<=' : '<'}c${range.hiIncl ? '<=' : '<'}${range.hi}`,
          );
        } else {
          const node = ast;
          preds.push((_gi, ev) => evalEventQl(node, ev()));
          keyParts.push(`ql=${search}`);
        }
      } else {
        const terms = searchTerms(search);
        if (terms.length > 0) {
          const lowered = terms.map((t) => t.toLowerCase());
          const SEP = '\u0001';
          // Every term must match one of event_uuid, user, action, app, context, client_ip (icontains);
          // cheap fields first so the jsonb text of context is built only when still needed.
          preds.push((gi, ev) => {
            const cheap = `${pkOf(gi)}${SEP}${gen.actionOf(gi)}`.toLowerCase();
            let rem = lowered.filter((t) => !cheap.includes(t));
            if (rem.length === 0) return true;
            const e = ev();
            const mid =
              `${String(e.app)}${SEP}${typeof e.client_ip === 'string' ? e.client_ip : ''}${SEP}${jsonbText(e.user)}`.toLowerCase();
            rem = rem.filter((t) => !mid.includes(t));
            if (rem.length === 0) return true;
            const c = jsonbText(e.context).toLowerCase();
            return rem.every((t) => c.includes(t));
          });
          keyParts.push(`search=${terms.join('\u0000')}`);
        }
      }
    }

    // ---- ordering ----
    const order = parseOrdering(qget(q, 'ordering'), EVENT_ORDER_FIELDS, ['-created']);
    const first = order[0]!;
    const fast = first.field === 'created' || first.field === 'expires';

    const rangeNow = (): { lo: number; hi: number } => {
      if (!range) return { lo: 0, hi: store.size };
      const l = Number.isFinite(range.lo) ? store.lowerBound(range.lo, !range.loIncl) : 0;
      const h = Number.isFinite(range.hi) ? store.lowerBound(range.hi, range.hiIncl) : store.size;
      return { lo: l, hi: Math.max(l, h) };
    };
    let view: EventView;
    if (preds.length === 0 && fast) view = { kind: 'range', lo, hi, desc: first.desc };
    else {
      const key = `${keyParts.join('&')}|${fast ? 'fast' : JSON.stringify(order)}`;
      const hit = viewCache.get(key);
      let gis: Int32Array;
      if (hit && hit.version === store.version) gis = hit.gis;
      else if (hit && fast) gis = await refreshList(hit, range, preds);
      else gis = await buildList(lo, hi, preds, fast ? undefined : order);
      viewCache.delete(key);
      viewCache.set(key, { version: store.version, generated: store.generated, gis });
      if (viewCache.size > 8) viewCache.delete(viewCache.keys().next().value!);
      view = { kind: 'list', gis, desc: fast && first.desc };
    }

    const count = view.kind === 'range' ? view.hi - view.lo : view.gis.length;
    const pg = paginate(q, count, defSize, maxSize);
    if (isResp(pg)) return pg;
    // Django takes `count` (and so `next`) and the rows in two queries: rows committed in between
    // change the second one. The hook lets tests land inserts or deletes there.
    const race = betweenCountAndRows.shift();
    if (race) {
      race();
      if (view.kind === 'range') {
        const r = rangeNow();
        view = { kind: 'range', lo: r.lo, hi: r.hi, desc: view.desc };
      }
    }
    const v = view;
    return cpu(() => {
      const n = v.kind === 'range' ? v.hi - v.lo : v.gis.length;
      const giAt = (i: number): number =>
        v.kind === 'range'
          ? store.at(v.desc ? v.hi - 1 - i : v.lo + i)
          : v.gis[v.desc ? v.gis.length - 1 - i : i]!;
      const end = Math.min(n, pg.offset + pg.size);
      const gis: number[] = [];
      for (let i = pg.offset; i < end; i++) gis.push(giAt(i));
      if (fast) arrangeTies(gis, pg.offset, n, giAt, honourPk ? order[1] : undefined);
      return json(200, envelope(pg, gis.map(materialise)));
    });
  }

  /**
   * Tied `created` values in a page: PostgreSQL returns them in an order that changes from one request
   * to the next under `ORDER BY created` alone (a fresh permutation of the whole tie block per request
   * here), and in pk order when `pk` is the second ordering term. `gis` holds view positions
   * [offset, offset + gis.length); blocks reaching past the page are arranged as a whole.
   */
  function arrangeTies(
    gis: number[],
    offset: number,
    n: number,
    giAt: (i: number) => number,
    second: { field: string; desc: boolean } | undefined,
  ): void {
    const rng = new Stream((seed ^ 0x71e5) + stats.requests * 7919);
    for (let j = 0; j < gis.length;) {
      const c = store.createdOf(gis[j]!);
      let k = j + 1;
      while (k < gis.length && store.createdOf(gis[k]!) === c) k++;
      let a = offset + j;
      let b = offset + k;
      if (j === 0) while (a > 0 && store.createdOf(giAt(a - 1)) === c) a--;
      if (k === gis.length) while (b < n && store.createdOf(giAt(b)) === c) b++;
      if (b - a > 1) {
        const block: number[] = [];
        for (let i = a; i < b; i++) block.push(giAt(i));
        if (second?.field === 'pk') {
          const pk = new Map(block.map((g) => [g, pkOf(g)]));
          block.sort((x, y) => (pk.get(x)! < pk.get(y)! ? -1 : 1) * (second.desc ? -1 : 1));
        } else {
          for (let i = block.length - 1; i > 0; i--) {
            const r = rng.int(i + 1);
            [block[i], block[r]] = [block[r]!, block[i]!];
          }
        }
        for (let i = j; i < k; i++) gis[i] = block[offset + i - a]!;
      }
      j = k;
    }
  }

  function envelope(pg: PageSlice, results: unknown[]): Record<string, unknown> {
    const body: Record<string, unknown> = { pagination: pg.pagination, results };
    if (info.autocomplete) body.autocomplete = {};
    return body;
  }

  // ---- users ----
  const groupByPk = new Map<string, GroupRec>();
  const refreshGroupIndex = () => {
    groupByPk.clear();
    for (const g of groups) groupByPk.set(g.pk, g);
  };
  refreshGroupIndex();

  const partialGroup = (g: GroupRec): Record<string, unknown> =>
    info.groupParents
      ? { pk: g.pk, num_pk: g.num_pk, name: g.name, is_superuser: g.is_superuser, attributes: g.attributes }
      : {
          pk: g.pk,
          num_pk: g.num_pk,
          name: g.name,
          is_superuser: g.is_superuser,
          parent: g.parent,
          parent_name: g.parent ? (groupByPk.get(g.parent)?.name ?? null) : null,
          attributes: g.attributes,
        };
  const roleObj = (pk: string) => {
    const r = roles.find((x) => x.pk === pk);
    return { pk, name: r?.name ?? '' };
  };

  function renderUser(u: UserRec, includeGroups: boolean, includeRoles: boolean): Record<string, unknown> {
    const o: Record<string, unknown> = {
      pk: u.pk,
      username: u.username,
      name: u.name,
      is_active: u.is_active,
      last_login: u.last_login,
    };
    if (info.dateJoined) o.date_joined = u.date_joined;
    o.is_superuser = isSuperuser(u, groups);
    o.groups = u.groups;
    o.groups_obj =
      includeGroups || !info.includeFlags
        ? u.groups
            .map((pk) => groupByPk.get(pk))
            .filter((g) => g !== undefined)
            .map(partialGroup)
        : null;
    if (info.userRoles) {
      o.roles = u.roles;
      o.roles_obj = includeRoles ? u.roles.map(roleObj) : null;
    }
    o.email = u.email;
    o.avatar = u.avatar;
    o.attributes = u.attributes;
    o.uid = u.uid;
    o.path = u.path;
    o.type = u.type;
    o.uuid = u.uuid;
    if (info.passwordChangeDate) o.password_change_date = u.password_change_date;
    if (info.lastUpdated) o.last_updated = u.last_updated;
    return o;
  }

  function dateFilter(q: Query, name: string): number | undefined | Resp {
    const v = qget(q, name);
    if (v === undefined || v === '') return undefined;
    const us = parseIsoMicros(v);
    if (Number.isNaN(us)) return json(400, { [name]: ['Enter a valid date/time.'] });
    return us;
  }

  function listUsers(q: Query): Resp {
    let list = users.slice();
    const filt = (param: string, get: (u: UserRec) => unknown) => {
      const v = qget(q, param);
      if (v !== undefined && v !== '') list = list.filter((u) => String(get(u)) === v);
    };
    filt('username', (u) => u.username);
    filt('email', (u) => u.email);
    filt('name', (u) => u.name);
    filt('uuid', (u) => u.uuid);
    filt('path', (u) => u.path);
    const ps = qget(q, 'path_startswith');
    if (ps) list = list.filter((u) => u.path.startsWith(ps));
    const active = boolFilter(q, 'is_active');
    if (active !== undefined) list = list.filter((u) => u.is_active === active);
    const su = boolFilter(q, 'is_superuser');
    if (su !== undefined) list = list.filter((u) => isSuperuser(u, groups) === su);
    const types = qlist(q, 'type').filter((t) => t !== '');
    if (types.length > 0) list = list.filter((u) => types.includes(u.type));
    const gpk = qlist(q, 'groups_by_pk').filter((t) => t !== '');
    if (gpk.length > 0) list = list.filter((u) => u.groups.some((g) => gpk.includes(g)));
    const gname = qlist(q, 'groups_by_name').filter((t) => t !== '');
    if (gname.length > 0)
      list = list.filter((u) => u.groups.some((g) => gname.includes(groupByPk.get(g)?.name ?? '')));
    if (info.lastUpdated) {
      for (const [param, keep] of [
        ['last_updated__gt', (a: number, b: number) => a > b],
        ['last_updated__lt', (a: number, b: number) => a < b],
        ['last_updated', (a: number, b: number) => a === b],
      ] as const) {
        const d = dateFilter(q, param);
        if (d !== undefined && typeof d === 'object') return d;
        if (typeof d === 'number') list = list.filter((u) => keep(u.lastUpdatedUs, d));
      }
    }
    const search = qget(q, 'search');
    if (search) {
      const terms = searchTerms(search);
      list = list.filter((u) => matchesTerms(terms, () => [u.email, u.name, u.uuid, u.username]));
    }
    const order = parseOrdering(qget(q, 'ordering'), USER_ORDER_FIELDS, ['username']);
    sortBy(list, order, (u, f) =>
      f === 'last_updated' ? u.lastUpdatedUs : (u as unknown as Record<string, unknown>)[f],
    );
    const pg = paginate(q, list.length, defSize, maxSize);
    if (isResp(pg)) return pg;
    const includeGroups = flag(q, 'include_groups', true);
    const includeRoles = flag(q, 'include_roles', true);
    const results = list
      .slice(pg.offset, pg.offset + pg.size)
      .map((u) => renderUser(u, includeGroups, includeRoles));
    return json(200, envelope(pg, results));
  }

  // ---- groups ----
  const ancestors = (g: GroupRec): GroupRec[] => {
    const out: GroupRec[] = [];
    let p = g.parent ? groupByPk.get(g.parent) : undefined;
    while (p && !out.includes(p)) {
      out.push(p);
      p = p.parent ? groupByPk.get(p.parent) : undefined;
    }
    return out;
  };
  const relatedGroup = (g: GroupRec) => ({
    pk: g.pk,
    name: g.name,
    is_superuser: g.is_superuser,
    attributes: g.attributes,
    group_uuid: g.pk,
  });
  const userByPk = new Map<number, UserRec>();
  const refreshUserIndex = () => {
    userByPk.clear();
    for (const u of users) userByPk.set(u.pk, u);
  };
  refreshUserIndex();
  const partialUser = (u: UserRec) => ({
    pk: u.pk,
    username: u.username,
    name: u.name,
    is_active: u.is_active,
    last_login: u.last_login,
    email: u.email,
    attributes: u.attributes,
    uid: u.uid,
  });

  function renderGroup(g: GroupRec, q: Query): Record<string, unknown> {
    const o: Record<string, unknown> = {
      pk: g.pk,
      num_pk: g.num_pk,
      name: g.name,
      is_superuser: g.is_superuser,
    };
    if (info.groupParents) {
      const parents = g.parent ? [g.parent] : [];
      o.parents = parents;
      o.parents_obj = flag(q, 'include_parents', false)
        ? parents
            .map((p) => groupByPk.get(p))
            .filter((x) => x !== undefined)
            .map(relatedGroup)
        : null;
    } else {
      o.parent = g.parent;
      o.parent_name = g.parent ? (groupByPk.get(g.parent)?.name ?? null) : null;
    }
    o.users = g.users;
    o.users_obj =
      !info.includeFlags || flag(q, 'include_users', true)
        ? g.users
            .map((pk) => userByPk.get(pk))
            .filter((u) => u !== undefined)
            .map(partialUser)
        : null;
    o.attributes = g.attributes;
    o.roles = g.roles;
    o.roles_obj = g.roles.map(roleObj);
    if (info.inheritedRoles) {
      o.inherited_roles_obj = flag(q, 'include_inherited_roles', false)
        ? [...new Set(ancestors(g).flatMap((a) => a.roles))].filter((r) => !g.roles.includes(r)).map(roleObj)
        : null;
    }
    if (info.groupChildren) {
      const children = groups.filter((c) => c.parent === g.pk);
      o.children = children.map((c) => c.pk);
      o.children_obj = flag(q, 'include_children', false) ? children.map(relatedGroup) : null;
    }
    return o;
  }

  function listGroups(q: Query): Resp {
    let list = groups.slice();
    const name = qget(q, 'name');
    if (name) list = list.filter((g) => g.name === name);
    const su = boolFilter(q, 'is_superuser');
    if (su !== undefined) list = list.filter((g) => g.is_superuser === su);
    const mpk = qlist(q, 'members_by_pk')
      .map(Number)
      .filter((n) => Number.isInteger(n));
    if (mpk.length > 0) list = list.filter((g) => g.users.some((u) => mpk.includes(u)));
    const mun = qlist(q, 'members_by_username').filter((t) => t !== '');
    if (mun.length > 0)
      list = list.filter((g) => g.users.some((u) => mun.includes(userByPk.get(u)?.username ?? '')));
    const search = qget(q, 'search');
    if (search) {
      const terms = searchTerms(search);
      list = list.filter((g) => matchesTerms(terms, () => [g.name]));
    }
    const order = parseOrdering(qget(q, 'ordering'), GROUP_ORDER_FIELDS, ['name']);
    sortBy(list, order, (g, f) => (g as unknown as Record<string, unknown>)[f]);
    const pg = paginate(q, list.length, defSize, maxSize);
    if (isResp(pg)) return pg;
    const results = list.slice(pg.offset, pg.offset + pg.size).map((g) => renderGroup(g, q));
    return json(200, envelope(pg, results));
  }

  // ---- auth (authentik.api.authentication.TokenAuthentication; DRF turns failures into 403) ----
  function authenticate(header: string | undefined): Resp | undefined {
    const raw = (header ?? '').trim();
    if (raw === '') return json(403, { detail: DETAIL.notProvided });
    const sp = raw.search(/\s/);
    const scheme = sp === -1 ? raw : raw.slice(0, sp);
    if (scheme.toLowerCase() !== 'bearer') return json(403, { detail: DETAIL.notProvided });
    const key = sp === -1 ? '' : raw.slice(sp + 1).trim();
    // Real 2023.10.7 and 2025.12.4 answer an empty Bearer value like a missing header.
    if (key === '') return json(403, { detail: DETAIL.notProvided });
    if (key !== token || appPasswords.has(key) || retiredTokens.has(key) || key === '') {
      return json(403, { detail: DETAIL.invalid });
    }
    return undefined;
  }

  async function route(
    method: string,
    path: string,
    q: Query,
    authz: string | undefined,
    body?: Buffer,
  ): Promise<Resp> {
    if (path === '/api/v3/root/config/') {
      if (method !== 'GET') return json(405, { detail: `Method "${method}" not allowed.` });
      return json(200, {
        error_reporting: {
          enabled: false,
          sentry_dsn: '',
          environment: '',
          send_pii: false,
          traces_sample_rate: 0,
        },
        capabilities: [
          'can_save_media',
          'can_geo_ip',
          'can_asn',
          'can_impersonate',
          // Listed whenever the enterprise app is installed, licensed or not (both real releases).
          ...(enterpriseApp ? ['is_enterprise'] : []),
        ],
        cache_timeout: 300,
        cache_timeout_flows: 300,
        cache_timeout_policies: 300,
      });
    }
    if (!path.startsWith('/api/v3/')) return json(404, { detail: 'Not found.' });
    const authErr = authenticate(authz);
    if (authErr) return authErr;
    if (path === SETTINGS_PATH && method === 'GET') return json(200, settingsBody()); // settings.ts
    const pushResp = notifications.route(method, path, q, body);
    if (pushResp) return pushResp;
    const known =
      path === '/api/v3/admin/version/' ||
      path === '/api/v3/enterprise/license/summary/' ||
      path === '/api/v3/events/events/' ||
      path === '/api/v3/core/users/' ||
      path === '/api/v3/core/groups/' ||
      path.startsWith('/api/v3/events/events/');
    if (!known) return json(404, { detail: 'Not found.' });
    if (method !== 'GET') return json(405, { detail: `Method "${method}" not allowed.` });
    if (path === '/api/v3/enterprise/license/summary/') {
      // Any authenticated user may read it (permission IsAuthenticated); `status` per LicenseSummary.
      return json(200, {
        internal_users: enterprise ? 100 : 0,
        external_users: enterprise ? 100 : 0,
        status: enterprise ? 'valid' : 'unlicensed',
        latest_valid: isoMicros(enterprise ? nowUs + 365 * US_PER_DAY : 0),
        license_flags: [],
      });
    }
    if (path === '/api/v3/admin/version/') {
      return json(200, {
        version_current: info.versionCurrent,
        version_latest: info.versionCurrent,
        version_latest_valid: true,
        build_hash: '',
        outdated: false,
        outpost_outdated: false,
      });
    }
    if (path === '/api/v3/events/events/') {
      if (denied.has('events')) return json(403, { detail: DETAIL.denied });
      return listEvents(q);
    }
    if (path.startsWith('/api/v3/events/events/')) {
      if (denied.has('events')) return json(403, { detail: DETAIL.denied });
      const m = /^\/api\/v3\/events\/events\/([^/]+)\/$/.exec(path);
      const gi = m ? giOf(decodeURIComponent(m[1]!)) : undefined;
      if (gi === undefined) return json(404, { detail: 'No Event matches the given query.' });
      return cpu(() => json(200, materialise(gi)));
    }
    if (path === '/api/v3/core/users/') {
      if (denied.has('users')) return json(403, { detail: DETAIL.denied });
      return cpu(() => listUsers(q));
    }
    if (denied.has('groups')) return json(403, { detail: DETAIL.denied });
    return cpu(() => listGroups(q));
  }

  // ---- notification rules, transports and webhook delivery (notifications.ts) ----
  const notifications = createNotifications(
    {
      info,
      users,
      groups,
      refresh: () => {
        refreshUserIndex();
        refreshGroupIndex();
      },
      renderUser: (u) => renderUser(u, true, true),
      renderGroup,
      eventByPk: (pk) => {
        const gi = giOf(pk);
        return gi === undefined ? undefined : materialise(gi);
      },
      removeUser: (pk) => emu.users.remove(pk),
    },
    opts.notifications,
  );

  // ---- HTTP plumbing ----
  const held = new Set<http.ServerResponse>();

  function record(entry: RequestLogEntry): void {
    stats.requests++;
    stats.bytes += entry.bytes;
    stats.byPath[entry.path] = (stats.byPath[entry.path] ?? 0) + 1;
    stats.byStatus[String(entry.status)] = (stats.byStatus[String(entry.status)] ?? 0) + 1;
    if (entry.fault) stats.faults[entry.fault] = (stats.faults[entry.fault] ?? 0) + 1;
    if (logRequests) {
      requests.push(entry);
      if (requests.length > maxLog) requests.splice(0, requests.length - maxLog);
    }
  }

  function decideFault(path: string): { kind: FaultKind | undefined; delay: number } {
    // Fixed number of draws per request keeps the sequence deterministic for a given seed.
    const r1 = faultRng.next();
    const r2 = faultRng.next();
    const r3 = faultRng.next();
    const f = faults;
    if (!f) return { kind: undefined, delay: 0 };
    const delay = Math.max(0, (f.latencyMs ?? 0) + (f.jitterMs ?? 0) * r3);
    const applies = f.paths ? f.paths.some((p) => path.startsWith(p)) : path.startsWith('/api/v3/');
    const kinds = f.kinds && f.kinds.length > 0 ? f.kinds : DEFAULT_FAULT_KINDS;
    const kind =
      applies && (f.rate ?? 0) > 0 && r1 < (f.rate ?? 0) ? kinds[Math.floor(r2 * kinds.length)] : undefined;
    return { kind, delay };
  }

  async function handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    reqBody?: Buffer,
  ): Promise<void> {
    const t0 = performance.now();
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator');
    const path = url.pathname;
    const query: Query = {};
    for (const [k, v] of url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const entry: RequestLogEntry = { method, path, query, status: 0, bytes: 0, ms: 0, at };
    const { kind, delay } = decideFault(path);
    if (kind) entry.fault = kind;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));

    if (kind === 'reset') {
      entry.ms = performance.now() - t0;
      record(entry);
      const s = req.socket as Socket & { resetAndDestroy?: () => void };
      if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else s.destroy();
      return;
    }
    if (kind === 'timeout') {
      record(entry);
      held.add(res);
      res.on('close', () => {
        held.delete(res);
        entry.ms = performance.now() - t0;
      });
      return;
    }

    let resp: Resp;
    if (kind === '429') {
      const s = faults?.retryAfterSeconds ?? 1;
      resp = json(
        429,
        { detail: `Request was throttled. Expected available in ${s} second${s === 1 ? '' : 's'}.` },
        { 'Retry-After': String(s) },
      );
    } else if (kind === '500' || kind === '502' || kind === '503' || kind === '504' || kind === 'non_json') {
      const status = kind === 'non_json' ? 200 : Number(kind);
      const body =
        kind === '500'
          ? HTML_500
          : kind === '503'
            ? htmlGateway(503, 'Service Temporarily Unavailable')
            : kind === '504'
              ? htmlGateway(504, 'Gateway Time-out')
              : htmlGateway(502, 'Bad Gateway');
      send(res, status, Buffer.from(body), 'text/html; charset=utf-8', {}, req, entry, t0, undefined);
      return;
    } else {
      try {
        resp = await route(method, path, query, req.headers.authorization, reqBody);
      } catch (e) {
        resp = json(500, { detail: `emulator error: ${(e as Error).message}` });
      }
    }
    const body = resp.status === 204 ? Buffer.alloc(0) : cpu(() => Buffer.from(JSON.stringify(resp.body)));
    send(res, resp.status, body, 'application/json', resp.headers ?? {}, req, entry, t0, kind);
  }

  function send(
    res: http.ServerResponse,
    status: number,
    raw: Buffer,
    type: string,
    headers: Record<string, string>,
    req: http.IncomingMessage,
    entry: RequestLogEntry,
    t0: number,
    kind: FaultKind | undefined,
  ): void {
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && raw.length > 0;
    const payload = gzip ? cpu(() => gzipSync(raw, { level: 4 })) : raw;
    const h: Record<string, string | number> = {
      'Content-Type': type,
      'Content-Length': payload.length,
      Vary: 'Accept-Encoding',
      'X-Authentik-Version': info.versionCurrent,
      ...headers,
    };
    if (gzip) h['Content-Encoding'] = 'gzip';
    entry.status = status;
    if (kind === 'truncated') {
      const half = payload.subarray(0, Math.floor(payload.length / 2));
      entry.bytes = half.length;
      entry.ms = performance.now() - t0;
      record(entry);
      res.writeHead(status, h);
      res.write(half, () => res.destroy());
      return;
    }
    entry.bytes = payload.length;
    entry.ms = performance.now() - t0;
    record(entry);
    res.writeHead(status, h);
    res.end(payload);
  }

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    // Read the request body (writes of notification objects need it), then answer.
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      if (chunks.length < 1024) chunks.push(c);
    });
    req.on('end', () => void run(chunks.length > 0 ? Buffer.concat(chunks) : undefined));
    const run = (reqBody: Buffer | undefined) =>
      handle(req, res, reqBody).catch((e: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ detail: `emulator error: ${(e as Error).message}` }));
        } else res.destroy();
      });
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 60_000;
  server.requestTimeout = 0;

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  // ---- insert / delete timers ----
  const timers: NodeJS.Timeout[] = [];
  const insertNow = (n: number): number[] => {
    // microsecond clock, like PostgreSQL's now() resolution
    const base = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    const created: number[] = [];
    for (let i = 0; i < n; i++) created.push(base + i);
    const gis = store.appendSorted(created);
    notifications.onInserted(gis.map(pkOf));
    return gis;
  };
  if ((opts.insertPerSecond ?? 0) > 0) {
    let acc = 0;
    const t = setInterval(() => {
      acc += (opts.insertPerSecond ?? 0) / 10;
      const k = Math.floor(acc);
      if (k > 0) {
        acc -= k;
        insertNow(k);
      }
    }, 100);
    t.unref();
    timers.push(t);
  }
  if ((opts.deletePerSecond ?? 0) > 0) {
    let acc = 0;
    const t = setInterval(() => {
      acc += (opts.deletePerSecond ?? 0) / 10;
      const k = Math.floor(acc);
      if (k > 0) {
        acc -= k;
        store.deleteOldest(k);
      }
    }, 100);
    t.unref();
    timers.push(t);
  }

  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  const emu: Emulator = {
    url: `http://${hostForUrl}:${port}`,
    port,
    token,
    version: profile,
    requests,
    stats,
    notifications: notifications.handle,
    events: {
      count: () => store.size,
      insert(n: number, at?: Date): string[] {
        if (at === undefined) return insertNow(Math.max(0, Math.floor(n))).map(pkOf);
        const out: string[] = [];
        for (let i = 0; i < n; i++) out.push(pkOf(store.insertAt(at.getTime() * 1000 + i)));
        notifications.onInserted(out);
        return out;
      },
      deleteOldest: (n: number) => store.deleteOldest(n).map(pkOf),
      deleteByUserPk: (pk: number) => store.deleteWhere((gi) => userPkOf(gi) === pk),
      insertRecords(records: Omit<EventObject, 'pk' | 'created' | 'expires'>[], at?: Date): string[] {
        const base = (at?.getTime() ?? performance.timeOrigin + performance.now()) * 1000;
        return records.map((r, i) => {
          const gi = store.insertAt(Math.floor(base) + i);
          custom.set(gi, r);
          return pkOf(gi);
        });
      },
      insertTied(n: number, at?: Date): string[] {
        const us =
          at === undefined
            ? Math.floor((performance.timeOrigin + performance.now()) * 1000)
            : at.getTime() * 1000;
        return store.insertTied(us, n).map(pkOf);
      },
      userPkOf(pk: string): number | undefined {
        const gi = giOf(pk);
        return gi === undefined ? undefined : userPkOf(gi);
      },
      betweenCountAndRows(fn: () => void): void {
        betweenCountAndRows.push(fn);
      },
      allPks(): string[] {
        const out: string[] = new Array<string>(store.size);
        for (let k = 0; k < store.size; k++) out[k] = pkOf(store.at(k));
        return out;
      },
      get(pk: string) {
        const gi = giOf(pk);
        return gi === undefined ? undefined : materialise(gi);
      },
    },
    users: {
      count: () => users.length,
      all: () => users,
      touch(pk: number, at?: Date): boolean {
        const u = userByPk.get(pk);
        if (!u) return false;
        const us =
          (at ?? new Date()).getTime() * 1000 + (at ? 0 : Math.floor(performance.now() * 1000) % 1000);
        u.lastUpdatedUs = us;
        u.last_updated = isoMicros(us);
        return true;
      },
      remove(pk: number, gdpr = true): boolean {
        const i = users.findIndex((u) => u.pk === pk);
        if (i === -1) return false;
        users.splice(i, 1);
        for (const g of groups) g.users = g.users.filter((x) => x !== pk);
        refreshUserIndex();
        if (gdpr) store.deleteWhere((gi) => userPkOf(gi) === pk);
        return true;
      },
    },
    groups: { count: () => groups.length, all: () => groups, roles: () => roles },
    setFaults(f: FaultConfig | undefined) {
      faults = f;
      faultRng = new Stream(seed ^ 0xfa017);
    },
    rotateToken(next?: string): string {
      retiredTokens.add(token);
      rotations++;
      token =
        next ?? `${opts.token ?? 'emulator-token'}-r${rotations}-${new Stream(seed + rotations).hex(8)}`;
      retiredTokens.delete(token);
      emu.token = token;
      return token;
    },
    resetStats() {
      Object.assign(stats, emptyStats());
      requests.length = 0;
    },
    async close(): Promise<void> {
      for (const t of timers) clearInterval(t);
      notifications.close();
      for (const r of held) r.destroy();
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return emu;
}
