/**
 * The emulator's notification objects (validated against the real 2026.2.2 schema, closed objects)
 * and its webhook worker: rule matching, destination users and `send_once`, the default body, the
 * collector's mappings, headers, Python-style JSON, retries.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { BODY_EXPRESSION, headerExpression } from '../../receivers/authentik_webhook/mappings.ts';
import { startEmulator } from './index.ts';
import type { Emulator } from './index.ts';
import { pyJsonDumps } from './notifications.ts';
import { needShared, sharedPath } from '../kit/shared.ts';

const SCHEMA_PATH = sharedPath('authentik', 'schema.yml');
const NEED_SCHEMA = needShared('authentik/schema.yml');
type J = Record<string, unknown>;
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function close(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(close);
  if (s === null || typeof s !== 'object') return s;
  const out: J = {};
  for (const [k, v] of Object.entries(s as J)) {
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(v as J).map(([a, b]) => [a, close(b)]))
        : close(v);
  }
  if (out['properties'] && out['additionalProperties'] === undefined && out['type'] === 'object')
    out['additionalProperties'] = false;
  if (out['nullable'] === true) {
    delete out['nullable'];
    return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

/** A receiving endpoint: records requests, answers `status()`. */
async function hook(status: () => number = () => 200) {
  const got: { headers: http.IncomingHttpHeaders; body: string; at: number }[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() });
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`,
    got,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

async function api(
  em: Emulator,
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; body: J }> {
  const res = await fetch(`${em.url}/api/v3${p}`, {
    method,
    headers: { authorization: `Bearer ${em.token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as J) : {} };
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('emulator notifications', () => {
  let em: Emulator;
  before(async () => {
    em = await startEmulator({
      events: 20,
      users: 4,
      groups: 2,
      version: '2026.2',
      notifications: { retryDelaysMs: [100, 200] },
    });
  });
  after(() => em.close());

  /** Creates mapping(s), transport, policy, group, rule and binding; returns their pks. */
  async function setup(
    url: string,
    opts: { sendOnce?: boolean; members?: number[]; body?: boolean; header?: boolean; name: string },
  ) {
    const mb = opts.body
      ? (
          await api(em, 'POST', '/propertymappings/notification/', {
            name: `${opts.name} body`,
            expression: BODY_EXPRESSION,
          })
        ).body
      : undefined;
    const mh = opts.header
      ? (
          await api(em, 'POST', '/propertymappings/notification/', {
            name: `${opts.name} hdr`,
            expression: headerExpression('X-Secret', 's3cr3t'),
          })
        ).body
      : undefined;
    const t = await api(em, 'POST', '/events/transports/', {
      name: `${opts.name} t`,
      mode: 'webhook',
      webhook_url: url,
      send_once: opts.sendOnce ?? false,
      webhook_mapping_body: mb?.['pk'] ?? null,
      webhook_mapping_headers: mh?.['pk'] ?? null,
    });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const p = await api(em, 'POST', '/policies/event_matcher/', {
      name: `${opts.name} p`,
      action: null,
      client_ip: null,
      app: null,
      model: null,
    });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    const g = await api(em, 'POST', '/core/groups/', { name: `${opts.name} g`, users: opts.members ?? [] });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    const r = await api(em, 'POST', '/events/rules/', {
      name: `${opts.name} r`,
      transports: [t.body['pk']],
      destination_group: g.body['pk'],
      severity: 'warning',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const b = await api(em, 'POST', '/policies/bindings/', {
      policy: p.body['pk'],
      target: r.body['pk'],
      order: 0,
    });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    return {
      rule: String(r.body['pk']),
      transport: String(t.body['pk']),
      policy: String(p.body['pk']),
      group: String(g.body['pk']),
    };
  }

  async function teardown(o: { rule: string; transport: string; policy: string; group: string }) {
    assert.equal((await api(em, 'DELETE', `/events/rules/${o.rule}/`)).status, 204);
    await api(em, 'DELETE', `/events/transports/${o.transport}/`);
    await api(em, 'DELETE', `/policies/event_matcher/${o.policy}/`);
    await api(em, 'DELETE', `/core/groups/${o.group}/`);
  }

  test('objects validate against the real schema', { skip: NEED_SCHEMA }, async () => {
    const doc = parse(readFileSync(SCHEMA_PATH, 'utf8')) as { components: { schemas: J } };
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    // Users without an address carry "" (as in schema.test.ts).
    ajv.addFormat('email', (v: string) => v === '' || /^[^@\s]+@[^@\s]+$/.test(v));
    const raw = structuredClone(doc.components.schemas) as Record<string, { properties: J }>;
    // DRF renders a read-only nested serializer of an unset relation as null, which the schema does
    // not declare (PolicyBinding.group_obj / user_obj / policy_obj, NotificationRule.destination_group_obj).
    for (const [n, props] of [
      ['PolicyBinding', ['policy_obj', 'group_obj', 'user_obj']],
      ['NotificationRule', ['destination_group_obj']],
    ] as const) {
      for (const k of props) (raw[n]!.properties[k] as J)['nullable'] = true;
    }
    const schemas = close(raw) as J;
    for (const [k, v] of Object.entries(schemas)) ajv.addSchema(v as object, `#/components/schemas/${k}`);
    const check = (name: string, v: unknown) => {
      const f = ajv.getSchema(`#/components/schemas/${name}`)!;
      assert.ok(f(v), `${name}: ${ajv.errorsText(f.errors)}\n${JSON.stringify(v)}`);
    };
    const h = await hook();
    const users = em.users.all().map((u) => u.pk);
    const o = await setup(h.url, { name: 'schema', body: true, header: true, members: users.slice(0, 1) });
    check(
      'PaginatedNotificationWebhookMappingList',
      (await api(em, 'GET', '/propertymappings/notification/')).body,
    );
    check(
      'PaginatedNotificationTransportList',
      (await api(em, 'GET', '/events/transports/?name=schema%20t')).body,
    );
    check('PaginatedEventMatcherPolicyList', (await api(em, 'GET', '/policies/event_matcher/')).body);
    check('PaginatedNotificationRuleList', (await api(em, 'GET', '/events/rules/')).body);
    check('PaginatedPolicyBindingList', (await api(em, 'GET', `/policies/bindings/?target=${o.rule}`)).body);
    check('NotificationRule', (await api(em, 'GET', `/events/rules/${o.rule}/`)).body);
    check('Group', (await api(em, 'GET', `/core/groups/${o.group}/`)).body);
    const u = await api(em, 'POST', '/core/users/', {
      username: 'svc-x',
      name: 'svc',
      type: 'service_account',
      path: 'authentik-collector',
    });
    assert.equal(u.status, 201);
    check('User', u.body);
    check('User', (await api(em, 'PATCH', `/core/users/${String(u.body['pk'])}/`, { name: 'svc 2' })).body);
    assert.equal(
      (await api(em, 'GET', '/core/users/?username=svc-x')).body['pagination'] !== undefined,
      true,
    );
    // Errors as authentik gives them.
    assert.equal(
      (await api(em, 'POST', '/policies/event_matcher/', { name: 'partial', action: null })).status,
      405,
    );
    assert.equal(
      (
        await api(em, 'POST', '/events/transports/', {
          name: 'schema t',
          mode: 'webhook',
          webhook_url: h.url,
        })
      ).status,
      400,
    );
    assert.equal((await api(em, 'GET', '/events/rules/00000000-0000-4000-8000-000000000000/')).status, 404);
    await teardown(o);
    assert.equal(
      (await api(em, 'GET', `/policies/bindings/?target=${o.rule}`)).body['pagination'] &&
        ((await api(em, 'GET', `/policies/bindings/?target=${o.rule}`)).body['results'] as unknown[]).length,
      0,
      'deleting the rule deletes its bindings',
    );
    await api(em, 'DELETE', `/core/users/${String(u.body['pk'])}/`);
    await h.close();
  });

  test("default body, one POST per destination user, text/json and authentik's User-Agent", async () => {
    const h = await hook();
    const members = em.users
      .all()
      .slice(0, 2)
      .map((u) => u.pk);
    const o = await setup(h.url, { name: 'default', members });
    const [pk] = em.events.insert(1);
    await waitFor(() => h.got.length >= 2);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.got.length, 2, 'send_once false: one per member');
    const req = h.got[0]!;
    assert.equal(req.headers['content-type'], 'text/json');
    assert.match(String(req.headers['user-agent']), /^authentik@2026\.2\.2$/);
    const body = JSON.parse(req.body) as J;
    assert.deepEqual(Object.keys(body).slice(0, 4), ['body', 'severity', 'user_email', 'user_username']);
    assert.equal(body['severity'], 'warning');
    const ev = em.events.get(pk!) as J;
    const ctx = ev['context'] as J;
    if (typeof ctx['message'] === 'string') assert.equal(body['body'], ctx['message']);
    else assert.ok(String(body['body']).startsWith(`${String(ev['action'])}: {`));
    await teardown(o);
    await h.close();
  });

  test("the collector's mappings: the event as the API renders it, the secret header, once per event", async () => {
    const h = await hook();
    const members = em.users
      .all()
      .slice(0, 3)
      .map((u) => u.pk);
    const o = await setup(h.url, { name: 'collector', members, sendOnce: true, body: true, header: true });
    const pks = em.events.insert(5);
    await waitFor(() => h.got.length >= 5);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.got.length, 5);
    for (const g of h.got) {
      assert.equal(g.headers['x-secret'], 's3cr3t');
      const body = JSON.parse(g.body) as J;
      assert.ok(pks.includes(String(body['pk'])));
      assert.equal(g.body, pyJsonDumps(em.events.get(String(body['pk']))), 'Python json.dumps bytes');
      assert.deepEqual(body, em.events.get(String(body['pk'])));
    }
    await teardown(o);
    await h.close();
  });

  test('retries a failing receiver, then gives up; an empty group or no binding sends nothing', async () => {
    let n = 0;
    const h = await hook(() => (++n <= 2 ? 503 : 200));
    const members = em.users
      .all()
      .slice(0, 1)
      .map((u) => u.pk);
    const o = await setup(h.url, { name: 'retry', members, sendOnce: true, body: true });
    const before = { ...em.notifications.stats };
    em.events.insert(1);
    await waitFor(() => h.got.length >= 3, 5000);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(h.got.length, 3, 'two failures then success');
    // Always failing: 1 + 2 retries, then given up.
    n = -100;
    em.events.insert(1);
    await waitFor(() => em.notifications.stats.gaveUp > before.gaveUp, 5000);
    await teardown(o);
    const empty = await setup(h.url, { name: 'empty', members: [] });
    const count = h.got.length;
    em.events.insert(2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.got.length, count);
    await teardown(empty);
    await h.close();
  });

  test('pyJsonDumps matches Python json.dumps defaults', () => {
    assert.equal(
      pyJsonDumps({ a: 'é', b: [1, null, true], c: { d: 'x"y' } }),
      '{"a": "\\u00e9", "b": [1, null, true], "c": {"d": "x\\"y"}}',
    );
  });
});
