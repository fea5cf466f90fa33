/**
 * The `authentik.event` mapping: Elastic's event pipeline after the common prologue, processor by
 * processor (spec §c.2), with the integration's error behaviour.
 */
import { categorise } from './categories.ts';
import {
  PipelineFailure,
  copyValue,
  getPath,
  javaClass,
  javaString,
  removeBeforeDropEmpty,
  toBooleanValue,
  toIpValue,
  toStringValue,
} from './common.ts';
import type { JMap } from './common.ts';
import type { Ctx } from './context.ts';
import {
  child,
  convertAt,
  dateAt,
  dissectEmail,
  isMap,
  preservesDuplicates,
  related,
  removeTemp,
  relatedUserIf,
  userAgent,
} from './context.ts';

/**
 * Fields under `authentik.event.context` converted to string, in pipeline order, with their tags (the
 * paths start below `context`, which is looked up once).
 */
const PK_TO_STRING: readonly (readonly [readonly string[], string])[] = [
  [['model', 'pk'], 'convert_context_model_pk_to_string'],
  [['request', 'user', 'pk'], 'convert_context_request_user_pk_to_string'],
  [['authorized_application', 'pk'], 'convert_context_authorized_application_pk_to_string'],
  [['binding', 'pk'], 'convert_context_binding_pk_to_string'],
  [['request', 'context', 'event', 'pk'], 'convert_context_request_context_event_pk_to_string'],
  [['request', 'obj', 'pk'], 'convert_context_request_obj_pk_to_string'],
  [['secret', 'pk'], 'convert_context_secret_pk_to_string'],
  [['stage', 'pk'], 'convert_context_stage_pk_to_string'],
  [['token', 'pk'], 'convert_context_token_pk_to_string'],
];

/** Removed unless `preserve_duplicate_custom_fields` is tagged. */
const DUPLICATES: readonly (readonly string[])[] = [
  ['client_ip'],
  ['created'],
  ['pk'],
  ['user', 'email'],
  ['user', 'pk'],
  ['user', 'username'],
  ['context', 'http_request', 'method'],
  ['context', 'http_request', 'path'],
  ['context', 'http_request', 'user_agent'],
];

function lowercaseAction(ctx: Ctx): void {
  const v = ctx.event['action'];
  if (v === undefined || v === null) return;
  const tag = 'lowercase_event_action';
  if (typeof v === 'string') {
    ctx.event['action'] = v.toLowerCase();
  } else if (Array.isArray(v)) {
    ctx.event['action'] = v.map((x: unknown) => {
      if (typeof x !== 'string') {
        throw new PipelineFailure(
          'lowercase',
          tag,
          `value [${javaString(x)}] of type [${x === null ? 'null' : javaClass(x)}] in list field [event.action] cannot be cast to [java.lang.String]`,
        );
      }
      return x.toLowerCase();
    });
  } else {
    throw new PipelineFailure(
      'lowercase',
      tag,
      `field [event.action] of type [${javaClass(v)}] cannot be cast to [java.lang.String]`,
    );
  }
}

function gsubAction(ctx: Ctx): void {
  const v = ctx.event['action'];
  if (v === '' || v === undefined || v === null) return;
  // After the lowercase step the value is a string or a list of strings.
  if (typeof v === 'string') ctx.event['action'] = v.replaceAll('_', '-');
  else if (Array.isArray(v)) ctx.event['action'] = v.map((x) => (x as string).replaceAll('_', '-'));
}

function geoLookup(ctx: Ctx, ip: unknown): void {
  const geo = ctx.opts.geo;
  if (!geo) return;
  const ips = typeof ip === 'string' ? [ip] : Array.isArray(ip) ? ip : [];
  const source = child(ctx.doc, 'source');
  if (geo.hasCity) {
    for (const one of ips) {
      if (typeof one !== 'string') break;
      const g = geo.city(one);
      if (g) {
        source['geo'] = g;
        break;
      }
    }
  }
  if (geo.hasAsn) {
    for (const one of ips) {
      if (typeof one !== 'string') break;
      const a = geo.asn(one);
      if (a) {
        source['as'] = a;
        break;
      }
    }
  }
}

