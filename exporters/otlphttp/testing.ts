/**
 * Test helpers for OTLP logs: a fake OTLP/HTTP endpoint, a protobuf decoder for
 * ExportLogsServiceRequest, and a normal form both encodings (and the collector's file exporter
 * output) decode to, so tests compare what a backend would see.
 *
 * Used by the unit tests here, test/integration/otlp*.test.ts and bench/otlp.ts. Not used in production.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { hrTimeToNanos } from '../../runtime/model.ts';

/** A decoded value: what an AnyValue holds. `null` stands for an empty AnyValue. */
export type Plain = string | number | boolean | null | Uint8Array | Plain[] | { [k: string]: Plain };

/** One log record in normal form. Times are nanosecond strings. */
export interface NormalRecord {
  resource: Record<string, Plain>;
  scope: { name: string; version?: string };
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber?: number;
  severityText?: string;
  body?: Plain;
  attributes: Record<string, Plain>;
  droppedAttributesCount: number;
  eventName?: string;
}

// ---------------------------------------------------------------------------------------------
// Protobuf (wire format, just what opentelemetry/proto/logs/v1 needs)

class Reader {
  readonly b: Uint8Array;
  pos: number;
  readonly end: number;
  constructor(b: Uint8Array, pos = 0, end = b.length) {
    this.b = b;
    this.pos = pos;
    this.end = end;
  }
  more(): boolean {
    return this.pos < this.end;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const byte = this.b[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  fixed64(): bigint {
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.pos, 8).getBigUint64(0, true);
    this.pos += 8;
    return v;
  }
  double(): number {
    const v = new DataView(this.b.buffer, this.b.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return v;
  }
  bytes(): Reader {
    const len = Number(this.varint());
    if (this.pos + len > this.end) throw new Error('truncated field');
    const r = new Reader(this.b, this.pos, this.pos + len);
    this.pos += len;
    return r;
  }
  string(): string {
    const r = this.bytes();
    return Buffer.from(this.b.buffer, this.b.byteOffset + r.pos, r.end - r.pos).toString('utf8');
  }
  raw(r: Reader): Uint8Array {
    return this.b.slice(r.pos, r.end);
  }
  /** Iterates fields: calls fn(field, wire) which must consume the value or return false to skip. */
  fields(fn: (field: number, wire: number) => boolean): void {
    while (this.more()) {
      const tag = Number(this.varint());
      const field = tag >>> 3;
      const wire = tag & 7;
      if (fn(field, wire)) continue;
      if (wire === 0) this.varint();
      else if (wire === 1) this.pos += 8;
      else if (wire === 2) this.bytes();
      else if (wire === 5) this.pos += 4;
      else throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

function pbAnyValue(r: Reader): Plain {
  let v: Plain = null;
  r.fields((f, w) => {
    if (f === 1 && w === 2) v = r.string();
    else if (f === 2 && w === 0) v = r.varint() !== 0n;
    else if (f === 3 && w === 0) v = Number(BigInt.asIntN(64, r.varint()));
    else if (f === 4 && w === 1) v = r.double();
    else if (f === 5 && w === 2) {
      const arr: Plain[] = [];
      const ar = r.bytes();
      ar.fields((f2, w2) => {
        if (f2 === 1 && w2 === 2) {
          arr.push(pbAnyValue(ar.bytes()));
          return true;
        }
        return false;
      });
      v = arr;
    } else if (f === 6 && w === 2) {
      const obj: Record<string, Plain> = {};
      const kr = r.bytes();
      kr.fields((f2, w2) => {
        if (f2 === 1 && w2 === 2) {
          const [k, val] = pbKeyValue(kr.bytes());
          obj[k] = val;
          return true;
        }
        return false;
      });
      v = obj;
    } else if (f === 7 && w === 2) v = r.raw(r.bytes());
    else return false;
    return true;
  });
  return v;
}

function pbKeyValue(r: Reader): [string, Plain] {
  let key = '';
  let value: Plain = null;
  r.fields((f, w) => {
    if (f === 1 && w === 2) key = r.string();
    else if (f === 2 && w === 2) value = pbAnyValue(r.bytes());
    else return false;
    return true;
  });
  return [key, value];
}

/** Decodes a protobuf ExportLogsServiceRequest into normal-form records. */
export function decodeProtoRequest(bytes: Uint8Array): NormalRecord[] {
  const out: NormalRecord[] = [];
  const top = new Reader(bytes);
  top.fields((f, w) => {
    if (f !== 1 || w !== 2) return false;
    const rl = top.bytes();
    const resource: Record<string, Plain> = {};
    const scopes: Reader[] = [];
    rl.fields((f2, w2) => {
      if (f2 === 1 && w2 === 2) {
        const res = rl.bytes();
        res.fields((f3, w3) => {
          if (f3 === 1 && w3 === 2) {
            const [k, v] = pbKeyValue(res.bytes());
            resource[k] = v;
            return true;
          }
          return false;
        });
        return true;
      }
      if (f2 === 2 && w2 === 2) {
        scopes.push(rl.bytes());
        return true;
      }
      return false;
    });
    for (const sl of scopes) {
      const scope: { name: string; version?: string } = { name: '' };
      const records: Reader[] = [];
      sl.fields((f3, w3) => {
        if (f3 === 1 && w3 === 2) {
          const sc = sl.bytes();
          sc.fields((f4, w4) => {
            if (f4 === 1 && w4 === 2) scope.name = sc.string();
            else if (f4 === 2 && w4 === 2) scope.version = sc.string();
            else return false;
            return true;
          });
          return true;
        }
        if (f3 === 2 && w3 === 2) {
          records.push(sl.bytes());
          return true;
        }
        return false;
      });
      for (const lr of records) out.push(pbLogRecord(lr, resource, scope));
    }
    return true;
  });
  return out;
}

function pbLogRecord(r: Reader, resource: Record<string, Plain>, scope: NormalRecord['scope']): NormalRecord {
  const rec: NormalRecord = {
    resource,
    scope,
    timeUnixNano: '0',
    observedTimeUnixNano: '0',
    attributes: {},
    droppedAttributesCount: 0,
  };
  r.fields((f, w) => {
    if (f === 1 && w === 1) rec.timeUnixNano = r.fixed64().toString();
    else if (f === 11 && w === 1) rec.observedTimeUnixNano = r.fixed64().toString();
    else if (f === 2 && w === 0) rec.severityNumber = Number(r.varint());
    else if (f === 3 && w === 2) rec.severityText = r.string();
    else if (f === 5 && w === 2) rec.body = pbAnyValue(r.bytes());
    else if (f === 6 && w === 2) {
      const [k, v] = pbKeyValue(r.bytes());
      rec.attributes[k] = v;
    } else if (f === 7 && w === 0) rec.droppedAttributesCount = Number(r.varint());
    else if (f === 12 && w === 2) rec.eventName = r.string();
    else return false;
    return true;
  });
  return rec;
}

// ---------------------------------------------------------------------------------------------
// OTLP/JSON (the SDK's JSON encoding and the collector file exporter's `format: json`)

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number | string;
  bytesValue?: string;
  arrayValue?: { values?: JsonAnyValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
}
interface JsonKeyValue {
  key: string;
  value?: JsonAnyValue;
}
interface JsonLogRecord {
  timeUnixNano?: string | number;
  observedTimeUnixNano?: string | number;
  severityNumber?: number;
  severityText?: string;
  body?: JsonAnyValue;
  attributes?: JsonKeyValue[];
  droppedAttributesCount?: number;
  eventName?: string;
}
export interface JsonLogsRequest {
  resourceLogs?: {
    resource?: { attributes?: JsonKeyValue[] };
    scopeLogs?: { scope?: { name?: string; version?: string }; logRecords?: JsonLogRecord[] }[];
  }[];
}

function jsonAnyValue(v: JsonAnyValue | undefined): Plain {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.bytesValue !== undefined) return new Uint8Array(Buffer.from(v.bytesValue, 'base64'));
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(jsonAnyValue);
  if (v.kvlistValue !== undefined) return jsonAttributes(v.kvlistValue.values);
  return null;
}

function jsonAttributes(kvs: JsonKeyValue[] | undefined): Record<string, Plain> {
  const out: Record<string, Plain> = {};
  for (const kv of kvs ?? []) out[kv.key] = jsonAnyValue(kv.value);
  return out;
}

/** Normal form of an OTLP/JSON ExportLogsServiceRequest. */
export function decodeJsonRequest(req: JsonLogsRequest): NormalRecord[] {
  const out: NormalRecord[] = [];
  for (const rl of req.resourceLogs ?? []) {
    const resource = jsonAttributes(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      const scope: NormalRecord['scope'] = { name: sl.scope?.name ?? '' };
      if (sl.scope?.version) scope.version = sl.scope.version;
      for (const lr of sl.logRecords ?? []) {
        const rec: NormalRecord = {
          resource,
          scope,
          timeUnixNano: String(lr.timeUnixNano ?? '0'),
          observedTimeUnixNano: String(lr.observedTimeUnixNano ?? '0'),
          attributes: jsonAttributes(lr.attributes),
          droppedAttributesCount: lr.droppedAttributesCount ?? 0,
        };
        if (lr.severityNumber) rec.severityNumber = lr.severityNumber;
        if (lr.severityText) rec.severityText = lr.severityText;
        if (lr.body !== undefined) rec.body = jsonAnyValue(lr.body);
        if (lr.eventName) rec.eventName = lr.eventName;
        out.push(rec);
      }
    }
  }
  return out;
}

/** Normal form of the collector file exporter's output (`format: json`: one request per line). */
export function decodeFileExporterOutput(text: string): NormalRecord[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => decodeJsonRequest(JSON.parse(l) as JsonLogsRequest));
}

// ---------------------------------------------------------------------------------------------
// Fake endpoint

/** A request the fake endpoint received (body already gunzipped). */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Body as sent (possibly gzip). */
  raw: Buffer;
  body: Buffer;
  records: NormalRecord[];
}

/** How the fake endpoint answers one request. */
export interface FakeResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  reset?: boolean;
}

export interface FakeEndpoint {
  url: string;
  requests: ReceivedRequest[];
  /** Sets the answer of request n (0-based) or, as a function, of every request. */
  respond: (n: number, req: ReceivedRequest) => FakeResponse | undefined;
  close(): Promise<void>;
}

/** Decodes a request body by its content type. */
export function decodeRequestBody(body: Buffer, contentType: string | undefined): NormalRecord[] {
  if (contentType?.includes('json'))
    return decodeJsonRequest(JSON.parse(body.toString('utf8')) as JsonLogsRequest);
  return decodeProtoRequest(body);
}

/** An in-process OTLP/HTTP endpoint on 127.0.0.1:0. Answers 200 with an empty body unless told otherwise. */
export async function startFakeEndpoint(): Promise<FakeEndpoint> {
  const fake: FakeEndpoint = {
    url: '',
    requests: [],
    respond: () => undefined,
    close: () => Promise.resolve(),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body = raw;
      let records: NormalRecord[];
      try {
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(raw);
        records = decodeRequestBody(body, req.headers['content-type']);
      } catch {
        records = []; // undecodable: tests look at `raw`
      }
      const received: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        raw,
        body,
        records,
      };
      const n = fake.requests.length;
      fake.requests.push(received);
      const answer = fake.respond(n, received) ?? {};
      const send = () => {
        if (answer.reset) {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status ?? 200, answer.headers ?? {});
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}

/** Protobuf ExportLogsServiceResponse with a partial success (rejected count, message). */
export function protoPartialSuccess(rejected: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  const inner = Buffer.concat([
    Buffer.from([0x08]),
    varint(rejected),
    Buffer.from([0x12]),
    varint(msg.length),
    msg,
  ]);
  return Buffer.concat([Buffer.from([0x0a]), varint(inner.length), inner]);
}

/** Protobuf google.rpc.Status with a code and message. */
export function protoStatus(code: number, message: string): Buffer {
  const msg = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from([0x08]), varint(code), Buffer.from([0x12]), varint(msg.length), msg]);
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v > 127) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

