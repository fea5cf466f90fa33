/**
 * Record → `_bulk` item: routing to a data stream, the document itself, its `_id`, and the two NDJSON lines.
 */
import type { AnyValue, AnyValueMap, HrTime, LogRecord } from '../../runtime/model.ts';
import { ATTR_DATASET, ATTR_DOCUMENT_ID, ATTR_NAMESPACE, hrTimeToMillis } from '../../runtime/model.ts';

/** Longest dataset / namespace in bytes (ECS data_stream rules; the contrib exporter uses the same). */
export const MAX_DATA_STREAM_FIELD_BYTES = 100;
/** Characters replaced by `_` in a dataset (as the contrib exporter: index-name forbidden chars and `-`). */
export const DISALLOWED_DATASET_CHARS = '-\\/*?"<>| ,#:';
/**
 * Characters replaced by `_` in a namespace. The contrib exporter keeps `-` in namespaces; ECS forbids it
 * and it makes `logs-a-b-c` ambiguous, so it is replaced here as well.
 */
export const DISALLOWED_NAMESPACE_CHARS = '-\\/*?"<>| ,#:';

/** Attribute that carries a raw target index for one record (as the contrib exporter's). */
export const ATTR_INDEX = 'elasticsearch.index';

/**
 * Lowercases, replaces forbidden characters with `_` and truncates to 100 UTF-8 bytes (never inside a
 * character). An empty result falls back to `fallback`.
 */
export function sanitizeDataStreamField(field: string, disallowed: string, fallback: string): string {
  let out = '';
  let bytes = 0;
  for (const ch of field) {
    const mapped = disallowed.includes(ch) ? '_' : ch.toLowerCase();
    const len = Buffer.byteLength(mapped);
    if (bytes + len > MAX_DATA_STREAM_FIELD_BYTES) break;
    out += mapped;
    bytes += len;
  }
  // Index names may not start with `-`, `_` or `+`, nor be `.`/`..`; a dataset is never first in the name,
  // so only emptiness matters here.
  return out === '' ? fallback : out;
}

/** Where one record goes. */
export interface Route {
  index: string;
  /** Set when the target is a data stream built from `data_stream.*` (fields then added to the document). */
  dataStream?: { type: 'logs'; dataset: string; namespace: string };
}

export interface RoutingOptions {
  /** Static index from config: overrides everything. */
  index?: string | undefined;
  dataset: string;
  namespace: string;
}

function attr(r: LogRecord, key: string): string | undefined {
  const v = r.attributes[key] ?? r.resource?.[key];
  if (v === undefined || v === null) return undefined;
  const s =
    typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  return s === undefined || s.trim() === '' ? undefined : s;
}

/**
 * Precedence (first match wins): static `index` config; the record's `elasticsearch.index` attribute
 * (raw name, as the contrib exporter); data stream `logs-<dataset>-<namespace>` from the
 * `data_stream.dataset` / `data_stream.namespace` attributes (record, then resource), defaulting to the
 * configured dataset and namespace.
 */
export function routeRecord(r: LogRecord, opts: RoutingOptions): Route {
  if (opts.index !== undefined) return { index: opts.index };
  const raw = attr(r, ATTR_INDEX);
  if (raw !== undefined) return { index: raw };
  const defaultDataset = sanitized(opts.dataset, DISALLOWED_DATASET_CHARS, 'generic');
  const defaultNamespace = sanitized(opts.namespace, DISALLOWED_NAMESPACE_CHARS, 'default');
  const dsAttr = attr(r, ATTR_DATASET);
  const nsAttr = attr(r, ATTR_NAMESPACE);
  const dataset =
    dsAttr === undefined ? defaultDataset : sanitized(dsAttr, DISALLOWED_DATASET_CHARS, defaultDataset);
  const namespace =
    nsAttr === undefined ? defaultNamespace : sanitized(nsAttr, DISALLOWED_NAMESPACE_CHARS, defaultNamespace);
  return {
    index: `logs-${dataset}-${namespace}`,
    dataStream: { type: 'logs', dataset, namespace },
  };
}

/** Sanitised values seen recently: the same few datasets and namespaces repeat on every record. */
const sanitizeCache = new Map<string, string>();

function sanitized(field: string, disallowed: string, fallback: string): string {
  const key = `${disallowed === DISALLOWED_DATASET_CHARS ? 'd' : 'n'}\u0000${fallback}\u0000${field}`;
  let v = sanitizeCache.get(key);
  if (v === undefined) {
    v = sanitizeDataStreamField(field, disallowed, fallback);
    if (sanitizeCache.size >= 1000) sanitizeCache.clear();
    sanitizeCache.set(key, v);
  }
  return v;
}

function isoFromHrTime(t: HrTime | undefined): string | undefined {
  if (t === undefined) return undefined;
  const ms = hrTimeToMillis(t);
  if (!Number.isFinite(ms) || ms <= 0) return undefined;
  try {
    return new Date(Math.floor(ms)).toISOString();
  } catch {
    return undefined;
  }
}

