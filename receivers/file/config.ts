/**
 * Configuration of the `file` receiver: replays (or tails) a file of newline-delimited JSON.
 */
import * as z from 'zod';
import { byteSize, duration, positiveInt, retryDefaults, retrySchema } from '../../runtime/config/types.ts';

const scalar = z.union([z.string(), z.number(), z.boolean()]);
/** A static attribute value: a scalar or a list of scalars (OTel attribute values). */
const attributeValue = z.union([scalar, z.array(scalar)], {
  error: 'expected a string, number, boolean or a list of them',
});

/** Schema of `receivers.file[/name]`. */
export const configSchema = z
  .strictObject({
    /** The NDJSON file. Relative paths resolve against the config file's directory. */
    path: z
      .string({
        error: (iss) => (iss.input === undefined ? 'required: the NDJSON file to read' : 'expected a string'),
      })
      .min(1, { error: 'must not be empty' }),
    /** Static attributes added to every record; keys are flat dotted OTel keys (`data_stream.dataset`). */
    attributes: z
      .record(z.string().min(1, { error: 'attribute keys must not be empty' }), attributeValue)
      .default({}),
    /** false: stop at the end of the file (finite source). true: keep tailing it (handles truncation and rotation). */
    follow: z.boolean().default(false),
    /** With follow: how often to look for new data, truncation or rotation. */
    poll_interval: duration({ min: 1 }).default(200),
    /** With follow: emit an unterminated last line after it has not grown for this long (0 = wait for the newline). */
    force_flush_period: duration().default(500),
    /** Where to begin when there is no checkpoint. */
    start_at: z.enum(['beginning', 'end']).default('beginning'),
    /** Records per `consume` call. */
    batch_size: positiveInt().default(100),
    /** Longest accepted line; longer lines are skipped and counted as dropped. */
    max_line_size: byteSize().default(16 * 1024 * 1024),
    /** Id of a storage extension (`file_storage[/name]`) that keeps the byte offset across restarts. */
    storage: z.string().min(1).optional(),
    /** Identity of the checkpoint (default: `file:` + the resolved path), so renaming the receiver keeps it. */
    storage_key: z.string().min(1).optional(),
    /** Add the `log.file.name` attribute (base name of the file). */
    include_file_name: z.boolean().default(false),
    /** Add the `log.file.path` attribute (resolved path of the file). */
    include_file_path: z.boolean().default(false),
    /** Retry of batches the pipeline refused with a retryable error (max_elapsed_time 0 = forever). */
    retry_on_failure: retrySchema.prefault({}),
  })
  .superRefine((v, ctx) => {
    if (v.max_line_size < 1) {
      ctx.addIssue({ code: 'custom', path: ['max_line_size'], message: 'must be at least 1 byte' });
    }
    if (v.storage_key !== undefined && v.storage === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['storage_key'],
        message: 'only meaningful together with storage',
      });
    }
  });

/** Parsed configuration (durations in milliseconds, sizes in bytes). */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it (`path` is required and has no default). */
export function createDefaultConfig(): Record<string, unknown> {
  return {
    attributes: {},
    follow: false,
    poll_interval: '200ms',
    force_flush_period: '500ms',
    start_at: 'beginning',
    batch_size: 100,
    max_line_size: '16MiB',
    include_file_name: false,
    include_file_path: false,
    retry_on_failure: { ...retryDefaults },
  };
}
