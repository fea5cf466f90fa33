/**
 * Mapping of a pipeline {@link LogRecord} (usually an ECS document produced by `authentik_ecs`) to the
 * SDK's `ReadableLogRecord`, which the OTLP serializers encode. The table in README.md documents
 * every rule here; keep them in sync.
 */
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Resource } from '@opentelemetry/resources';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SeverityNumber } from '../../runtime/model.ts';
import type { AnyValue, AnyValueMap, HrTime, LogAttributes, LogRecord } from '../../runtime/model.ts';
import { ATTR_DATASET, ATTR_NAMESPACE, hrTimeFromIso } from '../../runtime/model.ts';

/** What the body of an exported record is for ECS documents. */
export type BodyMode = 'ecs' | 'original';

/** Record attributes that steer other components and are never sent over OTLP (prefix match; `authentik.listing.*`: receivers/authentik/listing.ts). */
export const INTERNAL_ATTRIBUTE_PREFIXES = ['elasticsearch.', 'authentik.listing.'];

/** Severity of an authentik event action (underscore spelling; ECS uses `-`, both are accepted). */
export function severityOfAction(action: string): { number: SeverityNumber; text: string } {
  const a = action.toLowerCase().replaceAll('-', '_');
  if (a.endsWith('_exception') || a === 'configuration_error') {
    return { number: SeverityNumber.ERROR, text: 'ERROR' };
  }
  if (a === 'login_failed' || a === 'suspicious_request' || a === 'configuration_warning') {
    return { number: SeverityNumber.WARN, text: 'WARN' };
  }
  return { number: SeverityNumber.INFO, text: 'INFO' };
}

function isMap(v: unknown): v is AnyValueMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Reads a dotted path from a document that may nest objects (`{user: {name}}`), use dotted keys
 * (`{"user.name": ...}`) or mix both.
 */
export function lookup(doc: AnyValueMap, path: string): AnyValue | undefined {
  if (Object.hasOwn(doc, path)) return doc[path];
  let dot = path.indexOf('.');
  while (dot !== -1) {
    const head = path.slice(0, dot);
    const next = doc[head];
    if (Object.hasOwn(doc, head) && isMap(next)) {
      const found = lookup(next, path.slice(dot + 1));
      if (found !== undefined) return found;
    }
    dot = path.indexOf('.', dot + 1);
  }
  return undefined;
}

/** True when the body is an ECS document (has `@timestamp` or `ecs.version`). */
export function isEcsDocument(body: AnyValue | undefined): body is AnyValueMap {
  return isMap(body) && (Object.hasOwn(body, '@timestamp') || lookup(body, 'ecs.version') !== undefined);
}

