/**
 * Notification objects and webhook delivery of the emulator: what a push receiver needs from
 * authentik. Serves, per the 2026.2 schema, `/propertymappings/notification/`, `/events/transports/`,
 * `/events/rules/`, `/policies/event_matcher/`, `/policies/bindings/` and the writes of
 * `/core/users/` and `/core/groups/`, and behaves like authentik's worker once a rule exists: for each
 * new event and each rule, run the rule's bound policies (any passing; no binding = no match), then
 * POST to each transport once per destination user (once in all with `send_once`), with the default
 * body or the body mapping's result, `Content-Type: text/json`, and retries on failure.
 *
 * The emulator cannot run Python property mappings. It recognises the collector's own mappings by
 * their marker line (see receivers/authentik_webhook/mappings.ts) and produces what authentik would:
 * the event as the events API serializes it, and the secret header. Any other expression of the form
 * `return <JSON literal>` evaluates to that literal; anything else counts as a mapping error and the
 * delivery attempt fails (real authentik would raise a property_mapping_exception).
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { BODY_MARKER } from '../../receivers/authentik_webhook/mappings.ts';
import { isoMicros, numPkOf } from './data.ts';
import type { EventObject, GroupRec, UserRec } from './data.ts';
import type { ProfileInfo } from './profiles.ts';

type Query = Record<string, string | string[]>;
type Json = Record<string, unknown>;

export interface Resp {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Options of the webhook worker (EmulatorOptions.notifications). */
export interface NotificationOptions {
  /** Waits before each retry of a failed delivery (default authentik 2025.12's: 1 s, 54 s, 4, 5, 6 min). */
  retryDelaysMs?: number[];
  /** Deliveries in flight at once (default 4). */
  workers?: number;
  /** Extra delay between an event's creation and its dispatch (default 0). */
  dispatchDelayMs?: number;
  /** Content-Type of the POST (default `text/json`, as authentik's docs say; 2025.12 sends application/json). */
  contentType?: string;
  /** Request timeout of one delivery (default 30 s, like authentik 2025.12). */
  timeoutMs?: number;
}

export interface DeliveryLogEntry {
  pk: string;
  url: string;
  /** HTTP status, or 0 when the connection failed. */
  status: number;
  attempt: number;
  at: number;
}

export interface NotificationStats {
  /** rule × event evaluations that matched */
  matched: number;
  /** POST attempts */
  attempts: number;
  /** deliveries answered 2xx */
  delivered: number;
  /** attempts that failed (non-2xx or connection error) */
  failedAttempts: number;
  /** deliveries given up after the last retry */
  gaveUp: number;
  /** events skipped by the loop guard */
  loopGuard: number;
  /** mapping expressions the emulator could not evaluate */
  mappingErrors: number;
}

/** The test handle (`emu.notifications`). */
export interface NotificationsHandle {
  stats: NotificationStats;
  /** bounded log of delivery attempts */
  deliveries: DeliveryLogEntry[];
  /** current objects, as the API renders them */
  objects(): {
    mappings: Json[];
    transports: Json[];
    policies: Json[];
    rules: Json[];
    bindings: Json[];
  };
  /** deliveries queued or in flight (including those waiting for a retry) */
  pending(): number;
}

/** What the server lends this module. */
export interface NotificationsHost {
  info: ProfileInfo;
  users: UserRec[];
  groups: GroupRec[];
  /** rebuild the server's user/group indexes after a change */
  refresh(): void;
  renderUser(u: UserRec): Json;
  renderGroup(g: GroupRec, q: Query): Json;
  /** the event as the API renders it, or undefined when it does not exist (any more) */
  eventByPk(pk: string): EventObject | undefined;
  /** deletes a user the way the API does (memberships, GDPR cleanup) */
  removeUser(pk: number): boolean;
}

export interface Notifications {
  handle: NotificationsHandle;
  /** Serves the endpoints of this module; undefined when the path is not one of them. */
  route(method: string, path: string, q: Query, body: Buffer | undefined): Resp | undefined;
  /** Called for every inserted event. */
  onInserted(pks: string[]): void;
  close(): void;
}

const json = (status: number, body: unknown, headers?: Record<string, string>): Resp =>
  headers ? { status, body, headers } : { status, body };
