/**
 * Realistic, seeded authentik records. Shapes follow the real records in the Elastic fixtures
 * (../shared/fixtures/elastic-authentik/{event,user,group}) and the 2026.2.2 schema.
 *
 * Users and groups are small and kept as objects. Events are never stored: `EventGenerator.make()`
 * materialises one from (seed, generator index, created time) on demand.
 */
import { Stream, eventUuid, formatUuid, h32, hexId, pick, rand } from './rng.ts';
import { actionsOf } from './profiles.ts';
import type { VersionProfile } from './profiles.ts';

export const US_PER_DAY = 86_400_000_000;

/** ISO-8601 UTC with microseconds and `Z`, as DRF renders authentik datetimes. */
export function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  const micro = us - ms * 1000;
  const iso = new Date(ms).toISOString(); // 2024-08-07T06:28:59.565Z
  return `${iso.slice(0, 23)}${String(Math.floor(micro)).padStart(3, '0')}Z`;
}

/** Parses an ISO-8601 date-time (any precision, Z or offset) to epoch microseconds; NaN if invalid. */
export function parseIsoMicros(s: string): number {
  const m =
    /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(
      s.trim(),
    );
  if (!m) return NaN;
  const [, date, hh = '00', mm = '00', ss = '00', frac = '', tz = 'Z'] = m;
  const tzNorm = tz.toUpperCase() === 'Z' ? 'Z' : tz.length === 5 ? `${tz.slice(0, 3)}:${tz.slice(3)}` : tz;
  const ms = Date.parse(`${date}T${hh}:${mm}:${ss}${tzNorm}`);
  if (Number.isNaN(ms)) return NaN;
  const micro = Number((frac + '000000').slice(0, 6));
  return ms * 1000 + micro;
}

// ---------------------------------------------------------------------------------------------
// Directory: users, groups, roles
// ---------------------------------------------------------------------------------------------

export interface RoleRec {
  pk: string;
  name: string;
}

export interface UserRec {
  pk: number;
  username: string;
  name: string;
  is_active: boolean;
  last_login: string | null;
  date_joined: string;
  groups: string[];
  roles: string[];
  email: string;
  avatar: string;
  attributes: Record<string, unknown>;
  uid: string;
  path: string;
  type: 'internal' | 'external' | 'service_account' | 'internal_service_account';
  uuid: string;
  password_change_date: string;
  last_updated: string;
  /** epoch µs of last_updated, for filtering */
  lastUpdatedUs: number;
}

export interface GroupRec {
  pk: string;
  num_pk: number;
  name: string;
  is_superuser: boolean;
  parent: string | null;
  users: number[];
  attributes: Record<string, unknown>;
  roles: string[];
}

const FIRST = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  'frank',
  'grace',
  'heidi',
  'ivan',
  'judy',
  'mallory',
  'niaj',
  'olivia',
  'peggy',
  'rupert',
  'sybil',
  'trent',
  'victor',
  'walter',
  'lois',
  'clark',
  'henry',
  'tiffany',
  'joseph',
  'dixie',
  'hazel',
  'chris',
  'john',
  'aayush',
  'mei',
  'yusuf',
  'ana',
  'lukas',
  'sofia',
  'kenji',
];
const LAST = [
  'smith',
  'lane',
  'kent',
  'higgins',
  'case',
  'arimathea',
  'normous',
  'parmar',
  'kumar',
  'müller',
  'garcia',
  'nguyen',
  'okafor',
  'rossi',
  'novak',
  'tanaka',
  'silva',
  'kowalski',
  'jensen',
  'dubois',
  'ibrahim',
  'lee',
];
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const ascii = (s: string) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '');

const AVATAR_COLORS = [
  '553760',
  '3746c8',
  '3752c8',
  '543737',
  '58a1a9',
  '377b37',
  '37c8a9',
  '404637',
  '374b37',
];
function svgAvatar(initials: string, color: string): string {
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" width="64px" height="64px" viewBox="0 0 64 64" version="1.1">' +
    `<rect fill="#${color}" cx="32" cy="32" width="64" height="64" r="32"/>` +
    '<text x="50%" y="50%" style="color: #fff; line-height: 1; font-family: \'RedHatText\',\'Overpass\',overpass,helvetica,arial,sans-serif; " fill="#fff" alignment-baseline="middle" dominant-baseline="middle" text-anchor="middle" font-size="28" font-weight="400" dy=".1em">' +
    `${initials}</text></svg>`;
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}
const DEFAULT_AVATAR = '/static/dist/assets/images/user_default.png';

