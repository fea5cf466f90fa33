/**
 * Turns one record into the ECS document Elastic's authentik integration produces, plus what the Elastic
 * stack adds around the pipeline (`data_stream.*`, `event.dataset`, `event.module`, `@timestamp`,
 * the document id), and updates the record (body, attributes, timestamp, event name).
 *
 * Order of work for a normal record (spec §c.1): document skeleton → `event.original` → JSON parse into
 * `authentik.<dataset>` → fingerprint → dataset pipeline → DROP-EMPTY → error epilogue. A pipeline-level
 * failure jumps to the `on_failure` handler (no DROP-EMPTY, like Elasticsearch).
 */
import type { AnyValue, HrTime, LogRecord } from '../../runtime/model.ts';
import { ATTR_DOCUMENT_ID, ATTR_NAMESPACE, hrTimeToMillis, nowHrTime } from '../../runtime/model.ts';
import {
  ECS_VERSION,
  PACKAGE_VERSION,
  PipelineFailure,
  appendError,
  appendUnique,
  dropEmpty,
  errorText,
  isMap,
} from './common.ts';
import type { JMap } from './common.ts';
import type { Ctx, MapperOptions } from './context.ts';
import { PRESERVE_ORIGINAL, child, withTemp } from './context.ts';
import { mapEvent } from './event.ts';
import { mapGroup } from './group.ts';
import { fingerprint, goJson } from './original.ts';
import { mapUser } from './user.ts';

/** Record attribute the file receiver sets to the raw line. */
export const ATTR_RECORD_ORIGINAL = 'log.record.original';

export type DatasetName = 'event' | 'group' | 'user';

export const DATASETS: Readonly<Record<string, DatasetName>> = {
  'authentik.event': 'event',
  'authentik.group': 'group',
  'authentik.user': 'user',
};

const MAPPINGS: Record<DatasetName, (ctx: Ctx) => void> = { event: mapEvent, group: mapGroup, user: mapUser };

/** Pipeline names as they appear in `error.message` (built once). */
const PIPELINES: Record<DatasetName, string> = {
  event: `logs-authentik.event-${PACKAGE_VERSION}`,
  group: `logs-authentik.group-${PACKAGE_VERSION}`,
  user: `logs-authentik.user-${PACKAGE_VERSION}`,
};

export interface EcsMapperOptions extends MapperOptions {
  namespace: string;
  tags: readonly string[];
}

export interface MapResult {
  /** The document carries `error.message`. */
  error: boolean;
  /** The first error entry (for logging). */
  firstError?: string;
}

/** The result of a document without `error.message` (shared: results are only read). */
const NO_ERROR: MapResult = Object.freeze({ error: false });

/** The record's observation time (a copy), or now when a receiver did not set it. */
function collectionTime(record: LogRecord): HrTime {
  const t = record.observedTimestamp as HrTime | undefined;
  return Array.isArray(t) && t.length === 2 ? [t[0], t[1]] : nowHrTime();
}

let lastMs = NaN;
let lastIso = '';

