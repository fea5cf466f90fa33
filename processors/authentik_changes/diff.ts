/**
 * Pure part of the change detection: the compact state kept per user and group, built from an API
 * record, and the changes between two states. No I/O, no clock.
 */

/** What is kept of a user between listings (only the fields whose changes are reported). */
export interface UserState {
  pk: number;
  uuid: string | null;
  username: string;
  name: string;
  email: string;
  is_active: boolean;
  is_superuser: boolean;
  type: string | null;
  /** Group uuids, sorted. */
  groups: string[];
  password_change_date: string | null;
  last_updated: string | null;
  /** Bumped at every committed change; part of the change records' ids. */
  rev: number;
}

/** What is kept of a group between listings. */
export interface GroupState {
  pk: string;
  name: string;
  is_superuser: boolean;
  /** Parent group uuids, sorted (`parents` from 2025.12, `parent` before). */
  parents: string[];
  rev: number;
}

const str = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
const strOrNull = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const strList = (v: unknown): string[] =>
  Array.isArray(v)
    ? [...new Set(v.filter((x) => x !== null && x !== undefined).map((x) => String(x)))].sort()
    : [];

/** The state of a user record, or undefined when the record has no usable pk. */
export function userFromRecord(raw: Record<string, unknown>): Omit<UserState, 'rev'> | undefined {
  const pk = typeof raw.pk === 'number' ? raw.pk : typeof raw.pk === 'string' ? Number(raw.pk) : NaN;
  if (!Number.isSafeInteger(pk)) return undefined;
  return {
    pk,
    uuid: strOrNull(raw.uuid),
    username: str(raw.username),
    name: str(raw.name),
    email: str(raw.email),
    is_active: raw.is_active !== false,
    is_superuser: raw.is_superuser === true,
    type: strOrNull(raw.type),
    groups: strList(raw.groups),
    password_change_date: strOrNull(raw.password_change_date),
    last_updated: strOrNull(raw.last_updated),
  };
}

/** The state of a group record, or undefined when the record has no pk. */
export function groupFromRecord(raw: Record<string, unknown>): Omit<GroupState, 'rev'> | undefined {
  const pk = strOrNull(raw.pk);
  if (pk === null) return undefined;
  const parents = Array.isArray(raw.parents)
    ? strList(raw.parents)
    : strList(raw.parent == null ? [] : [raw.parent]);
  return { pk, name: str(raw.name), is_superuser: raw.is_superuser === true, parents };
}

/** Kinds of change, one `event.action` each (`user-created`, ...). */
export type UserChangeKind =
  | 'created'
  | 'deleted'
  | 'activated'
  | 'deactivated'
  | 'superuser-granted'
  | 'superuser-revoked'
  | 'added-to-group'
  | 'removed-from-group'
  | 'type-changed'
  | 'email-changed'
  | 'username-changed'
  | 'name-changed'
  | 'password-changed';

export type GroupChangeKind =
  'created' | 'deleted' | 'renamed' | 'parent-changed' | 'superuser-granted' | 'superuser-revoked';

/** Every kind, for docs and tests. */
export const USER_CHANGE_KINDS: readonly UserChangeKind[] = [
  'created',
  'deleted',
  'activated',
  'deactivated',
  'superuser-granted',
  'superuser-revoked',
  'added-to-group',
  'removed-from-group',
  'type-changed',
  'email-changed',
  'username-changed',
  'name-changed',
  'password-changed',
];
export const GROUP_CHANGE_KINDS: readonly GroupChangeKind[] = [
  'created',
  'deleted',
  'renamed',
  'parent-changed',
  'superuser-granted',
  'superuser-revoked',
];

export type Values = Record<string, string | boolean | string[] | null>;

export interface UserChange {
  entity: 'user';
  kind: UserChangeKind;
  /** The user as it is after the change (before it, for a deletion). */
  user: Omit<UserState, 'rev'>;
  before?: Values;
  after?: Values;
  /** For group membership changes: the group's uuid. */
  group?: string;
  /** Distinguishes several changes of one kind in one diff (the group of a membership change). */
  discriminator: string;
}

export interface GroupChange {
  entity: 'group';
  kind: GroupChangeKind;
  group: Omit<GroupState, 'rev'>;
  before?: Values;
  after?: Values;
  discriminator: string;
}

export type Change = UserChange | GroupChange;

function userValues(u: Omit<UserState, 'rev'>): Values {
  return {
    username: u.username,
    name: u.name,
    email: u.email,
    is_active: u.is_active,
    is_superuser: u.is_superuser,
    type: u.type,
    groups: u.groups,
  };
}