/** int(str(UUID.int)[:5]), authentik's Group.num_pk. */
export function numPkOf(uuid: string): number {
  return Number(
    BigInt('0x' + uuid.replace(/-/g, ''))
      .toString()
      .slice(0, 5),
  );
}

export interface Directory {
  users: UserRec[];
  groups: GroupRec[];
  roles: RoleRec[];
  /** Users that act in events (snapshot at start, immutable so event generation stays stable). */
  actors: Array<{ pk: number; email: string; username: string; admin: boolean }>;
}

export interface DirectoryOptions {
  seed: number;
  users: number;
  groups: number;
  /** epoch µs "now" used for timestamps (last_updated etc.) */
  nowUs: number;
}

export function makeDirectory(o: DirectoryOptions): Directory {
  const rnd = new Stream(o.seed ^ 0x5eed0001);
  const installId = rnd.hex(32);
  const uidOf = (pk: number) => {
    // sha256("{id}-{install id}") in the real server; any stable 64-hex value serves.
    let s = '';
    for (let i = 0; i < 8; i++)
      s += h32(o.seed, pk, 900 + i)
        .toString(16)
        .padStart(8, '0');
    return s + installId.slice(0, 0);
  };
  const roles: RoleRec[] = [
    { pk: rnd.uuid(), name: 'authentik Read-only' },
    { pk: rnd.uuid(), name: 'guest' },
    { pk: rnd.uuid(), name: 'helpdesk' },
    { pk: rnd.uuid(), name: 'auditor' },
  ];

  // ---- groups ----
  const fixedGroups: Array<[string, boolean, Record<string, unknown>, string[]]> = [
    ['authentik Admins', true, {}, []],
    [
      'authentik Read-only',
      false,
      { notes: 'An group with an auto-generated role that allows read-only permissions on all objects.\n' },
      [roles[0]!.pk],
    ],
    ['AllUsers', false, { ldap_uniq: 'S-1-5-21-1234567890-1234567890-1234567890-1234' }, []],
    ['Guest Admins', false, {}, [roles[1]!.pk]],
  ];
  const depts = [
    'Engineering',
    'Sales',
    'Support',
    'Finance',
    'HR',
    'Legal',
    'Marketing',
    'Operations',
    'IT',
  ];
  const groups: GroupRec[] = [];
  for (let i = 0; i < o.groups; i++) {
    const pk = rnd.uuid();
    let name: string;
    let su = false;
    let attributes: Record<string, unknown> = {};
    let groupRoles: string[] = [];
    let parent: string | null = null;
    const fixed = fixedGroups[i];
    if (fixed) {
      [name, su, attributes, groupRoles] = fixed;
      if (name === 'Guest Admins') parent = groups[0]?.pk ?? null;
    } else {
      const d = depts[(i - fixedGroups.length) % depts.length]!;
      const n = Math.floor((i - fixedGroups.length) / depts.length);
      name = n === 0 ? d : `${d} ${n + 1}`;
      if (rnd.next() < 0.4)
        attributes = { ldap_uniq: `S-1-5-21-1234567890-1234567890-1234567890-${1000 + i}` };
      if (rnd.next() < 0.2) groupRoles = [rnd.pick(roles).pk];
      // a hierarchy: about a third of generated groups sit under an earlier generated group
      if (i > fixedGroups.length && rnd.next() < 0.35) {
        parent = groups[fixedGroups.length + rnd.int(i - fixedGroups.length)]?.pk ?? null;
      }
    }
    groups.push({
      pk,
      num_pk: numPkOf(pk),
      name,
      is_superuser: su,
      parent,
      users: [],
      attributes,
      roles: groupRoles,
    });
  }

  // ---- users ----
  const users: UserRec[] = [];
  let pk = 3;
  const ts = (daysAgo: number) => o.nowUs - Math.floor(daysAgo * US_PER_DAY);
  for (let i = 0; i < o.users; i++) {
    pk += rnd.next() < 0.1 ? 2 + rnd.int(5) : 1; // gaps: deleted users
    let username: string;
    let name: string;
    let email: string;
    let path = 'users';
    let type: UserRec['type'] = 'internal';
    let attributes: Record<string, unknown> = {};
    let superuser = false;
    let isActive = true;
    if (i === 0) {
      username = 'akadmin';
      name = 'authentik Default Admin';
      email = 'root@example.com';
      superuser = true;
    } else if (i === 1) {
      username = `ak-outpost-${rnd.hex(32)}`;
      name = 'Outpost authentik Embedded Outpost Service-Account';
      email = '';
      path = 'goauthentik.io/outposts';
      type = 'internal_service_account';
    } else {
      const f = FIRST[rnd.int(FIRST.length)]!;
      const l = LAST[rnd.int(LAST.length)]!;
      const r = rnd.next();
      const n = i;
      if (r < 0.45) {
        // LDAP-synced
        username = `${ascii(f)}.${ascii(l)}${n > 60 ? n : ''}`;
        name = `${cap(f)} ${cap(l)}`;
        email = `${username}@example.com`;
        path = 'goauthentik.io/sources/test-ldap/Company/AllUsers';
        attributes = {
          sn: cap(l),
          upn: `${username}@example.local`,
          ldap_uniq: `S-1-5-21-1234567890-1234567890-1234567890-${1000 + n}`,
        };
      } else if (r < 0.8) {
        username = `${ascii(f)}${n}`;
        name = `${cap(f)} ${cap(l)}`;
        email = `${ascii(f)}.${ascii(l)}${n}@example.org`;
        if (rnd.next() < 0.2) attributes = { settings: { locale: rnd.pick(['', 'de', 'fr', 'en']) } };
      } else if (r < 0.9) {
        username = `guest${n}`;
        name = `Guest ${cap(f)}`;
        email = rnd.next() < 0.5 ? `guest${n}@example.net` : '';
        path = 'guest_users';
        type = 'external';
      } else {
        username = `svc-${ascii(f)}-${n}`;
        name = `Service ${cap(f)}`;
        email = '';
        path = 'goauthentik.io/service-accounts';
        type = 'service_account';
      }
      isActive = rnd.next() > 0.08;
    }
    const joinedDaysAgo = 30 + rnd.next() * 900;
    const lastLogin = isActive && rnd.next() < 0.6 ? isoMicros(ts(rnd.next() * 30)) : null;
    const updUs = ts(rnd.next() * Math.min(joinedDaysAgo, 60));
    const avatar =
      rnd.next() < 0.75 ? svgAvatar(name.slice(0, 2).toUpperCase(), rnd.pick(AVATAR_COLORS)) : DEFAULT_AVATAR;
    users.push({
      pk,
      username,
      name,
      is_active: isActive,
      last_login: lastLogin,
      date_joined: isoMicros(ts(joinedDaysAgo)),
      groups: [],
      roles: rnd.next() < 0.05 ? [rnd.pick(roles).pk] : [],
      email,
      avatar,
      attributes,
      uid: uidOf(pk),
      path,
      type,
      uuid: rnd.uuid(),
      password_change_date: isoMicros(ts(joinedDaysAgo * rnd.next())),
      last_updated: isoMicros(updUs),
      lastUpdatedUs: updUs,
    });
    if (superuser && groups[0]) {
      groups[0].users.push(pk);
      users[users.length - 1]!.groups.push(groups[0].pk);
    }
  }
  // memberships
  for (const u of users) {
    if (u.type === 'internal_service_account') continue;
    if (u.path.startsWith('goauthentik.io/sources/') && groups[2]) {
      groups[2].users.push(u.pk);
      u.groups.push(groups[2].pk);
    }
    const k = rnd.int(3);
    for (let j = 0; j < k && groups.length > 0; j++) {
      const g = groups[rnd.int(groups.length)]!;
      if (g.is_superuser && rnd.next() < 0.9) continue;
      if (!g.users.includes(u.pk)) {
        g.users.push(u.pk);
        u.groups.push(g.pk);
      }
    }
  }
  const actors = users
    .filter((u) => u.type !== 'internal_service_account')
    .map((u) => ({ pk: u.pk, email: u.email, username: u.username, admin: isSuperuser(u, groups) }));
  if (actors.length === 0)
    actors.push({ pk: 4, email: 'root@example.com', username: 'akadmin', admin: true });
  return { users, groups, roles, actors };
}

