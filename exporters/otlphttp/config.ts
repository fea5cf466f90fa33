/**
 * Config of the `otlphttp` exporter. Option names are a contract (see README.md).
 */
import * as z from 'zod';
import {
  duration,
  positiveInt,
  retryDefaults,
  retrySchema,
  secret,
  tlsSchema,
} from '../../runtime/config/types.ts';

/** Headers the exporter sets itself; a user value would corrupt the request. */
export const RESERVED_HEADERS = [
  'content-type',
  'content-encoding',
  'content-length',
  'transfer-encoding',
  'host',
];

/** A static resource attribute value: scalar or homogeneous array of scalars (what OTLP resources allow). */
const resourceValue = z.union(
  [z.string(), z.number(), z.boolean(), z.array(z.string()), z.array(z.number()), z.array(z.boolean())],
  { error: 'expected a string, number, boolean, or a list of one of those' },
);

const httpUrl = (what: string) =>
  z.string({ error: `expected a URL such as "${what}"` }).superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not a URL (expected e.g. "${what}")` });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `scheme must be http or https (got "${u.protocol}")` });
    }
    if (u.username !== '' || u.password !== '') {
      // A URL is logged; credentials belong in `headers`, whose values are secrets.
      ctx.addIssue({
        code: 'custom',
        message: 'must not contain credentials; put them in `headers` (e.g. Authorization)',
      });
    }
  });

export const configSchema = z
  .strictObject({
    /** Base URL; `/v1/logs` is appended. */
    endpoint: httpUrl('https://apm.example.com:443').optional(),
    /** Full URL of the logs endpoint; used as is. */
    logs_endpoint: httpUrl('https://otlp.example.com/v1/logs').optional(),
    encoding: z.enum(['proto', 'json']).default('proto'),
    /** Extra request headers. Values are secrets (redacted everywhere but on the wire). */
    headers: z.record(z.string().min(1), secret()).default({}),
    compression: z.enum(['gzip', 'none']).default('gzip'),
    /** Deadline of one HTTP request (connect, send, response). */
    timeout: duration({ min: 1 }).default(10_000),
    tls: tlsSchema.optional(),
    retry: retrySchema.prefault({}),
    body: z.enum(['ecs', 'original']).default('ecs'),
    /** Static resource attributes; they win over attributes carried by the records. */
    resource: z.record(z.string().min(1), resourceValue).default({ 'service.name': 'authentik' }),
    /** Records per export request; larger batches are split. */
    max_batch_size: positiveInt().default(1000),
  })
  .superRefine((v, ctx) => {
    if (v.endpoint === undefined && v.logs_endpoint === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['endpoint'],
        message: 'set `endpoint` (base URL, /v1/logs is appended) or `logs_endpoint` (full URL)',
      });
    }
    for (const name of Object.keys(v.headers)) {
      if (RESERVED_HEADERS.includes(name.toLowerCase())) {
        ctx.addIssue({
          code: 'custom',
          path: ['headers', name],
          message: `${name} is set by the exporter (from \`encoding\` / \`compression\`) and cannot be overridden`,
        });
      }
    }
  });

export type Config = z.output<typeof configSchema>;

/** The URL records are POSTed to. */
export function logsUrl(cfg: Pick<Config, 'endpoint' | 'logs_endpoint'>): URL {
  if (cfg.logs_endpoint !== undefined) return new URL(cfg.logs_endpoint);
  const u = new URL(cfg.endpoint!);
  // As the OTel collector's otlphttp exporter: the signal path is joined to the base path.
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/logs`;
  return u;
}

/** Default config as a user would write it. `endpoint` is required and has no default, so it is absent. */
export function createDefaultConfig(): Record<string, unknown> {
  return {
    encoding: 'proto',
    headers: {},
    compression: 'gzip',
    timeout: '10s',
    retry: { ...retryDefaults },
    body: 'ecs',
    resource: { 'service.name': 'authentik' },
    max_batch_size: 1000,
  };
}
