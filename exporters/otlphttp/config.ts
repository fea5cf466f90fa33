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
import { documentOptions } from '../../runtime/config/docs.ts';

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

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and exporters/otlphttp/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['endpoint'],
    type: 'URL',
    default: '(required unless `logs_endpoint`)',
    description:
      'Base URL. `/v1/logs` is joined to its path (`https://h/otlp` → `https://h/otlp/v1/logs`). Must not contain credentials: URLs are logged, so put credentials in `headers`.',
  },
  {
    names: ['logs_endpoint'],
    type: 'URL',
    default: '(none)',
    description: 'Full URL of the logs endpoint, used as is. Takes precedence over `endpoint`.',
  },
  {
    names: ['encoding'],
    type: '`proto` \\| `json`',
    default: '`proto`',
    description:
      '`proto`: binary protobuf, `Content-Type: application/x-protobuf` (what APM Server needs). `json`: OTLP/JSON, `Content-Type: application/json`.',
  },
  {
    names: ['headers'],
    type: 'map of string',
    default: '`{}`',
    description:
      'Extra request headers, e.g. `Authorization`. Every value is a **secret**: it is redacted in logs, errors, metrics and `validate` output, and only sent on the wire. `Content-Type`, `Content-Encoding`, `Content-Length`, `Transfer-Encoding` and `Host` are set by the exporter and are refused here. `User-Agent` defaults to `authentik-collector/<version>` and can be overridden.',
  },
  {
    names: ['compression'],
    type: '`gzip` \\| `none`',
    default: '`gzip`',
    description: 'Request body compression (`Content-Encoding: gzip`).',
  },
  {
    names: ['timeout'],
    type: 'duration',
    default: '`10s`',
    description:
      'Deadline for one HTTP request: connecting, sending, and reading the whole answer. When it passes, the request is abandoned and retried (outcome `timeout`).',
  },
  {
    names: ['tls.ca_file'],
    type: 'path',
    default: '(system CAs)',
    description:
      "PEM CA bundle used to verify the server. Relative paths resolve against the config file's directory.",
  },
  {
    names: ['tls.cert_file'],
    type: 'path',
    default: '(none)',
    description: 'PEM client certificate (mutual TLS). Set together with `key_file`.',
  },
  {
    names: ['tls.key_file'],
    type: 'path',
    default: '(none)',
    description: 'PEM private key of the client certificate.',
  },
  {
    names: ['tls.insecure_skip_verify'],
    type: 'bool',
    default: '`false`',
    description: 'Do not verify the server certificate. A warning is logged at start.',
  },
  {
    names: ['tls.server_name'],
    type: 'string',
    default: '(URL host)',
    description: 'Name used for SNI and certificate verification.',
  },
  {
    names: ['retry.enabled'],
    type: 'bool',
    default: '`true`',
    description:
      'Retry retryable failures (see [Errors](#errors-and-retries)). When `false`, a retryable failure is returned to the caller at once.',
  },
  {
    names: ['retry.initial_interval'],
    type: 'duration',
    default: '`1s`',
    description: 'First backoff wait.',
  },
  {
    names: ['retry.max_interval'],
    type: 'duration',
    default: '`30s`',
    description: "Longest backoff wait. A server's `Retry-After` wins when it is longer.",
  },
  {
    names: ['retry.max_elapsed_time'],
    type: 'duration',
    default: '`0s`',
    description:
      "Give up after this long, and count the records as failed. `0` retries forever (nothing is dropped, and the receiver's checkpoint does not advance while the endpoint is down).",
  },
  {
    names: ['retry.multiplier'],
    type: 'number ≥ 1',
    default: '`1.5`',
    description: 'Backoff growth per attempt.',
  },
  { names: ['retry.randomization_factor'], type: '0..1', default: '`0.5`', description: 'Jitter.' },
  {
    names: ['body'],
    type: '`ecs` \\| `original`',
    default: '`ecs`',
    description:
      'For ECS documents: `ecs` sends the document as an OTLP map (kvlist). `original` sends the `event.original` string (the authentik API record as received), or the document when it has no `event.original`. Non-ECS bodies are always sent unchanged.',
  },
  {
    names: ['resource'],
    type: 'map of scalar or list',
    default: '`{service.name: authentik}`',
    description:
      "Static resource attributes. They are merged over the record's own resource attributes (these win on conflict). Values are strings, numbers, booleans, or lists of one of those. When a `file` receiver feeds records that carry their own `service.name`, set `resource: {}` to keep it.",
  },
  {
    names: ['max_batch_size'],
    type: 'int > 0',
    default: '`1000`',
    description:
      'Records per export request. A larger batch is split into requests of at most this many records, sent in order.',
  },
]);