export function isSuperuser(u: UserRec, groups: readonly GroupRec[]): boolean {
  return u.groups.some((g) => groups.find((x) => x.pk === g)?.is_superuser === true);
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

const UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'goauthentik.io/outpost/2024.6.3',
  'python-requests/2.32.3',
];
/** Addresses present in MaxMind's public test databases (../shared/geoip), IPv4 and IPv6. */
const IPV4 = [
  '81.2.69.144',
  '81.2.69.142',
  '81.2.69.192',
  '175.16.199.1',
  '89.160.20.112',
  '89.160.20.128',
  '67.43.156.0',
  '1.128.0.0',
  '216.160.83.56',
  '2.125.160.216',
];
const IPV6 = [
  '2001:480::1',
  '2001:218::1',
  '2a02:cf40::1',
  '2a02:d300::1',
  '2001:252::1',
  '2001:2b8::1',
  '2a02:f000::1',
];
const PRIVATE = ['10.212.128.24', '192.168.1.20', '172.16.4.2'];
const GEO: Record<string, Record<string, unknown>> = {
  '81.2.69.144': { lat: 51.5142, city: 'London', long: -0.0931, country: 'GB', continent: 'EU' },
  '89.160.20.112': { lat: 58.4167, city: 'Linköping', long: 15.6167, country: 'SE', continent: 'EU' },
  '67.43.156.0': { lat: 27.5, city: '', long: 90.5, country: 'BT', continent: 'AS' },
  '216.160.83.56': { lat: 47.4, city: 'Milton', long: -122.3, country: 'US', continent: 'NA' },
};
const ASN: Record<string, Record<string, unknown>> = {
  '89.160.20.112': { asn: 29518, as_org: 'Bredband2 AB', network: '89.160.20.112/28' },
  '1.128.0.0': { asn: 1221, as_org: 'Telstra Pty Ltd', network: '1.128.0.0/11' },
};

