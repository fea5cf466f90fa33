/**
 * Serialisation of a batch for the persistent queue.
 *
 * The format is JSON (UTF-8) of the `LogRecord[]`, with one extension: `Uint8Array` values (OTel
 * `bytes` AnyValues) are written as `{"\u0000bytes": "<base64>"}` and restored on decode. Everything
 * else in the record model (HrTime tuples, nested body maps and arrays, attributes, resource, scope,
 * severity) is JSON-native and comes back identical. Documented limits (all outside the record
 * model's normal use): `undefined` map values are dropped and non-finite numbers become `null`, as in
 * `JSON.stringify`.
 */
import type { LogsBatch } from '../../model.ts';

const BYTES_TAG = '\u0000bytes';

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { [BYTES_TAG]: Buffer.from(value).toString('base64') };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const tagged = (value as Record<string, unknown>)[BYTES_TAG];
    if (typeof tagged === 'string' && Object.keys(value).length === 1) {
      return new Uint8Array(Buffer.from(tagged, 'base64'));
    }
  }
  return value;
}

/** Encodes a batch to bytes. */
export function encodeBatch(batch: LogsBatch): Buffer {
  return Buffer.from(JSON.stringify(batch, replacer), 'utf8');
}

/** Decodes bytes written by {@link encodeBatch}. Throws when the bytes are not a batch. */
export function decodeBatch(bytes: Buffer): LogsBatch {
  const v: unknown = JSON.parse(bytes.toString('utf8'), reviver);
  if (!Array.isArray(v)) throw new Error('stored batch is not an array of records');
  return v as LogsBatch;
}
