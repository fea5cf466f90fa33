/** Configuration of the `authentik_changes` processor. */
import * as z from 'zod';
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
