import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret } from '../../runtime/config/types.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { nopSettings } from '../../test/kit/index.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import { authorizationHeader, factory } from './factory.ts';

function problems(input: unknown): string[] {
  const r = configSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('config', () => {
  test('defaults', () => {
    const c = configSchema.parse({ endpoints: ['http://localhost:9200'] });
    assert.equal(c.compression, 'gzip');
    assert.equal(c.timeout, 30_000);
    assert.deepEqual(c.flush, { max_documents: 1000, max_bytes: 5 * 1024 * 1024 });
    assert.equal(c.max_in_flight, 2);
    assert.equal(c.retry.initial_interval, 1000);
    assert.equal(c.retry.max_elapsed_time, 0);
    assert.deepEqual(c.setup, { templates: true, template_priority: 250 });
    assert.deepEqual(c.data_stream, { dataset: 'authentik.event', namespace: 'default' });
    assert.equal(c.dead_letter, undefined);
    assert.equal(c.index, undefined);
  });

  test('the documented default config parses to the same values', () => {
    assert.deepEqual(
      configSchema.parse(createDefaultConfig()),
      configSchema.parse({ endpoints: ['http://localhost:9200'] }),
    );
    assert.equal(factory.type, 'elasticsearch');
    assert.equal(factory.kind, 'exporter');
  });

  test('rejects bad endpoints, unknown keys, mixed auth methods', () => {
    assert.ok(problems({}).some((p) => p.startsWith('endpoints')));
    assert.ok(problems({ endpoints: [] }).some((p) => /at least one/.test(p)));
    assert.ok(problems({ endpoints: ['ftp://x'] }).some((p) => /scheme/.test(p)));
    assert.ok(problems({ endpoints: ['https://u:p@x'] }).some((p) => /credentials/.test(p)));
    assert.ok(problems({ endpoints: ['http://a', 'http://a/'] }).some((p) => /twice/.test(p)));
    assert.ok(problems({ endpoints: ['http://a'], flushh: {} }).length > 0);
    assert.ok(problems({ endpoints: ['http://a'], compression: 'zstd' }).length > 0);
    assert.ok(
      problems({ endpoints: ['http://a'], auth: { api_key: 'k', bearer_token: 't' } }).some((p) =>
        /one authentication method/.test(p),
      ),
    );
    assert.ok(problems({ endpoints: ['http://a'], auth: { username: 'u' } }).some((p) => /together/.test(p)));
    assert.ok(
      problems({ endpoints: ['http://a'], auth: { api_key: 'k', api_key_file: 'f' } }).some((p) =>
        /either/.test(p),
      ),
    );
    assert.ok(problems({ endpoints: ['http://a'], index: 'Bad Index' }).some((p) => p.startsWith('index')));
    assert.ok(problems({ endpoints: ['http://a'], flush: { max_bytes: '10B' } }).some((p) => /1KiB/.test(p)));
    assert.ok(problems({ endpoints: ['http://a'], tls: { cert_file: 'c' } }).some((p) => /together/.test(p)));
  });

  test('secrets are redacted in the parsed config', () => {
    const c = configSchema.parse({ endpoints: ['http://a'], auth: { username: 'u', password: 'hunter2' } });
    assert.ok(c.auth?.password instanceof Secret);
    assert.ok(!JSON.stringify(c).includes('hunter2'));
  });

  test('*_file secrets are read relative to the config directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-cfg-'));
    try {
      await writeFile(join(dir, 'key'), 'encodedkey\n');
      const s = nopSettings('elasticsearch', 'exporter', dir);
      const h = await authorizationHeader(
        s,
        configSchema.parse({ endpoints: ['http://a'], auth: { api_key_file: 'key' } }).auth,
      );
      assert.equal(h?.reveal(), 'ApiKey encodedkey');
      assert.equal(String(h), '[REDACTED]');
      await writeFile(join(dir, 'pw'), 'pw');
      const b = await authorizationHeader(
        s,
        configSchema.parse({ endpoints: ['http://a'], auth: { username: 'u', password_file: 'pw' } }).auth,
      );
      assert.equal(b?.reveal(), `Basic ${Buffer.from('u:pw').toString('base64')}`);
      await assert.rejects(
        authorizationHeader(
          s,
          configSchema.parse({ endpoints: ['http://a'], auth: { bearer_token_file: 'missing' } }).auth,
        ),
        (e: unknown) =>
          e instanceof ConfigError && /auth\.bearer_token_file/.test(e.message) && /ENOENT/.test(e.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
