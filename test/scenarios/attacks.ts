/**
 * Attack scenarios and a benign baseline of the same size, written into the authentik emulator as the
 * events authentik records (shapes from Elastic's fixtures and the real captures) and as directory
 * changes. Each scenario names the entities it uses (usernames, addresses, group names), so a rule's
 * hits can be traced back to the scenario that caused them.
 */
import type { Emulator } from '../emulator/index.ts';
import { DirectoryDriver } from './directory.ts';

const UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36';
const BRAND = {
  pk: '0bb0bcf421994958b51ffc2627ea8fe6',
  app: 'authentik_brands',
  name: 'Default brand',
  model_name: 'brand',
};
const FLOW_PATH = '/api/v3/flows/executor/default-authentication-flow/';

type Ev = Record<string, unknown>;
interface Who {
  pk: number | null;
  username: string;
  email?: string;
}

function userObj(u: Who): Record<string, unknown> {
  return { pk: u.pk, email: u.email ?? `${u.username}@example.com`, username: u.username };
}

function ev(action: string, app: string, u: Who, ip: string | null, context: Record<string, unknown>): Ev {
  return { user: userObj(u), action, app, context, client_ip: ip, brand: BRAND };
}

export function loginFailed(u: Who, ip: string): Ev {
  return ev('login_failed', 'authentik.events.signals', u, ip, {
    stage: {
      pk: '78aa6805067c4d4cad52322cdfc2f52a',
      app: 'authentik_stages_password',
      name: 'default-authentication-password',
      model_name: 'passwordstage',
    },
    password: '********************',
    username: u.username,
    http_request: { args: { next: '/' }, path: FLOW_PATH, method: 'POST', user_agent: UA },
  });
}

export function login(u: Who, ip: string): Ev {
  return ev('login', 'authentik.events.signals', u, ip, {
    auth_method: 'password',
    http_request: { args: { next: '/' }, path: FLOW_PATH, method: 'GET', user_agent: UA },
    auth_method_args: {},
  });
}

function http(path: string, method: string) {
  return { args: {}, path, method, user_agent: UA };
}

export function model(
  action: 'model_created' | 'model_updated' | 'model_deleted',
  u: Who,
  ip: string,
  m: { app: string; model_name: string; name: string },
): Ev {
  const method = action === 'model_created' ? 'POST' : action === 'model_updated' ? 'PATCH' : 'DELETE';
  const pk = `${m.model_name}${Math.random().toString(16).slice(2, 10)}`;
  return ev(action, 'authentik.events.middleware', u, ip, {
    model: { pk, app: m.app, name: m.name, model_name: m.model_name },
    http_request: http(`/api/v3/${m.app}/${pk}/`, method),
  });
}

export function impersonation(
  action: 'impersonation_started' | 'impersonation_ended',
  admin: Who,
  target: Who,
  ip: string,
): Ev {
  const u = { ...userObj(admin), on_behalf_of: userObj(target) };
  return {
    user: u,
    action,
    app: 'authentik.core.api.users',
    context: { http_request: http(`/api/v3/core/users/${target.pk}/impersonate/`, 'POST') },
    client_ip: ip,
    brand: BRAND,
  };
}

export function secretView(u: Who, ip: string, token: string): Ev {
  return ev('secret_view', 'authentik.core.api.tokens', u, ip, {
    secret: {
      pk: '8b03f2c1df9c4cabbb33602efade9ced',
      app: 'authentik_core',
      name: token,
      model_name: 'token',
    },
    http_request: http(`/api/v3/core/tokens/${token}/view_key/`, 'GET'),
  });
}

export function policyException(ip: string | null): Ev {
  return ev(
    'policy_exception',
    'authentik.policies.expression.evaluator',
    { pk: null, username: 'AnonymousUser', email: '' },
    ip,
    {
      message:
        'Traceback (most recent call last):\n  File "<string>", line 2, in <module>\nKeyError: \'groups\'',
      expression: "return request.context['groups']",
      policy_uuid: 'b41a5d2b0f3c4d7c9c8e0e1f2a3b4c5d',
    },
  );
}

/** One scenario: what it does, the rule it is meant to trigger, the entities it uses. */
export interface Scenario {
  id: string;
  /** The rule (file stem) that must fire on it. */
  rule: string;
  what: string;
  markers: Set<string>;
}

