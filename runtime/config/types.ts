/**
 * Reusable config schema pieces: durations, byte sizes, secrets, TLS, retry. Components build their
 * `configSchema` from these so the same option is spelled, parsed and documented the same way
 * everywhere.
 */
import { inspect } from 'node:util';
import * as z from 'zod';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go-style duration (`250ms`, `10s`, `1h30m`, `0`) into milliseconds. Returns undefined when
 * the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2]!] ?? NaN);
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== s.length || !Number.isFinite(total)) return undefined;
  return total;
}

/** Formats milliseconds as a Go-style duration (for defaults shown to users). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A duration option: a string such as `10s`, parsed to milliseconds. */
export function duration(opts: { min?: number; max?: number } = {}) {
  return z.string({ error: 'expected a duration such as "10s", "500ms" or "1h"' }).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a duration (use e.g. "10s", "500ms", "1h30m")`,
      });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${formatDuration(opts.min)} (got "${v}")` });
      return z.NEVER;
    }
    if (opts.max !== undefined && ms > opts.max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(opts.max)} (got "${v}")` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A positive integer option. */
export function positiveInt(what = 'a positive integer') {
  return z
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .positive({ error: `expected ${what}` });
}

/**
 * A secret value (token, password, API key). Its string forms are redacted, so a secret that reaches
 * a log line, an error or `JSON.stringify` prints as `[REDACTED]`. Read it with `reveal()` only where
 * it is put on the wire.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    Secret.registry.add(value);
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[REDACTED]';
  }
  toJSON(): string {
    return '[REDACTED]';
  }
  [inspect.custom](): string {
    return '[REDACTED]';
  }
  /**
   * Every secret value ever parsed. The logger scrubs these from every line it writes, as a last line
   * of defence against a secret embedded in a URL or an upstream error message.
   */
  static readonly registry = new Set<string>();
}

/** A secret option; the YAML value is a string (usually `${env:VAR}` or `${file:path}`). */
export function secret() {
  return z
    .string({ error: 'expected a string' })
    .min(1, { error: 'must not be empty' })
    .transform((v) => new Secret(v.trim()));
}

/** Byte size: a number of bytes, or a string like `5MiB`, `512KiB`, `1GB`. */
export function byteSize() {
  return z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$/i.exec(v);
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a byte size (use e.g. 5MiB, 512KiB, 1000000)` });
      return z.NEVER;
    }
    const mult: Record<string, number> = {
      b: 1,
      kb: 1e3,
      kib: 1024,
      mb: 1e6,
      mib: 1024 ** 2,
      gb: 1e9,
      gib: 1024 ** 3,
    };
    return Math.floor(Number(m[1]) * (mult[(m[2] ?? 'b').toLowerCase()] ?? 1));
  });
}

/** TLS client options shared by every HTTP client component. Files are read when the component is created. */
export const tlsSchema = z
  .strictObject({
    ca_file: z.string().optional(),
    cert_file: z.string().optional(),
    key_file: z.string().optional(),
    insecure_skip_verify: z.boolean().default(false),
    server_name: z.string().optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.cert_file === undefined) !== (v.key_file === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'cert_file and key_file must be set together' });
    }
  });
export type TlsConfig = z.output<typeof tlsSchema>;

/**
 * Retry with exponential backoff, as the OTel exporterhelper (`retry_on_failure`). `max_elapsed_time`
 * 0 means retry forever (the default here: nothing is dropped unless the user asks for a bound).
 */
export const retrySchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    initial_interval: duration({ min: 1 }).default(1000),
    max_interval: duration({ min: 1 }).default(30_000),
    max_elapsed_time: duration().default(0),
    multiplier: z.number().min(1).default(1.5),
    randomization_factor: z.number().min(0).max(1).default(0.5),
  })
  .superRefine((v, ctx) => {
    if (v.max_interval < v.initial_interval) {
      ctx.addIssue({ code: 'custom', path: ['max_interval'], message: 'must not be below initial_interval' });
    }
    if (v.max_elapsed_time !== 0 && v.max_elapsed_time < v.initial_interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_elapsed_time'],
        message: 'must be 0 (retry forever) or not below initial_interval',
      });
    }
  });
export type RetryConfig = z.output<typeof retrySchema>;
export const retryDefaults = {
  enabled: true,
  initial_interval: '1s',
  max_interval: '30s',
  max_elapsed_time: '0s',
  multiplier: 1.5,
  randomization_factor: 0.5,
};
