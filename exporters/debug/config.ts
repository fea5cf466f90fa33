/**
 * Configuration of the `debug` exporter: prints records to stderr for troubleshooting.
 */
import * as z from 'zod';
import { positiveInt } from '../../runtime/config/types.ts';

/** Schema of `exporters.debug[/name]`. */
export const configSchema = z.strictObject({
  /** basic: one line per batch; normal: one line per record; detailed: every field of every record. */
  verbosity: z.enum(['basic', 'normal', 'detailed']).default('basic'),
  /** Batches printed in full each second before sampling starts. */
  sampling_initial: positiveInt().default(2),
  /** After that, print every Nth batch within the second (1 prints all). */
  sampling_thereafter: positiveInt().default(1),
});

/** Parsed configuration. */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it. */
export function createDefaultConfig(): Record<string, unknown> {
  return { verbosity: 'basic', sampling_initial: 2, sampling_thereafter: 1 };
}