// ---------------------------------------------------------------------------------------------
// Expected values

/** Normal form of what the exporter hands the serializer (to compare with what a backend received). */
export function normalFromReadable(r: ReadableLogRecord): NormalRecord {
  const scope: NormalRecord['scope'] = { name: r.instrumentationScope.name };
  if (r.instrumentationScope.version) scope.version = r.instrumentationScope.version;
  const out: NormalRecord = {
    resource: plainMap(r.resource.attributes),
    scope,
    timeUnixNano: hrTimeToNanos(r.hrTime).toString(),
    observedTimeUnixNano: hrTimeToNanos(r.hrTimeObserved).toString(),
    attributes: plainMap(r.attributes),
    droppedAttributesCount: r.droppedAttributesCount,
  };
  if (r.severityNumber) out.severityNumber = r.severityNumber;
  if (r.severityText) out.severityText = r.severityText;
  if (r.body !== undefined) out.body = plain(r.body);
  if (r.eventName) out.eventName = r.eventName;
  return out;
}

function plain(v: unknown): Plain {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object') return plainMap(v as Record<string, unknown>);
  return null;
}

function plainMap(m: Record<string, unknown>): Record<string, Plain> {
  const out: Record<string, Plain> = {};
  for (const [k, v] of Object.entries(m)) out[k] = plain(v);
  return out;
}