interface ActionSpec {
  app: string;
  /** weight in the random mix */
  w: number;
  /** who acts: user = a directory user; anon = AnonymousUser; none = {} (system) */
  who: 'user' | 'anon' | 'none' | 'mixed';
  /** http-request driven (client_ip + http_request) */
  web: boolean;
}
const SPECS: Record<string, ActionSpec> = {
  login: { app: 'authentik.events.signals', w: 30, who: 'user', web: true },
  login_failed: { app: 'authentik.events.signals', w: 10, who: 'mixed', web: true },
  logout: { app: 'authentik.events.signals', w: 15, who: 'user', web: true },
  user_write: { app: 'authentik.events.signals', w: 3, who: 'user', web: true },
  suspicious_request: { app: 'authentik.core.api.tokens', w: 1, who: 'user', web: true },
  password_set: { app: 'authentik.events.signals', w: 2, who: 'user', web: true },
  secret_view: { app: 'authentik.core.api.tokens', w: 1, who: 'user', web: true },
  secret_rotate: { app: 'authentik.core.models', w: 1, who: 'none', web: false },
  invitation_used: { app: 'authentik.stages.invitation.stage', w: 1, who: 'user', web: true },
  authorize_application: { app: 'authentik.providers.oauth2.views.authorize', w: 25, who: 'user', web: true },
  source_linked: { app: 'authentik.sources.oauth.views.callback', w: 1, who: 'user', web: true },
  impersonation_started: { app: 'authentik.core.api.users', w: 0.5, who: 'user', web: true },
  impersonation_ended: { app: 'authentik.core.api.users', w: 0.5, who: 'user', web: true },
  flow_execution: { app: 'authentik.flows.views.executor', w: 4, who: 'mixed', web: true },
  policy_execution: { app: 'authentik.policies.process', w: 4, who: 'user', web: false },
  policy_exception: { app: 'authentik.policies.process', w: 0.5, who: 'user', web: true },
  property_mapping_exception: { app: 'authentik.core.expression.evaluator', w: 0.5, who: 'user', web: true },
  system_task_execution: { app: 'authentik.events.system_tasks', w: 5, who: 'none', web: false },
  system_task_exception: { app: 'authentik.events.system_tasks', w: 0.5, who: 'none', web: false },
  system_exception: { app: 'authentik.lib.utils.errors', w: 0.3, who: 'none', web: false },
  configuration_error: { app: 'authentik.outposts.controllers.docker', w: 0.3, who: 'none', web: false },
  configuration_warning: { app: 'authentik.events.models', w: 0.3, who: 'none', web: false },
  model_created: { app: 'authentik.events.middleware', w: 3, who: 'user', web: true },
  model_updated: { app: 'authentik.events.middleware', w: 4, who: 'user', web: true },
  model_deleted: { app: 'authentik.events.middleware', w: 1, who: 'user', web: true },
  email_sent: { app: 'authentik.stages.email.tasks', w: 1, who: 'none', web: false },
  update_available: { app: 'authentik.admin.tasks', w: 0.1, who: 'none', web: false },
  export_ready: { app: 'authentik.enterprise.reports.tasks', w: 0.1, who: 'user', web: false },
  review_initiated: { app: 'authentik.enterprise.lifecycle.tasks', w: 0.1, who: 'none', web: false },
  review_overdue: { app: 'authentik.enterprise.lifecycle.tasks', w: 0.1, who: 'none', web: false },
  review_attested: { app: 'authentik.enterprise.lifecycle.api', w: 0.1, who: 'user', web: true },
  review_completed: { app: 'authentik.enterprise.lifecycle.tasks', w: 0.1, who: 'none', web: false },
  custom_: { app: 'authentik.stages.authenticator_static.signals', w: 0.5, who: 'user', web: false },
};

