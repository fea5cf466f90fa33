/**
 * `authentik-collector doctor`: checks, against the endpoints the configuration names, what makes
 * collection fail (or silently miss data) and says how to fix it. Read-only: it sends GET requests (and
 * one empty OTLP request) and reads checkpoints without changing them.
 *
 * Per `authentik` receiver: reachability and token, permission per dataset (events, users, groups),
 * version and API generation, the page-size clamp, `ordering=-created,pk`, QL search, event retention
 * and GDPR setting (`/api/v3/admin/settings/`, where the token may read it), clock skew (the `Date`
 * header), and the checkpoint's age vs the oldest retained event. Per `elasticsearch` exporter: the
 * server's version, the authentik index templates and the privileges to write. Per `otlphttp`
 * exporter: whether the endpoint answers.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry } from 'prom-client';
import { Agent, fetch } from 'undici';
import type { Dispatcher } from 'undici';
import type { Logger, StorageExtension } from '../component.ts';
import type { ComponentEntry, ResolvedConfig } from '../config/resolved.ts';
import { errorMessage } from '../errors.ts';
import { collectorMetrics } from '../telemetry/metrics.ts';
import { componentSettings } from '../telemetry/settings.ts';
import { StatusBoard } from '../telemetry/status.ts';

export type CheckStatus = 'pass' | 'warn' | 'fail';

/** One line of the report. */
export interface Check {
  /** Component id the check is about (`receivers.authentik`, `exporters.elasticsearch`). */
  component: string;
  check: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warning or failure. */
  fix?: string;
}

/** Options (tests inject the clock). */
export interface DoctorOptions {
  now?: () => number;
  logger: Logger;
  /** Per-request deadline (default 10 s). */
  timeoutMs?: number;
}

interface Secretish {
  reveal(): string;
}
interface TlsCfg {
  ca_file?: string;
  insecure_skip_verify?: boolean;
  server_name?: string;
}

/** The clock skew above which a warning is given (the receiver's `overlap` absorbs less than this). */
const SKEW_WARN_S = 30;
const SKEW_FAIL_S = 300;

/** Runs every check of `config`. Never throws: a check that cannot run is a `fail` saying why. */
export async function runDoctor(config: ResolvedConfig, o: DoctorOptions): Promise<Check[]> {
  const checks: Check[] = [];
  const now = o.now ?? Date.now;
  for (const entry of config.receivers.values()) {
    if (entry.type === 'authentik') checks.push(...(await authentikChecks(config, entry, o, now)));
  }
  for (const entry of config.exporters.values()) {
    if (entry.type === 'elasticsearch') checks.push(...(await searchChecks(config, entry, o)));
    if (entry.type === 'otlphttp') checks.push(...(await otlpChecks(config, entry, o)));
  }
  if (checks.length === 0) {
    checks.push({
      component: 'config',
      check: 'endpoints',
      status: 'warn',
      detail: 'no authentik receiver, elasticsearch or otlphttp exporter configured: nothing to check',
    });
  }
  return checks;
}

/** The report as a table. */
export function formatChecks(checks: readonly Check[]): string {
  const rows = checks.map((c) => [c.status.toUpperCase(), c.component, c.check, c.detail, c.fix ?? '']);
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), 6));
  const lines = [['STATUS', 'COMPONENT', 'CHECK'].map((h, i) => h.padEnd(w[i]!)).join('  ') + '  DETAIL'];
  for (const r of rows) {
    lines.push(
      `${r
        .slice(0, 3)
        .map((c, i) => c.padEnd(w[i]!))
        .join('  ')}  ${r[3]}${r[4] ? `\n${' '.repeat(w[0]! + w[1]! + w[2]! + 6)}fix: ${r[4]}` : ''}`,
    );
  }
  const n = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
  lines.push('', `${n('pass')} passed, ${n('warn')} warnings, ${n('fail')} failed`);
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------

interface Answer {
  status: number;
  body: unknown;
  date?: string;
  error?: string;
}

