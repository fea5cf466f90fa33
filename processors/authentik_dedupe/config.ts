/**
 * Configuration of the `authentik_dedupe` processor: drops authentik events already delivered by
 * another path (push and poll, or a re-sent batch), keyed by the event pk, remembered durably.
 */
import * as z from 'zod';
import { documentOptions } from '../../runtime/config/docs.ts';
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

/** Option reference: the one source of `components`, the README option tables and the JSON Schema (`npm run docs`). */
documentOptions(configSchema, [
  {
    names: ['storage'],
    type: 'string',
    default: '(none)',
    description:
      'Storage extension (`file_storage[/name]`) keeping the delivered pks across restarts. Without it they live in memory (a warning is logged) and an event pushed before a restart can be delivered again by the poller after it.',
  },
  {
    names: ['storage_key'],
    type: 'string',
    default: '`authentik_dedupe:<pipeline>`',
    description: 'Identity of the data in the storage extension.',
  },
  {
    names: ['ttl'],
    type: 'duration 1m..168h',
    default: '`2h`',
    description:
      "How long a delivered pk is remembered, counted from the event's `created`. Must exceed how late a second copy can come: authentik's webhook retries (\u2248 25 min on 2025.12) and the poller's lag behind the newest event. Memory: \u2248 60 bytes per event in the window.",
  },
]);
