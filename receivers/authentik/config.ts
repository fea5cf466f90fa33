/**
 * Configuration of the `authentik` receiver: reads authentik's REST API (events, users, groups) with
 * an API token. The option names are a contract (issue 4); see README.md for the table.
 */
import * as z from 'zod';
import {
  duration,
  formatDuration,
  parseDuration,
  positiveInt,
  retryDefaults,
  retrySchema,
  secret,
  tlsSchema,
} from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

/** Where the first run starts: the whole retained history, a look-back window, or "from now". */
export type Backfill = { kind: 'all' } | { kind: 'none' } | { kind: 'duration'; ms: number };

const backfill = z
  .string({ error: 'expected "all", "none" or a duration such as "720h"' })
  .transform((v, ctx): Backfill => {
    const s = v.trim();
    if (s === 'all') return { kind: 'all' };
    if (s === 'none') return { kind: 'none' };
    const ms = parseDuration(s);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `"${v}" is not a backfill mode: use "all", "none" or a positive duration such as "168h"`,
      });
      return z.NEVER;
    }
    return { kind: 'duration', ms };
  });

/** Largest page size we ever ask for. Servers 2025.12+ clamp to 100 anyway; older ones honour any size. */
export const MAX_PAGE_SIZE = 1000;

const pageSize = positiveInt('a page size between 1 and 1000').max(MAX_PAGE_SIZE, {
  error: 'page_size must be at most 1000 (authentik 2025.12+ clamps to 100 by default)',
});

const eventsSchema = z.strictObject({
  /** Collect audit events. */
  enabled: z.boolean().default(true),
  /** Time between incremental polls. */
  interval: duration({ min: 1000 }).default(10_000),
  /** Requested page size (the server may clamp it; the receiver follows what the server returns). */
  page_size: pageSize
    .min(10, { error: 'events.page_size must be at least 10 (the receiver reads overlapping pages)' })
    .default(100),
  /** First start without a checkpoint: `all` (whole retained history), a duration (that far back) or `none`. */
  backfill: backfill.default({ kind: 'all' }),
  /**
   * Re-scan window below the newest delivered `created`, to catch events that become visible late
   * (commit lag) or share a timestamp. Costs: every poll reads the events of this window again.
   */
  overlap: duration({ min: 1000, max: 24 * 3_600_000 }).default(60_000),
  /** Use the enterprise QL `search=created >= "…"` filter when the server honours it (verified client-side). */
  use_ql: z.boolean().default(true),
  /**
   * Longest time between verifications of the events read since the previous one (plus `overlap`):
   * counted through one small request, re-read only when the count disagrees. Polls verify earlier
   * whenever the list's count shows a change other than new events.
   */
  verify_interval: duration({ min: 1000, max: 24 * 3_600_000 }).default(300_000),
  /**
   * Re-read those events in full at every `verify_interval` instead of counting them: also catches
   * late commits exactly cancelled by deletions of recent events, at the cost of reading every event twice.
   */
  verify_reread: z.boolean().default(false),
  /**
   * An events checkpoint that exists but cannot be read (damaged file, invalid content): `fail` stops
   * the collector (exit 1) naming the file; `backfill` logs an error and starts over as on a first
   * start (as configured by `backfill`).
   */
  on_corrupt_checkpoint: z.enum(['fail', 'backfill']).default('fail'),
});

const usersSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Time between full listings. */
  interval: duration({ min: 1000 }).default(3_600_000),
  page_size: pageSize.default(100),
  /**
   * Between full listings, how often to read only the users changed since the last read
   * (`last_updated__gt`, authentik 2025.8+). 0 disables it.
   */
  changes_interval: duration().default(300_000),
});

const groupsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Time between full listings (groups have no change filter). */
  interval: duration({ min: 1000 }).default(3_600_000),
  page_size: pageSize.default(100),
});

