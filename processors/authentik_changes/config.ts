/** Configuration of the `authentik_changes` processor. */
import * as z from 'zod';
import { documentOptions } from '../../runtime/config/docs.ts';
import { duration } from '../../runtime/config/types.ts';

/** Elastic's data stream namespace rules: lower case, at most 100 bytes, none of `\/*?"<>|,#:-` or spaces. */
const namespaceSchema = z
  .string({ error: 'expected a string' })
  .min(1, { error: 'must not be empty' })
  .max(100, { error: 'must be at most 100 characters' })
  .refine((v) => !/[A-Z\\/*?"<>|,#:\s-]/.test(v), {
    error: 'must be lower case and must not contain \\ / * ? " < > | , # : - or whitespace',
  });

/** Schema of `processors.authentik_changes[/name]`. */
export const configSchema = z
  .strictObject({
    /** Id of a storage extension keeping the last known state of every user and group. */
    storage: z.string({ error: 'expected the id of a storage extension' }).min(1).optional(),
    /** Identity of the state in the storage extension (default: the processor type, so renaming keeps it). */
    storage_key: z.string().min(1).optional(),
    /** `data_stream.namespace` of the change records. */
    namespace: namespaceSchema.default('default'),
    /** Longest time between two writes of the per-user event counts (they change with every event batch). */
    counts_flush_interval: duration({ min: 100, max: 3_600_000 }).default(5000),
  })
  .superRefine((c, ctx) => {
    if (c.storage_key !== undefined && c.storage === undefined) {
      ctx.addIssue({ code: 'custom', path: ['storage_key'], message: 'only valid with storage' });
    }
  });

export type Config = z.output<typeof configSchema>;

export function createDefaultConfig(): Record<string, unknown> {
  return { namespace: 'default', counts_flush_interval: '5s' };
}

/** Option reference: the one source of `components`, the README option tables and the JSON Schema (`npm run docs`). */
documentOptions(configSchema, [
  {
    names: ['storage'],
    type: 'string',
    default: '(none)',
    description:
      'Id of a storage extension (`file_storage[/name]`) keeping the last known state of every user and group, and the per-user event counts. Without it the state lives in memory (a warning is logged): after a restart the first listing is a new baseline and changes made while the collector was down are not reported.',
  },
  {
    names: ['storage_key'],
    type: 'string',
    default: '`authentik_changes`',
    description:
      'Identity of the state in the storage extension (renaming the processor keeps it). Only valid with `storage`.',
  },
  {
    names: ['namespace'],
    type: 'string',
    default: '`default`',
    description: "`data_stream.namespace` of the change records (Elastic's rules).",
  },
  {
    names: ['counts_flush_interval'],
    type: 'duration 100ms..1h',
    default: '`5s`',
    description:
      'Longest time between two writes of the per-user event counts (they change with every event batch; users and groups are written with the batch that changed them).',
  },
]);
