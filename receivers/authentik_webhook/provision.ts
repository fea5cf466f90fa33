/**
 * Provisioning of push in authentik, idempotently, through the REST API with the configured token:
 * a service-account user and a group holding only it (the rule's destination), the body and header
 * mappings, the webhook transport (`send_once`), a match-all Event Matcher policy, the notification
 * rule and the policy binding. Each object is found by its name; missing ones are created, differing
 * ones patched, equal ones left alone. `plan()` lists the same objects for `provision: false`.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import type { Secret } from '../../runtime/config/types.ts';
import type { Config } from './config.ts';
import { BODY_EXPRESSION, headerExpression, SECRET_PLACEHOLDER } from './mappings.ts';

/** What provisioning did to one object. */
export interface ProvisionStep {
  object: 'user' | 'group' | 'body_mapping' | 'header_mapping' | 'transport' | 'policy' | 'rule' | 'binding';
  name: string;
  action: 'created' | 'updated' | 'unchanged' | 'deleted' | 'absent';
  pk: string;
}

/** An API call failed; `status` 0 for transport errors. */
export class ProvisionError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.name = 'ProvisionError';
    this.status = status;
  }
  /** Whether retrying later may help (network, 5xx, 429) rather than a human fixing something. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

type Json = Record<string, unknown>;

/** Names of the provisioned objects, derived from `name`. */
export function objectNames(prefix: string) {
  return {
    user: `${prefix.toLowerCase().replace(/[^\w.-]+/g, '-')}-push`,
    group: `${prefix} push destination`,
    bodyMapping: `${prefix}: event body`,
    headerMapping: `${prefix}: secret header`,
    transport: `${prefix} webhook`,
    policy: `${prefix}: match all events`,
    rule: `${prefix}: push every event`,
  };
}

/** The objects to create, in order, as API request bodies (references shown as `<name>`). */
export function plan(cfg: Config, revealSecret = false): { method: string; path: string; body: Json }[] {
  const n = objectNames(cfg.name);
  const secret = revealSecret ? cfg.secret.reveal() : SECRET_PLACEHOLDER;
  return [
    { method: 'POST', path: '/api/v3/core/users/', body: userBody(n.user, cfg.name) },
    {
      method: 'POST',
      path: '/api/v3/core/groups/',
      body: { ...groupBody(n.group), users: [`<pk of user ${n.user}>`] },
    },
    {
      method: 'POST',
      path: '/api/v3/propertymappings/notification/',
      body: { name: n.bodyMapping, expression: BODY_EXPRESSION },
    },
    {
      method: 'POST',
      path: '/api/v3/propertymappings/notification/',
      body: { name: n.headerMapping, expression: headerExpression(cfg.secret_header, secret) },
    },
    {
      method: 'POST',
      path: '/api/v3/events/transports/',
      body: transportBody(
        n.transport,
        cfg.public_url ?? '<public_url>',
        `<pk of ${n.bodyMapping}>`,
        `<pk of ${n.headerMapping}>`,
      ),
    },
    { method: 'POST', path: '/api/v3/policies/event_matcher/', body: policyBody(n.policy) },
    {
      method: 'POST',
      path: '/api/v3/events/rules/',
      body: ruleBody(n.rule, `<pk of ${n.transport}>`, `<pk of group ${n.group}>`),
    },
    {
      method: 'POST',
      path: '/api/v3/policies/bindings/',
      body: bindingBody(`<pk of ${n.policy}>`, `<pk of ${n.rule}>`),
    },
  ];
}

function userBody(username: string, prefix: string): Json {
  return {
    username,
    name: `${prefix} push notifications (do not delete: the destination of the push rule)`,
    is_active: true,
    path: 'authentik-collector',
    type: 'service_account',
  };
}

function groupBody(name: string): Json {
  return {
    name,
    is_superuser: false,
    attributes: {
      'authentik-collector':
        'destination of the push rule: exactly one member (the transport sends once per event)',
    },
  };
}

function transportBody(name: string, url: string, body: string, headers: string): Json {
  return {
    name,
    mode: 'webhook',
    webhook_url: url,
    webhook_mapping_body: body,
    webhook_mapping_headers: headers,
    send_once: true,
  };
}

/** All criteria explicitly null: matches every event on 2025.x (omitting one answers 405). */
function policyBody(name: string): Json {
  return { name, execution_logging: false, action: null, client_ip: null, app: null, model: null };
}

function ruleBody(name: string, transport: string, group: string): Json {
  return {
    name,
    transports: [transport],
    severity: 'notice',
    destination_group: group,
    destination_event_user: false,
  };
}

function bindingBody(policy: string, target: string): Json {
  return { policy, target, order: 0, enabled: true, negate: false, timeout: 30, failure_result: false };
}