const notFound = (what: string) => json(404, { detail: `No ${what} matches the given query.` });
const required = (field: string) => json(400, { [field]: ['This field is required.'] });
const last = (q: Query, k: string): string | undefined => {
  const v = q[k];
  return Array.isArray(v) ? v[v.length - 1] : v;
};
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Python's `json.dumps` (what `requests` sends for `json=`): `, ` / `: ` separators, ASCII only. */
export function pyJsonDumps(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'string') {
    return JSON.stringify(v).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  }
  if (Array.isArray(v)) return `[${v.map(pyJsonDumps).join(', ')}]`;
  const o = v as Json;
  return `{${Object.keys(o)
    .map((k) => `${pyJsonDumps(k)}: ${pyJsonDumps(o[k])}`)
    .join(', ')}}`;
}

/** Python's repr of JSON-like data (for `Event.summary`: `"<action>: <context dict>"`). */
function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  const o = v as Json;
  return `{${Object.keys(o)
    .map((k) => `${pyRepr(k)}: ${pyRepr(o[k])}`)
    .join(', ')}}`;
}

/** Evaluates a mapping expression the way far as the emulator can (see the module comment). */
function evaluateMapping(
  expression: string,
  event: EventObject,
): { ok: true; value: unknown } | { ok: false } {
  if (expression.startsWith(BODY_MARKER)) return { ok: true, value: event };
  const code = expression
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .trim();
  const m = /^return\s+([\s\S]+)$/.exec(code);
  if (!m) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(m[1]!) as unknown };
  } catch {
    return { ok: false };
  }
}

interface Task {
  pk: string;
  transportPk: string;
  userPk: number;
  rulePk: string;
  attempt: number;
}

