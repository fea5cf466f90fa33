import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ELASTIC_UNKNOWN_UA_FAMILIES, UserAgentParser, loadPatterns, parseUserAgent } from './useragent.ts';

const CHROME =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36';

describe('user agent (Elasticsearch user_agent processor results)', () => {
  const ua = new UserAgentParser(100);

  test('Chrome on Windows 10 (fixture)', () => {
    assert.deepEqual(ua.ecs(CHROME), {
      device: { name: 'Other' },
      name: 'Chrome',
      original: CHROME,
      os: { full: 'Windows 10', name: 'Windows', version: '10' },
      version: '127.0.0.0',
    });
  });

  test('Edge (fixture)', () => {
    const s = `${CHROME} Edg/127.0.0.0`;
    const r = ua.ecs(s);
    assert.equal(r['name'], 'Edge');
    assert.equal(r['version'], '127.0.0.0');
    assert.deepEqual(r['os'], { full: 'Windows 10', name: 'Windows', version: '10' });
  });

  test('PostmanRuntime is unknown to Elasticsearch: name and device Other, no version, no os', () => {
    assert.deepEqual(ua.ecs('PostmanRuntime/7.41.0'), {
      device: { name: 'Other' },
      name: 'Other',
      original: 'PostmanRuntime/7.41.0',
    });
    assert.ok(ELASTIC_UNKNOWN_UA_FAMILIES.has('axios'));
    assert.equal(ua.ecs('axios/1.7.2')['name'], 'Other');
  });

  test('clients Elasticsearch knows keep their name and version', () => {
    const r = ua.ecs('python-requests/2.32.3');
    assert.equal(r['name'], 'Python Requests');
    assert.equal(r['version'], '2.32');
    assert.equal(ua.ecs('curl/8.5.0')['name'], 'curl');
    assert.equal(ua.ecs('curl/8.5.0')['version'], '8.5.0');
    assert.equal(ua.ecs('Go-http-client/1.1')['name'], 'Go-http-client');
  });

  test('Firefox on macOS and Safari on iPhone', () => {
    const ff = ua.ecs('Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0');
    assert.equal(ff['name'], 'Firefox');
    assert.equal(ff['version'], '128.0');
    assert.deepEqual(ff['os'], { full: 'Mac OS X 10.15', name: 'Mac OS X', version: '10.15' });
    assert.deepEqual(ff['device'], { name: 'Mac' });
    const ios = ua.ecs(
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    );
    assert.equal(ios['name'], 'Mobile Safari');
    assert.equal((ios['os'] as Record<string, unknown>)['name'], 'iOS');
    assert.deepEqual(ios['device'], { name: 'iPhone' });
  });

  test('empty and garbage strings give Other', () => {
    assert.deepEqual(ua.ecs(''), { device: { name: 'Other' }, name: 'Other', original: '' });
    assert.equal(ua.ecs('\u0000\ud800 junk')['name'], 'Other');
  });

  test('every call returns a fresh object (cached parses are not shared)', () => {
    const a = ua.ecs(CHROME);
    const b = ua.ecs(CHROME);
    assert.notEqual(a, b);
    assert.notEqual(a['os'], b['os']);
    assert.deepEqual(a, b);
  });

  test('cache size 0 disables caching but still parses', () => {
    const u = new UserAgentParser(0);
    assert.equal(u.ecs(CHROME)['name'], 'Chrome');
  });

  test('uap-core patterns load and compile once', () => {
    const p = loadPatterns();
    assert.equal(loadPatterns(), p);
    assert.ok(p.ua.length > 300 && p.os.length > 150 && p.device.length > 500);
  });

  test('Elasticsearch replacement rules: $1 only in names, version replacements literal', () => {
    const d = parseUserAgent('Mozilla/4.0 (compatible; MSIE 6.0; Windows 98)');
    assert.equal(d.os?.name, 'Windows');
    // Elasticsearch does not substitute $1 in os_v1_replacement.
    assert.equal(d.os?.major, '$1');
  });
});
