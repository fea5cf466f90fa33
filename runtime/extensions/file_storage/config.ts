/**
 * Configuration of the `file_storage` extension: a directory-backed key/value store that receivers
 * use for checkpoints and exporters' persistent queues use for their logs.
 */
import * as z from 'zod';
import { duration } from '../../config/types.ts';
import { documentOptions } from '../../config/docs.ts';

/** Schema of `extensions.file_storage[/name]`. */
export const configSchema = z.strictObject({
  /**
   * Directory holding the data (relative paths resolve against the config file's directory). Created
   * with mode 0700 when missing; OTel's file_storage requires it to exist, we create it so a fresh
   * checkout runs with no preparation.
   */
  directory: z.string().min(1, { error: 'must not be empty' }).default('./data/state'),
  /** fsync every value file and its directory on `set` (durable across power loss). */
  fsync: z.boolean().default(true),
  /** How long `start` waits for another process to release the directory lock before failing. */
  timeout: duration().default(1000),
});

/** Parsed configuration (durations in milliseconds). */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it. */
export function createDefaultConfig(): Record<string, unknown> {
  return { directory: './data/state', fsync: true, timeout: '1s' };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and runtime/extensions/file_storage/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['directory'],
    type: 'string',
    default: '`./data/state`',
    description:
      "Where the data lives. Relative paths resolve against the config file's directory. Created with mode `0700` when missing (OTel's `file_storage` requires it to exist; we create it so a fresh checkout runs as is).",
  },
  {
    names: ['fsync'],
    type: 'bool',
    default: '`true`',
    description:
      'fsync each value file and its directory on every write, so a power loss cannot lose an acknowledged checkpoint. OTel defaults to `false`; checkpoints are small and rare enough that durability wins here.',
  },
  {
    names: ['timeout'],
    type: 'duration',
    default: '`1s`',
    description: 'How long `start` waits for another process to release the directory lock before it fails.',
  },
]);
