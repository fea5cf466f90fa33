/**
 * Configuration of the `file` exporter: appends one JSON line per record to a file.
 */
import * as z from 'zod';
import { positiveInt } from '../../runtime/config/types.ts';

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