export interface World {
  scenarios: Scenario[];
  /** Events inserted so far (the collector must deliver this many). */
  events: number;
  /** Events to insert after the directory changes were collected (a deactivated user's login). */
  afterDirectory: () => void;
  /** Directory changes, made once the baseline listings were collected. */
  directory: () => void;
}

const minutesAgo = (m: number): Date => new Date(Date.now() - m * 60_000);
const daysAgo = (d: number): Date => new Date(Date.now() - d * 86_400_000);
const u = (username: string, pk: number | null = null): Who => ({ pk, username });
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const pad = (i: number) => String(i).padStart(2, '0');

/**
 * Attack world (`baseline = false`) or its benign twin (`baseline = true`): the same number of events per
 * scenario, shaped like normal activity. Events are inserted now; directory changes and the deactivated
 * user's login are returned as steps because they need the collector to have seen the directory first.
 */
export function buildWorld(emu: Emulator, baseline: boolean): World {
  const ins = (evs: Ev[], at?: Date) => {
    emu.events.insertRecords(evs, at);
    world.events += evs.length;
  };
  const d = new DirectoryDriver(emu);
  const plain = d.plainUsers();
  const admins = d.groups.find((g) => g.is_superuser)!;
  const scenarios: Scenario[] = [];
  const sc = (id: string, rule: string, what: string, markers: string[]) =>
    scenarios.push({ id, rule, what, markers: new Set(markers) });
  const world: World = { scenarios, events: 0, afterDirectory: () => undefined, directory: () => undefined };
  const tag = baseline ? 'b' : 'a';

  // 1. Password spraying: 30 users × 1 wrong password from one address (baseline: 30 addresses).
  {
    const users = range(30).map((i) => u(`spray-${tag}${pad(i)}`));
    const ips = baseline ? range(30).map((i) => `10.20.0.${i}`) : range(30).map(() => '89.160.20.112');
    ins(
      users.map((x, i) => loginFailed(x, ips[i]!)),
      minutesAgo(2),
    );
    sc('spray', 'authentik_password_spraying', '30 users × 1 wrong password from one IP', [
      ...users.map((x) => x.username),
      ...ips,
    ]);
  }
  // 2. Brute force: 50 wrong passwords for one account (baseline: 50 accounts, one each).
  {
    const users = baseline
      ? range(50).map((i) => u(`bf-${tag}${pad(i)}`))
      : range(50).map(() => u('bf-victim'));
    ins(
      users.map((x, i) => loginFailed(x, `10.30.0.${(i % 50) + 1}`)),
      minutesAgo(2),
    );
    sc(
      'brute',
      'authentik_brute_force_account',
      '50 wrong passwords on one account',
      users.map((x) => x.username),
    );
  }
  // 3. Success after failures: 50 wrong passwords then a success (baseline: 50 users, 1 typo + success each... same size: 50 + 1).
  {
    const users = baseline
      ? range(50).map((i) => u(`saf-${tag}${pad(i)}`))
      : range(50).map(() => u('saf-victim'));
    const fails = users.map((x, i) => loginFailed(x, baseline ? `10.50.0.${i + 1}` : '81.2.69.144'));
    const ok = login(baseline ? u(`saf-${tag}01`) : u('saf-victim'), '81.2.69.144');
    ins(fails, minutesAgo(2));
    ins([ok], minutesAgo(1));
    sc(
      'success-after-failures',
      'authentik_success_after_failures',
      '50 wrong passwords on one account, then a success',
      users.map((x) => x.username),
    );
  }
  // 4. New country: 20 logins from GB 10 days ago, then one from CN now (baseline: from GB again).
  {
    const who = u(baseline ? 'geo-b' : 'geo-victim', 4001);
    ins(
      range(20).map(() => login(who, '81.2.69.142')),
      daysAgo(10),
    );
    ins([login(who, baseline ? '81.2.69.142' : '175.16.199.1')], minutesAgo(1));
    sc(
      'new-country',
      'authentik_login_new_country',
      'a login from CN for a user seen only from GB in 30 days',
      [who.username],
    );
  }
  // 5. Impersonation (baseline: the end of one).
  {
    const admin = u(`imp-admin-${tag}`, 4002);
    const target = u(`imp-target-${tag}`, 4003);
    ins(
      [
        impersonation(
          baseline ? 'impersonation_ended' : 'impersonation_started',
          admin,
          target,
          '81.2.69.192',
        ),
      ],
      minutesAgo(1),
    );
    sc('impersonation', 'authentik_impersonation_started', 'an administrator impersonates a user', [
      admin.username,
      target.username,
    ]);
  }
  // 8. API token / secret by a non-admin (baseline: by akadmin).
  {
    const who = baseline ? u('akadmin', 4) : u('tok-user', 4004);
    ins(
      [
        model('model_created', who, '81.2.69.192', {
          app: 'authentik_core',
          model_name: 'token',
          name: `tok-${tag}`,
        }),
        secretView(who, '81.2.69.192', `tok-${tag}`),
      ],
      minutesAgo(1),
    );
    sc(
      'token',
      'authentik_token_by_non_admin',
      'a non-admin creates an API token and views its key',
      baseline ? [] : [who.username],
    );
  }
  // 9. MFA device removed (baseline: enrolled).
  {
    const who = u(`mfa-user-${tag}`, 4005);
    ins(
      [
        model(baseline ? 'model_created' : 'model_deleted', who, '81.2.69.192', {
          app: 'authentik_stages_authenticator_totp',
          model_name: 'totpdevice',
          name: `${who.username} phone`,
        }),
      ],
      minutesAgo(1),
    );
    sc('mfa-removed', 'authentik_mfa_device_removed', "a user's TOTP device is deleted", [who.username]);
  }
  // 10. Flow / stage changed (baseline: an application and a new stage).
  {
    const who = u(`flow-admin-${tag}`, 4006);
    const evs = baseline
      ? [
          model('model_updated', who, '81.2.69.192', {
            app: 'authentik_core',
            model_name: 'application',
            name: 'wiki',
          }),
          model('model_created', who, '81.2.69.192', {
            app: 'authentik_stages_identification',
            model_name: 'identificationstage',
            name: 'new-id',
          }),
        ]
      : [
          model('model_updated', who, '81.2.69.192', {
            app: 'authentik_flows',
            model_name: 'flow',
            name: 'default-authentication-flow',
          }),
          model('model_deleted', who, '81.2.69.192', {
            app: 'authentik_stages_authenticator_validate',
            model_name: 'authenticatorvalidatestage',
            name: 'mfa-validate',
          }),
        ];
    ins(evs, minutesAgo(1));
    sc('flow-stage', 'authentik_flow_stage_changed', 'the login flow is edited and its MFA stage deleted', [
      who.username,
    ]);
  }
  // 11. Policy exceptions: 12 within a second (baseline: 12 spread over a day, one every 2 hours).
  {
    if (baseline) for (let i = 0; i < 12; i++) ins([policyException('10.40.0.1')], minutesAgo(60 + i * 120));
    else
      ins(
        range(12).map(() => policyException('10.40.0.1')),
        minutesAgo(1),
      );
    sc('policy-spike', 'authentik_policy_exceptions_spike', '12 policy exceptions within a second', [
      'b41a5d2b0f3c4d7c9c8e0e1f2a3b4c5d',
    ]);
  }

  // Directory: 6. a group gains the superuser flag (with a member), 7. a user added to the admins group,
  // 12. a user deactivated (and, after that, logging in).
  const [m6, m7, m12] = plain;
  const g6 = d.createGroup(`ops-${tag}`, { users: [m6!.pk] });
  const other = d.createGroup(`wiki-editors-${tag}`);
  sc('superuser', 'authentik_superuser_granted', 'a group with a member is made a superuser group', [
    g6.name,
    m6!.username,
  ]);
  sc('admin-group', 'authentik_added_to_admin_group', `a user is added to "${admins.name}"`, [
    m7!.username,
    admins.name,
    other.name,
  ]);
  sc('deactivated-login', 'authentik_deactivated_user_login', 'a deactivated user logs in', [m12!.username]);
  world.directory = () => {
    if (baseline) {
      d.renameGroup(g6.pk, `ops-${tag}-renamed`);
      d.addToGroup(m7!.pk, other.pk);
      d.setActive(m12!.pk, false);
    } else {
      d.setGroupSuperuser(g6.pk, true);
      d.addToGroup(m7!.pk, admins.pk);
      d.setActive(m12!.pk, false);
    }
  };
  world.afterDirectory = () => {
    // Attack: the deactivated user logs in. Baseline: another, active user logs in.
    const who = baseline ? plain[3]! : m12!;
    ins([login({ pk: who.pk, username: who.username, email: who.email }, '81.2.69.144')]);
  };
  scenarios.find((s) => s.id === 'deactivated-login')!.markers.add(plain[3]!.username);
  return world;
}
