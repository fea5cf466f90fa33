/**
 * Configuration of the `authentik_webhook` receiver: an HTTP(S) listener for authentik's notification
 * webhooks (push), plus optional provisioning of the authentik objects that send them. See README.md.
 */
import * as z from 'zod';
import { documentOptions } from '../../runtime/config/docs.ts';
import { byteSize, duration, positiveInt, secret, tlsSchema } from '../../runtime/config/types.ts';

/** Header the collector's header mapping sets; authentik sends nothing else that could authenticate it. */
export const DEFAULT_SECRET_HEADER = 'X-Authentik-Collector-Secret';

function baseUrl(what: string) {
  return z
    .string({ error: (iss) => (iss.input === undefined ? `required: ${what}` : 'expected a string') })
    .min(1, { error: 'must not be empty' })
    .transform((v, ctx) => {
      let u: URL;
      try {
        u = new URL(v.trim());
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a URL` });
        return z.NEVER;
      }
      if (u.protocol !== 'https:' && u.protocol !== 'http:') {
        ctx.addIssue({ code: 'custom', message: `must be an http(s) URL, got ${u.protocol}` });
        return z.NEVER;
      }
      if (u.username !== '' || u.password !== '') {
        ctx.addIssue({ code: 'custom', message: 'must not contain credentials' });
        return z.NEVER;
      }
      if (u.search !== '' || u.hash !== '') {
        ctx.addIssue({ code: 'custom', message: 'must not contain a query or fragment' });
        return z.NEVER;
      }
      return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    });
}

const listenAddress = z.string({ error: 'expected "host:port", e.g. "0.0.0.0:9443"' }).transform((v, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    ctx.addIssue({
      code: 'custom',
      message: `"${v}" is not a listen address (use "host:port", e.g. "0.0.0.0:9443")`,
    });
    return z.NEVER;
  }
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!), port };
});

const serverTls = z.strictObject({
  /** Server certificate chain (PEM). */
  cert_file: z.string(),
  /** Private key of the certificate (PEM). */
  key_file: z.string(),
});

const rateLimit = z.strictObject({
  /** Sustained requests per second accepted (token bucket refill). 0 disables the limit. */
  requests_per_second: z.number({ error: 'expected a number' }).nonnegative().default(500),
  /** Bucket size: requests accepted in a burst above the sustained rate. */
  burst: positiveInt().default(1000),
});

const authentikApi = z
  .strictObject({
    /** Base URL of authentik, the same as the `authentik` receiver's `endpoint`. */
    endpoint: baseUrl("base URL of authentik (the authentik receiver's endpoint)"),
    /** API token used for provisioning. Exactly one of token / token_file when `provision: true`. */
    token: secret().optional(),
    token_file: z.string().optional(),
    tls: tlsSchema.default({ insecure_skip_verify: false }),
    timeout: duration({ min: 100 }).default(30_000),
  })
  .superRefine((v, ctx) => {
    if (v.token !== undefined && v.token_file !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['token_file'],
        message: 'set either token or token_file, not both',
      });
    }
  });

/** Schema of `receivers.authentik_webhook[/name]`. */
export const configSchema = z
  .strictObject({
    /** Listen address of the webhook server. */
    endpoint: listenAddress.default({ host: '127.0.0.1', port: 9443 }),
    /** Path authentik POSTs to. */
    path: z
      .string()
      .regex(/^\/[\x21-\x7e]*$/, { error: 'must start with "/" and contain no spaces' })
      .default('/authentik/webhook'),
    /** Shared secret authentik sends in `secret_header` (set by the header mapping). At least 16 characters. */
    secret: secret().refine((s) => s.reveal().length >= 16, {
      error: 'must be at least 16 characters (e.g. `openssl rand -hex 32`)',
    }),
    secret_header: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, { error: 'must be an HTTP header name' })
      .default(DEFAULT_SECRET_HEADER),
    /** Serve HTTPS with this certificate (recommended whenever authentik reaches the collector over a network). */
    tls: serverTls.optional(),
    /** Largest accepted request body; larger ones get 413. */
    max_body_size: byteSize().default(1024 * 1024),
    rate_limit: rateLimit.default({ requests_per_second: 500, burst: 1000 }),
    /** The authentik instance (to provision, and to pair with the `authentik` receiver polling it). */
    authentik: authentikApi,
    /** Create or update the notification objects in authentik at start (`false`: print what to create). */
    provision: z.boolean().default(false),
    /** URL authentik must POST to (how authentik reaches this listener). Required with `provision: true`. */
    public_url: baseUrl('the URL authentik POSTs to').optional(),
    /** Prefix of the names of the provisioned objects (one set per collector deployment). */
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[\w .-]+$/, { error: 'letters, digits, space, ".", "_" and "-" only' })
      .default('authentik-collector'),
    /** Push counts as healthy while a webhook was accepted within this window. */
    health_window: duration({ min: 1000 }).default(300_000),
    /**
     * Events poll interval of the `authentik` receiver for the same endpoint while push is healthy
     * (never shorter than its own `events.interval`). `0` leaves the poller alone.
     */
    poll_interval_when_healthy: duration().default(60_000),
    /** How long a webhook may wait for the pipeline before it is answered 503 (authentik retries it). */
    pipeline_timeout: duration({ min: 100 }).default(20_000),
  })
  .superRefine((v, ctx) => {
    if (v.provision) {
      if (v.public_url === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['public_url'],
          message: 'required with provision: true (the URL authentik uses to reach this listener)',
        });
      }
      if (v.authentik.token === undefined && v.authentik.token_file === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['authentik', 'token'],
          message: 'provision: true needs an API token with write access (token or token_file)',
        });
      }
    }
  });

export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it (secret and authentik.endpoint are required). */
export function createDefaultConfig(): Record<string, unknown> {
  return {
    endpoint: '127.0.0.1:9443',
    path: '/authentik/webhook',
    secret_header: DEFAULT_SECRET_HEADER,
    max_body_size: 1048576,
    rate_limit: { requests_per_second: 500, burst: 1000 },
    provision: false,
    name: 'authentik-collector',
    health_window: '5m',
    poll_interval_when_healthy: '1m',
    pipeline_timeout: '20s',
  };
}

/** Option reference: the one source of `components`, the README option tables and the JSON Schema (`npm run docs`). */
documentOptions(configSchema, [
  {
    names: ['endpoint'],
    type: '`host:port`',
    default: '`127.0.0.1:9443`',
    description:
      'Listen address. authentik\'s **worker** must reach it (see "Network"). `0.0.0.0:9443` listens on every interface.',
  },
  {
    names: ['path'],
    type: 'string',
    default: '`/authentik/webhook`',
    description: 'Path authentik POSTs to; other paths get 404.',
  },
  {
    names: ['secret'],
    type: 'secret string',
    default: '(required)',
    description:
      'Shared secret authentik sends in `secret_header` (at least 16 characters). Compared in constant time (SHA-256 digests with `timingSafeEqual`); never logged.',
  },
  {
    names: ['secret_header'],
    type: 'header name',
    default: '`X-Authentik-Collector-Secret`',
    description: 'Header carrying the secret (set by the header mapping).',
  },
  {
    names: ['tls.cert_file', 'tls.key_file'],
    type: 'path',
    default: '\u2014',
    description:
      'Serve HTTPS with this certificate and key (PEM). Without `tls` the listener speaks plain HTTP (a warning is logged when it listens beyond loopback).',
  },
  {
    names: ['max_body_size'],
    type: 'bytes',
    default: '`1048576` (1 MiB)',
    description:
      'Largest request body; larger ones get 413 without being read. An event is typically 1\u20135 kB.',
  },
  {
    names: ['rate_limit.requests_per_second'],
    type: 'number \u2265 0',
    default: '`500`',
    description:
      'Sustained requests per second (token bucket); above it 429 with `Retry-After: 1`. `0` disables. Counted before authentication, so a flood of bad requests cannot starve the check.',
  },
  {
    names: ['rate_limit.burst'],
    type: 'int > 0',
    default: '`1000`',
    description:
      "Requests accepted in a burst above the sustained rate (authentik's worker sends bursts after a backlog).",
  },
  {
    names: ['authentik.endpoint'],
    type: 'URL',
    default: '(required)',
    description:
      'Base URL of authentik, as the `authentik` receiver\'s `endpoint`: used to provision, and to find the poller of the same instance (see "Poll interval").',
  },
  {
    names: ['authentik.token', 'authentik.token_file'],
    type: 'secret / path',
    default: '\u2014',
    description:
      "API token for provisioning (needed with `provision: true`). It must be allowed to manage users, groups, property mappings, transports, policies, bindings and notification rules (e.g. a superuser's token); the poller's read-only token is not enough.",
  },
  {
    names: ['authentik.tls.ca_file', 'authentik.tls.cert_file', 'authentik.tls.key_file'],
    type: 'path',
    default: '—',
    description:
      "CA bundle and client certificate for the provisioning calls (as the `authentik` receiver's `tls`).",
  },
  {
    names: ['authentik.tls.insecure_skip_verify'],
    type: 'bool',
    default: '`false`',
    description: "Skip verification of authentik's certificate (tests only).",
  },
  {
    names: ['authentik.tls.server_name'],
    type: 'string',
    default: '—',
    description: "Name expected in authentik's certificate (SNI), when it differs from the endpoint host.",
  },
  {
    names: ['authentik.timeout'],
    type: 'duration',
    default: '`30s`',
    description: 'Deadline of one provisioning request.',
  },
  {
    names: ['provision'],
    type: 'bool',
    default: '`false`',
    description:
      '`true`: create or update the objects in authentik at start (retried with backoff until it succeeds; polling goes on meanwhile) and log what was done. `false`: log the objects to create (the secret shown as a placeholder).',
  },
  {
    names: ['public_url'],
    type: 'URL',
    default: '\u2014',
    description:
      "The URL authentik's worker POSTs to (how it reaches this listener: a DNS name, a load balancer, a Kubernetes service). Required with `provision: true`.",
  },
  {
    names: ['name'],
    type: 'string',
    default: '`authentik-collector`',
    description: "Prefix of the provisioned objects' names; one set per collector deployment.",
  },
  {
    names: ['health_window'],
    type: 'duration',
    default: '`5m`',
    description: 'Push counts as healthy while a webhook was accepted within this window.',
  },
  {
    names: ['poll_interval_when_healthy'],
    type: 'duration',
    default: '`1m`',
    description:
      'While push is healthy, the `authentik` receiver polling the same `authentik.endpoint` in this process polls at this interval (never faster than its own `events.interval`); `0` leaves it alone. When push stops being healthy the poller returns to its interval after its current wait.',
  },
  {
    names: ['pipeline_timeout'],
    type: 'duration',
    default: '`20s`',
    description:
      'Longest wait for the pipeline before a webhook is answered 503 (authentik times out at 30 s).',
  },
]);