const CUSTOM = [
  'custom_static_authenticator_disable',
  'custom_totp_device_added',
  'custom_webauthn_registered',
];
const APPLICATIONS = ['Grafana', 'Alertmanager', 'Nextcloud', 'GitLab', 'Vault', 'Jira'];
const MODELS: Array<[string, string]> = [
  ['authentik_core', 'user'],
  ['authentik_core', 'group'],
  ['authentik_core', 'application'],
  ['authentik_core', 'token'],
  ['authentik_flows', 'flow'],
  ['authentik_policies_expression', 'expressionpolicy'],
  ['authentik_events', 'notificationrule'],
  ['authentik_providers_oauth2', 'oauth2provider'],
];
const TASKS = [
  'clean_expired_models',
  'outpost_controller',
  'ldap_sync',
  'notification_transport',
  'update_latest_version',
];

export interface Brand {
  pk: string;
  app: string;
  name: string;
  model_name: string;
}

export interface EventGeneratorOptions {
  seed: number;
  profile: VersionProfile;
  actors: Directory['actors'];
  /** generator indexes below this keep pre-2024.2 tenant content under the `brand` key */
  legacyTenantBelow: number;
}

export type EventObject = Record<string, unknown>;

const RETENTION_US = 365 * US_PER_DAY;

export class EventGenerator {
  readonly seed: number;
  readonly actions: string[];
  readonly #cum: number[];
  readonly #total: number;
  readonly #actors: Directory['actors'];
  readonly #admins: Directory['actors'];
  readonly #legacyBelow: number;
  readonly brands: { def: Brand; second: Brand; fallback: Brand; tenant: Brand };

  constructor(o: EventGeneratorOptions) {
    this.seed = o.seed;
    this.actions = actionsOf(o.profile);
    this.#cum = [];
    let t = 0;
    for (const a of this.actions) {
      t += SPECS[a]?.w ?? 0.1;
      this.#cum.push(t);
    }
    this.#total = t;
    this.#actors = o.actors;
    const admins = o.actors.filter((a) => a.admin);
    this.#admins = admins.length > 0 ? admins : o.actors.slice(0, 1);
    this.#legacyBelow = o.legacyTenantBelow;
    const s = new Stream(o.seed ^ 0xb4a4d);
    this.brands = {
      def: { pk: s.hex(32), app: 'authentik_brands', name: 'Default brand', model_name: 'brand' },
      second: { pk: s.hex(32), app: 'authentik_brands', name: 'Brand auth.example.com', model_name: 'brand' },
      fallback: { pk: s.hex(32), app: 'authentik_brands', name: 'Brand fallback', model_name: 'brand' },
      tenant: { pk: s.hex(32), app: 'authentik_tenants', name: 'Default tenant', model_name: 'tenant' },
    };
  }