/** `@timestamp` for a record: its timestamp, else when it was observed, else now. */
export function recordTimestamp(r: LogRecord): string {
  return isoFromHrTime(r.timestamp) ?? isoFromHrTime(r.observedTimestamp) ?? new Date().toISOString();
}

function isMap(v: AnyValue | undefined): v is AnyValueMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function messageOf(body: AnyValue | undefined): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString('base64');
  if (typeof body === 'object') return JSON.stringify(body);
  return String(body);
}

/**
 * The document for a record.
 * - Map body (the ECS document built by `authentik_ecs`): the body itself (shallow copy), with
 *   `@timestamp` added when missing.
 * - Any other body: `{"@timestamp", "message": <body as text>}` plus the record attributes (except the
 *   `elasticsearch.*` control attributes) and `log.level` from the severity text.
 * For data stream targets `data_stream.{type,dataset,namespace}` are set to the routed values, so the
 * document always agrees with the stream it is written to.
 */
export function buildDocument(r: LogRecord, route: Route): Record<string, unknown> {
  let doc: Record<string, unknown>;
  if (isMap(r.body)) {
    doc = { ...r.body };
    if (doc['@timestamp'] === undefined || doc['@timestamp'] === null || doc['@timestamp'] === '') {
      doc['@timestamp'] = recordTimestamp(r);
    }
  } else {
    doc = { '@timestamp': recordTimestamp(r), message: messageOf(r.body) };
    for (const [k, v] of Object.entries(r.attributes)) {
      if (k.startsWith('elasticsearch.') || k.startsWith('data_stream.') || v === undefined) continue;
      if (k === '@timestamp' || k === 'message') continue;
      doc[k] = v;
    }
    if (r.severityText !== undefined && doc['log.level'] === undefined) doc['log.level'] = r.severityText;
  }
  if (route.dataStream) {
    delete doc['data_stream.type'];
    delete doc['data_stream.dataset'];
    delete doc['data_stream.namespace'];
    const prev = doc['data_stream'];
    doc['data_stream'] = {
      ...(typeof prev === 'object' && prev !== null && !Array.isArray(prev) ? prev : {}),
      type: route.dataStream.type,
      dataset: route.dataStream.dataset,
      namespace: route.dataStream.namespace,
    };
  }
  return doc;
}

/** The `_id` of a record's document, from `elasticsearch.document_id`, if any. */
export function documentId(r: LogRecord): string | undefined {
  return attr(r, ATTR_DOCUMENT_ID);
}

/** JSON for a document; bigint values become strings instead of throwing. */
export function stringifyDocument(doc: Record<string, unknown>): string {
  try {
    return JSON.stringify(doc);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return JSON.stringify(doc, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
    );
  }
}

/** One encoded `_bulk` item. */
export interface BulkItem {
  /** Position of the record in the consumed batch. */
  pos: number;
  index: string;
  id: string | undefined;
  /** `{"create":{...}}\n{document}\n` */
  lines: string;
  /** Length of the document JSON inside `lines` (to cut it out again for the dead-letter file). */
  docLength: number;
  /** UTF-8 byte length of `lines`. */
  bytes: number;
  /** Retries of this item so far (item-level and request-level). */
  attempts: number;
}

/** Encodes one record. Throws only on documents that cannot be serialised at all. */
export function encodeItem(r: LogRecord, pos: number, opts: RoutingOptions): BulkItem {
  const route = routeRecord(r, opts);
  const id = documentId(r);
  const doc = stringifyDocument(buildDocument(r, route));
  const meta =
    id === undefined
      ? `{"create":{"_index":${JSON.stringify(route.index)}}}`
      : `{"create":{"_index":${JSON.stringify(route.index)},"_id":${JSON.stringify(id)}}}`;
  const lines = `${meta}\n${doc}\n`;
  return {
    pos,
    index: route.index,
    id,
    lines,
    docLength: doc.length,
    bytes: Buffer.byteLength(lines),
    attempts: 0,
  };
}

/** The document JSON of an encoded item. */
export function itemDocument(item: BulkItem): string {
  return item.lines.slice(item.lines.length - 1 - item.docLength, item.lines.length - 1);
}

/**
 * Splits items into request-sized groups: at most `maxDocs` items and `maxBytes` uncompressed bytes each
 * (an item larger than `maxBytes` travels alone).
 */
export function chunkItems(items: BulkItem[], maxDocs: number, maxBytes: number): BulkItem[][] {
  const chunks: BulkItem[][] = [];
  let cur: BulkItem[] = [];
  let curBytes = 0;
  for (const it of items) {
    if (cur.length > 0 && (cur.length >= maxDocs || curBytes + it.bytes > maxBytes)) {
      chunks.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(it);
    curBytes += it.bytes;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}
