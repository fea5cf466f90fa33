/**
 * Per-document state shared by the three dataset mappings, and processor-level steps (convert, date,
 * conditions, user-agent, dissect of e-mail) with the error handling the integration gives them.
 */
import {
  ConvertError,
  PainlessError,
  PipelineFailure,
  appendError,
  appendUnique,
  child,
  errorText,
  getParent,
  isMap,
  javaClass,
  painlessContains,
  painlessGet,
  javaString,
  render,
} from './common.ts';
import type { JMap } from './common.ts';
import type { ParsedDate } from './date.ts';
import { normaliseDate } from './date.ts';
import type { GeoIp } from './geoip.ts';
import type { UserAgentParser } from './useragent.ts';

export interface MapperOptions {
  geo: GeoIp | undefined;
  ua: UserAgentParser;
  categorizeAll: boolean;
}

export interface Ctx {
  /** The document (root). */
  doc: JMap;
  /** `doc.event`. */
  event: JMap;
  /** Ingest pipeline name used in error entries, e.g. `logs-authentik.event-1.10.0`. */
  pipeline: string;
  opts: MapperOptions;
  /** Parsed `created` of an event (for the record timestamp), when valid. */
  created?: ParsedDate;
  /**
   * The document's `_temp` (set by the e-mail dissect, removed at the end of the pipeline) and the number
   * of root keys before it. Held here rather than on the document, whose root would otherwise have to be
   * rebuilt to drop it (a `delete` of a property that was not the last one added turns an object into a
   * slow dictionary-mode object). A pipeline failure before the removal puts it in place (`withTemp`).
   */
  temp: string | undefined;
  tempAt: number;
}

export const PRESERVE_DUPLICATES = 'preserve_duplicate_custom_fields';
export const PRESERVE_ORIGINAL = 'preserve_original_event';

/** ERR: appends a formatted entry to `error.message`. */
export function err(ctx: Ctx, processorType: string, tag: string, message: string): void {
  appendError(ctx.doc, errorText(processorType, tag, ctx.pipeline, message));
}

/**
 * The condition `ctx.authentik?.<ds>?.k1?.k2[?.k3] != null` of an `append` into `related.user`, and the
 * append itself. A painless error while navigating fails the pipeline (type `conditional`).
 */
export function relatedUserIf(
  ctx: Ctx,
  tag: string,
  start: unknown,
  k1: string,
  k2: string,
  k3?: string,
): void {
  let v: unknown;
  try {
    v = painlessGet(painlessGet(start, k1), k2);
    if (k3 !== undefined) v = painlessGet(v, k3);
  } catch (e) {
    if (e instanceof PainlessError) throw new PipelineFailure('conditional', tag, e.message);
    throw e;
  }
  if (v !== null) related(ctx, 'user', v);
}

/** Evaluates an ingest condition; a painless runtime error fails the pipeline (type `conditional`). */
export function when<T>(tag: string, cond: () => T): T {
  try {
    return cond();
  } catch (e) {
    if (e instanceof PainlessError) throw new PipelineFailure('conditional', tag, e.message);
    throw e;
  }
}

/**
 * `convert` with `ignore_missing` at `path` under `root`. With `localOnFailure` (the integration's usual
 * `on_failure: [remove, append error]`) a failed conversion removes the field and records an error;
 * otherwise it fails the pipeline.
 */
export function convertAt(
  ctx: Ctx,
  root: unknown,
  path: readonly string[],
  fn: (v: unknown) => unknown,
  tag: string,
  localOnFailure = true,
): void {
  const parent = getParent(root, path);
  if (!parent) return;
  const k = path[path.length - 1]!;
  const v = parent[k];
  if (v === undefined || v === null) return;
  try {
    parent[k] = fn(v);
  } catch (e) {
    if (!(e instanceof ConvertError)) throw e;
    if (!localOnFailure) throw new PipelineFailure('convert', tag, e.message);
    delete parent[k];
    err(ctx, 'convert', tag, e.message);
  }
}

