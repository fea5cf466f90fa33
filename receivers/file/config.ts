/**
 * Configuration of the `file` receiver: replays (or tails) a file of newline-delimited JSON.
 */
import * as z from 'zod';
import { byteSize, duration, positiveInt, retryDefaults, retrySchema } from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

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

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and receivers/file/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['path'],
    type: 'string',
    default: '(required)',
    description: "The NDJSON file. Relative paths resolve against the config file's directory.",
  },
  {
    names: ['attributes'],
    type: 'map',
    default: '`{}`',
    description:
      'Static attributes added to every record. Keys are flat, dotted OTel keys (`data_stream.dataset`); values are strings, numbers, booleans or lists of them.',
  },
  {
    names: ['follow'],
    type: 'bool',
    default: '`false`',
    description:
      '`false`: stop at the end of the file (a finite source; the collector exits when all receivers finished). `true`: keep tailing the file, following truncation and rotation.',
  },
  {
    names: ['poll_interval'],
    type: 'duration',
    default: '`200ms`',
    description: 'With `follow`: how often to look for new data, truncation and rotation.',
  },
  {
    names: ['force_flush_period'],
    type: 'duration',
    default: '`500ms`',
    description:
      'With `follow`: emit an unterminated last line once it has not grown for this long. `0` waits for the newline forever. Without `follow` the last line is always emitted at the end of the file.',
  },
  {
    names: ['start_at'],
    type: '`beginning` \\| `end`',
    default: '`beginning`',
    description:
      'Where to begin when there is no checkpoint. `end` applies only to a file present at start; a file that appears later is read in full.',
  },
  { names: ['batch_size'], type: 'int > 0', default: '`100`', description: 'Records per `consume` call.' },
  {
    names: ['max_line_size'],
    type: 'byte size',
    default: '`16MiB`',
    description:
      'Longest accepted line. A longer line is skipped without buffering it and counted as dropped (`line_too_long`).',
  },
  {
    names: ['storage'],
    type: 'string',
    default: '(none)',
    description:
      'Id of a storage extension (`file_storage[/name]`) that keeps the byte offset across restarts. Without it every run starts at `start_at`.',
  },
  {
    names: ['storage_key'],
    type: 'string',
    default: '`file:<resolved path>`',
    description:
      'Identity of the checkpoint in the storage extension. The default follows the file, so renaming the receiver keeps the checkpoint. Only valid with `storage`.',
  },
  {
    names: ['include_file_name'],
    type: 'bool',
    default: '`false`',
    description:
      "Add `log.file.name` (base name of the file). OTel's filelog defaults to `true`; we keep the record as the input had it unless asked.",
  },
  {
    names: ['include_file_path'],
    type: 'bool',
    default: '`false`',
    description: 'Add `log.file.path` (resolved path).',
  },
  {
    names: ['retry_on_failure.enabled'],
    type: 'bool',
    default: '`true`',
    description:
      'Retry a batch the pipeline refused with a retryable error. When `false`, such a batch is dropped and counted.',
  },
  {
    names: ['retry_on_failure.initial_interval'],
    type: 'duration',
    default: '`1s`',
    description: 'First backoff wait.',
  },
  {
    names: ['retry_on_failure.max_interval'],
    type: 'duration',
    default: '`30s`',
    description: 'Longest backoff wait.',
  },
  {
    names: ['retry_on_failure.max_elapsed_time'],
    type: 'duration',
    default: '`0s`',
    description: 'Give up (drop and count, reason `retries_exhausted`) after this long; `0` retries forever.',
  },
  {
    names: ['retry_on_failure.multiplier'],
    type: 'number ≥ 1',
    default: '`1.5`',
    description: 'Backoff growth per attempt.',
  },
  {
    names: ['retry_on_failure.randomization_factor'],
    type: '0..1',
    default: '`0.5`',
    description: 'Jitter.',
  },
]);
