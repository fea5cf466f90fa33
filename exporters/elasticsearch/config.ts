/**
 * Config of the `elasticsearch` exporter. Option names are a contract (see README.md).
 */
import * as z from 'zod';
import {
  byteSize,
  duration,
  positiveInt,
  retryDefaults,
  retrySchema,
  secret,
  tlsSchema,
} from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

const MIB = 1024 * 1024;

const endpointUrl = z
  .string({ error: 'expected a URL such as "https://localhost:9200"' })
  .superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a URL (expected e.g. "https://localhost:9200")`,
      });
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `scheme must be http or https (got "${u.protocol}")` });
    }
    if (u.username !== '' || u.password !== '') {
      // Endpoints appear in logs and metrics; credentials belong in `auth`, whose values are secrets.
      ctx.addIssue({ code: 'custom', message: 'must not contain credentials; put them in `auth`' });
    }
    if (u.search !== '' || u.hash !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not contain a query string or fragment' });
    }
  });

/**
 * Credentials. Exactly one method: `api_key`, `username` + `password`, or `bearer_token`. Each secret may
 * instead be read from a file (`*_file`, relative to the config directory), e.g. a mounted Kubernetes secret.
 */
export const authSchema = z
  .strictObject({
    /** Encoded API key (base64 of `id:key`, as Kibana shows it) or the raw `id:key` pair. */
    api_key: secret().optional(),
    api_key_file: z.string().min(1).optional(),
    username: z.string().min(1).optional(),
    password: secret().optional(),
    password_file: z.string().min(1).optional(),
    bearer_token: secret().optional(),
    bearer_token_file: z.string().min(1).optional(),
  })
  .superRefine((v, ctx) => {
    const pairs: [keyof typeof v, keyof typeof v][] = [
      ['api_key', 'api_key_file'],
      ['password', 'password_file'],
      ['bearer_token', 'bearer_token_file'],
    ];
    for (const [a, b] of pairs) {
      if (v[a] !== undefined && v[b] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [b], message: `set either ${a} or ${b}, not both` });
      }
    }
    const apiKey = v.api_key !== undefined || v.api_key_file !== undefined;
    const password = v.password !== undefined || v.password_file !== undefined;
    const basic = v.username !== undefined || password;
    const bearer = v.bearer_token !== undefined || v.bearer_token_file !== undefined;
    const methods = [apiKey, basic, bearer].filter(Boolean).length;
    if (methods > 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'choose one authentication method: api_key, username/password, or bearer_token',
      });
    }
    if (basic && (v.username === undefined || !password)) {
      ctx.addIssue({
        code: 'custom',
        path: [v.username === undefined ? 'username' : 'password'],
        message: 'username and password (or password_file) must be set together',
      });
    }
  });
export type AuthConfig = z.output<typeof authSchema>;

export const configSchema = z
  .strictObject({
    /** Base URLs of the cluster's HTTP nodes; requests go round-robin, failing over on connection errors. */
    endpoints: z.array(endpointUrl).min(1, { error: 'list at least one endpoint URL' }),
    auth: authSchema.optional(),
    tls: tlsSchema.optional(),
    /** Request body compression. */
    compression: z.enum(['gzip', 'none']).default('gzip'),
    /** Deadline of one HTTP request (connect, send, response). */
    timeout: duration({ min: 1 }).default(30_000),
    /** Limits of one `_bulk` request; a consumed batch is split into several requests. */
    flush: z
      .strictObject({
        max_documents: positiveInt().default(1000),
        /** Uncompressed NDJSON bytes; keep below the server's `http.max_content_length` (100MB). */
        max_bytes: byteSize()
          .refine((n) => n >= 1024, { error: 'must be at least 1KiB' })
          .default(5 * MIB),
      })
      .prefault({}),
    /** `_bulk` requests sent concurrently for one consumed batch. */
    max_in_flight: positiveInt().default(2),
    /** Probe interval of an endpoint that refused a connection; requests skip it until it answers. */
    endpoint_cooldown: duration({ min: 1 }).default(30_000),
    retry: retrySchema.prefault({}),
    /** Documents Elasticsearch rejects for good (mapping/parsing errors) are appended here as NDJSON. */
    dead_letter: z.strictObject({ path: z.string().min(1) }).optional(),
    setup: z
      .strictObject({
        /** Install component and index templates for the authentik data streams on start. */
        templates: z.boolean().default(true),
        /** Priority of the index templates (built-in `logs` is 100, Fleet integrations use 200). */
        template_priority: z.number().int().min(0).default(250),
      })
      .prefault({}),
    /**
     * Static target (index, alias or data stream name): every document goes there, ignoring the
     * `data_stream.*` attributes. Unset (default) = data stream routing.
     */
    index: z
      .string()
      .min(1)
      .refine((v) => v === v.toLowerCase() && !/[\\/*?"<>| ,#:]/.test(v) && !/^[-_+]/.test(v), {
        error: 'must be a valid index name (lowercase, none of \\ / * ? " < > | space , # :)',
      })
      .optional(),
    /**
     * Look up the `_id`s of documents that may have been delivered already and skip those present, so a
     * rollover between two deliveries does not duplicate them (`create` + 409 only covers the write index).
     * `replayed` (or `true`): records read by an earlier run (replayed from the persistent queue); `all`:
     * every document; `none` (or `false`, default): no look-up. See replay.ts.
     */
    replay_check: z
      .union([z.boolean(), z.enum(['none', 'replayed', 'all'])], {
        error: 'expected none, replayed, all, true or false',
      })
      .transform((v): 'none' | 'replayed' | 'all' => (v === true ? 'replayed' : v === false ? 'none' : v))
      .default('none'),
    /** Defaults for records without `data_stream.*` attributes. */
    data_stream: z
      .strictObject({
        dataset: z.string().min(1).default('authentik.event'),
        namespace: z.string().min(1).default('default'),
      })
      .prefault({}),
  })
  .superRefine((v, ctx) => {
    const seen = new Set<string>();
    v.endpoints.forEach((e, i) => {
      const norm = e.replace(/\/+$/, '');
      if (seen.has(norm)) ctx.addIssue({ code: 'custom', path: ['endpoints', i], message: 'listed twice' });
      seen.add(norm);
    });
  });

export type Config = z.output<typeof configSchema>;

/** Default config as a user would write it (endpoints has no real default: this is the usual local one). */
export function createDefaultConfig(): Record<string, unknown> {
  return {
    endpoints: ['http://localhost:9200'],
    compression: 'gzip',
    timeout: '30s',
    flush: { max_documents: 1000, max_bytes: '5MiB' },
    max_in_flight: 2,
    endpoint_cooldown: '30s',
    retry: { ...retryDefaults },
    setup: { templates: true, template_priority: 250 },
    replay_check: 'none',
    data_stream: { dataset: 'authentik.event', namespace: 'default' },
  };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and exporters/elasticsearch/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['endpoints'],
    type: 'list of URLs',
    default: '— (required)',
    description:
      "Base URLs of the cluster's HTTP nodes (`http`/`https`, a path prefix is kept, no credentials, no query). Requests go round-robin; an endpoint that refuses a connection is skipped for `endpoint_cooldown` and the request fails over to the next one.",
  },
  {
    names: ['auth.api_key'],
    type: 'secret',
    default: '—',
    description:
      'API key: the encoded form Kibana shows (base64 of `id:key`) or the raw `id:key` pair (encoded for you). Sent as `Authorization: ApiKey …`.',
  },
  {
    names: ['auth.api_key_file'],
    type: 'path',
    default: '—',
    description:
      'Read the API key from this file (relative to the config file; trailing whitespace trimmed).',
  },
  {
    names: ['auth.username', 'auth.password'],
    type: 'string / secret',
    default: '—',
    description: 'Basic authentication; set together.',
  },
  {
    names: ['auth.password_file'],
    type: 'path',
    default: '—',
    description: 'Read the password from this file.',
  },
  {
    names: ['auth.bearer_token'],
    type: 'secret',
    default: '—',
    description: '`Authorization: Bearer …` (e.g. an OAuth2 / service token).',
  },
  {
    names: ['auth.bearer_token_file'],
    type: 'path',
    default: '—',
    description: 'Read the bearer token from this file.',
  },
  {
    names: ['tls.ca_file'],
    type: 'path',
    default: 'system CAs',
    description: 'CA bundle to verify the server with.',
  },
  {
    names: ['tls.cert_file', 'tls.key_file'],
    type: 'path',
    default: '—',
    description: 'Client certificate and key (set together).',
  },
  {
    names: ['tls.insecure_skip_verify'],
    type: 'bool',
    default: '`false`',
    description: 'Do not verify the server certificate (logged as a warning).',
  },
  { names: ['tls.server_name'], type: 'string', default: 'from URL', description: 'SNI / name to verify.' },
  {
    names: ['compression'],
    type: '`gzip` \\| `none`',
    default: '`gzip`',
    description: 'Request body compression (gzip level 1: fast, ~7× smaller NDJSON).',
  },
  {
    names: ['timeout'],
    type: 'duration',
    default: '`30s`',
    description:
      'Deadline of one HTTP request (connect, send, full response). A slower request is abandoned and retried.',
  },
  {
    names: ['flush.max_documents'],
    type: 'int',
    default: '`1000`',
    description: 'Documents per `_bulk` request. A consumed batch is split into several requests.',
  },
  {
    names: ['flush.max_bytes'],
    type: 'byte size',
    default: '`5MiB`',
    description:
      "Uncompressed NDJSON bytes per `_bulk` request (keep below the server's `http.max_content_length`, 100MB by default). A single larger document travels alone.",
  },
  {
    names: ['max_in_flight'],
    type: 'int',
    default: '`2`',
    description: '`_bulk` requests sent concurrently for one consumed batch.',
  },
  {
    names: ['endpoint_cooldown'],
    type: 'duration',
    default: '`30s`',
    description:
      'How long an endpoint that refused a connection is skipped (when every endpoint is down they are all tried anyway).',
  },
  {
    names: ['retry.enabled'],
    type: 'bool',
    default: '`true`',
    description: 'Retry retryable failures (below).',
  },
  { names: ['retry.initial_interval'], type: 'duration', default: '`1s`', description: 'First backoff.' },
  { names: ['retry.max_interval'], type: 'duration', default: '`30s`', description: 'Backoff cap.' },
  {
    names: ['retry.max_elapsed_time'],
    type: 'duration',
    default: '`0`',
    description:
      'Give up after this long (per request group) and reject the batch with a retryable error; `0` = retry until delivered or shut down.',
  },
  { names: ['retry.multiplier'], type: 'number', default: '`1.5`', description: 'Backoff growth.' },
  { names: ['retry.randomization_factor'], type: 'number', default: '`0.5`', description: 'Jitter (±50%).' },
  {
    names: ['dead_letter.path'],
    type: 'path',
    default: '—',
    description:
      'Append every permanently rejected document here (NDJSON, format below). Absent: rejections are only counted and logged.',
  },
  {
    names: ['setup.templates'],
    type: 'bool',
    default: '`true`',
    description: 'Install the component and index templates on start (below).',
  },
  {
    names: ['setup.template_priority'],
    type: 'int',
    default: '`250`',
    description:
      "Priority of the index templates: above the built-in `logs` template (100) and Fleet's integration templates (200).",
  },
  {
    names: ['index'],
    type: 'string',
    default: '—',
    description:
      'Static target (index, alias or data stream name) for every document; disables data stream routing and the `data_stream.*` fields.',
  },
  {
    names: ['data_stream.dataset'],
    type: 'string',
    default: '`authentik.event`',
    description: 'Dataset for records without a `data_stream.dataset` attribute.',
  },
  {
    names: ['data_stream.namespace'],
    type: 'string',
    default: '`default`',
    description: 'Namespace for records without a `data_stream.namespace` attribute.',
  },
  {
    names: ['replay_check'],
    type: '`none` \\| `replayed` \\| `all` (or `false` / `true` = `replayed`)',
    default: '`none`',
    description:
      'Before sending documents that may have been delivered already, look their `_id`s up in the target and skip those present, so a rollover between two deliveries does not index them twice (`create` + 409 covers only the write index). `replayed`: records read by an earlier run (replayed from the persistent queue after a restart); `all`: every document (one `_search` per target and request). See [Replays across a rollover](#replays-across-a-rollover-replay_check). Needs the `read` privilege on the targets.',
  },
]);