/** Minimal JSON client for the provisioning calls. */
class Api {
  readonly #base: string;
  readonly #token: () => string;
  readonly #dispatcher: Dispatcher;
  readonly #timeout: number;

  constructor(cfg: Config, configDir: string) {
    const a = cfg.authentik;
    this.#base = a.endpoint;
    const file =
      a.token_file !== undefined
        ? isAbsolute(a.token_file)
          ? a.token_file
          : resolve(configDir, a.token_file)
        : undefined;
    const token: Secret | undefined = a.token;
    this.#token = () => (token ? token.reveal() : file ? readFileSync(file, 'utf8').trim() : '');
    const read = (p: string | undefined) =>
      p === undefined ? undefined : readFileSync(isAbsolute(p) ? p : resolve(configDir, p));
    this.#dispatcher = new Agent({
      connections: 2,
      connect: {
        ca: read(a.tls.ca_file),
        cert: read(a.tls.cert_file),
        key: read(a.tls.key_file),
        rejectUnauthorized: !a.tls.insecure_skip_verify,
        ...(a.tls.server_name !== undefined ? { servername: a.tls.server_name } : {}),
      },
    });
    this.#timeout = a.timeout;
  }

  async call(method: Dispatcher.HttpMethod, path: string, body?: Json): Promise<unknown> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.#base}${path}`, {
        method,
        dispatcher: this.#dispatcher,
        headers: {
          authorization: `Bearer ${this.#token()}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : null,
        headersTimeout: this.#timeout,
        bodyTimeout: this.#timeout,
      });
    } catch (e) {
      throw new ProvisionError(`${method} ${path}: ${(e as Error).message}`, 0);
    }
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      let detail = text.slice(0, 300);
      try {
        detail = JSON.stringify(JSON.parse(text)).slice(0, 300);
      } catch {
        /* not JSON */
      }
      const hint =
        res.statusCode === 403
          ? ' (provisioning needs a token of a user allowed to manage users, groups, property mappings, transports, policies, bindings and notification rules, e.g. a superuser)'
          : '';
      throw new ProvisionError(
        `${method} ${path} answered ${res.statusCode}: ${detail}${hint}`,
        res.statusCode,
      );
    }
    if (text === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new ProvisionError(
        `${method} ${path}: answer is not JSON (is authentik.endpoint authentik's base URL?)`,
        502,
      );
    }
  }

  /** Every item of a list endpoint matching `query` (follows pagination). */
  async list(path: string, query: Record<string, string>): Promise<Json[]> {
    const out: Json[] = [];
    for (let page = 1; page < 100; page++) {
      const q = new URLSearchParams({ ...query, page: String(page), page_size: '100' });
      const r = (await this.call('GET', `${path}?${q.toString()}`)) as
        { results?: Json[]; pagination?: { next?: number } } | undefined;
      out.push(...(r?.results ?? []));
      if (!r?.pagination?.next) break;
    }
    return out;
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}

/** Fields of `want` whose value differs in `have` (arrays compared as sets, objects as JSON). */
export function diff(have: Json, want: Json): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(want)) {
    // A field the server does not return is one this release does not have (e.g. destination_event_user before 2025.8).
    if (!(k in have)) continue;
    const h = have[k];
    const same =
      Array.isArray(v) && Array.isArray(h)
        ? v.length === h.length && v.every((x) => h.includes(x))
        : JSON.stringify(h) === JSON.stringify(v);
    if (!same) out[k] = v;
  }
  return out;
}

