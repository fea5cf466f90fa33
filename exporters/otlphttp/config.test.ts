import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { Secret } from '../../runtime/config/types.ts';
import { configSchema, createDefaultConfig, logsUrl } from './config.ts';
import { factory } from './factory.ts';

const problems = (raw: unknown): string[] => {
  const r = configSchema.safeParse(raw);
  assert.equal(r.success, false, 'expected the config to be rejected');
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('otlphttp config', () => {
  test('defaults', () => {
    const c = configSchema.parse({ endpoint: 'http://127.0.0.1:4318' });
    assert.equal(c.encoding, 'proto');
    assert.equal(c.compression, 'gzip');
    assert.equal(c.timeout, 10_000);
    assert.equal(c.body, 'ecs');
    assert.equal(c.max_batch_size, 1000);
    assert.deepEqual(c.resource, { 'service.name': 'authentik' });
    assert.deepEqual(c.headers, {});
    assert.equal(c.retry.enabled, true);
    assert.equal(c.retry.max_elapsed_time, 0);
    assert.equal(c.tls, undefined);
  });

  test('the default config plus an endpoint equals the schema defaults', () => {
    const endpoint = 'http://127.0.0.1:4318';
    assert.equal(createDefaultConfig()['endpoint'], undefined, 'endpoint has no default');
    assert.deepEqual(
      configSchema.parse({ ...createDefaultConfig(), endpoint }),
      configSchema.parse({ endpoint }),
    );
    assert.equal(factory.type, 'otlphttp');
    assert.equal(factory.kind, 'exporter');
  });

  test('endpoint or logs_endpoint is required', () => {
    assert.deepEqual(problems({}), [
      'endpoint: set `endpoint` (base URL, /v1/logs is appended) or `logs_endpoint` (full URL)',
    ]);
  });

  test('unknown keys, bad enums, bad durations and bad URLs are rejected', () => {
    const p = problems({
      endpoint: 'ftp://x',
      encoding: 'protobuf',
      compression: 'zstd',
      timeout: 'soon',
      max_batch_size: 0,
      body: 'raw',
      bogus: 1,
    });
    const joined = p.join('\n');
    for (const key of ['endpoint', 'encoding', 'compression', 'timeout', 'max_batch_size', 'body']) {
      assert.match(joined, new RegExp(`^${key}: `, 'm'), `no problem reported for ${key}`);
    }
    assert.match(joined, /bogus/);
  });

  test('credentials in the URL are refused (URLs are logged)', () => {
    assert.match(
      problems({ endpoint: 'https://user:pw@apm.example.com' }).join(),
      /must not contain credentials/,
    );
  });

  test('Content-Type and Content-Encoding cannot be set through headers', () => {
    assert.match(
      problems({ endpoint: 'http://x', headers: { 'Content-Type': 'text/plain' } }).join(),
      /headers\.Content-Type: .*cannot be overridden/,
    );
  });

  test('header values are secrets', () => {
    const c = configSchema.parse({ endpoint: 'http://x', headers: { Authorization: 'ApiKey abc123' } });
    const h = c.headers['Authorization']!;
    assert.ok(h instanceof Secret);
    assert.equal(h.reveal(), 'ApiKey abc123');
    assert.ok(!JSON.stringify(c).includes('abc123'));
    assert.ok(!inspect(c, { depth: 5 }).includes('abc123'));
  });

  test('resource values must be scalars or scalar lists', () => {
    configSchema.parse({ endpoint: 'http://x', resource: { a: 'x', b: 1, c: true, d: ['x', 'y'] } });
    assert.match(problems({ endpoint: 'http://x', resource: { a: { nested: 1 } } }).join(), /^resource\.a: /);
  });

  test('logs URL: /v1/logs joined to the base path; logs_endpoint used as is', () => {
    const u = (raw: Record<string, unknown>) => logsUrl(configSchema.parse(raw)).href;
    assert.equal(u({ endpoint: 'http://h:4318' }), 'http://h:4318/v1/logs');
    assert.equal(u({ endpoint: 'http://h:4318/' }), 'http://h:4318/v1/logs');
    assert.equal(u({ endpoint: 'https://h/otlp/' }), 'https://h/otlp/v1/logs');
    assert.equal(u({ endpoint: 'http://a', logs_endpoint: 'http://b/x/y' }), 'http://b/x/y');
  });
});
