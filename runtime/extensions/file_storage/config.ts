/**
 * Configuration of the `file_storage` extension: a directory-backed key/value store that receivers
 * use for checkpoints and exporters' persistent queues use for their logs.
 */
import * as z from 'zod';
import { duration } from '../../config/types.ts';

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
