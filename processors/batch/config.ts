/**
 * Configuration of the `batch` processor: merges small batches and splits large ones before they
 * reach the exporters, without ever acknowledging upstream before downstream delivery.
 */
import * as z from 'zod';
import { duration, positiveInt } from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

/** Schema of `processors.batch[/name]`. */
export const configSchema = z
  .strictObject({
    /**
     * Records that trigger a send (a trigger, not a cap). OTel defaults to 8192; authentik volumes are
     * far smaller, and a smaller batch keeps acknowledgement latency low, so we default to 1000.
     */
    send_batch_size: positiveInt().default(1000),
    /**
     * While a send is in progress, send whatever is pending this long after it arrived (with the
     * downstream idle, pending records go out at once). 0: send at once, only splitting by send_batch_max_size.
     */
    timeout: duration().default(200),
    /** Upper bound of a sent batch; larger batches are split. 0: no limit. */
    send_batch_max_size: z
      .number()
      .int()
      .nonnegative({ error: 'expected 0 (no limit) or a positive integer' })
      .default(0),
  })
  .superRefine((v, ctx) => {
    if (v.send_batch_max_size !== 0 && v.send_batch_max_size < v.send_batch_size) {
      ctx.addIssue({
        code: 'custom',
        path: ['send_batch_max_size'],
        message: `must be 0 (no limit) or at least send_batch_size (${v.send_batch_size})`,
      });
    }
  });

/** Parsed configuration (timeout in milliseconds). */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it. */
export function createDefaultConfig(): Record<string, unknown> {
  return { send_batch_size: 1000, timeout: '200ms', send_batch_max_size: 0 };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and processors/batch/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['send_batch_size'],
    type: 'int > 0',
    default: '`1000`',
    description:
      'Number of pending records that triggers a send. It is a trigger, not a cap: without `send_batch_max_size` everything pending is sent. OTel defaults to 8192; authentik volumes are much smaller and a smaller batch keeps acknowledgement latency low, so we default to 1000.',
  },
  {
    names: ['timeout'],
    type: 'duration',
    default: '`200ms`',
    description:
      'Send whatever is pending this long after the first record arrived. `0`: send at once (only splitting by `send_batch_max_size`).',
  },
  {
    names: ['send_batch_max_size'],
    type: 'int ≥ 0',
    default: '`0`',
    description:
      'Largest batch sent; larger amounts are split. `0`: no limit. When set it must be at least `send_batch_size`.',
  },
]);