/** Changes from `prev` to `next` (`prev` undefined: created; `next` undefined: deleted). */
export function diffUser(
  prev: Omit<UserState, 'rev'> | undefined,
  next: Omit<UserState, 'rev'> | undefined,
): UserChange[] {
  if (prev === undefined && next === undefined) return [];
  if (prev === undefined) {
    return [{ entity: 'user', kind: 'created', user: next!, after: userValues(next!), discriminator: '' }];
  }
  if (next === undefined) {
    return [{ entity: 'user', kind: 'deleted', user: prev, before: userValues(prev), discriminator: '' }];
  }
  const out: UserChange[] = [];
  const field = (
    kind: UserChangeKind,
    key: 'type' | 'email' | 'username' | 'name' | 'password_change_date',
  ) => {
    const a = prev[key] as string | boolean | null;
    const b = next[key] as string | boolean | null;
    if (a !== b)
      out.push({
        entity: 'user',
        kind,
        user: next,
        before: { [key]: a },
        after: { [key]: b },
        discriminator: '',
      });
  };
  if (prev.is_active !== next.is_active) {
    out.push({
      entity: 'user',
      kind: next.is_active ? 'activated' : 'deactivated',
      user: next,
      before: { is_active: prev.is_active },
      after: { is_active: next.is_active },
      discriminator: '',
    });
  }
  if (prev.is_superuser !== next.is_superuser) {
    out.push({
      entity: 'user',
      kind: next.is_superuser ? 'superuser-granted' : 'superuser-revoked',
      user: next,
      before: { is_superuser: prev.is_superuser },
      after: { is_superuser: next.is_superuser },
      discriminator: '',
    });
  }
  const before = new Set(prev.groups);
  const after = new Set(next.groups);
  for (const g of next.groups) {
    if (!before.has(g))
      out.push({ entity: 'user', kind: 'added-to-group', user: next, group: g, discriminator: g });
  }
  for (const g of prev.groups) {
    if (!after.has(g))
      out.push({ entity: 'user', kind: 'removed-from-group', user: next, group: g, discriminator: g });
  }
  field('type-changed', 'type');
  field('email-changed', 'email');
  field('username-changed', 'username');
  field('name-changed', 'name');
  // Only a newer date is a password change; a date that appears for the first time (an upgrade to
  // 2025.2+) or goes away (a downgrade) is not.
  const pa = prev.password_change_date;
  const pb = next.password_change_date;
  if (pa !== null && pb !== null && pa !== pb && Date.parse(pb) > Date.parse(pa)) {
    field('password-changed', 'password_change_date');
  }
  return out;
}

/** Changes of a group from `prev` to `next`. */
export function diffGroup(
  prev: Omit<GroupState, 'rev'> | undefined,
  next: Omit<GroupState, 'rev'> | undefined,
): GroupChange[] {
  if (prev === undefined && next === undefined) return [];
  const vals = (g: Omit<GroupState, 'rev'>): Values => ({
    name: g.name,
    is_superuser: g.is_superuser,
    parents: g.parents,
  });
  if (prev === undefined)
    return [{ entity: 'group', kind: 'created', group: next!, after: vals(next!), discriminator: '' }];
  if (next === undefined)
    return [{ entity: 'group', kind: 'deleted', group: prev, before: vals(prev), discriminator: '' }];
  const out: GroupChange[] = [];
  if (prev.name !== next.name) {
    out.push({
      entity: 'group',
      kind: 'renamed',
      group: next,
      before: { name: prev.name },
      after: { name: next.name },
      discriminator: '',
    });
  }
  if (prev.parents.join(',') !== next.parents.join(',')) {
    out.push({
      entity: 'group',
      kind: 'parent-changed',
      group: next,
      before: { parents: prev.parents },
      after: { parents: next.parents },
      discriminator: '',
    });
  }
  if (prev.is_superuser !== next.is_superuser) {
    out.push({
      entity: 'group',
      kind: next.is_superuser ? 'superuser-granted' : 'superuser-revoked',
      group: next,
      before: { is_superuser: prev.is_superuser },
      after: { is_superuser: next.is_superuser },
      discriminator: '',
    });
  }
  return out;
}

/** True when the two states differ in anything that is kept (so the stored state must be rewritten). */
export function sameUser(a: Omit<UserState, 'rev'>, b: Omit<UserState, 'rev'>): boolean {
  return (
    a.uuid === b.uuid &&
    a.username === b.username &&
    a.name === b.name &&
    a.email === b.email &&
    a.is_active === b.is_active &&
    a.is_superuser === b.is_superuser &&
    a.type === b.type &&
    a.groups.join(',') === b.groups.join(',') &&
    a.password_change_date === b.password_change_date
  );
}

export function sameGroup(a: Omit<GroupState, 'rev'>, b: Omit<GroupState, 'rev'>): boolean {
  return (
    a.name === b.name && a.is_superuser === b.is_superuser && a.parents.join(',') === b.parents.join(',')
  );
}
