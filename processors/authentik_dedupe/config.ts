/**
 * Configuration of the `authentik_dedupe` processor: drops authentik events already delivered by
 * another path (push and poll, or a re-sent batch), keyed by the event pk, remembered durably.
 */
import * as z from 'zod';
import { duration } from '../../runtime/config/types.ts';

export const configSchema = z.strictObject({
  /** Storage extension (`file_storage[/name]`) keeping the delivered pks across restarts. */
  storage: z.string().min(1).optional(),
  /** Identity of the data in the storage extension (default `authentik_dedupe:<pipeline>`). */
  storage_key: z.string().min(1).optional(),
  /**
   * How long a delivered pk is remembered, counted from the event's `created`. Must exceed how late
   * a second copy can arrive: authentik's webhook retries (≈ 25 min on 2025.12) and the poller's lag.
   */
  ttl: duration({ min: 60_000, max: 7 * 24 * 3_600_000 }).default(2 * 3_600_000),
});

export type Config = z.output<typeof configSchema>;

export function createDefaultConfig(): Record<string, unknown> {
  return { ttl: '2h' };
}