/** ISO text (UTC, milliseconds) of an HrTime; records of one batch share a time, so the last is cached. */
function isoMillis(t: LogRecord['observedTimestamp'] | undefined): string {
  let ms = t ? Math.floor(hrTimeToMillis(t)) : Date.now();
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** Message for an `event.original` that is not valid JSON (Jackson's wording for the common cases). */
function jsonErrorMessage(text: string, e: unknown): string {
  const t = text.trimStart();
  const c = t[0];
  if (c !== undefined && !/[{["\-0-9]/.test(c)) {
    const tok = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(t)?.[0];
    if (tok !== undefined && !['true', 'false', 'null'].includes(tok)) {
      return `Unrecognized token '${tok}': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')`;
    }
    if (tok === undefined) {
      const code = c.codePointAt(0)!;
      return `Unexpected character ('${String.fromCodePoint(code)}' (code ${code})): expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')`;
    }
  }
  return e instanceof Error ? e.message : String(e);
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

function hasErrorMessage(doc: JMap): string | undefined {
  const e = doc['error'];
  if (!isMap(e)) return undefined;
  const m = e['message'];
  if (m === undefined || m === null) return undefined;
  if (Array.isArray(m)) return m.length > 0 ? String(m[0]) : '';
  return typeof m === 'string' ? m : JSON.stringify(m);
}

/** The CEL error document: `{error:{message…}}` with neither `message` nor `event.original`. */
function isCelErrorDocument(body: unknown): body is JMap {
  if (!isMap(body)) return false;
  const e = body['error'];
  if (!isMap(e) || e['message'] === undefined || e['message'] === null) return false;
  if (body['message'] !== undefined && body['message'] !== null) return false;
  const ev = body['event'];
  return !(isMap(ev) && ev['original'] !== undefined && ev['original'] !== null);
}

export class EcsMapper {
  readonly #opts: EcsMapperOptions;

  constructor(opts: EcsMapperOptions) {
    this.#opts = opts;
  }

  #skeleton(dataset: string, record: LogRecord): JMap {
    const ts = isoMillis(record.observedTimestamp);
    const dataStream = { type: 'logs', dataset, namespace: this.#opts.namespace };
    const event = { dataset, module: 'authentik' };
    const tags = this.#opts.tags;
    // One literal each (the final shape at once instead of a property added at a time).
    return tags.length > 0
      ? { '@timestamp': ts, tags: [...tags], data_stream: dataStream, event, ecs: { version: ECS_VERSION } }
      : { '@timestamp': ts, data_stream: dataStream, event, ecs: { version: ECS_VERSION } };
  }

  /** Maps `record` in place. `dataset` is the record's `data_stream.dataset` (one of DATASETS). */
  map(record: LogRecord, dataset: string): MapResult {
    const ds = DATASETS[dataset]!;
    const attrs = record.attributes;
    const raw = attrs[ATTR_RECORD_ORIGINAL];
    const body = record.body;
    delete attrs[ATTR_RECORD_ORIGINAL];
    attrs[ATTR_NAMESPACE] = this.#opts.namespace;

    if (isCelErrorDocument(body)) return this.#terminate(record, dataset, body);

    let original: string;
    if (typeof raw === 'string') original = raw;
    else if (typeof body === 'string') original = body;
    else original = goJson(body ?? null);

    const pipeline = PIPELINES[ds];
    const doc = this.#skeleton(dataset, record);
    const event = doc['event'] as JMap;
    event['original'] = original;
    const ctx: Ctx = { doc, event, pipeline, opts: this.#opts, temp: undefined, tempAt: 0 };

    // The JSON processor's result. A record body that is already an object is the parsed form of
    // `event.original` (the file receiver parses the very line it keeps as `log.record.original`; for
    // API records `event.original` is encoded from the body), so it is used as is instead of parsing the
    // text again. The processor owns the record (mutatesData: fan-out hands it a private copy).
    let parsed: unknown;
    let parsedOk = false;
    if (isMap(body)) {
      parsed = body;
      parsedOk = true;
    } else {
      try {
        parsed = JSON.parse(original);
        parsedOk = true;
      } catch (e) {
        appendError(doc, errorText('json', 'json_event_original', pipeline, jsonErrorMessage(original, e)));
      }
    }
    if (parsedOk) {
      if (isMap(parsed)) {
        doc['authentik'] =
          ds === 'event' ? { event: parsed } : ds === 'user' ? { user: parsed } : { group: parsed };
      } else {
        const what = original.trim() === '' ? 'no content' : kindOf(parsed);
        appendError(
          doc,
          errorText('json', 'json_event_original', pipeline, `expected a JSON object, got ${what}`),
        );
      }
    }
    attrs[ATTR_DOCUMENT_ID] = fingerprint(original);

    let out: JMap;
    try {
      MAPPINGS[ds](ctx);
      out = dropEmpty(ctx.doc);
      if (hasErrorMessage(out) !== undefined) {
        child(out, 'event')['kind'] = 'pipeline_error';
        appendUnique(out, 'tags', PRESERVE_ORIGINAL);
      }
    } catch (e) {
      if (!(e instanceof PipelineFailure)) throw e;
      out = withTemp(ctx);
      appendError(out, errorText(e.processorType, e.tag, pipeline, e.message));
      child(out, 'event')['kind'] = 'pipeline_error';
      appendUnique(out, 'tags', PRESERVE_ORIGINAL);
    }

    record.body = out as AnyValue;
    if (ds === 'event') {
      if (ctx.created) record.timestamp = [ctx.created.epochSecond, ctx.created.nano];
      const action = (out['event'] as JMap | undefined)?.['action'];
      if (typeof action === 'string') record.eventName = action;
    } else {
      record.timestamp = collectionTime(record);
    }
    const first = hasErrorMessage(out);
    return first === undefined ? NO_ERROR : { error: true, firstError: first };
  }

  /** Elastic's `terminate` rule: the CEL error document is indexed as it is (plus ecs.version). */
  #terminate(record: LogRecord, dataset: string, body: JMap): MapResult {
    const doc: JMap = { '@timestamp': isoMillis(record.observedTimestamp) };
    for (const k of Object.keys(body)) {
      if (k === '__proto__') continue;
      doc[k] = body[k];
    }
    const tags = doc['tags'];
    const cfgTags = this.#opts.tags;
    if (cfgTags.length > 0) {
      doc['tags'] = Array.isArray(tags) ? [...(tags as unknown[]), ...cfgTags] : [...cfgTags];
    }
    doc['data_stream'] = { type: 'logs', dataset, namespace: this.#opts.namespace };
    const ev = doc['event'];
    doc['event'] = { ...(isMap(ev) ? ev : {}), dataset, module: 'authentik' };
    doc['ecs'] = { version: ECS_VERSION };
    record.body = doc as AnyValue;
    record.timestamp = collectionTime(record);
    return { error: true, firstError: hasErrorMessage(doc) ?? '' };
  }

  /**
   * Last-resort document when mapping threw unexpectedly (e.g. a value nested too deeply to walk):
   * keeps the raw input as `event.original` and records the reason, so the record is still delivered.
   */
  fallback(record: LogRecord, dataset: string, reason: unknown, original: string | undefined): MapResult {
    const ds = DATASETS[dataset] ?? 'event';
    const pipeline = `logs-authentik.${ds}-${PACKAGE_VERSION}`;
    const doc = this.#skeleton(dataset, record);
    const event = doc['event'] as JMap;
    let orig = original;
    if (orig === undefined) {
      const b = record.body;
      if (typeof b === 'string') orig = b;
      else {
        try {
          orig = JSON.stringify(b) ?? 'null';
        } catch {
          orig = 'null';
        }
      }
    }
    event['original'] = orig;
    event['kind'] = 'pipeline_error';
    const msg = reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
    appendError(doc, errorText('authentik_ecs', 'internal', pipeline, msg));
    appendUnique(doc, 'tags', PRESERVE_ORIGINAL);
    delete record.attributes[ATTR_RECORD_ORIGINAL];
    record.attributes[ATTR_NAMESPACE] = this.#opts.namespace;
    record.attributes[ATTR_DOCUMENT_ID] = fingerprint(orig);
    record.body = doc as AnyValue;
    return { error: true, firstError: msg };
  }
}