function scalar(v: AnyValue | undefined): string | number | boolean | undefined {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/**
 * OpenTelemetry semantic-convention attributes taken from an ECS document: `[otel key, ecs path]`.
 * The first ECS path found wins for a key.
 */
export const SEMCONV_FROM_ECS: readonly (readonly [string, string])[] = [
  ['client.address', 'source.ip'],
  ['client.address', 'client.ip'],
  ['source.address', 'source.ip'],
  ['user.id', 'user.id'],
  ['user.name', 'user.name'],
  ['user.email', 'user.email'],
  ['url.path', 'url.path'],
  ['http.request.method', 'http.request.method'],
  ['user_agent.original', 'user_agent.original'],
  [ATTR_DATASET, 'data_stream.dataset'],
  [ATTR_NAMESPACE, 'data_stream.namespace'],
];

const EMPTY_TIME: HrTime = [0, 0];

/** Options of {@link RecordMapper}. */
export interface MapperOptions {
  body: BodyMode;
  /** Static resource attributes (config `resource`); they override the record's own. */
  resource: LogAttributes;
  /** Scope used when a record carries none. */
  defaultScope: { name: string; version?: string };
}

type Scope = ReadableLogRecord['instrumentationScope'];

/**
 * Converts records. Keeps one `Resource` and one scope object per distinct value, because the OTLP
 * serializers group records by object identity: equal resources must be the same object for the
 * records to share one `ResourceLogs` entry.
 */
export class RecordMapper {
  readonly #opts: MapperOptions;
  readonly #resources = new Map<string, Resource>();
  readonly #scopes = new Map<string, Scope>();
  /** Resource attribute keys already reported as converted (to log each once). */
  readonly converted = new Set<string>();

  constructor(opts: MapperOptions) {
    this.#opts = opts;
  }

  map(r: LogRecord): ReadableLogRecord {
    const ecs = isEcsDocument(r.body) ? r.body : undefined;
    const attributes: LogAttributes = {};
    let hrTime = r.timestamp;
    let severityNumber = r.severityNumber;
    let severityText = r.severityText;
    let eventName = r.eventName;
    let body: AnyValue | undefined = r.body;

    if (ecs) {
      if (hrTime === undefined) {
        const ts = lookup(ecs, '@timestamp');
        if (typeof ts === 'string') hrTime = hrTimeFromIso(ts);
      }
      const action = scalar(lookup(ecs, 'event.action'));
      if (eventName === undefined && action !== undefined) eventName = String(action);
      if (severityNumber === undefined && severityText === undefined) {
        const sev = severityOfAction(action === undefined ? '' : String(action));
        severityNumber = sev.number;
        severityText = sev.text;
      }
      for (const [key, path] of SEMCONV_FROM_ECS) {
        if (attributes[key] !== undefined) continue;
        const v = scalar(lookup(ecs, path));
        if (v !== undefined) attributes[key] = v;
      }
      if (eventName !== undefined) attributes['event.name'] = eventName;
      if (this.#opts.body === 'original') {
        const original = lookup(ecs, 'event.original');
        if (typeof original === 'string') body = original;
      }
    }

    // The record's own attributes win over the derived ones (an upstream processor said so).
    for (const key in r.attributes) {
      const v = r.attributes[key];
      if (v === undefined || v === null) continue;
      if (INTERNAL_ATTRIBUTE_PREFIXES.some((p) => key.startsWith(p))) continue;
      attributes[key] = v;
    }

    const out: {
      -readonly [K in keyof ReadableLogRecord]: ReadableLogRecord[K];
    } = {
      hrTime: hrTime ?? EMPTY_TIME,
      hrTimeObserved: r.observedTimestamp,
      attributes,
      droppedAttributesCount: 0,
      resource: this.#resource(r.resource),
      instrumentationScope: this.#scope(r.scope),
    };
    if (severityNumber !== undefined) out.severityNumber = severityNumber;
    if (severityText !== undefined) out.severityText = severityText;
    if (body !== undefined) out.body = body;
    if (eventName !== undefined) out.eventName = eventName;
    return out;
  }

  #resource(own: LogAttributes | undefined): Resource {
    const merged: LogAttributes = {};
    for (const [k, v] of Object.entries(own ?? {})) {
      if (v === undefined || v === null || k === '') continue;
      merged[k] = this.#simple(k, v);
    }
    Object.assign(merged, this.#opts.resource);
    const key = JSON.stringify(Object.entries(merged));
    let res = this.#resources.get(key);
    if (!res) {
      if (this.#resources.size >= 1024) this.#resources.clear();
      res = resourceFromAttributes(merged);
      this.#resources.set(key, res);
    }
    return res;
  }

  /**
   * Resource attributes must be scalars or homogeneous scalar arrays; the SDK's resource silently
   * drops anything else. Such values are sent as their JSON text instead of being lost.
   */
  #simple(key: string, v: AnyValue): AnyValue {
    if (scalar(v) !== undefined) return v;
    if (Array.isArray(v) && v.length > 0) {
      const t = typeof v[0];
      if ((t === 'string' || t === 'number' || t === 'boolean') && v.every((x) => typeof x === t)) return v;
    }
    this.converted.add(key);
    return JSON.stringify(v, (_k, x: unknown) =>
      x instanceof Uint8Array ? Buffer.from(x).toString('base64') : x,
    );
  }

  #scope(s: LogRecord['scope']): Scope {
    const scope = s ?? this.#opts.defaultScope;
    const key = `${scope.name}\u0000${scope.version ?? ''}`;
    let out = this.#scopes.get(key);
    if (!out) {
      if (this.#scopes.size >= 1024) this.#scopes.clear();
      out = scope.version === undefined ? { name: scope.name } : { name: scope.name, version: scope.version };
      this.#scopes.set(key, out);
    }
    return out;
  }
}