  /** The action of generator index gi (the first actions.length indexes cover every action once). */
  actionOf(gi: number): string {
    let a: string;
    if (gi < this.actions.length) a = this.actions[gi]!;
    else {
      const r = rand(this.seed, gi, 1) * this.#total;
      let lo = 0;
      let hi = this.#cum.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.#cum[mid]! > r) hi = mid;
        else lo = mid + 1;
      }
      a = this.actions[lo]!;
    }
    return a === 'custom_' ? CUSTOM[pick(this.seed, gi, 2, CUSTOM.length)]! : a;
  }

  /** pk of the user an event is attributed to (0 for system events / {} user). Used for GDPR deletes. */
  userPkOf(gi: number): number {
    const u = this.#user(gi, this.actionOf(gi));
    return typeof u.pk === 'number' ? u.pk : 0;
  }

  #actor(gi: number, salt: number) {
    return this.#actors[pick(this.seed, gi, salt, this.#actors.length)]!;
  }

  #user(gi: number, action: string): Record<string, unknown> {
    const base = action.startsWith('custom_') ? 'custom_' : action;
    const spec = SPECS[base]!;
    let who = spec.who;
    if (who === 'mixed') who = rand(this.seed, gi, 3) < 0.4 ? 'anon' : 'user';
    if (who === 'none') return {};
    if (who === 'anon') {
      const u: Record<string, unknown> = { pk: 1, email: '', username: 'AnonymousUser', is_anonymous: true };
      if (action === 'flow_execution') {
        const a = this.#actor(gi, 4);
        u.authenticated_as = { pk: a.pk, email: a.email, username: a.username };
      }
      return u;
    }
    const impersonating =
      action === 'impersonation_started' || (spec.web && action !== 'login' && rand(this.seed, gi, 5) < 0.02);
    if (impersonating) {
      const admin = this.#admins[pick(this.seed, gi, 6, this.#admins.length)]!;
      const target = this.#actor(gi, 4);
      return {
        pk: admin.pk,
        email: admin.email,
        username: admin.username,
        on_behalf_of: { pk: target.pk, email: target.email, username: target.username },
      };
    }
    const a = this.#actor(gi, 4);
    return { pk: a.pk, email: a.email, username: a.username };
  }

  #ip(gi: number, web: boolean): string | null {
    if (!web) return null;
    const r = rand(this.seed, gi, 7);
    if (r < 0.02) return null;
    if (r < 0.17) return IPV6[pick(this.seed, gi, 8, IPV6.length)]!;
    if (r < 0.22) return PRIVATE[pick(this.seed, gi, 8, PRIVATE.length)]!;
    return IPV4[pick(this.seed, gi, 8, IPV4.length)]!;
  }

  #http(
    gi: number,
    path: string,
    method: string,
    args: Record<string, unknown> = {},
  ): Record<string, unknown> {
    const r: Record<string, unknown> = { args, path, method };
    if (rand(this.seed, gi, 9) < 0.9) r.user_agent = UAS[pick(this.seed, gi, 10, UAS.length)]!;
    r.request_id = hexId(this.seed, gi, 40);
    return r;
  }

  #modelRef(gi: number, salt: number): Record<string, unknown> {
    const [app, model] = MODELS[pick(this.seed, gi, salt, MODELS.length)]!;
    const pk = model === 'user' ? this.#actor(gi, salt + 1).pk : hexId(this.seed, gi, salt + 2);
    const name =
      model === 'user'
        ? this.#actor(gi, salt + 1).username
        : `${model}-${(h32(this.seed, gi, salt + 3) % 1000).toString().padStart(3, '0')}`;
    return { pk, app, name, model_name: model };
  }

  #context(
    gi: number,
    action: string,
    user: Record<string, unknown>,
    ip: string | null,
  ): Record<string, unknown> {
    const flowPath = (slug: string) => `/api/v3/flows/executor/${slug}/`;
    const stage = {
      pk: hexId(this.seed, 7, 50),
      app: 'authentik_stages_identification',
      name: 'default-authentication-identification',
      model_name: 'identificationstage',
    };
    let c: Record<string, unknown>;
    switch (action) {
      case 'login':
        c = {
          auth_method: rand(this.seed, gi, 20) < 0.8 ? 'password' : 'auth_webauthn_pwl',
          http_request: this.#http(gi, flowPath('default-authentication-flow'), 'GET', { next: '/' }),
          auth_method_args: {},
        };
        break;
      case 'login_failed':
        c = {
          stage,
          password: '********************',
          username: user.is_anonymous === true ? `${this.#actor(gi, 21).username}x` : String(user.username),
          http_request: this.#http(gi, flowPath('default-authentication-flow'), 'POST', { next: '/' }),
        };
        break;
      case 'logout':
        c = { http_request: this.#http(gi, flowPath('default-invalidation-flow'), 'GET') };
        break;
      case 'user_write':
        c = {
          name: String(user.username),
          email: user.email,
          created: false,
          username: user.username,
          attributes: { settings: { locale: '' } },
          http_request: this.#http(gi, flowPath('default-user-settings-flow'), 'GET'),
        };
        break;
      case 'suspicious_request':
        c = {
          message: 'Suspicious request: token identifier does not match',
          http_request: this.#http(gi, '/api/v3/core/tokens/', 'GET'),
        };
        break;
      case 'password_set':
        c =
          rand(this.seed, gi, 22) < 0.5
            ? {}
            : { http_request: this.#http(gi, flowPath('default-password-change'), 'POST') };
        break;
      case 'secret_view':
        c = {
          secret: {
            pk: hexId(this.seed, gi, 23),
            app: 'authentik_core',
            name: 'api-token',
            model_name: 'token',
          },
          http_request: this.#http(gi, '/api/v3/core/tokens/api-token/view_key/', 'GET'),
        };
        break;
      case 'secret_rotate':
        c = {
          token: {
            pk: hexId(this.seed, gi, 24),
            app: 'authentik_core',
            name: 'authentik_default (expires=2024-08-13 06:12:00.943543+00:00)',
            model_name: 'token',
          },
          message: "Token authentik_default's secret was rotated.",
        };
        break;
      case 'invitation_used':
        c = {
          invitation_uuid: hexId(this.seed, gi, 25),
          http_request: this.#http(gi, flowPath('default-enrollment-flow'), 'GET', {
            itoken: hexId(this.seed, gi, 25),
          }),
        };
        break;
      case 'authorize_application': {
        const app = APPLICATIONS[pick(this.seed, gi, 26, APPLICATIONS.length)]!;
        c = {
          flow: hexId(this.seed, 3, 27),
          scopes: 'profile email openid',
          http_request: this.#http(gi, flowPath('default-provider-authorization-explicit-consent'), 'GET', {
            scope: 'openid profile email',
            state: `auth.signin.${app}-1`,
            client_id: hexId(this.seed, pick(this.seed, gi, 26, APPLICATIONS.length), 28).slice(0, 40),
            redirect_uri: `https://${app.toLowerCase()}.example.com/auth/callback`,
            response_type: 'code',
          }),
          authorized_application: {
            pk: hexId(this.seed, pick(this.seed, gi, 26, APPLICATIONS.length), 29),
            app: 'authentik_core',
            name: app,
            model_name: 'application',
          },
        };
        break;
      }
      case 'source_linked':
        c = {
          source: {
            pk: hexId(this.seed, 1, 30),
            app: 'authentik_sources_oauth',
            name: 'GitHub',
            model_name: 'oauthsource',
          },
          http_request: this.#http(gi, '/source/oauth/callback/github/', 'GET'),
        };
        break;
      case 'impersonation_started': {
        const target = user.on_behalf_of as { pk: number } | undefined;
        c = { http_request: this.#http(gi, `/api/v3/core/users/${target?.pk ?? 0}/impersonate/`, 'POST') };
        break;
      }
      case 'impersonation_ended':
        c = { http_request: this.#http(gi, '/api/v3/core/users/impersonate_end/', 'GET') };
        break;
      case 'flow_execution':
        c = {
          flow: {
            pk: hexId(this.seed, 2, 31),
            app: 'authentik_flows',
            name: 'default-authentication-flow',
            model_name: 'flow',
          },
          message: 'Flow execution',
          http_request: this.#http(gi, flowPath('default-authentication-flow'), 'GET'),
        };
        break;
      case 'policy_execution':
        c = {
          result: {
            passing: rand(this.seed, gi, 32) < 0.7,
            messages: [],
            raw_result: null,
            log_messages: [],
            source_binding: null,
            source_results: [],
          },
          binding: {
            pk: hexId(this.seed, 4, 33),
            app: 'authentik_policies',
            name: 'Binding from Notification Rule default-rule #0 to Policy match-all-events',
            model_name: 'policybinding',
          },
          message: 'Policy Execution',
          request: {
            obj: {
              pk: hexId(this.seed, 5, 34),
              app: 'authentik_events',
              name: 'default-rule',
              model_name: 'notificationrule',
            },
            user: { pk: user.pk, email: user.email, username: user.username },
            context: {},
            http_request: null,
          },
          policy_uuid: hexId(this.seed, 6, 35),
        };
        break;
      case 'policy_exception':
        c = {
          message:
            'Traceback (most recent call last):\n  File "policy", line 2, in handler\nbuiltins.KeyError: \'group\'',
          expression: "return request.context['group'] == 'admins'",
          http_request: this.#http(gi, flowPath('default-authentication-flow'), 'GET'),
        };
        break;
      case 'property_mapping_exception':
        c = {
          message:
            "Traceback (most recent call last):\n  File \"mapping\", line 3, in handler\nbuiltins.AttributeError: 'dict' object has no attribute 'body'",
          expression: 'return {\n    "foo": request.context[\'notification\'].body,\n}',
          http_request: this.#http(
            gi,
            `/api/v3/propertymappings/all/${hexId(this.seed, gi, 36)}/test/`,
            'POST',
            {
              format_result: 'true',
            },
          ),
        };
        break;
      case 'system_task_execution':
      case 'system_task_exception': {
        const task = TASKS[pick(this.seed, gi, 37, TASKS.length)]!;
        c =
          action === 'system_task_execution'
            ? {
                message: `Task ${task} finished successfully`,
                task_name: task,
                duration: rand(this.seed, gi, 38) * 5,
              }
            : {
                message: `Task ${task} encountered an error: Traceback (most recent call last):\n  File "/ak-root/venv/lib/python3.12/site-packages/dramatiq/worker.py", line 487, in process_message\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host='hooks.example.com', port=443)`,
                task_name: task,
              };
        break;
      }
      case 'system_exception':
        c = { message: 'Traceback (most recent call last):\nValueError: invalid literal for int()' };
        break;
      case 'configuration_error':
        c = { message: 'Failed to connect to docker: connection refused', outpost: 'ak-outpost-docker' };
        break;
      case 'configuration_warning':
        c = {
          message: 'Deprecated configuration option used: redis.tls_reqs',
          deprecation: 'redis.tls_reqs',
          replacement: 'redis.tls_requirements',
        };
        break;
      case 'model_created':
      case 'model_updated':
      case 'model_deleted': {
        const model = this.#modelRef(gi, 39);
        const method = action === 'model_created' ? 'POST' : action === 'model_updated' ? 'PATCH' : 'DELETE';
        const path =
          action === 'model_created'
            ? `/api/v3/${String(model.app).replace('authentik_', '')}/${String(model.model_name)}s/`
            : `/api/v3/${String(model.app).replace('authentik_', '')}/${String(model.model_name)}s/${String(model.pk)}/`;
        c = { model, http_request: this.#http(gi, path, method) };
        if (action !== 'model_deleted') {
          c.diff =
            action === 'model_created'
              ? {
                  name: { new_value: model.name, previous_value: null },
                  uuid: { new_value: hexId(this.seed, gi, 41), previous_value: null },
                  password: { new_value: '********************', previous_value: null },
                }
              : {
                  name: { new_value: `${String(model.name)}-renamed`, previous_value: model.name },
                  attributes: { new_value: { note: 'updated' }, previous_value: {} },
                };
        }
        break;
      }
      case 'email_sent':
        c = {
          message: 'Email to user@example.com sent',
          to_email: ['user@example.com'],
          subject: 'authentik: Reset your password',
          template: 'email/password_reset.html',
          from_email: 'authentik@example.com',
          body: '********************',
        };
        break;
      case 'update_available':
        c = {
          message: 'Changelog: https://docs.goauthentik.io/docs/releases/2026.2#fixed-in-202622',
          new_version: '2026.2.3',
        };
        break;
      case 'export_ready':
        c = {
          message: 'Data export ready',
          export: {
            pk: hexId(this.seed, gi, 42),
            app: 'authentik_reports',
            name: 'events export',
            model_name: 'dataexport',
          },
        };
        break;
      case 'review_initiated':
      case 'review_overdue':
      case 'review_attested':
      case 'review_completed':
        c = {
          message: `Access review ${action.slice(7)}`,
          review: {
            pk: hexId(this.seed, gi, 43),
            app: 'authentik_lifecycle',
            name: 'Quarterly review',
            model_name: 'review',
          },
        };
        if (action === 'review_attested')
          c.http_request = this.#http(gi, '/api/v3/lifecycle/reviews/attest/', 'POST');
        break;
      default:
        // custom_*
        c = {
          message:
            action === 'custom_static_authenticator_disable'
              ? 'User disabled Static OTP Tokens.'
              : 'Custom event',
        };
    }
    if (ip !== null && (action === 'login' || action === 'login_failed') && rand(this.seed, gi, 44) < 0.6) {
      const geo = GEO[ip];
      if (geo) c.geo = geo;
      const asn = ASN[ip];
      if (asn) c.asn = asn;
    }
    return c;
  }

  #brand(gi: number, spec: ActionSpec): Brand {
    if (gi < this.#legacyBelow) return this.brands.tenant;
    if (!spec.web) return this.brands.fallback;
    return rand(this.seed, gi, 45) < 0.85 ? this.brands.def : this.brands.second;
  }

  /** Materialises the event of generator index gi created at `createdUs` (epoch µs). */
  make(gi: number, createdUs: number): EventObject {
    const action = this.actionOf(gi);
    const spec = SPECS[action.startsWith('custom_') ? 'custom_' : action]!;
    const user = this.#user(gi, action);
    const ip = this.#ip(gi, spec.web);
    return {
      pk: eventUuid(this.seed, gi),
      user,
      action,
      app: spec.app,
      context: this.#context(gi, action, user, ip),
      client_ip: ip,
      created: isoMicros(createdUs),
      expires: isoMicros(createdUs + RETENTION_US),
      brand: { ...this.#brand(gi, spec) },
    };
  }
}

export { formatUuid };