/** Runs the event pipeline on `ctx.doc` (after the prologue). Returns nothing; DROP-EMPTY is the caller's. */
export function mapEvent(ctx: Ctx): void {
  const { doc, event } = ctx;
  const authentik = doc['authentik'];
  const a = isMap(authentik) ? authentik['event'] : undefined;
  const ae: JMap | undefined = isMap(a) ? a : undefined;

  event['kind'] = 'event';

  // Categorisation script (ignore_failure).
  const action = ae?.['action'];
  if (typeof action === 'string') {
    const c = categorise(action, ctx.opts.categorizeAll);
    if (c) {
      event['category'] = [...c.category];
      event['type'] = [...c.type];
      if (c.outcome !== undefined) event['outcome'] = c.outcome;
    }
  }

  doc['observer'] = { vendor: 'authentik', product: 'authentik' };

  const act = copyValue(action);
  if (act !== undefined) event['action'] = act;
  lowercaseAction(ctx);
  gsubAction(ctx);

  // client_ip → ip (on failure: remove + ERR), source.ip, geo, related.ip.
  if (ae && ae['client_ip'] !== '') {
    convertAt(ctx, ae, ['client_ip'], toIpValue, 'convert_client_ip_to_ip');
  }
  const ip = copyValue(ae?.['client_ip']);
  if (ip !== undefined) {
    child(doc, 'source')['ip'] = ip;
    geoLookup(ctx, ip);
  }
  const clientIp = ae?.['client_ip'];
  if (clientIp !== undefined && clientIp !== null) related(ctx, 'ip', clientIp);

  // Every step below reads `authentik.event.context` (none of them replaces it), so it is looked up once;
  // when it is not an object, none of the paths exists.
  const context = ae?.['context'];
  if (isMap(context)) {
    for (let i = 0; i < PK_TO_STRING.length; i++) {
      const [path, tag] = PK_TO_STRING[i]!;
      convertAt(ctx, context, path, toStringValue, tag);
    }
    convertAt(
      ctx,
      context,
      ['result', 'passing'],
      toBooleanValue,
      'convert_context_result_passing_to_boolean',
    );
    convertAt(ctx, context, ['created'], toBooleanValue, 'convert_context_created_to_boolean');

    const httpRequest = context['http_request'];
    if (isMap(httpRequest)) {
      const method = copyValue(httpRequest['method']);
      if (method !== undefined) child(child(doc, 'http'), 'request')['method'] = method;
      const path = copyValue(httpRequest['path']);
      if (path !== undefined) child(doc, 'url')['path'] = path;
      userAgent(ctx, 'authentik.event.context.http_request.user_agent', httpRequest['user_agent']);
    }
  }

  const created = dateAt(ctx, ae, 'created', 'date_created');
  if (created) ctx.created = created;
  const createdText = copyValue(ae?.['created']);
  if (createdText !== undefined) {
    event['created'] = createdText;
    doc['@timestamp'] = createdText;
  }
  dateAt(ctx, ae, 'expires', 'date_expires');
  const pk = copyValue(ae?.['pk']);
  if (pk !== undefined) event['id'] = pk;

  const email = copyValue(getPath(ae, ['user', 'email']));
  if (email !== undefined) child(doc, 'user')['email'] = email;
  dissectEmail(ctx);
  relatedUserIf(ctx, 'append_user_email_into_related_user', ae, 'user', 'email');
  convertAt(ctx, ae, ['user', 'is_anonymous'], toBooleanValue, 'convert_user_is_anonymous_to_boolean');
  relatedUserIf(ctx, 'append_user_on_behalf_of_email_into_related_user', ae, 'user', 'on_behalf_of', 'email');
  convertAt(ctx, ae, ['user', 'on_behalf_of', 'pk'], toStringValue, 'convert_user_on_behalf_of_pk_to_string');
  relatedUserIf(ctx, 'append_user_on_behalf_of_pk_into_related_user', ae, 'user', 'on_behalf_of', 'pk');
  relatedUserIf(
    ctx,
    'append_user_on_behalf_of_username_into_related_user',
    ae,
    'user',
    'on_behalf_of',
    'username',
  );
  convertAt(ctx, ae, ['user', 'pk'], toStringValue, 'convert_user_pk_to_string');
  const userPk = copyValue(getPath(ae, ['user', 'pk']));
  if (userPk !== undefined) child(doc, 'user')['id'] = userPk;
  relatedUserIf(ctx, 'append_user_pk_into_related_user', ae, 'user', 'pk');
  const username = copyValue(getPath(ae, ['user', 'username']));
  if (username !== undefined) child(doc, 'user')['name'] = username;
  relatedUserIf(ctx, 'append_user_username_into_related_user', ae, 'user', 'username');

  if (!preservesDuplicates(doc) && ae) {
    for (const p of DUPLICATES) removeBeforeDropEmpty(ae, p);
  }
  removeTemp(ctx);
}