function dispatcher(configDir: string, tls: TlsCfg | undefined): Dispatcher {
  return new Agent({
    connect: {
      rejectUnauthorized: tls?.insecure_skip_verify !== true,
      ...(tls?.ca_file ? { ca: readFileSync(resolve(configDir, tls.ca_file)) } : {}),
      ...(tls?.server_name ? { servername: tls.server_name } : {}),
    },
  });
}

async function get(
  url: string,
  headers: Record<string, string>,
  d: Dispatcher,
  timeoutMs: number,
  method = 'GET',
  body?: string,
): Promise<Answer> {
  try {
    const res = await fetch(url, {
      method,
      headers,
      dispatcher: d,
      signal: AbortSignal.timeout(timeoutMs),
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
    const date = res.headers.get('date');
    return { status: res.status, body: parsed, ...(date ? { date } : {}) };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { status: 0, body: undefined, error: cause?.code ?? cause?.message ?? errorMessage(err) };
  }
}

/** A JSON scalar as text (`fallback` for objects, arrays and absent values). */
const str = (v: unknown, fallback = ''): string =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : fallback;

const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

async function authentikChecks(
  config: ResolvedConfig,
  entry: ComponentEntry,
  o: DoctorOptions,
  now: () => number,
): Promise<Check[]> {
  const cfg = entry.config as {
    endpoint: string;
    token?: Secretish;
    token_file?: string;
    tls?: TlsCfg;
    storage?: string;
    storage_key?: string;
    events: { enabled: boolean; page_size: number; use_ql: boolean };
    users: { enabled: boolean };
    groups: { enabled: boolean };
  };
  const component = `receivers.${entry.id}`;
  const out: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string, fix?: string) =>
    out.push({ component, check, status, detail, ...(fix ? { fix } : {}) });
  let token: string;
  try {
    token = cfg.token
      ? cfg.token.reveal()
      : readFileSync(resolve(config.configDir, cfg.token_file!), 'utf8').trim();
  } catch (err) {
    add(
      'token',
      'fail',
      `cannot read token_file: ${errorMessage(err)}`,
      'fix receivers.authentik.token_file',
    );
    return out;
  }
  const base = cfg.endpoint.replace(/\/+$/, '');
  const d = dispatcher(config.configDir, cfg.tls);
  const timeout = o.timeoutMs ?? 10_000;
  const headers = { authorization: `Bearer ${token}`, accept: 'application/json' };
  const api = (path: string) => get(`${base}${path}`, headers, d, timeout);
  const scrub = (s: string) => (token ? s.split(token).join('[REDACTED]') : s);

  // Reachability and token.
  const me = await api('/api/v3/core/users/me/');
  if (me.status === 0) {
    add(
      'reachable',
      'fail',
      `cannot connect to authentik at ${base} (${me.error})`,
      'check endpoint, DNS, firewall, proxy and TLS settings',
    );
    return out;
  }
  add('reachable', 'pass', `${base} answers (HTTP ${me.status})`);
  if (me.status === 401 || me.status === 403) {
    const detail = scrub(str(obj(me.body)['detail'])).slice(0, 200);
    add(
      'token',
      'fail',
      `authentik rejected the token (HTTP ${me.status}${detail ? `: ${detail}` : ''})`,
      'use an API token (Directory > Tokens and App passwords, intent "API Token"), not an app password; prefer a non-expiring one',
    );
    return out;
  }
  const user = obj(obj(me.body)['user']);
  let tokenOk = me.status === 200;
  const tokenAt = out.length;

  // Clock skew.
  if (me.date) {
    const skew = (now() - Date.parse(me.date)) / 1000;
    const abs = Math.abs(skew);
    add(
      'clock skew',
      abs > SKEW_FAIL_S ? 'fail' : abs > SKEW_WARN_S ? 'warn' : 'pass',
      `this host is ${abs < 1 ? 'within 1 s of' : `${abs.toFixed(0)} s ${skew > 0 ? 'ahead of' : 'behind'}`} authentik`,
      abs > SKEW_WARN_S
        ? "synchronise both clocks (NTP); backfill durations and lag are computed from authentik's times"
        : undefined,
    );
  }

  // Permissions per dataset.
  const datasets = [
    ['events', '/api/v3/events/events/?page_size=1', 'authentik_events.view_event', cfg.events.enabled],
    ['users', '/api/v3/core/users/?page_size=1', 'authentik_core.view_user', cfg.users.enabled],
    ['groups', '/api/v3/core/groups/?page_size=1', 'authentik_core.view_group', cfg.groups.enabled],
  ] as const;
  for (const [ds, path, perm, enabled] of datasets) {
    if (!enabled) continue;
    const r = await api(path);
    if (r.status === 200) tokenOk = true;
    if (r.status === 200)
      add(
        `permission ${ds}`,
        'pass',
        `can read ${ds} (${str(obj(obj(r.body)['pagination'])['count'], '?')} present)`,
      );
    else
      add(
        `permission ${ds}`,
        'fail',
        `reading ${ds} answered HTTP ${r.status}${r.error ? ` (${r.error})` : ''}`,
        `grant the token's user ${perm}, or disable ${ds}.enabled`,
      );
  }

  out.splice(tokenAt, 0, {
    component,
    check: 'token',
    status: tokenOk ? 'pass' : 'fail',
    detail: tokenOk
      ? me.status === 200
        ? `valid, user "${str(user['username'], '?')}"`
        : 'valid (authentik answered with data)'
      : 'no dataset could be read with this token',
    ...(tokenOk ? {} : { fix: 'check the token and its permissions (see below)' }),
  });

  // Version and API generation.
  const ver = await api('/api/v3/admin/version/');
  const version = str(obj(ver.body)['version_current']);
  if (ver.status === 200 && version) {
    const [y, m] = version.split('.').map(Number) as [number, number];
    const gen =
      y * 100 + m >= 202508 ? '2025.8+ (change filters, is_enterprise in root config)' : 'before 2025.8';
    add('version', 'pass', `authentik ${version}, API generation ${gen}`);
  } else {
    add(
      'version',
      'warn',
      `/api/v3/admin/version/ answered HTTP ${ver.status}: the receiver detects the API generation from response shapes`,
      'optional: grant the user access to the admin API to report the version',
    );
  }

  if (cfg.events.enabled) {
    // Page-size clamp.
    const size = cfg.events.page_size;
    const page = await api(`/api/v3/events/events/?page_size=${size}&ordering=-created`);
    const results = obj(page.body)['results'];
    const count = Number(obj(obj(page.body)['pagination'])['count'] ?? 0);
    if (page.status === 200 && Array.isArray(results)) {
      if (count > results.length && results.length < size) {
        add(
          'page size',
          'warn',
          `requested ${size}, authentik serves ${results.length} per page (clamped)`,
          `set events.page_size: ${results.length} (the receiver follows the clamp either way)`,
        );
      } else
        add(
          'page size',
          'pass',
          `page_size ${size} honoured${count <= results.length ? ' (fewer events than one page)' : ''}`,
        );
    }
    // Ordering.
    const ord = await api('/api/v3/events/events/?page_size=2&ordering=-created,pk');
    if (ord.status === 200) add('ordering', 'pass', 'ordering=-created,pk accepted');
    else
      add(
        'ordering',
        'fail',
        `ordering=-created,pk answered HTTP ${ord.status}`,
        'the receiver needs ordering by created and pk; upgrade authentik',
      );
    // QL.
    const root = await api('/api/v3/root/config/');
    const enterprise =
      obj(obj(root.body)['capabilities'] ?? {})['is_enterprise'] ?? obj(root.body)['is_enterprise'];
    const caps = obj(root.body)['capabilities'];
    const isEnt = Array.isArray(caps) ? caps.includes('is_enterprise') : enterprise === true;
    if (!cfg.events.use_ql) add('QL search', 'pass', 'events.use_ql is false: not used');
    else if (!isEnt)
      add('QL search', 'pass', 'not available (no enterprise licence): incremental polls use ordered scans');
    else {
      const future = new Date(now() + 86_400_000).toISOString();
      const q = await api(
        `/api/v3/events/events/?page_size=1&search=${encodeURIComponent(`created >= "${future}"`)}`,
      );
      const n = Number(obj(obj(q.body)['pagination'])['count'] ?? -1);
      if (q.status === 200 && n === 0) add('QL search', 'pass', 'QL time filter honoured');
      else
        add(
          'QL search',
          'warn',
          `QL time filter not honoured (HTTP ${q.status}, ${n} results for a future time): polls fall back to ordered scans`,
          'nothing required; set events.use_ql: false to skip the probe',
        );
    }
    // Retention and GDPR.
    const settings = await api('/api/v3/admin/settings/');
    const retention = obj(settings.body)['event_retention'];
    if (settings.status === 200 && typeof retention === 'string') {
      const gdpr = obj(settings.body)['gdpr_compliance'];
      add(
        'retention',
        'pass',
        `events are kept ${retention.replace('days=', '').replace(/;.*/, '')} days (event_retention "${retention}"); GDPR compliance ${gdpr === true ? 'on: events of deleted users are deleted too' : 'off'}`,
      );
    } else
      add(
        'retention',
        'warn',
        `/api/v3/admin/settings/ answered HTTP ${settings.status}: retention and GDPR setting unknown`,
        'optional: the admin settings need the authentik_rbac.view_system_settings permission',
      );
    // Oldest retained event vs the checkpoint.
    const oldest = await api('/api/v3/events/events/?page_size=1&ordering=created');
    const first = (obj(oldest.body)['results'] as unknown[] | undefined)?.[0];
    const oldestCreated = first ? Date.parse(String(obj(first)['created'])) : undefined;
    out.push(...(await checkpointCheck(config, entry, cfg, o, now, oldestCreated, component)));
  }
  await d.close();
  return out;
}

async function checkpointCheck(
  config: ResolvedConfig,
  entry: ComponentEntry,
  cfg: { endpoint: string; storage?: string; storage_key?: string },
  o: DoctorOptions,
  now: () => number,
  oldestCreated: number | undefined,
  component: string,
): Promise<Check[]> {
  const check = 'checkpoint';
  if (!cfg.storage) {
    return [
      {
        component,
        check,
        status: 'warn',
        detail: 'no storage: a restart re-reads according to events.backfill',
        fix: 'set storage: file_storage',
      },
    ];
  }
  const ext = config.extensions.get(cfg.storage);
  if (!ext)
    return [
      { component, check, status: 'fail', detail: `storage extension "${cfg.storage}" is not configured` },
    ];
  const registry = new Registry();
  const metrics = collectorMetrics(registry);
  const deps = {
    logger: o.logger,
    registry,
    metrics,
    status: new StatusBoard(metrics),
    buildInfo: { name: 'doctor', version: '0' },
    configDir: config.configDir,
  };
  let storage: StorageExtension | undefined;
  try {
    const factory = ext.factory as unknown as { create(s: unknown, c: unknown): Promise<StorageExtension> };
    storage = await factory.create(componentSettings(deps, 'extension', ext.id), ext.config);
    await storage.start({ getExtension: () => undefined });
    const client = await storage.getClient(
      'receiver',
      entry.id,
      cfg.storage_key ?? `authentik:${cfg.endpoint}`,
    );
    const buf = await client.get('events');
    if (!buf)
      return [
        {
          component,
          check,
          status: 'pass',
          detail: 'no checkpoint yet (first start backfills as configured)',
        },
      ];
    const state = obj(JSON.parse(buf.toString('utf8')));
    const hw = typeof state['hw'] === 'string' ? Number(state['hw']) / 1000 : undefined;
    if (hw === undefined)
      return [
        { component, check, status: 'pass', detail: `checkpoint in phase "${String(state['phase'])}"` },
      ];
    const ageS = (now() - hw) / 1000;
    const age = ageS > 86_400 ? `${(ageS / 86_400).toFixed(1)} days` : `${Math.round(ageS)} s`;
    if (oldestCreated !== undefined && hw < oldestCreated) {
      return [
        {
          component,
          check,
          status: 'fail',
          detail: `the checkpoint (${new Date(hw).toISOString()}, ${age} old) is older than the oldest retained event (${new Date(oldestCreated).toISOString()}): events in between expired before they were collected`,
          fix: "run the collector more continuously, or raise authentik's event retention",
        },
      ];
    }
    return [
      { component, check, status: 'pass', detail: `newest delivered event ${age} old, within retention` },
    ];
  } catch (err) {
    return [
      {
        component,
        check,
        status: 'warn',
        detail: `cannot read the checkpoint: ${errorMessage(err)}`,
        fix: 'a running collector holds the storage lock; run doctor while it is stopped to check the checkpoint',
      },
    ];
  } finally {
    await storage?.shutdown().catch(() => undefined);
  }
}

function searchAuth(configDir: string, auth: Record<string, unknown> | undefined): Record<string, string> {
  if (!auth) return {};
  const val = (k: string): string | undefined => {
    const v = auth[k] as Secretish | string | undefined;
    if (v !== undefined) return typeof v === 'string' ? v : v.reveal();
    const f = auth[`${k}_file`] as string | undefined;
    return f ? readFileSync(resolve(configDir, f), 'utf8').trim() : undefined;
  };
  const apiKey = val('api_key');
  if (apiKey)
    return {
      authorization: `ApiKey ${apiKey.includes(':') ? Buffer.from(apiKey).toString('base64') : apiKey}`,
    };
  const bearer = val('bearer_token');
  if (bearer) return { authorization: `Bearer ${bearer}` };
  const user = auth['username'] as string | undefined;
  const pass = val('password');
  if (user && pass !== undefined)
    return { authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
  return {};
}

async function searchChecks(
  config: ResolvedConfig,
  entry: ComponentEntry,
  o: DoctorOptions,
): Promise<Check[]> {
  const cfg = entry.config as { endpoints: string[]; auth?: Record<string, unknown>; tls?: TlsCfg };
  const component = `exporters.${entry.id}`;
  const out: Check[] = [];
  const add = (check: string, status: CheckStatus, detail: string, fix?: string) =>
    out.push({ component, check, status, detail, ...(fix ? { fix } : {}) });
  const d = dispatcher(config.configDir, cfg.tls);
  const timeout = o.timeoutMs ?? 10_000;
  const headers = {
    ...searchAuth(config.configDir, cfg.auth),
    accept: 'application/json',
    'content-type': 'application/json',
  };
  const base = cfg.endpoints[0]!.replace(/\/+$/, '');
  const rootAns = await get(`${base}/`, headers, d, timeout);
  if (rootAns.status === 0) {
    add(
      'reachable',
      'fail',
      `cannot connect to ${base} (${rootAns.error})`,
      'check endpoints and TLS settings',
    );
    await d.close();
    return out;
  }
  if (rootAns.status === 401 || rootAns.status === 403) {
    add(
      'credentials',
      'fail',
      `${base} rejected the credentials (HTTP ${rootAns.status})`,
      'check auth (api_key, username/password or bearer_token)',
    );
    await d.close();
    return out;
  }
  let v = obj(obj(rootAns.body)['version']);
  if (typeof v['number'] !== 'string') {
    // Some distributions (e.g. Elasticsearch's core-only builds) or proxies do not serve `GET /`: the
    // node info has the version too, as the exporter reads it.
    const nodes = await get(`${base}/_nodes/_local?filter_path=nodes.*.version`, headers, d, timeout);
    const node = Object.values(obj(obj(nodes.body)['nodes']))[0];
    const nv = obj(node)['version'];
    if (typeof nv === 'string') {
      v = { number: nv, ...(/^[123]\./.test(nv) ? { distribution: 'opensearch' } : {}) };
    }
  }
  const distro = v['distribution'] === 'opensearch' ? 'OpenSearch' : 'Elasticsearch';
  const number = str(v['number'], '?');
  const major = Number(number.split('.')[0]);
  const supported = distro === 'OpenSearch' ? major >= 2 : major >= 8;
  add(
    'version',
    supported ? 'pass' : 'fail',
    `${distro} ${number}`,
    supported ? undefined : 'Elasticsearch 8/9 or OpenSearch 2 is needed',
  );
  const tpl = await get(`${base}/_index_template/*logs-authentik*`, headers, d, timeout);
  const names = ((obj(tpl.body)['index_templates'] as { name?: string }[] | undefined) ?? []).map(
    (t) => t.name,
  );
  if (tpl.status === 200 && names.length > 0) add('templates', 'pass', `installed: ${names.join(', ')}`);
  else
    add(
      'templates',
      'warn',
      `no logs-authentik* index templates (HTTP ${tpl.status})`,
      'the exporter installs them at start when allowed (manage_index_templates); or install them once with an admin',
    );
  if (distro === 'Elasticsearch') {
    const body = JSON.stringify({
      cluster: ['monitor'],
      index: [{ names: ['logs-authentik.*'], privileges: ['create_doc', 'auto_configure'] }],
    });
    const priv = await get(`${base}/_security/user/_has_privileges`, headers, d, timeout, 'POST', body);
    const all = obj(priv.body)['has_all_requested'];
    if (priv.status === 200 && all === true)
      add('privileges', 'pass', 'create_doc and auto_configure on logs-authentik.*');
    else if (priv.status === 200)
      add(
        'privileges',
        'fail',
        'missing create_doc / auto_configure on logs-authentik.*',
        'grant them to the API key or user',
      );
    else add('privileges', 'warn', `privileges not checkable (HTTP ${priv.status}; security disabled?)`);
  } else {
    add(
      'privileges',
      'pass',
      'OpenSearch has no privilege check API; writes are verified by the exporter at start',
    );
  }
  await d.close();
  return out;
}

async function otlpChecks(config: ResolvedConfig, entry: ComponentEntry, o: DoctorOptions): Promise<Check[]> {
  const cfg = entry.config as {
    endpoint?: string;
    logs_endpoint?: string;
    headers: Record<string, Secretish>;
    tls?: TlsCfg;
  };
  const component = `exporters.${entry.id}`;
  const url = cfg.logs_endpoint ?? `${cfg.endpoint!.replace(/\/+$/, '')}/v1/logs`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(cfg.headers)) headers[k] = v.reveal();
  const d = dispatcher(config.configDir, cfg.tls);
  const r = await get(url, headers, d, o.timeoutMs ?? 10_000, 'POST', '{"resourceLogs":[]}');
  await d.close();
  if (r.status === 0)
    return [
      {
        component,
        check: 'reachable',
        status: 'fail',
        detail: `cannot connect to ${url} (${r.error})`,
        fix: 'check endpoint and TLS settings',
      },
    ];
  if (r.status >= 200 && r.status < 300)
    return [
      {
        component,
        check: 'reachable',
        status: 'pass',
        detail: `${url} accepts OTLP/HTTP (HTTP ${r.status})`,
      },
    ];
  if (r.status === 401 || r.status === 403)
    return [
      {
        component,
        check: 'reachable',
        status: 'fail',
        detail: `${url} rejected the request (HTTP ${r.status})`,
        fix: 'check headers (Authorization)',
      },
    ];
  return [
    {
      component,
      check: 'reachable',
      status: 'warn',
      detail: `${url} answered HTTP ${r.status} to an empty OTLP request`,
    },
  ];
}