/**
 * `date` (ISO8601, target = source) guarded by `field != null && field != ''`; on failure the field is
 * removed and an error recorded. Returns the parsed date when the field was normalised.
 */
export function dateAt(ctx: Ctx, parent: unknown, key: string, tag: string): ParsedDate | undefined {
  if (!isMap(parent)) return undefined;
  const v = parent[key];
  if (v === undefined || v === null || v === '') return undefined;
  const r = normaliseDate(typeof v === 'string' ? v : javaString(v));
  if (!r.ok) {
    delete parent[key];
    err(ctx, 'date', tag, r.message);
    return undefined;
  }
  parent[key] = r.text;
  return r.date;
}

/** `append` of a rendered value into `related.<kind>` (de-duplicated). */
export function related(ctx: Ctx, kind: 'user' | 'ip', value: unknown): void {
  appendUnique(child(ctx.doc, 'related'), kind, render(value));
}

/** The `user_agent` processor on `value` (ignore_missing; no tag, no local on_failure). */
export function userAgent(ctx: Ctx, field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string') {
    throw new PipelineFailure(
      'user_agent',
      '',
      `field [${field}] of type [${javaClass(value)}] cannot be cast to [java.lang.String]`,
    );
  }
  ctx.doc['user_agent'] = ctx.opts.ua.ecs(value);
}

/**
 * `dissect` of `user.email` with `%{_temp}@%{user.domain}` under the condition
 * `ctx.user?.email != null && ctx.user.email.contains('@')`.
 */
export function dissectEmail(ctx: Ctx): void {
  const user = ctx.doc['user'];
  const email = isMap(user) ? user['email'] : undefined;
  if (email === undefined || email === null) return;
  const tag = 'dissect_user_email';
  if (!when(tag, () => painlessContains(email, '@'))) return;
  if (typeof email !== 'string') {
    throw new PipelineFailure(
      'conditional',
      tag,
      `field [user.email] of type [${javaClass(email)}] cannot be cast to [java.lang.String]`,
    );
  }
  const at = email.indexOf('@');
  let keys = 0;
  for (const _ in ctx.doc) keys++;
  ctx.temp = email.slice(0, at);
  ctx.tempAt = keys;
  (user as JMap)['domain'] = email.slice(at + 1);
}

/** The pipeline's final `remove` of `_temp`. */
export function removeTemp(ctx: Ctx): void {
  ctx.temp = undefined;
}

/**
 * The document as Elasticsearch has it when the pipeline stopped between the dissect and the removal of
 * `_temp`: the root with `_temp` at its place (the root only ever gains keys, so the keys it had then are
 * its first `tempAt`). The same document when there is no `_temp`.
 */
export function withTemp(ctx: Ctx): JMap {
  const doc = ctx.doc;
  if (ctx.temp === undefined) return doc;
  const out: JMap = {};
  let i = 0;
  for (const k in doc) {
    if (i++ === ctx.tempAt) out['_temp'] = ctx.temp;
    out[k] = doc[k];
  }
  if (i <= ctx.tempAt) out['_temp'] = ctx.temp;
  ctx.doc = out;
  ctx.temp = undefined;
  return out;
}

/** True when `tags` contains `preserve_duplicate_custom_fields` (the removal steps are skipped). */
export function preservesDuplicates(doc: JMap): boolean {
  const tags = doc['tags'];
  if (Array.isArray(tags)) return tags.includes(PRESERVE_DUPLICATES);
  return tags === PRESERVE_DUPLICATES;
}

/** Appends `value` to the list at `ctx.doc.event[key]` (append processor, duplicates allowed). */
export function appendEvent(ctx: Ctx, key: string, value: string): void {
  const cur = ctx.event[key];
  if (Array.isArray(cur)) cur.push(value);
  else if (cur === undefined || cur === null) ctx.event[key] = [value];
  else ctx.event[key] = [cur, value];
}

export { appendUnique, child, isMap };
