/**
 * Configuration of the `file` exporter: appends one JSON line per record to a file.
 */
import * as z from 'zod';
import { positiveInt } from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

/** Size-based rotation. */
export const rotationSchema = z.strictObject({
  /** Rotate before a write would make the file larger than this many MiB. */
  max_megabytes: positiveInt().default(100),
  /** Rotated files to keep (oldest deleted first); 0 keeps all. */
  max_backups: z.number().int().nonnegative({ error: 'expected 0 or a positive integer' }).default(100),
});

/** Schema of `exporters.file[/name]`. */
export const configSchema = z.strictObject({
  /** Output file; relative paths resolve against the config file's directory. Parent directories are created. */
  path: z
    .string({
      error: (iss) => (iss.input === undefined ? 'required: the file to write' : 'expected a string'),
    })
    .min(1, { error: 'must not be empty' }),
  /** `ndjson`: the record body as JSON. `otlp_json`: an OTLP/JSON ExportLogsServiceRequest per record. */
  format: z.enum(['ndjson', 'otlp_json']).default('ndjson'),
  /** fsync the file before acknowledging a batch. */
  fsync: z.boolean().default(true),
  /** Rotate by size; absent means never rotate. */
  rotation: rotationSchema.optional(),
});

/** Parsed configuration. */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it (`path` is required and has no default). */
export function createDefaultConfig(): Record<string, unknown> {
  return { format: 'ndjson', fsync: true };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and exporters/file/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['path'],
    type: 'string',
    default: '(required)',
    description:
      "Output file. Relative paths resolve against the config file's directory. Missing parent directories are created. A new file is created with mode `0600` (records can hold personal data); an existing file is appended to.",
  },
  {
    names: ['format'],
    type: '`ndjson` \\| `otlp_json`',
    default: '`ndjson`',
    description:
      '`ndjson`: the record body as JSON (objects as objects, a string body as a JSON string; byte arrays as base64). `otlp_json`: the whole record (timestamps, severity, body, attributes, resource, scope, event name) as one OTLP/JSON `ExportLogsServiceRequest` per line.',
  },
  {
    names: ['fsync'],
    type: 'bool',
    default: '`true`',
    description:
      'fsync the file before acknowledging a batch, so an acknowledged batch survives a crash or power loss. `false` trades that for speed (the data is still handed to the OS before acknowledging).',
  },
  {
    names: ['rotation'],
    type: 'object',
    default: '(none)',
    description: 'Rotate by size. Absent: the file grows without limit.',
  },
  {
    names: ['rotation.max_megabytes'],
    type: 'int > 0',
    default: '`100`',
    description:
      'Rotate before a write would make the file larger than this many MiB. Lines are never split across files; a single line larger than the limit is written alone to a fresh file.',
  },
  {
    names: ['rotation.max_backups'],
    type: 'int ≥ 0',
    default: '`100`',
    description: 'Rotated files to keep; the oldest are deleted first. `0` keeps all.',
  },
]);
