/**
 * Configuration of the `debug` exporter: prints records to stderr for troubleshooting.
 */
import * as z from 'zod';
import { positiveInt } from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

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

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and exporters/debug/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['verbosity'],
    type: '`basic` \\| `normal` \\| `detailed`',
    default: '`basic`',
    description:
      '`basic`: one line per batch with its record count. `normal`: that line plus one line per record (time, severity, event name, body as JSON, attributes as `key=value`). `detailed`: every field of every record (timestamps with nanoseconds, severity, event name, resource, scope, attributes, body pretty-printed).',
  },
  {
    names: ['sampling_initial'],
    type: 'int > 0',
    default: '`2`',
    description: 'Batches printed in each one-second window before sampling starts.',
  },
  {
    names: ['sampling_thereafter'],
    type: 'int > 0',
    default: '`1`',
    description: 'After the initial ones, print every Nth batch in the window. `1` prints all.',
  },
]);