function endpointUrl() {
  return z
    .string({
      error: (iss) => (iss.input === undefined ? 'required: base URL of authentik' : 'expected a string'),
    })
    .min(1, { error: 'must not be empty' })
    .transform((v, ctx) => {
      let u: URL;
      try {
        u = new URL(v.trim());
      } catch {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a URL (e.g. https://authentik.example.com)` });
        return z.NEVER;
      }
      if (u.protocol !== 'https:' && u.protocol !== 'http:') {
        ctx.addIssue({ code: 'custom', message: `must be an http(s) URL, got ${u.protocol}` });
        return z.NEVER;
      }
      if (u.username !== '' || u.password !== '') {
        ctx.addIssue({ code: 'custom', message: 'must not contain credentials; use token or token_file' });
        return z.NEVER;
      }
      if (u.search !== '' || u.hash !== '') {
        ctx.addIssue({ code: 'custom', message: 'must not contain a query or fragment' });
        return z.NEVER;
      }
      // Base URL without trailing slash; a sub-path (authentik behind /auth/) is kept.
      return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    });
}

/** Schema of `receivers.authentik[/name]`. */
export const configSchema = z
  .strictObject({
    /** Base URL of authentik; `/api/v3/...` is appended. A trailing slash is tolerated. */
    endpoint: endpointUrl(),
    /** API token (intent "API Token"). Exactly one of token / token_file. */
    token: secret().optional(),
    /** File holding the API token (read when the receiver is created and again after a 403). */
    token_file: z.string().min(1, { error: 'must not be empty' }).optional(),
    /** Id of a storage extension keeping the checkpoints; without it state lives in memory only. */
    storage: z.string().min(1, { error: 'must not be empty' }).optional(),
    /** Identity of the checkpoints (default `authentik:` + endpoint), so renaming the receiver keeps them. */
    storage_key: z.string().min(1).optional(),
    events: eventsSchema.prefault({}),
    users: usersSchema.prefault({}),
    groups: groupsSchema.prefault({}),
    /** Per-request deadline (connect + headers + body). */
    timeout: duration({ min: 1 }).default(30_000),
    /** Upper bound of concurrent requests and pooled connections to authentik. */
    max_concurrent_requests: positiveInt().max(64, { error: 'must be at most 64' }).default(4),
    tls: tlsSchema.prefault({}),
    /** HTTP(S) proxy, `http://[user:pass@]host:port`. */
    proxy_url: z.string().min(1).optional(),
    /** Largest accepted response body (after decompression). */
    max_response_size: z
      .number()
      .int()
      .positive()
      .default(64 * 1024 * 1024),
    /** Retry of failed API requests (5xx, 429, resets, timeouts, bad bodies). 0 max_elapsed_time = forever. */
    api_retry: retrySchema.prefault({}),
    /** Retry of batches the pipeline refused with a retryable error. 0 max_elapsed_time = forever. */
    retry_on_failure: retrySchema.prefault({}),
  })
  .superRefine((v, ctx) => {
    if ((v.token === undefined) === (v.token_file === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: v.token === undefined ? [] : ['token_file'],
        message:
          v.token === undefined
            ? 'one of token or token_file is required (an authentik API token)'
            : 'token and token_file are mutually exclusive',
      });
    }
    if (v.proxy_url !== undefined) {
      let ok: boolean;
      try {
        const p = new URL(v.proxy_url);
        ok = p.protocol === 'http:' || p.protocol === 'https:';
      } catch {
        ok = false;
      }
      if (!ok) {
        ctx.addIssue({
          code: 'custom',
          path: ['proxy_url'],
          message: 'must be an http(s) URL (http://host:port)',
        });
      }
    }
    if (v.users.changes_interval > 0 && v.users.changes_interval >= v.users.interval) {
      ctx.addIssue({
        code: 'custom',
        path: ['users', 'changes_interval'],
        message: `must be shorter than users.interval (${formatDuration(v.users.interval)}) or 0 to disable`,
      });
    }
    if (!v.events.enabled && !v.users.enabled && !v.groups.enabled) {
      ctx.addIssue({
        code: 'custom',
        message: 'events, users and groups are all disabled: nothing to collect',
      });
    }
    if (v.storage_key !== undefined && v.storage === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['storage_key'],
        message: 'only meaningful together with storage',
      });
    }
  });