/** Creates or updates every object; returns what it did, in order. */
export async function provision(cfg: Config, configDir: string): Promise<ProvisionStep[]> {
  const api = new Api(cfg, configDir);
  const steps: ProvisionStep[] = [];
  const n = objectNames(cfg.name);
  try {
    await checkVersion(api);
    const ensure = async (
      object: ProvisionStep['object'],
      path: string,
      lookup: Record<string, string>,
      match: (o: Json) => boolean,
      want: Json,
      idField = 'pk',
    ): Promise<Json> => {
      const found = (await api.list(path, lookup)).find(match);
      const label =
        typeof want.name === 'string' ? want.name : typeof want.username === 'string' ? want.username : '';
      if (!found) {
        const created = (await api.call('POST', path, want)) as Json;
        steps.push({ object, name: label, action: 'created', pk: String(created[idField]) });
        return created;
      }
      const changes = diff(found, want);
      const pk = String(found[idField]);
      if (Object.keys(changes).length === 0) {
        steps.push({ object, name: label, action: 'unchanged', pk });
        return found;
      }
      const updated = (await api.call('PATCH', `${path}${encodeURIComponent(pk)}/`, changes)) as Json;
      steps.push({ object, name: label, action: 'updated', pk });
      return updated;
    };
    const user = await ensure(
      'user',
      '/api/v3/core/users/',
      { username: n.user },
      (o) => o.username === n.user,
      userBody(n.user, cfg.name),
    );
    const group = await ensure(
      'group',
      '/api/v3/core/groups/',
      { name: n.group, include_users: 'false' },
      (o) => o.name === n.group,
      { ...groupBody(n.group), users: [user.pk] },
    );
    const byName = (name: string) => (o: Json) => o.name === name;
    const body = await ensure(
      'body_mapping',
      '/api/v3/propertymappings/notification/',
      { name: n.bodyMapping },
      byName(n.bodyMapping),
      {
        name: n.bodyMapping,
        expression: BODY_EXPRESSION,
      },
    );
    const header = await ensure(
      'header_mapping',
      '/api/v3/propertymappings/notification/',
      { name: n.headerMapping },
      byName(n.headerMapping),
      { name: n.headerMapping, expression: headerExpression(cfg.secret_header, cfg.secret.reveal()) },
    );
    const transport = await ensure(
      'transport',
      '/api/v3/events/transports/',
      { name: n.transport },
      byName(n.transport),
      transportBody(n.transport, cfg.public_url!, String(body.pk), String(header.pk)),
    );
    const policy = await ensure(
      'policy',
      '/api/v3/policies/event_matcher/',
      { name: n.policy },
      byName(n.policy),
      policyBody(n.policy),
    );
    const rule = await ensure(
      'rule',
      '/api/v3/events/rules/',
      { name: n.rule },
      byName(n.rule),
      ruleBody(n.rule, String(transport.pk), String(group.pk)),
    );
    await ensure(
      'binding',
      '/api/v3/policies/bindings/',
      { target: String(rule.pk), policy: String(policy.pk) },
      (o) => o.target === rule.pk && o.policy === policy.pk,
      bindingBody(String(policy.pk), String(rule.pk)),
    );
    // `ensure` labels the binding by lookup; give it a readable name.
    const last = steps[steps.length - 1]!;
    last.name = `${n.policy} -> ${n.rule}`;
    return steps;
  } finally {
    await api.close();
  }
}

/** Deletes every provisioned object (rule first, so nothing is sent while the rest goes). */
export async function deprovision(cfg: Config, configDir: string): Promise<ProvisionStep[]> {
  const api = new Api(cfg, configDir);
  const n = objectNames(cfg.name);
  const steps: ProvisionStep[] = [];
  try {
    const drop = async (
      object: ProvisionStep['object'],
      path: string,
      key: 'name' | 'username',
      name: string,
      idField = 'pk',
    ) => {
      const found = (await api.list(path, { [key]: name })).filter((o) => o[key] === name);
      if (found.length === 0) steps.push({ object, name, action: 'absent', pk: '' });
      for (const o of found) {
        const pk = String(o[idField]);
        await api.call('DELETE', `${path}${encodeURIComponent(pk)}/`);
        steps.push({ object, name, action: 'deleted', pk });
      }
    };
    // Deleting the rule deletes its bindings.
    await drop('rule', '/api/v3/events/rules/', 'name', n.rule);
    await drop('policy', '/api/v3/policies/event_matcher/', 'name', n.policy);
    await drop('transport', '/api/v3/events/transports/', 'name', n.transport);
    await drop('header_mapping', '/api/v3/propertymappings/notification/', 'name', n.headerMapping);
    await drop('body_mapping', '/api/v3/propertymappings/notification/', 'name', n.bodyMapping);
    await drop('group', '/api/v3/core/groups/', 'name', n.group);
    await drop('user', '/api/v3/core/users/', 'username', n.user);
    return steps;
  } finally {
    await api.close();
  }
}

/** The header mapping exists from 2025.4 (before, only a body mapping: no way to send the secret). */
async function checkVersion(api: Api): Promise<void> {
  let v: unknown;
  try {
    v = await api.call('GET', '/api/v3/admin/version/');
  } catch (e) {
    if (e instanceof ProvisionError && e.status === 403) return; // unreadable: try anyway
    throw e;
  }
  const text =
    typeof (v as Json | undefined)?.version_current === 'string' ? String((v as Json).version_current) : '';
  const m = /^(\d{4})\.(\d{1,2})/.exec(text);
  if (m && Number(m[1]) * 100 + Number(m[2]) < 202504) {
    throw new ProvisionError(
      `authentik ${text} has no webhook header mapping (added in 2025.4), so webhooks cannot carry the secret; upgrade authentik or keep polling only`,
      400,
    );
  }
}
