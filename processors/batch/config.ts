/**
 * Configuration of the `batch` processor: merges small batches and splits large ones before they
 * reach the exporters, without ever acknowledging upstream before downstream delivery.
 */
import * as z from 'zod';
import { duration, positiveInt } from '../../runtime/config/types.ts';

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
