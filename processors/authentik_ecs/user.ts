/**
 * The `authentik.user` mapping: Elastic's user pipeline after the common prologue (spec §c.4).
 */
import {
  appendUnique,
  copyValue,
  isMap,
  removeBeforeDropEmpty,
  render,
  toBooleanValue,
  toStringValue,
} from './common.ts';
import type { JMap } from './common.ts';
import type { Ctx } from './context.ts';
import {
  appendEvent,
  child,
  convertAt,
  dateAt,
  dissectEmail,
  preservesDuplicates,
  related,
  removeTemp,
} from './context.ts';

const DUPLICATES = ['pk', 'username', 'name', 'groups', 'email'] as const;

export function mapUser(ctx: Ctx): void {
  const { doc, event } = ctx;
  const authentik = doc['authentik'];
  const u = isMap(authentik) ? authentik['user'] : undefined;
  const au: JMap | undefined = isMap(u) ? u : undefined;

  event['kind'] = 'asset';
  appendEvent(ctx, 'category', 'iam');
  appendEvent(ctx, 'type', 'user');
  appendEvent(ctx, 'type', 'info');
  doc['observer'] = { vendor: 'authentik', product: 'authentik' };

  // No local on_failure here: a failure goes to the pipeline handler.
  convertAt(ctx, au, ['pk'], toStringValue, 'convert_user_pk_to_string', false);
  const pk = copyValue(au?.['pk']);
  if (pk !== undefined) child(doc, 'user')['id'] = pk;
  if (au && au['pk'] !== undefined && au['pk'] !== null) related(ctx, 'user', au['pk']);
  const username = copyValue(au?.['username']);
  if (username !== undefined) child(doc, 'user')['name'] = username;
  if (au && au['username'] !== undefined && au['username'] !== null) related(ctx, 'user', au['username']);
  const name = copyValue(au?.['name']);
  if (name !== undefined) child(doc, 'user')['full_name'] = name;
  if (au && au['name'] !== undefined && au['name'] !== null) related(ctx, 'user', au['name']);

  convertAt(ctx, au, ['is_active'], toBooleanValue, 'convert_is_active_to_boolean');
  dateAt(ctx, au, 'last_login', 'date_user_last_login');
  convertAt(ctx, au, ['is_superuser'], toBooleanValue, 'convert_is_superuser_to_boolean');

  const groups = au?.['groups'];
  if (Array.isArray(groups) && groups.length > 0) {
    const group = child(child(doc, 'user'), 'group');
    for (const g of groups) appendUnique(group, 'id', render(g));
  }

  const email = copyValue(au?.['email']);
  if (email !== undefined) child(doc, 'user')['email'] = email;
  dissectEmail(ctx);
  for (const key of ['email', 'uid', 'uuid']) {
    const v = au?.[key];
    if (v !== undefined && v !== null) related(ctx, 'user', v);
  }

  if (!preservesDuplicates(doc) && au) {
    for (const k of DUPLICATES) removeBeforeDropEmpty(au, [k]);
  }
  removeTemp(ctx);
}
