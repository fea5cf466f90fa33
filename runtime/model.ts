/**
 * The record model: OpenTelemetry's log data model, with the SDK's own value types.
 *
 * A {@link LogRecord} is what flows between components. It mirrors the SDK's `ReadableLogRecord`
 * closely enough that the OTLP exporter converts it field by field, but it is a plain, JSON-friendly
 * object so processors can build and clone it cheaply.
 */
import type { HrTime } from '@opentelemetry/api';
import type { AnyValue, AnyValueMap, LogAttributes } from '@opentelemetry/api-logs';
import { SeverityNumber } from '@opentelemetry/api-logs';

export type { AnyValue, AnyValueMap, HrTime, LogAttributes };
export { SeverityNumber };

/** Instrumentation scope of a record (who produced it inside the collector). */
export interface InstrumentationScope {
  name: string;
  version?: string;
}

/**
 * One log record. `attributes` uses flat, dotted OpenTelemetry keys (`data_stream.dataset`).
 *
 * Well-known record attributes used across components:
 * - `data_stream.dataset`: `authentik.event|user|group` (set by the authentik receiver or the file receiver).
 * - `data_stream.namespace`: data stream namespace (set by the ECS processor, default `default`).
 * - `elasticsearch.document_id`: deterministic document id for idempotent writes.
 */
export interface LogRecord {
  /** Time the event happened (for authentik events: `created`). Absent when unknown. */
  timestamp?: HrTime;
  /** Time the collector observed the record. Always set. */
  observedTimestamp: HrTime;
  severityNumber?: SeverityNumber;
  severityText?: string;
  /** OpenTelemetry `event_name` (for authentik events, the ECS `event.action`). */
  eventName?: string;
  /** The payload: the raw API record, or the ECS document after `authentik_ecs`. */
  body?: AnyValue;
  attributes: LogAttributes;
  /** Resource attributes (`service.name`, `host.name`, ...). */
  resource?: LogAttributes;
  scope?: InstrumentationScope;
}

/**
 * A batch is an ordered list of records. Ownership passes downstream with `consume()`: once the call
 * resolves or rejects, the caller must not touch the batch again.
 */
export type LogsBatch = LogRecord[];

/** Well-known attribute keys. */
export const ATTR_DATASET = 'data_stream.dataset';
export const ATTR_NAMESPACE = 'data_stream.namespace';
export const ATTR_DOCUMENT_ID = 'elasticsearch.document_id';

/** Converts epoch milliseconds (may be fractional) to an HrTime tuple. */
export function hrTimeFromMillis(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos >= 1e9 ? [seconds + 1, nanos - 1e9] : [seconds, nanos];
}

/** Current wall-clock time as HrTime. */
export function nowHrTime(): HrTime {
  return hrTimeFromMillis(Date.now());
}

/** Converts an HrTime to epoch milliseconds (fractional). */
export function hrTimeToMillis(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

/** Converts an HrTime to nanoseconds since epoch as a bigint. */
export function hrTimeToNanos(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

/**
 * Parses an ISO-8601 timestamp with up to nanosecond precision into HrTime, keeping the sub-millisecond
 * digits that `Date` would drop. Returns undefined when the string is not a valid timestamp.
 */
export function hrTimeFromIso(iso: string): HrTime | undefined {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return undefined;
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const seconds = Math.floor(ms / 1000);
  // Date.parse keeps milliseconds only; take the full fraction from the string itself.
  const nanos = frac === '' ? (ms - seconds * 1000) * 1e6 : Number(frac.slice(0, 9).padEnd(9, '0'));
  return [seconds, nanos];
}

/** Shallow-clones a record (attributes and resource copied; body shared unless `deep`). */
export function cloneRecord(r: LogRecord, deep = false): LogRecord {
  const c: LogRecord = { ...r, attributes: { ...r.attributes } };
  if (r.resource) c.resource = { ...r.resource };
  if (deep && r.body !== undefined) c.body = structuredClone(r.body);
  return c;
}
