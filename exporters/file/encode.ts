/**
 * Line encoders of the `file` exporter: the body as plain JSON (`ndjson`), or the whole record as an
 * OTLP/JSON `ExportLogsServiceRequest` (`otlp_json`, per the OTLP JSON encoding: lowerCamelCase field
 * names, 64-bit integers and nanosecond timestamps as decimal strings, bytes as base64, enums as numbers).
 */
import type { AnyValue, LogAttributes, LogRecord } from '../../runtime/model.ts';
import { hrTimeToNanos } from '../../runtime/model.ts';

/** `JSON.stringify` replacer that writes byte arrays as base64 strings instead of index maps. */
function binaryAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')
    : value;
}

/** Any value as JSON text: bytes as base64, `undefined` as `null`. */
export function anyValueToJson(value: AnyValue, indent?: number): string {
  return JSON.stringify(value ?? null, binaryAsBase64, indent) ?? 'null';
}

/** `ndjson` line: the record body as JSON. */
export function encodeNdjson(r: LogRecord): string {
  return anyValueToJson(r.body);
}

/** OTLP/JSON `AnyValue`. */
export type OtlpAnyValue =
  | Record<string, never>
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number | string }
  | { bytesValue: string }
  | { arrayValue: { values: OtlpAnyValue[] } }
  | { kvlistValue: { values: OtlpKeyValue[] } };

/** OTLP/JSON `KeyValue`. */
export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

/** Converts a value to OTLP/JSON `AnyValue`. `null`/`undefined` become the empty value. */
export function toOtlpAnyValue(v: unknown): OtlpAnyValue {
  switch (typeof v) {
    case 'string':
      return { stringValue: v };
    case 'boolean':
      return { boolValue: v };
    case 'number':
      if (Number.isSafeInteger(v)) return { intValue: String(v) };
      // proto3 JSON spells non-finite doubles as strings.
      if (Number.isNaN(v)) return { doubleValue: 'NaN' };
      if (!Number.isFinite(v)) return { doubleValue: v > 0 ? 'Infinity' : '-Infinity' };
      return { doubleValue: v };
    case 'bigint':
      return { intValue: v.toString() };
    case 'object': {
      if (v === null) return {};
      if (v instanceof Uint8Array) {
        return { bytesValue: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
      }
      if (Array.isArray(v)) return { arrayValue: { values: v.map(toOtlpAnyValue) } };
      return { kvlistValue: { values: toOtlpKeyValues(v as Record<string, unknown>) } };
    }
    default:
      return {};
  }
}

/** Converts a map (attributes, resource) to an OTLP/JSON `KeyValue` list, skipping undefined values. */
export function toOtlpKeyValues(m: Record<string, unknown> | LogAttributes): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  for (const [key, value] of Object.entries(m)) {
    if (value !== undefined) out.push({ key, value: toOtlpAnyValue(value) });
  }
  return out;
}

/** `otlp_json` line: one `ExportLogsServiceRequest` holding this record with its resource and scope. */
export function encodeOtlpJson(r: LogRecord): string {
  const rec: Record<string, unknown> = {};
  if (r.timestamp) rec['timeUnixNano'] = hrTimeToNanos(r.timestamp).toString();
  rec['observedTimeUnixNano'] = hrTimeToNanos(r.observedTimestamp).toString();
  if (r.severityNumber !== undefined) rec['severityNumber'] = r.severityNumber;
  if (r.severityText !== undefined) rec['severityText'] = r.severityText;
  if (r.body !== undefined) rec['body'] = toOtlpAnyValue(r.body);
  rec['attributes'] = toOtlpKeyValues(r.attributes);
  if (r.eventName !== undefined) rec['eventName'] = r.eventName;
  const scope: Record<string, string> = {};
  if (r.scope) {
    scope['name'] = r.scope.name;
    if (r.scope.version !== undefined) scope['version'] = r.scope.version;
  }
  return JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: toOtlpKeyValues(r.resource ?? {}) },
        scopeLogs: [{ scope, logRecords: [rec] }],
      },
    ],
  });
}
