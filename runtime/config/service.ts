/**
 * Schema of the `service` section: pipelines, enabled extensions, the collector's own telemetry and
 * its start/shutdown deadlines.
 */
import * as z from 'zod';
import { duration } from './types.ts';

/** Default address of the Prometheus metrics endpoint. */
export const DEFAULT_METRICS_ADDRESS = '127.0.0.1:8888';
/** Default address of the health endpoint. */
export const DEFAULT_HEALTH_ADDRESS = '127.0.0.1:13133';
/** Default bound of graceful shutdown. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
/** Default bound of each component's start. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

const idList = z.array(z.string({ error: 'expected a component id (a string)' }));

/** One pipeline: `service.pipelines.logs[/name]`. */
export const pipelineSchema = z.strictObject({
  receivers: idList.default([]),
  processors: idList.default([]),
  exporters: idList.default([]),
});
export type PipelineSchemaOutput = z.output<typeof pipelineSchema>;

/** An endpoint address: `host:port`, or `""`/`none`/null to disable. */
const address = (dflt: string) =>
  z
    .string()
    .nullable()
    .default(dflt)
    .refine((a) => enabledAddress(a) === undefined || parseHostPort(a!) !== undefined, {
      error: 'must be "host:port" (e.g. "127.0.0.1:8888"), or "" / "none" to disable',
    });

export const telemetrySchema = z.strictObject({
  metrics: z
    .strictObject({
      /** `host:port` of the Prometheus endpoint; `""` or `none` disables it. */
      address: address(DEFAULT_METRICS_ADDRESS),
    })
    .default({ address: DEFAULT_METRICS_ADDRESS }),
  health: z
    .strictObject({
      /** `host:port` of the health endpoint; `""` or `none` disables it. */
      address: address(DEFAULT_HEALTH_ADDRESS),
      /** Readiness (`/readyz`, `/`) is 503 while a component has a permanent error (e.g. a 401). */
      include_permanent_errors: z.boolean().default(true),
      /** Readiness is 503 while a recoverable error (an outage being retried) lasts `recovery_duration`. */
      include_recoverable_errors: z.boolean().default(false),
      /** With `include_recoverable_errors`: how long a recoverable error may last before it counts. */
      recovery_duration: duration({ min: 0 }).default(60_000),
    })
    .default({
      address: DEFAULT_HEALTH_ADDRESS,
      include_permanent_errors: true,
      include_recoverable_errors: false,
      recovery_duration: 60_000,
    }),
  /** A metrics or health address that cannot be bound: `fail` the start (exit 1) or `warn` and run on. */
  on_bind_error: z.enum(['fail', 'warn']).default('fail'),
  logs: z
    .strictObject({
      /** Minimum level written (the `--log-level` flag wins). */
      level: z.enum(['debug', 'info', 'warn', 'error']).optional(),
      /** `text` or `json` (the `--log-format` flag wins; default: text on a TTY, json otherwise). */
      format: z.enum(['text', 'json']).optional(),
    })
    .default({}),
});
export type TelemetryConfig = z.output<typeof telemetrySchema>;

export const serviceSchema = z.strictObject({
  /** Extensions to start, in order. Configured extensions not listed here are not started. */
  extensions: idList.default([]),
  pipelines: z.record(z.string(), pipelineSchema.nullable()).nullable().default({}),
  telemetry: telemetrySchema.default(telemetrySchema.parse({})),
  /** Bound of graceful shutdown (all components together). */
  shutdown_timeout: duration({ min: 1 }).default(DEFAULT_SHUTDOWN_TIMEOUT_MS),
  /** Bound of each component's `start`. */
  start_timeout: duration({ min: 1 }).default(DEFAULT_START_TIMEOUT_MS),
});
export type ServiceSchemaOutput = z.output<typeof serviceSchema>;

/** `host:port` of an address option, or undefined when disabled (`""`, `none`, null). */
export function enabledAddress(a: string | null | undefined): string | undefined {
  if (a === null || a === undefined) return undefined;
  const t = a.trim();
  return t === '' || t.toLowerCase() === 'none' ? undefined : t;
}

/**
 * Splits `host:port` (`[::1]:8888`, `:8888` = every interface) into its parts; undefined when the
 * text is not an address.
 */
export function parseHostPort(a: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(a.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** The readiness options of `service.telemetry.health`. */
export function readinessOptions(t: TelemetryConfig): {
  includePermanent: boolean;
  includeRecoverable: boolean;
  recoveryMs: number;
} {
  return {
    includePermanent: t.health.include_permanent_errors,
    includeRecoverable: t.health.include_recoverable_errors,
    recoveryMs: t.health.recovery_duration,
  };
}