export function createNotifications(host: NotificationsHost, opts: NotificationOptions = {}): Notifications {
  const info = host.info;
  const retryDelays = opts.retryDelaysMs ?? [1000, 54_000, 240_000, 300_000, 360_000];
  const workers = Math.max(1, opts.workers ?? 4);
  const contentType = opts.contentType ?? 'text/json';
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const mappings = new Map<string, { pk: string; name: string; expression: string }>();
  const transports = new Map<string, Json & { pk: string; name: string }>();
  const policies = new Map<string, Json & { pk: string; name: string }>();
  const rules = new Map<string, Json & { pk: string; name: string; transports: string[] }>();
  const bindings = new Map<string, Json & { pk: string; name: string; target: string }>();
  const stats: NotificationStats = {
    matched: 0,
    attempts: 0,
    delivered: 0,
    failedAttempts: 0,
    gaveUp: 0,
    loopGuard: 0,
    mappingErrors: 0,
  };
  const deliveries: DeliveryLogEntry[] = [];
  const queue: Task[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const requests = new Set<http.ClientRequest>();
  let running = 0;
  let waiting = 0;
  let closed = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  const tlsAgent = new https.Agent({ keepAlive: true, maxSockets: workers });

  // ---- rendering (schema shapes) ----
  const renderTransport = (t: Json): Json => ({
    pk: t.pk,
    name: t.name,
    mode: t.mode,
    mode_verbose:
      {
        local: 'authentik inbuilt notifications',
        webhook: 'Generic Webhook',
        webhook_slack: 'Slack Webhook (Slack/Discord)',
        email: 'Email',
      }[String(t.mode)] ?? String(t.mode),
    webhook_url: t.webhook_url,
    webhook_mapping_body: t.webhook_mapping_body,
    webhook_mapping_headers: t.webhook_mapping_headers,
    email_subject_prefix: t.email_subject_prefix,
    email_template: t.email_template,
    send_once: t.send_once,
  });
  const boundTo = (policyPk: string) => [...bindings.values()].filter((b) => b.policy === policyPk).length;
  const renderPolicy = (p: Json): Json => ({
    pk: p.pk,
    name: p.name,
    execution_logging: p.execution_logging,
    component: 'ak-policy-event-matcher-form',
    verbose_name: 'Event Matcher Policy',
    verbose_name_plural: 'Event Matcher Policies',
    meta_model_name: 'authentik_policies_event_matcher.eventmatcherpolicy',
    bound_to: boundTo(String(p.pk)),
    action: p.action,
    client_ip: p.client_ip,
    app: p.app,
    model: p.model,
  });
  const groupByPk = (pk: unknown) => host.groups.find((g) => g.pk === pk);
  const renderRule = (r: Json): Json => {
    const g = groupByPk(r.destination_group);
    return {
      pk: r.pk,
      name: r.name,
      transports: r.transports,
      severity: r.severity,
      destination_group: r.destination_group,
      destination_group_obj: g ? host.renderGroup(g, {}) : null,
      destination_event_user: r.destination_event_user,
    };
  };
  const renderBinding = (b: Json): Json => {
    const p = typeof b.policy === 'string' ? policies.get(b.policy) : undefined;
    const g = groupByPk(b.group);
    const u = host.users.find((x) => x.pk === b.user);
    return {
      pk: b.pk,
      policy: b.policy,
      group: b.group,
      user: b.user,
      policy_obj: p
        ? (({
            pk,
            name,
            execution_logging,
            component,
            verbose_name,
            verbose_name_plural,
            meta_model_name,
            bound_to,
          }) => ({
            pk,
            name,
            execution_logging,
            component,
            verbose_name,
            verbose_name_plural,
            meta_model_name,
            bound_to,
          }))(renderPolicy(p))
        : null,
      group_obj: g
        ? { pk: g.pk, num_pk: g.num_pk, name: g.name, is_superuser: g.is_superuser, attributes: g.attributes }
        : null,
      user_obj: u
        ? {
            pk: u.pk,
            username: u.username,
            name: u.name,
            is_active: u.is_active,
            last_login: u.last_login,
            email: u.email,
            attributes: u.attributes,
            uid: u.uid,
          }
        : null,
      target: b.target,
      negate: b.negate,
      enabled: b.enabled,
      order: b.order,
      timeout: b.timeout,
      failure_result: b.failure_result,
    };
  };

  function page(q: Query, items: Json[]): Resp {
    const size = Math.min(
      Math.max(1, Number(last(q, 'page_size')) || info.defaultPageSize),
      info.maxPageSize ?? Infinity,
    );
    const count = items.length;
    const total = Math.max(1, Math.ceil(count / size));
    const p = last(q, 'page') ?? '1';
    const n = Number(p);
    if (!/^\d+$/.test(p) || n < 1 || n > total) return json(404, { detail: 'Invalid page.' });
    const results = items.slice((n - 1) * size, n * size);
    const body: Json = {
      pagination: {
        next: n < total ? n + 1 : 0,
        previous: n > 1 ? n - 1 : 0,
        count,
        current: n,
        total_pages: total,
        start_index: count === 0 ? 0 : (n - 1) * size + 1,
        end_index: count === 0 ? 0 : (n - 1) * size + results.length,
      },
      results,
    };
    if (info.autocomplete) body.autocomplete = {};
    return json(200, body);
  }

  const byName = (q: Query) => (o: Json) => {
    const name = last(q, 'name');
    return name === undefined || name === '' || o.name === name;
  };

  function parseBody(body: Buffer | undefined): Json | Resp {
    if (!body || body.length === 0) return {};
    try {
      const v = JSON.parse(body.toString('utf8')) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        return json(400, { non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] });
      }
      return v as Json;
    } catch (e) {
      return json(400, { detail: `JSON parse error - ${(e as Error).message}` });
    }
  }
  const isResp = (x: unknown): x is Resp =>
    typeof x === 'object' && x !== null && 'status' in x && 'body' in x;

  function uniqueName<T extends { name: string; pk: string }>(
    m: Map<string, T>,
    name: unknown,
    self: string | undefined,
    what: string,
  ): Resp | undefined {
    if (typeof name !== 'string' || name === '') return required('name');
    for (const o of m.values())
      if (o.name === name && o.pk !== self)
        return json(400, { name: [`${what} with this name already exists.`] });
    return undefined;
  }

  /** A generic CRUD collection keyed by pk. */
  function crud<T extends Json & { pk: string; name: string }>(
    method: string,
    id: string | undefined,
    q: Query,
    raw: Buffer | undefined,
    m: Map<string, T>,
    what: string,
    render: (o: T) => Json,
    build: (b: Json, prev: T | undefined, partial: boolean) => T | Resp,
    filter: (o: T) => boolean = byName(q),
  ): Resp {
    if (id === undefined) {
      if (method === 'GET') {
        const list = [...m.values()].filter(filter).sort((a, b) => a.name.localeCompare(b.name));
        return page(q, list.map(render));
      }
      if (method !== 'POST') return json(405, { detail: `Method "${method}" not allowed.` });
      const b = parseBody(raw);
      if (isResp(b)) return b;
      const o = build(b, undefined, false);
      if (isResp(o)) return o;
      m.set(o.pk, o);
      return json(201, render(o));
    }
    const prev = m.get(id);
    if (!prev) return notFound(what);
    if (method === 'GET') return json(200, render(prev));
    if (method === 'DELETE') {
      m.delete(id);
      return json(204, null);
    }
    if (method !== 'PATCH' && method !== 'PUT')
      return json(405, { detail: `Method "${method}" not allowed.` });
    const b = parseBody(raw);
    if (isResp(b)) return b;
    const o = build(b, prev, method === 'PATCH');
    if (isResp(o)) return o;
    m.set(id, o);
    return json(200, render(o));
  }

  const pick = (b: Json, prev: Json | undefined, partial: boolean, k: string, def: unknown): unknown =>
    k in b ? b[k] : partial && prev ? prev[k] : def;

  function buildMapping(
    b: Json,
    prev: { pk: string; name: string; expression: string } | undefined,
    partial: boolean,
  ) {
    const name = pick(b, prev, partial, 'name', undefined);
    const expression = pick(b, prev, partial, 'expression', undefined);
    const dup = uniqueName(mappings, name, prev?.pk, 'Property Mapping');
    if (dup) return dup;
    if (typeof expression !== 'string' || expression === '') return required('expression');
    return { pk: prev?.pk ?? randomUUID(), name: String(name), expression };
  }

  function buildTransport(
    b: Json,
    prev: (Json & { pk: string; name: string }) | undefined,
    partial: boolean,
  ) {
    const name = pick(b, prev, partial, 'name', undefined);
    const dup = uniqueName(transports, name, prev?.pk, 'Notification Transport');
    if (dup) return dup;
    const mode = pick(b, prev, partial, 'mode', 'local');
    if (!['local', 'webhook', 'webhook_slack', 'email'].includes(String(mode)))
      return json(400, { mode: [`"${String(mode)}" is not a valid choice.`] });
    const url = pick(b, prev, partial, 'webhook_url', '');
    if (
      (mode === 'webhook' || mode === 'webhook_slack') &&
      (typeof url !== 'string' || !/^https?:\/\/\S+$/.test(url))
    ) {
      return json(400, { webhook_url: ['Webhook URL may not be empty.'] });
    }
    for (const k of ['webhook_mapping_body', 'webhook_mapping_headers']) {
      const v = pick(b, prev, partial, k, null);
      if (v !== null && (typeof v !== 'string' || !mappings.has(v)))
        return json(400, { [k]: [`Invalid pk "${JSON.stringify(v)}" - object does not exist.`] });
    }
    return {
      pk: prev?.pk ?? randomUUID(),
      name: String(name),
      mode,
      webhook_url: url,
      webhook_mapping_body: pick(b, prev, partial, 'webhook_mapping_body', null),
      webhook_mapping_headers: pick(b, prev, partial, 'webhook_mapping_headers', null),
      email_subject_prefix: pick(b, prev, partial, 'email_subject_prefix', 'authentik Notification: '),
      email_template: pick(b, prev, partial, 'email_template', 'email/event_notification.html'),
      send_once: Boolean(pick(b, prev, partial, 'send_once', false)),
    };
  }

  const CRITERIA = ['action', 'client_ip', 'app', 'model'];
  function buildPolicy(b: Json, prev: (Json & { pk: string; name: string }) | undefined, partial: boolean) {
    const name = pick(b, prev, partial, 'name', undefined);
    const dup = uniqueName(policies, name, prev?.pk, 'Policy');
    if (dup) return dup;
    // Verified on 2025.12.4: creating without every criterion key answers 405; all "" answers 400.
    if (!partial && CRITERIA.some((k) => !(k in b)))
      return json(405, { detail: 'Method "POST" not allowed.' });
    if (CRITERIA.every((k) => b[k] === ''))
      return json(400, { non_field_errors: ['At least one criteria must be set.'] });
    const o: Json & { pk: string; name: string } = {
      pk: prev?.pk ?? randomUUID(),
      name: String(name),
      execution_logging: Boolean(pick(b, prev, partial, 'execution_logging', false)),
    };
    for (const k of CRITERIA) {
      const v = pick(b, prev, partial, k, null);
      o[k] = v === '' ? null : v;
    }
    return o;
  }

  function buildRule(
    b: Json,
    prev: (Json & { pk: string; name: string; transports: string[] }) | undefined,
    partial: boolean,
  ) {
    const name = pick(b, prev, partial, 'name', undefined);
    const dup = uniqueName(rules, name, prev?.pk, 'Notification Rule');
    if (dup) return dup;
    const ts = pick(b, prev, partial, 'transports', []);
    if (!Array.isArray(ts)) return json(400, { transports: ['Expected a list of items.'] });
    for (const t of ts)
      if (typeof t !== 'string' || !transports.has(t))
        return json(400, { transports: [`Invalid pk "${String(t)}" - object does not exist.`] });
    const group = pick(b, prev, partial, 'destination_group', null);
    if (group !== null && !groupByPk(group))
      return json(400, {
        destination_group: [`Invalid pk "${JSON.stringify(group)}" - object does not exist.`],
      });
    const severity = pick(b, prev, partial, 'severity', 'notice');
    if (!['notice', 'warning', 'alert'].includes(String(severity)))
      return json(400, { severity: [`"${String(severity)}" is not a valid choice.`] });
    return {
      pk: prev?.pk ?? randomUUID(),
      name: String(name),
      transports: ts as string[],
      severity,
      destination_group: group,
      destination_event_user: Boolean(pick(b, prev, partial, 'destination_event_user', false)),
    };
  }

  function buildBinding(
    b: Json,
    prev: (Json & { pk: string; name: string; target: string }) | undefined,
    partial: boolean,
  ) {
    const target = pick(b, prev, partial, 'target', undefined);
    if (typeof target !== 'string' || !UUID_RE.test(target)) return required('target');
    const order = pick(b, prev, partial, 'order', undefined);
    if (typeof order !== 'number' || !Number.isInteger(order)) return required('order');
    const policy = pick(b, prev, partial, 'policy', null);
    const group = pick(b, prev, partial, 'group', null);
    const user = pick(b, prev, partial, 'user', null);
    if (policy !== null && (typeof policy !== 'string' || !policies.has(policy))) {
      // Other policy types exist in authentik; the emulator only knows Event Matchers.
      return json(400, { policy: [`Invalid pk "${JSON.stringify(policy)}" - object does not exist.`] });
    }
    if ([policy, group, user].filter((x) => x !== null).length !== 1) {
      return json(400, { non_field_errors: ['Only one of policy, group or user can be set.'] });
    }
    for (const o of bindings.values()) {
      if (
        o.pk !== prev?.pk &&
        o.target === target &&
        o.order === order &&
        o.policy === policy &&
        o.group === group &&
        o.user === user
      ) {
        return json(400, {
          non_field_errors: ['The fields policy, user, target, order must make a unique set.'],
        });
      }
    }
    return {
      pk: prev?.pk ?? randomUUID(),
      name: '',
      policy,
      group,
      user,
      target,
      negate: Boolean(pick(b, prev, partial, 'negate', false)),
      enabled: pick(b, prev, partial, 'enabled', true) !== false,
      order,
      timeout: Number(pick(b, prev, partial, 'timeout', 30)),
      failure_result: Boolean(pick(b, prev, partial, 'failure_result', false)),
    };
  }

  // ---- users and groups (writes; lists are served by the server) ----
  function routeUsers(method: string, id: string | undefined, raw: Buffer | undefined): Resp | undefined {
    if (id === undefined) {
      if (method !== 'POST') return undefined;
      const b = parseBody(raw);
      if (isResp(b)) return b;
      if (typeof b.username !== 'string' || b.username === '') return required('username');
      if (typeof b.name !== 'string') return required('name');
      if (host.users.some((u) => u.username === b.username))
        return json(400, { username: ['This field must be unique.'] });
      const us = Date.now() * 1000;
      const pk = host.users.reduce((m, u) => Math.max(m, u.pk), 0) + 1;
      const uuid = randomUUID();
      const u: UserRec = {
        pk,
        username: b.username,
        name: b.name,
        is_active: b.is_active !== false,
        last_login: null,
        date_joined: isoMicros(us),
        groups: [],
        roles: [],
        email: typeof b.email === 'string' ? b.email : '',
        avatar: '/static/dist/assets/images/user_default.png',
        attributes: typeof b.attributes === 'object' && b.attributes !== null ? (b.attributes as Json) : {},
        uid: createHash('sha256').update(`${pk}-emulator`).digest('hex'),
        path: typeof b.path === 'string' && b.path !== '' ? b.path : 'users',
        type: (['internal', 'external', 'service_account', 'internal_service_account'].includes(
          String(b.type),
        )
          ? b.type
          : 'internal') as UserRec['type'],
        uuid,
        password_change_date: isoMicros(us),
        last_updated: isoMicros(us),
        lastUpdatedUs: us,
      };
      host.users.push(u);
      host.refresh();
      return json(201, host.renderUser(u));
    }
    const u = host.users.find((x) => String(x.pk) === id);
    if (!u) return notFound('User');
    if (method === 'GET') return json(200, host.renderUser(u));
    if (method === 'DELETE') {
      host.removeUser(u.pk);
      return json(204, null);
    }
    if (method !== 'PATCH' && method !== 'PUT')
      return json(405, { detail: `Method "${method}" not allowed.` });
    const b = parseBody(raw);
    if (isResp(b)) return b;
    for (const k of ['name', 'is_active', 'path', 'type', 'email', 'attributes'] as const)
      if (k in b) (u as unknown as Json)[k] = b[k];
    if (typeof b.username === 'string') u.username = b.username;
    const us = Date.now() * 1000;
    u.lastUpdatedUs = us;
    u.last_updated = isoMicros(us);
    host.refresh();
    return json(200, host.renderUser(u));
  }

  function setMembers(g: GroupRec, members: number[]): void {
    g.users = [...new Set(members)].filter((pk) => host.users.some((u) => u.pk === pk));
    for (const u of host.users) {
      const has = g.users.includes(u.pk);
      if (has && !u.groups.includes(g.pk)) u.groups.push(g.pk);
      if (!has && u.groups.includes(g.pk)) u.groups = u.groups.filter((x) => x !== g.pk);
    }
  }

  function routeGroups(
    method: string,
    id: string | undefined,
    q: Query,
    raw: Buffer | undefined,
  ): Resp | undefined {
    if (id === undefined) {
      if (method !== 'POST') return undefined;
      const b = parseBody(raw);
      if (isResp(b)) return b;
      if (typeof b.name !== 'string' || b.name === '') return required('name');
      if (host.groups.some((g) => g.name === b.name))
        return json(400, { name: ['group with this name already exists.'] });
      const pk = randomUUID();
      const g: GroupRec = {
        pk,
        num_pk: numPkOf(pk),
        name: b.name,
        is_superuser: b.is_superuser === true,
        parent: null,
        users: [],
        attributes: typeof b.attributes === 'object' && b.attributes !== null ? (b.attributes as Json) : {},
        roles: [],
      };
      host.groups.push(g);
      setMembers(g, Array.isArray(b.users) ? b.users.map(Number) : []);
      host.refresh();
      return json(201, host.renderGroup(g, q));
    }
    const g = groupByPk(id);
    if (!g) return notFound('Group');
    if (method === 'GET') return json(200, host.renderGroup(g, q));
    if (method === 'DELETE') {
      setMembers(g, []);
      host.groups.splice(host.groups.indexOf(g), 1);
      for (const r of rules.values()) if (r.destination_group === g.pk) r.destination_group = null;
      host.refresh();
      return json(204, null);
    }
    if (method !== 'PATCH' && method !== 'PUT')
      return json(405, { detail: `Method "${method}" not allowed.` });
    const b = parseBody(raw);
    if (isResp(b)) return b;
    if (typeof b.name === 'string') g.name = b.name;
    if (typeof b.is_superuser === 'boolean') g.is_superuser = b.is_superuser;
    if (typeof b.attributes === 'object' && b.attributes !== null) g.attributes = b.attributes as Json;
    if (Array.isArray(b.users)) setMembers(g, b.users.map(Number));
    host.refresh();
    return json(200, host.renderGroup(g, q));
  }

  function route(method: string, path: string, q: Query, raw: Buffer | undefined): Resp | undefined {
    const m =
      /^\/api\/v3\/(propertymappings\/notification|events\/transports|events\/rules|policies\/event_matcher|policies\/bindings|core\/users|core\/groups)\/(?:([^/]+)\/)?$/.exec(
        path,
      );
    if (!m) return undefined;
    const [, coll, rawId] = m;
    const id = rawId === undefined ? undefined : decodeURIComponent(rawId);
    switch (coll) {
      case 'core/users':
        return id === undefined || /^\d+$/.test(id) ? routeUsers(method, id, raw) : undefined;
      case 'core/groups':
        return routeGroups(method, id, q, raw);
      case 'propertymappings/notification':
        return crud(
          method,
          id,
          q,
          raw,
          mappings,
          'Webhook Mapping',
          (o) => ({ pk: o.pk, name: o.name, expression: o.expression }),
          buildMapping,
        );
      case 'events/transports':
        return crud(
          method,
          id,
          q,
          raw,
          transports,
          'Notification Transport',
          renderTransport,
          buildTransport,
          (o) => {
            if (!byName(q)(o)) return false;
            const mode = last(q, 'mode');
            return mode === undefined || mode === '' || o.mode === mode;
          },
        );
      case 'policies/event_matcher':
        return crud(method, id, q, raw, policies, 'Event Matcher Policy', renderPolicy, buildPolicy);
      case 'events/rules':
        return crud(method, id, q, raw, rules, 'Notification Rule', renderRule, buildRule, (o) => {
          if (!byName(q)(o)) return false;
          const gn = last(q, 'destination_group__name');
          return gn === undefined || gn === '' || groupByPk(o.destination_group)?.name === gn;
        });
      case 'policies/bindings': {
        const r = crud(method, id, q, raw, bindings, 'Policy Binding', renderBinding, buildBinding, (o) => {
          for (const k of ['target', 'policy'] as const) {
            const v = last(q, k);
            if (v !== undefined && v !== '' && o[k] !== v) return false;
          }
          return true;
        });
        return r;
      }
      default:
        return undefined;
    }
  }

  // Deleting a rule deletes its bindings (PolicyBindingModel cascade).
  const origDelete = rules.delete.bind(rules);
  rules.delete = (k: string) => {
    for (const [bk, b] of bindings) if (b.target === k) bindings.delete(bk);
    return origDelete(k);
  };

  // ---- the worker ----
  function matches(p: Json, ev: EventObject): boolean {
    if (p.action !== null && p.action !== undefined && p.action !== ev.action) return false;
    if (p.client_ip !== null && p.client_ip !== undefined && p.client_ip !== ev.client_ip) return false;
    if (p.app !== null && p.app !== undefined && p.app !== ev.app) return false;
    if (p.model !== null && p.model !== undefined) {
      const model = (ev.context as Json | undefined)?.model as Json | undefined;
      if (!model || `${String(model.app)}.${String(model.model_name)}` !== p.model) return false;
    }
    return true;
  }

  function dispatch(pk: string): void {
    if (closed) return;
    const ev = host.eventByPk(pk);
    if (!ev) return;
    const ctx = (ev.context ?? {}) as Json;
    for (const rule of rules.values()) {
      const ruleBindings = [...bindings.values()].filter((b) => b.target === rule.pk && b.enabled !== false);
      if (typeof ctx.policy_uuid === 'string') {
        const bound = [...bindings.values()].some((b) => rules.has(b.target) && b.policy === ctx.policy_uuid);
        if (bound) {
          stats.loopGuard++;
          continue;
        }
      }
      // MODE_ANY, empty_result = False: no binding means no notification.
      const pass = ruleBindings.some((b) => {
        const p = typeof b.policy === 'string' ? policies.get(b.policy) : undefined;
        const r = p ? matches(p, ev) : false;
        return b.negate ? !r : r;
      });
      if (!pass) continue;
      stats.matched++;
      const dest: number[] = [];
      const evUser = (ev.user ?? {}) as Json;
      if (rule.destination_event_user === true && typeof evUser.pk === 'number') dest.push(evUser.pk);
      const g = groupByPk(rule.destination_group);
      if (g) dest.push(...g.users);
      for (const tpk of rule.transports) {
        for (const userPk of dest) {
          queue.push({ pk, transportPk: tpk, userPk, rulePk: rule.pk, attempt: 1 });
          if (transports.get(tpk)?.send_once === true) break;
        }
      }
    }
    pump();
  }

  function pump(): void {
    while (!closed && running < workers && queue.length > 0) {
      const t = queue.shift()!;
      running++;
      void send(t).finally(() => {
        running--;
        pump();
      });
    }
  }

  function logDelivery(e: DeliveryLogEntry): void {
    deliveries.push(e);
    if (deliveries.length > 100_000) deliveries.splice(0, deliveries.length - 100_000);
  }

  async function send(t: Task): Promise<void> {
    // Settings are read when the task runs, like authentik's worker.
    const transport = transports.get(t.transportPk);
    const rule = rules.get(t.rulePk);
    const ev = host.eventByPk(t.pk);
    const user = host.users.find((u) => u.pk === t.userPk);
    if (!transport || !rule || !ev || !user) return;
    if (transport.mode !== 'webhook') return; // other modes deliver nothing over HTTP here
    const summary =
      typeof (ev.context as Json | undefined)?.message === 'string'
        ? String((ev.context as Json).message)
        : `${String(ev.action)}: ${pyRepr(ev.context ?? {})}`;
    let body: unknown = {
      body: summary,
      severity: rule.severity,
      user_email: user.email,
      user_username: user.username,
    };
    const evUser = ev.user as Json | undefined;
    if (evUser && Object.keys(evUser).length > 0) {
      (body as Json).event_user_email = evUser.email ?? null;
      (body as Json).event_user_username = evUser.username ?? null;
    }
    let headers: Json = {};
    const bodyMapping =
      typeof transport.webhook_mapping_body === 'string'
        ? mappings.get(transport.webhook_mapping_body)
        : undefined;
    const headerMapping =
      typeof transport.webhook_mapping_headers === 'string'
        ? mappings.get(transport.webhook_mapping_headers)
        : undefined;
    let failed = false;
    if (bodyMapping) {
      const r = evaluateMapping(bodyMapping.expression, ev);
      if (r.ok) body = r.value;
      else failed = true;
    }
    if (headerMapping) {
      const r = evaluateMapping(headerMapping.expression, ev);
      if (r.ok && typeof r.value === 'object' && r.value !== null) headers = r.value as Json;
      else failed = true;
    }
    if (failed) {
      stats.mappingErrors++;
      return; // a raising mapping fails the task for good (authentik logs property_mapping_exception)
    }
    stats.attempts++;
    const status = await post(String(transport.webhook_url), pyJsonDumps(body), headers);
    logDelivery({ pk: t.pk, url: String(transport.webhook_url), status, attempt: t.attempt, at: Date.now() });
    if (status >= 200 && status < 300) {
      stats.delivered++;
      return;
    }
    stats.failedAttempts++;
    const wait = retryDelays[t.attempt - 1];
    if (wait === undefined || closed) {
      stats.gaveUp++;
      return;
    }
    waiting++;
    const timer = setTimeout(() => {
      timers.delete(timer);
      waiting--;
      queue.push({ ...t, attempt: t.attempt + 1 });
      pump();
    }, wait);
    timer.unref();
    timers.add(timer);
  }

  function post(url: string, payload: string, extra: Json): Promise<number> {
    return new Promise((resolve) => {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        resolve(0);
        return;
      }
      const mod = u.protocol === 'https:' ? https : http;
      const headers: Record<string, string> = {
        'Content-Type': contentType,
        'User-Agent': `authentik@${info.versionCurrent}`,
        Accept: '*/*',
        'Content-Length': String(Buffer.byteLength(payload)),
      };
      for (const [k, v] of Object.entries(extra)) headers[k] = String(v);
      const req = mod.request(
        u,
        { method: 'POST', headers, agent: u.protocol === 'https:' ? tlsAgent : agent, timeout: timeoutMs },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        },
      );
      requests.add(req);
      req.on('close', () => requests.delete(req));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(0));
      req.end(payload);
    });
  }

  const dispatchDelay = opts.dispatchDelayMs ?? 0;
  return {
    route,
    onInserted(pks: string[]) {
      if (rules.size === 0 || closed) return;
      const run = () => {
        for (const pk of pks) dispatch(pk);
      };
      if (dispatchDelay > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          run();
        }, dispatchDelay);
        timer.unref();
        timers.add(timer);
      } else setImmediate(run);
    },
    handle: {
      stats,
      deliveries,
      objects: () => ({
        mappings: [...mappings.values()].map((o) => ({ ...o })),
        transports: [...transports.values()].map(renderTransport),
        policies: [...policies.values()].map(renderPolicy),
        rules: [...rules.values()].map(renderRule),
        bindings: [...bindings.values()].map(renderBinding),
      }),
      pending: () => queue.length + running + waiting,
    },
    close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const r of requests) r.destroy();
      agent.destroy();
      tlsAgent.destroy();
    },
  };
}