/** Parsed configuration (durations in milliseconds). */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it (endpoint and token are required). */
export function createDefaultConfig(): Record<string, unknown> {
  return {
    events: {
      enabled: true,
      interval: '10s',
      page_size: 100,
      backfill: 'all',
      overlap: '1m',
      use_ql: true,
      verify_interval: '5m',
      verify_reread: false,
      on_corrupt_checkpoint: 'fail',
    },
    users: { enabled: true, interval: '1h', page_size: 100, changes_interval: '5m' },
    groups: { enabled: true, interval: '1h', page_size: 100 },
    timeout: '30s',
    max_concurrent_requests: 4,
    tls: { insecure_skip_verify: false },
    max_response_size: 64 * 1024 * 1024,
    api_retry: { ...retryDefaults },
    retry_on_failure: { ...retryDefaults },
  };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and receivers/authentik/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['endpoint'],
    type: 'URL',
    default: '(required)',
    description:
      'Base URL of authentik (`https://host[:port][/sub-path]`); `/api/v3/...` is appended. A trailing slash is tolerated. Credentials, query and fragment are rejected.',
  },
  {
    names: ['token'],
    type: 'secret string',
    default: '—',
    description:
      'An authentik **API token** (intent "API Token"). Exactly one of `token` / `token_file`. Never logged (redacted everywhere).',
  },
  {
    names: ['token_file'],
    type: 'path',
    default: '—',
    description:
      "File holding the token (trimmed), read when the receiver is created and re-read after a 403 (so a rotated token is picked up without a restart). Relative to the config file's directory.",
  },
  {
    names: ['storage'],
    type: 'string',
    default: '(none)',
    description:
      'Id of a storage extension (`file_storage[/name]`) keeping the checkpoints. Without it state lives in memory only (a warning is logged): a restart starts over as configured by `events.backfill`.',
  },
  {
    names: ['storage_key'],
    type: 'string',
    default: '`authentik:<endpoint>`',
    description:
      'Identity of the checkpoints in the storage extension. The default follows the endpoint (never the token), so renaming the receiver keeps them. Only valid with `storage`.',
  },
  {
    names: ['events.enabled'],
    type: 'bool',
    default: '`true`',
    description: 'Collect audit events (`/api/v3/events/events/`).',
  },
  {
    names: ['events.interval'],
    type: 'duration ≥ 1s',
    default: '`10s`',
    description: 'Time between incremental polls (from the start of one poll to the start of the next).',
  },
  {
    names: ['events.page_size'],
    type: 'int 10..1000',
    default: '`100`',
    description:
      "Typical page size. The scan asks for slices of `page_size`/2 to 2\u00d7`page_size` events, at most the server's clamp (2025.12+: 100 by default). A clamp is accepted only on repeated evidence (two responses showing the same served size, exact from `start_index` on pages after the first) and kept in the checkpoint; a server serving more again lifts it. About 1.2 requests per `page_size` events (measured: 109 requests for 130 pages at 10 with a 1,000-event tie block; 16 for 13 pages at 100).",
  },
  {
    names: ['events.backfill'],
    type: '`all` \\| duration \\| `none`',
    default: '`all`',
    description:
      'First start (no checkpoint): `all` reads the whole retained history, a duration (e.g. `720h`) reads that far back, `none` starts from now. Ignored once a checkpoint exists.',
  },
  {
    names: ['events.overlap'],
    type: 'duration 1s..24h',
    default: '`1m`',
    description:
      'How long after its `created` an event may become visible (commit lag) and still be collected: the verified region reaches this far below the newest delivered `created`. See "Choosing `overlap`".',
  },
  {
    names: ['events.use_ql'],
    type: 'bool',
    default: '`true`',
    description:
      'Use the QL time filter (`search=created >= "\u2026"`) when the server honours it. 2025.8 to 2026.4 (enterprise QL): probed only when `/api/v3/root/config/` lists `is_enterprise` (the enterprise app is installed; real 2023.10.7 and 2025.12.4 list it without a licence) **and** `/api/v3/enterprise/license/summary/` says `valid`, `expiry_soon` or `limit_exceeded_*`. 2026.5+ (AKQL, open source per authentik\'s docs): probed without consulting the licence. Verified on every response.',
  },
  {
    names: ['events.verify_interval'],
    type: 'duration 1s..24h',
    default: '`5m`',
    description:
      'Longest time between two verifications of the events read since the previous one (plus `overlap`): one request of 10–20 events counts them, a re-read happens only when the count disagrees. Polls also verify whenever `pagination.count` changed by anything but the new events. See "How events are read".',
  },
  {
    names: ['events.verify_reread'],
    type: 'bool',
    default: '`false`',
    description:
      'Re-read those events in full at every `verify_interval` instead of counting them. Also catches late commits exactly cancelled by deletions of *recent* events (the residual risk below), at the cost of reading every event twice.',
  },
  {
    names: ['events.on_corrupt_checkpoint'],
    type: '`fail` \\| `backfill`',
    default: '`fail`',
    description:
      "An events checkpoint that exists but cannot be read (a `file_storage` value whose checksum fails, invalid JSON, content that is not a checkpoint). `fail`: the receiver's start fails, the collector exits 1 with `events checkpoint file <path> is damaged (<why>)` and what to do (restore it, delete it, or set this option); nothing is read. `backfill`: an error line names the file and the receiver starts as on a first start (`events.backfill` decides how much is read again).",
  },
  {
    names: ['users.enabled'],
    type: 'bool',
    default: '`true`',
    description: 'Collect users (`/api/v3/core/users/`).',
  },
  {
    names: ['users.interval'],
    type: 'duration ≥ 1s',
    default: '`1h`',
    description: 'Time between full listings.',
  },
  { names: ['users.page_size'], type: 'int 1..1000', default: '`100`', description: 'Requested page size.' },
  {
    names: ['users.changes_interval'],
    type: 'duration',
    default: '`5m`',
    description:
      'Between full listings, read only users changed since the last read (`last_updated__gt`, authentik 2025.8+). `0` disables. Must be shorter than `users.interval`.',
  },
  {
    names: ['groups.enabled'],
    type: 'bool',
    default: '`true`',
    description: 'Collect groups (`/api/v3/core/groups/`).',
  },
  {
    names: ['groups.interval'],
    type: 'duration ≥ 1s',
    default: '`1h`',
    description: 'Time between full listings (groups have no change filter).',
  },
  { names: ['groups.page_size'], type: 'int 1..1000', default: '`100`', description: 'Requested page size.' },
  {
    names: ['timeout'],
    type: 'duration',
    default: '`30s`',
    description: 'Deadline of one request (connect, headers and body).',
  },
  {
    names: ['max_concurrent_requests'],
    type: 'int 1..64',
    default: '`4`',
    description:
      'Upper bound of concurrent requests **and** pooled keep-alive connections, shared by all datasets. The backfill keeps this many requests on the wire and as many more planned behind them.',
  },
  {
    names: ['tls.ca_file'],
    type: 'path',
    default: '—',
    description: "CA bundle (PEM) to verify authentik's certificate.",
  },
  {
    names: ['tls.cert_file', 'tls.key_file'],
    type: 'path',
    default: '—',
    description: 'Client certificate and key (mutual TLS); set together.',
  },
  {
    names: ['tls.insecure_skip_verify'],
    type: 'bool',
    default: '`false`',
    description: 'Do not verify the server certificate (testing only).',
  },
  {
    names: ['tls.server_name'],
    type: 'string',
    default: '—',
    description: "Name to verify the certificate against (SNI), when it differs from the endpoint's host.",
  },
  {
    names: ['proxy_url'],
    type: 'URL',
    default: '—',
    description:
      'HTTP(S) proxy, `http://[user:pass@]host:port` (undici `ProxyAgent`: CONNECT for https targets). Credentials are masked in logs.',
  },
  {
    names: ['max_response_size'],
    type: 'bytes',
    default: '`67108864` (64 MiB)',
    description:
      'Largest accepted response body after decompression; larger answers are a fault (`too_large`).',
  },
  {
    names: ['api_retry.enabled'],
    type: 'bool',
    default: '`true`',
    description:
      'Retry failed API requests (5xx, 429, 408, resets, timeouts, truncated or non-JSON bodies, TLS/connect errors).',
  },
  {
    names: ['api_retry.initial_interval'],
    type: 'duration',
    default: '`1s`',
    description:
      'First backoff wait. A `Retry-After` header (429/503) is honoured when longer (capped at 5 min).',
  },
  {
    names: ['api_retry.max_interval'],
    type: 'duration',
    default: '`30s`',
    description: 'Longest backoff wait; also the retry period after a 403 (which needs a human).',
  },
  {
    names: ['api_retry.max_elapsed_time'],
    type: 'duration',
    default: '`0s`',
    description:
      '`0`: retry forever (nothing is skipped). Otherwise the poll fails after this long and is retried at the next interval.',
  },
  {
    names: ['api_retry.multiplier'],
    type: 'number ≥ 1',
    default: '`1.5`',
    description: 'Backoff growth per attempt.',
  },
  { names: ['api_retry.randomization_factor'], type: '0..1', default: '`0.5`', description: 'Jitter.' },
  {
    names: ['retry_on_failure.enabled'],
    type: 'bool',
    default: '`true`',
    description:
      'Offer a batch the pipeline refused with a retryable error again. When `false` such a batch is dropped and counted.',
  },
  {
    names: ['retry_on_failure.initial_interval'],
    type: 'duration',
    default: '`1s`',
    description: "First backoff wait (a consumer's `retryAfterMs` is honoured when longer).",
  },
  {
    names: ['retry_on_failure.max_interval'],
    type: 'duration',
    default: '`30s`',
    description: 'Longest backoff wait.',
  },
  {
    names: ['retry_on_failure.max_elapsed_time'],
    type: 'duration',
    default: '`0s`',
    description:
      '`0`: retry forever (the receiver stalls rather than loses data). Otherwise the batch is dropped and counted after this long.',
  },
  {
    names: ['retry_on_failure.multiplier'],
    type: 'number ≥ 1',
    default: '`1.5`',
    description: 'Backoff growth per attempt.',
  },
  {
    names: ['retry_on_failure.randomization_factor'],
    type: '0..1',
    default: '`0.5`',
    description: 'Jitter.',
  },
]);
