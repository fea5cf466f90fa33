import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../../test/emulator/index.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopSettings, SinkConsumer } from '../../test/kit/index.ts';
import { Secret } from '../../runtime/config/types.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';

const em = await startEmulator({ events: 300, users: 5, groups: 3 });
after(() => em.close());

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: () => ({ endpoint: em.url, token: em.token }),
  emitsData: true,
  emitTimeoutMs: 10_000,
  expectedFixtureConfig: {
    endpoint: 'https://authentik.example.com/auth',
    token_file: 'secrets/authentik-token',
    storage: 'file_storage/state',
    storage_key: 'authentik-prod',
    events: {
      enabled: true,
      interval: 30_000,
      page_size: 50,
      backfill: { kind: 'duration', ms: 720 * 3_600_000 },
      overlap: 300_000,
      use_ql: false,
      verify_interval: 600_000,
      verify_reread: true,
      on_corrupt_checkpoint: 'backfill',
    },
    users: { enabled: true, interval: 6 * 3_600_000, page_size: 200, changes_interval: 600_000 },
    groups: { enabled: false, interval: 12 * 3_600_000, page_size: 20 },
    timeout: 10_000,
    max_concurrent_requests: 2,
    tls: { ca_file: 'certs/ca.pem', insecure_skip_verify: false, server_name: 'authentik.internal' },
    proxy_url: 'http://proxy.example.com:3128',
    max_response_size: 1_048_576,
    api_retry: {
      enabled: true,
      initial_interval: 500,
      max_interval: 60_000,
      max_elapsed_time: 0,
      multiplier: 1.5,
      randomization_factor: 0.5,
    },
    retry_on_failure: {
      enabled: true,
      initial_interval: 2000,
      max_interval: 120_000,
      max_elapsed_time: 3_600_000,
      multiplier: 1.5,
      randomization_factor: 0.5,
    },
  },
});

