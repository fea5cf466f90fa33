/**
 * Configuration of the `authentik_webhook` receiver: an HTTP(S) listener for authentik's notification
 * webhooks (push), plus optional provisioning of the authentik objects that send them. See README.md.
 */
import * as z from 'zod';
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
