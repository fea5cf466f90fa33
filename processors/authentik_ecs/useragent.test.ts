import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  UserAgentParser,
  javaRegexSource,
  loadPatterns,
  parseUserAgent,
  requiredLiteral,
} from './useragent.ts';

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
    // Elasticsearch's 2020 pattern set already knows axios (uap-core "Downloader" rule).
    assert.equal(ua.ecs('axios/1.7.2')['name'], 'axios');
    assert.equal(ua.ecs('axios/1.7.2')['version'], '1.7.2');
  });

  test('Java client: the bots rule gives version 0.11. and device Spider (as Elasticsearch 8.13 reports)', () => {
    assert.deepEqual(ua.ecs('Java/17.0.11'), {
      device: { name: 'Spider' },
      name: 'Java',
      original: 'Java/17.0.11',
      version: '0.11.',
    });
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
    // The optional pre-release group matched the empty string: Elasticsearch still appends its dot.
    assert.equal(ff['version'], '128.0.');
    assert.deepEqual(ff['os'], { full: 'Mac OS X 10.15', name: 'Mac OS X', version: '10.15' });
    assert.deepEqual(ff['device'], { name: 'Mac' });
    const ios = ua.ecs(
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    );
    assert.equal(ios['name'], 'Mobile Safari');
    assert.equal((ios['os'] as Record<string, unknown>)['name'], 'iOS');
    assert.deepEqual(ios['device'], { name: 'iPhone' });
  });

  test('version assembly: parts present with or without patch, build only after a patch', () => {
    const ff = 'Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0.2';
    assert.equal(ua.ecs(ff)['version'], '115.0.2');
    assert.deepEqual(ua.ecs(ff)['os'], { name: 'Linux' });
    const win = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
    assert.equal(ua.ecs(win)['version'], '128.0.');
    assert.equal(
      ua.ecs('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0b9')['name'],
      'Firefox Beta',
    );
    assert.equal(
      ua.ecs('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0b9')['version'],
      '131.0.b9',
    );
    const safari =
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15';
    assert.equal(ua.ecs(safari)['name'], 'Safari');
    assert.equal(ua.ecs(safari)['version'], '17.5');
    assert.deepEqual(ua.ecs(safari)['os'], {
      full: 'Mac OS X 10.15.7',
      name: 'Mac OS X',
      version: '10.15.7',
    });
    assert.equal(ua.ecs('curl/8.5.0')['version'], '8.5.0');
    assert.equal(ua.ecs('Go-http-client/1.1')['version'], '1.1');
    assert.equal(ua.ecs('Go-http-client/2.0')['version'], '2.0');
  });

  test('device names: $1 substituted, other references kept literally', () => {
    const pixel =
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';
    const r = ua.ecs(pixel);
    assert.deepEqual(r['device'], { name: 'Pixel 8' });
    assert.equal(r['name'], 'Chrome Mobile');
    assert.equal(r['version'], '126.0.0.0');
    assert.deepEqual(r['os'], { full: 'Android 14', name: 'Android', version: '14' });
    const samsung =
      'Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36';
    assert.deepEqual(ua.ecs(samsung)['device'], { name: 'Samsung SM-S918B' });
    // `$1 $2` style replacements: only the first `$1` is replaced (Huawei rule: device_replacement '$1$2').
    const huawei =
      'Mozilla/5.0 (Linux; U; Android 2.2; en-us; HUAWEI U8800 Build/HuaweiU8800) AppleWebKit/533.1';
    assert.equal((ua.ecs(huawei)['device'] as Record<string, unknown>)['name'], 'HUAWEI $2');
  });

  test("Java's \\s: ASCII whitespace only", () => {
    assert.equal(javaRegexSource('a\\sb'), 'a[ \\t\\n\\x0B\\f\\r]b');
    assert.equal(javaRegexSource('[;\\s(]'), '[; \\t\\n\\x0B\\f\\r(]');
    assert.equal(javaRegexSource('a\\\\s'), 'a\\\\s');
    assert.equal(javaRegexSource('plain'), 'plain');
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

  test('uap-core 0.10.0 patterns (the data Elasticsearch bundles) load and compile once', () => {
    const p = loadPatterns();
    assert.equal(loadPatterns(), p);
    assert.ok(p.ua.length > 300 && p.os.length > 150 && p.device.length > 500);
    // Elasticsearch's set (uap-core 0.10.0): 1103 patterns in all.
    assert.equal(p.ua.length + p.os.length + p.device.length, 1103);
  });

  test('Elasticsearch replacement rules: $1 only in names, version replacements literal', () => {
    const d = parseUserAgent('Mozilla/4.0 (compatible; MSIE 6.0; Windows 98)');
    assert.equal(d.os?.name, 'Windows');
    // Elasticsearch does not substitute $1 in os_v1_replacement.
    assert.equal(d.os?.major, '$1');
  });

  test('required literals are conservative', () => {
    assert.equal(requiredLiteral('(Firefox)/(\\d+)\\.(\\d+)'), '/');
    assert.equal(requiredLiteral('([A-Za-z0-9]+);FOMA'), ';FOMA');
    assert.equal(requiredLiteral('Opera Mobi'), 'Opera Mobi');
    assert.equal(requiredLiteral('PLAYSTATION 3.+WebKit'), 'PLAYSTATION 3');
    assert.equal(requiredLiteral('abcd?e'), 'abc');
    assert.equal(requiredLiteral('ab{0,2}cde'), 'cde');
    assert.equal(requiredLiteral('x+yz'), 'yz');
    assert.equal(requiredLiteral('a|bcd'), undefined);
    assert.equal(requiredLiteral('(a|b)cd\\.e'), 'cd.e');
    assert.equal(requiredLiteral('[abc]de[f]'), 'de');
    assert.equal(requiredLiteral('\\bYeti\\b'), 'Yeti');
  });

  test('the literal prefilter never changes a result', () => {
    const samples = [
      CHROME,
      `${CHROME} Edg/127.0.0.0`,
      'PostmanRuntime/7.41.0',
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0',
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36',
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko',
      'Opera/9.80 (Android; Opera Mini/7.5.33361/31.1448; U; en) Presto/2.8.119 Version/11.1010',
      'Mozilla/5.0 (PlayStation 4 3.11) AppleWebKit/537.73 (KHTML, like Gecko)',
      'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/104.0.0.0 Safari/537.36',
      'DoCoMo/2.0 N905i(c100;TB;W24H16)',
      'SAMSUNG-SGH-E250/1.0 Profile/MIDP-2.0 Configuration/CLDC-1.1 UP.Browser/6.2.3.3.c.1.101 (GUI) MMP/2.0',
      'Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30',
      'mozilla/5.0 (windows nt 10.0) applewebkit/537.36 chrome/120.0.0.0 safari/537.36',
      'Java/17.0.11',
      'Wget/1.21.4',
      'okhttp/4.12.0',
      'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)',
      'Dalvik/2.1.0 (Linux; U; Android 12; SM-A525F Build/SP1A.210812.016)',
      '',
    ];
    const p = loadPatterns();
    for (const s of samples) assert.deepEqual(parseUserAgent(s, p, true), parseUserAgent(s, p, false), s);
  });

  test('long hostile strings stay fast (prefilter skips the quadratic patterns)', () => {
    const s = 'A'.repeat(20_000);
    const t0 = performance.now();
    new UserAgentParser(0).ecs(s);
    assert.ok(performance.now() - t0 < 5_000);
  });
});
