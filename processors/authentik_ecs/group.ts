/**
 * The `authentik.group` mapping: Elastic's group pipeline after the common prologue (spec §c.3).
 */
import {
  appendUnique,
  copyValue,
  isMap,
  javaString,
  removeBeforeDropEmpty,
  render,
  toBooleanValue,
  toLongValue,
} from './common.ts';
import type { JMap } from './common.ts';
import type { Ctx } from './context.ts';
import { appendEvent, child, convertAt, preservesDuplicates, related } from './context.ts';

export function mapGroup(ctx: Ctx): void {
  const { doc, event } = ctx;
  const authentik = doc['authentik'];
  const g = isMap(authentik) ? authentik['group'] : undefined;
  const ag: JMap | undefined = isMap(g) ? g : undefined;

  event['kind'] = 'asset';
  appendEvent(ctx, 'category', 'iam');
  appendEvent(ctx, 'type', 'group');
  appendEvent(ctx, 'type', 'info');
  doc['observer'] = { vendor: 'authentik', product: 'authentik' };

  const pk = copyValue(ag?.['pk']);
  if (pk !== undefined) child(doc, 'group')['id'] = pk;
  convertAt(ctx, ag, ['num_pk'], toLongValue, 'convert_num_pk_to_long');
  const name = copyValue(ag?.['name']);
  if (name !== undefined) child(doc, 'group')['name'] = name;
  convertAt(ctx, ag, ['is_superuser'], toBooleanValue, 'convert_is_superuser_to_boolean');

  const users = ag?.['users'];
  if (Array.isArray(users)) {
    // foreach: convert each element to string in place (null elements are skipped: ignore_missing).
    for (let i = 0; i < users.length; i++) {
      const u: unknown = users[i];
      if (u === null || u === undefined) continue;
      users[i] = Array.isArray(u) ? u.map((x) => javaString(x)) : javaString(u);
    }
    if (users.length > 0) {
      const user = child(doc, 'user');
      for (const u of users) appendUnique(user, 'id', render(u));
      for (const u of users) related(ctx, 'user', u);
    }
  }

  if (!preservesDuplicates(doc) && ag) {
    removeBeforeDropEmpty(ag, ['pk']);
    removeBeforeDropEmpty(ag, ['name']);
    removeBeforeDropEmpty(ag, ['users']);
  }
}
