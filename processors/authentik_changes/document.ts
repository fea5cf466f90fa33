/**
 * The ECS document of one change record (dataset `authentik.change`). Built here, complete, because
 * `authentik_ecs` maps only the datasets Elastic defines and passes this one through untouched.
 */
import { createHash } from 'node:crypto';
import type { Change, GroupState, Values } from './diff.ts';

export const CHANGE_DATASET = 'authentik.change';
export const ECS_VERSION = '8.11.0';

export interface DocContext {
  /** Which authentik (the records' `server.address`). */
  instance: string;
  namespace: string;
  /** Revision of the entity before the change (or its uuid for a creation), for the id. */
  prevRev: string;
  /** When the change was noticed (ISO). */
  detectedAt: string;
  /** When it happened, if known (ISO): `last_updated` / `password_change_date`. */
  happenedAt?: string | undefined;
  /** Look-up of the groups known from group listings. */
  group(pk: string): Pick<GroupState, 'pk' | 'name' | 'is_superuser'> | undefined;
  /** For a deleted user: how many of its events the collector had shipped. */
  eventsShipped?: number | undefined;
  /** `full` or `changes` (the listing that showed the change), or `replay`. */
  listing: string;
}

/** Deterministic `_id`: the same change (same entity revision) always gets the same id. */
export function changeId(instance: string, c: Change, prevRev: string): string {
  const entityId = c.entity === 'user' ? String(c.user.pk) : c.group.pk;
  const h = createHash('sha1');
  h.update(JSON.stringify([instance, c.entity, entityId, prevRev, c.kind, c.discriminator]));
  return h.digest('base64');
}

function domainOf(email: string): string | undefined {
  const at = email.indexOf('@');
  return at > 0 && at < email.length - 1 ? email.slice(at + 1) : undefined;
}

function describe(c: Change, ctx: DocContext): string {
  if (c.entity === 'user') {
    const who = `user ${c.user.username} (pk ${c.user.pk})`;
    const g = c.group === undefined ? undefined : ctx.group(c.group);
    const gname = c.group === undefined ? '' : g ? `${g.name} (${c.group})` : c.group;
    const fmt = (v: Values | undefined, k: string) => JSON.stringify(v?.[k] ?? null);
    switch (c.kind) {
      case 'created':
        return `${who} was created`;
      case 'deleted':
        return `${who} was deleted; the collector had shipped ${ctx.eventsShipped ?? 0} of its events (authentik deletes a user's events with the user by default)`;
      case 'activated':
        return `${who} was activated`;
      case 'deactivated':
        return `${who} was deactivated`;
      case 'superuser-granted':
        return `${who} became a superuser`;
      case 'superuser-revoked':
        return `${who} is no longer a superuser`;
      case 'added-to-group':
        return `${who} was added to group ${gname}`;
      case 'removed-from-group':
        return `${who} was removed from group ${gname}`;
      case 'type-changed':
        return `${who}: type changed from ${fmt(c.before, 'type')} to ${fmt(c.after, 'type')}`;
      case 'email-changed':
        return `${who}: email changed from ${fmt(c.before, 'email')} to ${fmt(c.after, 'email')}`;
      case 'username-changed':
        return `user pk ${c.user.pk}: username changed from ${fmt(c.before, 'username')} to ${fmt(c.after, 'username')}`;
      case 'name-changed':
        return `${who}: name changed from ${fmt(c.before, 'name')} to ${fmt(c.after, 'name')}`;
      case 'password-changed':
        return `${who}: password changed`;
    }
  }
  const what = `group ${c.group.name} (${c.group.pk})`;
  switch (c.kind) {
    case 'created':
      return `${what} was created`;
    case 'deleted':
      return `${what} was deleted`;
    case 'renamed':
      return `${what} was renamed from ${JSON.stringify(c.before?.name ?? null)}`;
    case 'parent-changed':
      return `${what}: parents changed`;
    case 'superuser-granted':
      return `${what} now makes its members superusers`;
    case 'superuser-revoked':
      return `${what} no longer makes its members superusers`;
  }
}

function eventType(c: Change): string[] {
  const what = c.kind === 'created' ? 'creation' : c.kind === 'deleted' ? 'deletion' : 'change';
  if (c.entity === 'user' && (c.kind === 'added-to-group' || c.kind === 'removed-from-group')) {
    return ['user', 'group', 'change'];
  }
  return [c.entity, what];
}

function withNames(v: Values | undefined, ctx: DocContext): Values | undefined {
  if (v === undefined) return undefined;
  const out: Values = { ...v };
  for (const [k, names] of [
    ['groups', 'group_names'],
    ['parents', 'parent_names'],
  ] as const) {
    const ids = v[k];
    if (Array.isArray(ids)) out[names] = ids.map((id) => ctx.group(id)?.name ?? id);
  }
  return out;
}

/** The ECS document of a change. */
export function changeDocument(c: Change, ctx: DocContext, id: string): Record<string, unknown> {
  const related: string[] = [];
  const add = (v: string | undefined | null) => {
    if (v !== undefined && v !== null && v !== '' && !related.includes(v)) related.push(v);
  };
  const change: Record<string, unknown> = { entity: c.entity, listing: ctx.listing, instance: ctx.instance };
  const before = withNames(c.before, ctx);
  const after = withNames(c.after, ctx);
  if (before) change.before = before;
  if (after) change.after = after;
  const doc: Record<string, unknown> = {
    '@timestamp': ctx.happenedAt ?? ctx.detectedAt,
    ecs: { version: ECS_VERSION },
    data_stream: { type: 'logs', dataset: CHANGE_DATASET, namespace: ctx.namespace },
    event: {
      kind: 'event',
      category: ['iam'],
      type: eventType(c),
      action: `${c.entity}-${c.kind}`,
      dataset: CHANGE_DATASET,
      module: 'authentik',
      created: ctx.detectedAt,
      id,
    },
    observer: { vendor: 'authentik', product: 'authentik' },
    message: describe(c, ctx),
  };
  if (c.entity === 'user') {
    const u = c.user;
    const target: Record<string, unknown> = { id: String(u.pk), name: u.username };
    if (u.name !== '') target.full_name = u.name;
    if (u.email !== '') {
      target.email = u.email;
      const d = domainOf(u.email);
      if (d !== undefined) target.domain = d;
    }
    doc.user = { target };
    add(String(u.pk));
    add(u.username);
    add(u.email);
    if (c.kind === 'username-changed') add(c.before?.username as string | undefined);
    if (c.kind === 'email-changed') add(c.before?.email as string | undefined);
    if (c.group !== undefined) {
      const g = ctx.group(c.group);
      doc.group = g ? { id: c.group, name: g.name } : { id: c.group };
      if (g) change.group_is_superuser = g.is_superuser;
    }
    if (c.kind === 'superuser-granted' || c.kind === 'superuser-revoked' || c.kind === 'created') {
      const via = u.groups.map((pk) => ctx.group(pk)).filter((g) => g?.is_superuser === true);
      if (via.length > 0) change.via_groups = via.map((g) => ({ id: g!.pk, name: g!.name }));
    }
    if (c.kind === 'deleted') change.events_shipped = ctx.eventsShipped ?? 0;
  } else {
    doc.group = { id: c.group.pk, name: c.group.name };
  }
  if (related.length > 0) doc.related = { user: related };
  doc.authentik = { change };
  return doc;
}