function problems(raw: unknown): string[] {
  const r = configSchema.safeParse(raw);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

const base = { endpoint: 'https://auth.example.com', token: 'x'.repeat(40) };

describe('authentik config rules', () => {
  test('defaults', () => {
    const c = configSchema.parse(base);
    assert.equal(c.endpoint, 'https://auth.example.com');
    assert.ok(c.token instanceof Secret);
    assert.equal(String(c.token), '[REDACTED]');
    assert.deepEqual(c.events, {
      enabled: true,
      interval: 10_000,
      page_size: 100,
      backfill: { kind: 'all' },
      overlap: 60_000,
      use_ql: true,
      verify_interval: 300_000,
      verify_reread: false,
      on_corrupt_checkpoint: 'fail',
    });
    assert.equal(c.users.interval, 3_600_000);
    assert.equal(c.groups.page_size, 100);
    assert.equal(c.timeout, 30_000);
    assert.equal(c.max_concurrent_requests, 4);
  });

  test('endpoint: trailing slashes are tolerated, sub-paths kept', () => {
    assert.equal(
      configSchema.parse({ ...base, endpoint: 'https://a.example.com/' }).endpoint,
      'https://a.example.com',
    );
    assert.equal(
      configSchema.parse({ ...base, endpoint: 'http://a:9000/auth//' }).endpoint,
      'http://a:9000/auth',
    );
  });

  test('endpoint must be an http(s) URL without credentials or query', () => {
    assert.match(problems({ ...base, endpoint: 'authentik.example.com' }).join(), /not a URL/);
    assert.match(problems({ ...base, endpoint: 'ftp://a.example.com' }).join(), /http\(s\)/);
    assert.match(problems({ ...base, endpoint: 'https://u:p@a.example.com' }).join(), /credentials/);
    assert.match(problems({ ...base, endpoint: 'https://a.example.com/?x=1' }).join(), /query/);
    assert.match(problems({ token: 't' }).join(), /endpoint: required/);
  });

  test('exactly one of token and token_file', () => {
    assert.match(problems({ endpoint: base.endpoint }).join(), /one of token or token_file is required/);
    assert.match(
      problems({ ...base, token_file: '/t' }).join(),
      /token_file: token and token_file are mutually exclusive/,
    );
    assert.deepEqual(problems({ endpoint: base.endpoint, token_file: '/t' }), []);
    assert.match(problems({ ...base, token: '' }).join(), /token: must not be empty/);
  });

  test('backfill: all, none or a positive duration', () => {
    assert.deepEqual(configSchema.parse({ ...base, events: { backfill: 'none' } }).events.backfill, {
      kind: 'none',
    });
    assert.deepEqual(configSchema.parse({ ...base, events: { backfill: '24h' } }).events.backfill, {
      kind: 'duration',
      ms: 86_400_000,
    });
    assert.match(
      problems({ ...base, events: { backfill: 'everything' } }).join(),
      /events.backfill: "everything" is not a backfill mode/,
    );
    assert.match(problems({ ...base, events: { backfill: '0s' } }).join(), /not a backfill mode/);
  });

  test('page sizes are bounded; events need at least 10', () => {
    assert.match(problems({ ...base, events: { page_size: 5 } }).join(), /at least 10/);
    assert.match(problems({ ...base, users: { page_size: 5000 } }).join(), /at most 1000/);
    assert.match(problems({ ...base, groups: { page_size: 0 } }).join(), /groups.page_size/);
  });

  test('intervals and overlap have sane minimums', () => {
    assert.match(
      problems({ ...base, events: { interval: '10ms' } }).join(),
      /events.interval: must be at least 1s/,
    );
    assert.match(
      problems({ ...base, events: { overlap: '0s' } }).join(),
      /events.overlap: must be at least 1s/,
    );
    assert.match(
      problems({ ...base, events: { overlap: '48h' } }).join(),
      /events.overlap: must be at most 24h/,
    );
    assert.match(
      problems({ ...base, events: { verify_interval: '100ms' } }).join(),
      /events.verify_interval: must be at least 1s/,
    );
    assert.equal(
      configSchema.parse({ ...base, events: { verify_interval: '30s', verify_reread: true } }).events
        .verify_interval,
      30_000,
    );
  });

  test('users.changes_interval must be shorter than users.interval (or 0)', () => {
    assert.match(
      problems({ ...base, users: { interval: '5m', changes_interval: '10m' } }).join(),
      /users.changes_interval: must be shorter/,
    );
    assert.deepEqual(problems({ ...base, users: { interval: '5m', changes_interval: '0s' } }), []);
  });

  test('something must be enabled', () => {
    assert.match(
      problems({
        ...base,
        events: { enabled: false },
        users: { enabled: false },
        groups: { enabled: false },
      }).join(),
      /nothing to collect/,
    );
  });

  test('max_concurrent_requests, proxy_url and storage_key', () => {
    assert.match(problems({ ...base, max_concurrent_requests: 0 }).join(), /max_concurrent_requests/);
    assert.match(problems({ ...base, max_concurrent_requests: 100 }).join(), /at most 64/);
    assert.match(
      problems({ ...base, proxy_url: 'socks5://p:1080' }).join(),
      /proxy_url: must be an http\(s\) URL/,
    );
    assert.match(
      problems({ ...base, storage_key: 'k' }).join(),
      /storage_key: only meaningful together with storage/,
    );
  });

  test('tls: cert_file and key_file together', () => {
    assert.match(problems({ ...base, tls: { cert_file: 'a.pem' } }).join(), /cert_file and key_file/);
  });

  test('token_file: read at create, relative to the config directory; unreadable is a config error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ak-token-'));
    try {
      await writeFile(join(dir, 'token'), '  secret-token-value-123\n');
      const cfg = configSchema.parse({ endpoint: em.url, token_file: 'token' });
      const r = await factory.create(nopSettings('authentik', 'receiver', dir), cfg, new SinkConsumer());
      await r.shutdown();
      const bad = configSchema.parse({ endpoint: em.url, token_file: 'missing' });
      assert.throws(
        () => factory.create(nopSettings('authentik/x', 'receiver', dir), bad, new SinkConsumer()),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.problems[0]?.path === 'receivers.authentik/x.token_file' &&
          /cannot read token_file/.test(e.message),
      );
      await writeFile(join(dir, 'empty'), '\n');
      assert.throws(
        () =>
          factory.create(
            nopSettings('authentik', 'receiver', dir),
            configSchema.parse({ endpoint: em.url, token_file: 'empty' }),
            new SinkConsumer(),
          ),
        /is empty/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('tls files that cannot be read are config errors', () => {
    const cfg = configSchema.parse({ ...base, tls: { ca_file: '/nonexistent/ca.pem' } });
    assert.throws(
      () => factory.create(nopSettings('authentik'), cfg, new SinkConsumer()),
      (e: unknown) => e instanceof ConfigError && /tls.ca_file/.test(e.message),
    );
  });
});
