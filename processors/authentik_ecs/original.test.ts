import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, test } from 'node:test';
import { needShared } from '../../test/kit/shared.ts';
import { FIXTURE_DATASETS, fixtureLines, fixturesDir } from './fixtures.ts';
import { fingerprint, goJson, goJsonSlow, goString } from './original.ts';

const NEED = needShared('fixtures/elastic-authentik');

describe('Go-compatible event.original (mito encode_json)', () => {
  test('keys sorted at every level, compact', () => {
    assert.equal(
      goJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }),
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  test('numbers: integers without decimals, shortest floats, exponents like Go', () => {
    assert.equal(
      goJson([4, 2108, 1.5, 1e21, 1e-7, 123456789012, -0]),
      '[4,2108,1.5,1e+21,1e-7,123456789012,-0]',
    );
  });

  test('HTML characters and line separators are escaped as Go does', () => {
    assert.equal(goString('in <module> & more'), '"in \\u003cmodule\\u003e \\u0026 more"');
    assert.equal(goJson({ s: 'a\u2028b\u2029c' }), '{"s":"a\\u2028b\\u2029c"}');
  });

  test('control characters: short escapes (incl. \\b \\f) and lower-case \\u00XX', () => {
    assert.equal(goString('\n\r\t\b\f\u0001\u001f"\\\u007f'), '"\\n\\r\\t\\b\\f\\u0001\\u001f\\"\\\\\u007f"');
  });

  test('non-ASCII stays raw UTF-8; lone surrogates become U+FFFD', () => {
    assert.equal(goString('Linköping 日本 😀'), '"Linköping 日本 😀"');
    assert.equal(goString('a\ud800b'), '"a\ufffdb"');
    assert.equal(goJson({ s: 'x\udc00' }), '{"s":"x\ufffd"}');
  });

  test('key order is UTF-8 byte order, also for index-like and astral keys', () => {
    assert.equal(goJson({ '2': 'b', '10': 'a', b: 1, A: 2 }), '{"10":"a","2":"b","A":2,"b":1}');
    // U+FF5E (3 UTF-8 bytes, EF..) sorts before U+1F600 (4 bytes, F0..), unlike UTF-16 order.
    assert.equal(goJson({ '😀': 1, '～': 2 }), '{"～":2,"😀":1}');
  });

  test(
    'the native fast path and the hand-written encoder agree on every fixture record',
    { skip: NEED },
    () => {
      for (const ds of FIXTURE_DATASETS) {
        for (const line of fixtureLines(ds)) {
          const v: unknown = JSON.parse(line);
          assert.equal(goJson(v), goJsonSlow(v));
        }
      }
    },
  );

  test('shape copiers: repeated, already ordered, mixed and one-off shapes all encode exactly', () => {
    const samples: unknown[] = [
      { b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } },
      { a: { c: 'x', d: [] }, b: 2 }, // keys already in order at every level: reused as is
      {
        a: [
          { m: 1, n: 2 },
          { n: 3, m: 4 },
        ],
        b: [[{ q: 1, p: 2 }]],
      },
      { x: -0 }, // -0 needs the hand-written encoder
      { '10': 1, '9': 2, a: 3 }, // index-like keys too
      Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
      { é: 1, e: 2, z: '<&>' },
    ];
    for (let round = 0; round < 3; round++) {
      for (const v of samples) assert.equal(goJson(v), goJsonSlow(v), JSON.stringify(v));
    }
    for (let i = 0; i < 200; i++) {
      const v = { [`k${(i * 7919) % 1000}`]: i, [`j${i}`]: { [`n${i % 3}`]: [i, { b: 1, a: 2 }] } };
      assert.equal(goJson(v), goJsonSlow(v));
    }
    // An object whose prototype is not Object's is copied generically (its own keys only).
    class Rec {
      b = 1;
      a = 2;
    }
    assert.equal(goJson(new Rec()), '{"a":2,"b":1}');
    // An already ordered input is not modified and stays equal.
    const ordered = { a: 1, b: { c: [1, 2] } };
    assert.equal(goJson(ordered), '{"a":1,"b":{"c":[1,2]}}');
    assert.deepEqual(ordered, { a: 1, b: { c: [1, 2] } });
  });

  test('reproduces Elastic Agent event.original byte for byte (sample documents)', { skip: NEED }, () => {
    for (const ds of FIXTURE_DATASETS) {
      const sample = JSON.parse(readFileSync(resolve(fixturesDir, `${ds}/sample_event.json`), 'utf8')) as {
        event: { original: string };
      };
      const original = sample.event.original;
      assert.equal(goJson(JSON.parse(original)), original, ds);
    }
  });
});

describe('document id (fingerprint of event.original)', () => {
  test('third line of test-group.log', { skip: NEED }, () => {
    assert.equal(fingerprint(fixtureLines('group')[2]!), 'gS2iIn6p0Pw/YBxR7JK9GKU6lgE=');
  });

  test('differs for different text, stable for the same text', () => {
    assert.equal(fingerprint('{"a":1}'), fingerprint('{"a":1}'));
    assert.notEqual(fingerprint('{"a":1}'), fingerprint('{"a":2}'));
    // SHA-1 over 0x00 + UTF-8 bytes: the empty text is the hash of the single 0x00 byte.
    assert.equal(fingerprint(''), 'W6k8nbDP+T9StSHXQg5D9u2ieE8=');
  });

  test('equals SHA-1 of 0x00 + UTF-8 for non-ASCII, astral, lone surrogates and long texts', () => {
    const reference = (s: string) =>
      createHash('sha1')
        .update(Buffer.concat([Buffer.from([0]), Buffer.from(s, 'utf8')]))
        .digest('base64');
    const samples = [
      'Linköping 日本',
      '😀'.repeat(40_000), // 4 bytes per pair: grows the scratch buffer
      'a\ud800b\udc00c\ud83d', // lone surrogates become U+FFFD (EF BF BD)
      '日'.repeat(30_000), // 3 bytes per unit
      'x'.repeat(70_000),
      'y'.repeat(400_000), // beyond the buffer's limit: hashed from the prefixed string
      'short again',
    ];
    for (const s of samples) assert.equal(fingerprint(s), reference(s), s.slice(0, 20));
  });
});
