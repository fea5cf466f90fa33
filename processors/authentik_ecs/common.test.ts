import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConvertError,
  PainlessError,
  appendUnique,
  dropEmpty,
  errorText,
  isIpLiteral,
  javaClass,
  javaDouble,
  javaString,
  painlessChain,
  painlessContains,
  render,
  toBooleanValue,
  toIpValue,
  toLongValue,
  toStringValue,
} from './common.ts';

describe('Java rendering', () => {
  test('numbers print like Long / Double.toString', () => {
    assert.equal(javaString(4), '4');
    assert.equal(javaString(-2108), '-2108');
    assert.equal(javaString(1.5), '1.5');
    assert.equal(javaDouble(5), '5.0');
    assert.equal(javaDouble(0.001), '0.001');
    assert.equal(javaDouble(0.0001), '1.0E-4');
    assert.equal(javaDouble(12345678.5), '1.23456785E7');
    assert.equal(javaDouble(-0), '-0.0');
    assert.equal(javaString(2 ** 63), '9223372036854775808');
  });

  test('whole doubles in exponent form print like Double.toString (Go writes them as 1e+21)', () => {
    assert.equal(javaString(1e21), '1.0E21');
    assert.equal(javaString(-1e21), '-1.0E21');
    assert.equal(javaString(1.5e21), '1.5E21');
    assert.equal(javaString(1e300), '1.0E300');
    assert.equal(javaString(123456789e20), '1.23456789E28');
    assert.equal(javaClass(1e21), 'java.lang.Double');
    // Neighbours: below 1e21 Go writes digits, so Jackson reads an integer type.
    assert.equal(javaString(1e20), '100000000000000000000');
    assert.equal(javaClass(1e20), 'java.math.BigInteger');
    assert.equal(javaString(999999999999999900000), '999999999999999868928');
    assert.equal(javaString(1e7), '10000000');
  });

  test('Double.toString thresholds: plain in [1e-3, 1e7), E notation outside; negative exponents', () => {
    assert.equal(javaString(1e-7), '1.0E-7');
    assert.equal(javaString(-1e-7), '-1.0E-7');
    assert.equal(javaString(2.5e-5), '2.5E-5');
    assert.equal(javaString(0.001), '0.001');
    assert.equal(javaString(0.00099), '9.9E-4');
    assert.equal(javaString(1234567.5), '1234567.5');
    assert.equal(javaString(9999999.5), '9999999.5');
    assert.equal(javaString(10000000.5), '1.00000005E7');
    assert.equal(javaString(0.1), '0.1');
    assert.equal(javaString(1.0e-10), '1.0E-10');
    assert.equal(javaString(5e-324), '4.9E-324');
    assert.equal(javaString(1.7976931348623157e308), '1.7976931348623157E308');
  });

  test('collections print like Java toString', () => {
    assert.equal(javaString([1, 'a', null]), '[1, a, null]');
    assert.equal(javaString({ a: 1, b: { c: true } }), '{a=1, b={c=true}}');
    assert.equal(render(null), '');
    assert.equal(render(undefined), '');
    assert.equal(render(7), '7');
  });

  test('mustache renders lists as index maps (as Elasticsearch shows them)', () => {
    assert.equal(render(['81.2.69.142']), '{0=81.2.69.142}');
    assert.equal(render(['n']), '{0=n}');
    assert.equal(render([]), '{}');
    assert.equal(render(['a', 'b', 'c']), '{0=a, 1=b, 2=c}');
    // Elements print with their own toString: nested lists as [..], maps as {k=v}.
    assert.equal(render([['x', 'y'], 'z']), '{0=[x, y], 1=z}');
    assert.equal(render([[]]), '{0=[]}');
    assert.equal(render([{ a: 1 }, null, 2.5, 1e21]), '{0={a=1}, 1=null, 2=2.5, 3=1.0E21}');
    // Maps (and lists inside maps) print as Java's Map/List toString.
    assert.equal(render({ a: ['x'], b: { c: [] } }), '{a=[x], b={c=[]}}');
    assert.equal(render({}), '{}');
    assert.equal(render(true), 'true');
    // Not mustache: convert/date use toString, where a list is [..].
    assert.equal(javaString(['81.2.69.142']), '[81.2.69.142]');
  });

  test('painless reports nested class names with a dot', () => {
    assert.throws(
      () => painlessContains({}, '@'),
      (e: Error) =>
        e.message ===
        'dynamic method [org.elasticsearch.ingest.ConditionalProcessor.UnmodifiableIngestData, contains/1] not found',
    );
    assert.throws(
      () => painlessContains(5, '@'),
      (e: Error) => e.message === 'dynamic method [java.lang.Integer, contains/1] not found',
    );
  });

  test('class names follow Jackson types', () => {
    assert.equal(javaClass('x'), 'java.lang.String');
    assert.equal(javaClass(1), 'java.lang.Integer');
    assert.equal(javaClass(2 ** 40), 'java.lang.Long');
    assert.equal(javaClass(1.5), 'java.lang.Double');
    assert.equal(javaClass(true), 'java.lang.Boolean');
    assert.equal(javaClass([]), 'java.util.ArrayList');
    assert.equal(javaClass({}), 'java.util.HashMap');
  });

  test('error entries use the integration format', () => {
    assert.equal(
      errorText('convert', 'convert_user_pk_to_string', 'logs-authentik.event-1.10.0', 'boom'),
      'Processor convert with tag convert_user_pk_to_string in pipeline logs-authentik.event-1.10.0 failed with message: boom',
    );
  });
});

describe('convert', () => {
  test('to string', () => {
    assert.equal(toStringValue(7), '7');
    assert.equal(toStringValue('x'), 'x');
    assert.deepEqual(toStringValue([1, 'b', true]), ['1', 'b', 'true']);
    assert.throws(() => toStringValue([1, null]), ConvertError);
  });

  test('to boolean accepts true/false case-insensitively', () => {
    assert.equal(toBooleanValue('TRUE'), true);
    assert.equal(toBooleanValue('False'), false);
    assert.equal(toBooleanValue(false), false);
    assert.deepEqual(toBooleanValue(['true', false]), [true, false]);
    assert.throws(() => toBooleanValue('yes'), {
      message: '[yes] is not a boolean value, cannot convert to boolean',
    });
    assert.throws(() => toBooleanValue(1), {
      message: '[1] is not a boolean value, cannot convert to boolean',
    });
  });

  test('to long', () => {
    assert.equal(toLongValue(21125), 21125);
    assert.equal(toLongValue('21125'), 21125);
    assert.equal(toLongValue('+7'), 7);
    assert.equal(toLongValue('0x10'), 16);
    assert.equal(toLongValue('-0x10'), -16);
    assert.throws(() => toLongValue(1.5), { message: 'For input string: "1.5"' });
    assert.throws(() => toLongValue('abc'), { message: 'For input string: "abc"' });
    assert.throws(() => toLongValue('9223372036854775808'), ConvertError);
  });

  test('to ip', () => {
    assert.equal(toIpValue('81.2.69.142'), '81.2.69.142');
    assert.equal(toIpValue('2001:db8::1'), '2001:db8::1');
    assert.throws(() => toIpValue('not-an-ip'), { message: "'not-an-ip' is not an IP string literal." });
    assert.throws(() => toIpValue(5), /class java.lang.Integer cannot be cast to class java.lang.String/);
    assert.deepEqual(toIpValue(['1.2.3.4', '::1']), ['1.2.3.4', '::1']);
  });

  test('IP literal rules (no leading zeros, IPv6 forms, scope ids)', () => {
    for (const ok of [
      '0.0.0.0',
      '255.255.255.255',
      '::',
      '::1',
      '1::',
      'fe80::1%eth0',
      '::ffff:1.2.3.4',
      '1:2:3:4:5:6:7:8',
      '2001:db8:0:0:1::1',
    ]) {
      assert.ok(isIpLiteral(ok), ok);
    }
    for (const bad of [
      '01.2.3.4',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4 ',
      '',
      ':::',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      'fe80::1%',
      'abc',
      '12345::',
      ':1::',
    ]) {
      assert.ok(!isIpLiteral(bad), bad);
    }
  });
});

describe('painless navigation', () => {
  test('null-safe through objects and missing keys', () => {
    assert.equal(painlessChain({ a: { b: 1 } }, 'a', 'b'), 1);
    assert.equal(painlessChain({ a: {} }, 'a', 'b'), null);
    assert.equal(painlessChain(undefined, 'a', 'b'), null);
    assert.equal(painlessChain({ a: null }, 'a', 'b'), null);
  });

  test('crossing a scalar or a list raises the painless error', () => {
    assert.throws(() => painlessChain({ a: 'x' }, 'a', 'b'), {
      name: 'PainlessError',
      message: 'dynamic getter [java.lang.String, b] not found',
    });
    assert.throws(() => painlessChain({ a: 5 }, 'a', 'b'), /dynamic getter \[java.lang.Integer, b\]/);
    assert.throws(() => painlessChain({ a: [1] }, 'a', 'b'), { message: 'Illegal list shortcut value [b].' });
  });

  test('contains', () => {
    assert.equal(painlessContains('a@b', '@'), true);
    assert.equal(painlessContains(['@'], '@'), true);
    assert.equal(painlessContains(['a@b'], '@'), false);
    assert.throws(() => painlessContains(5, '@'), PainlessError);
    assert.throws(() => painlessContains({}, '@'), /UnmodifiableIngestData, contains\/1/);
  });
});

describe('append', () => {
  test('de-duplicates and creates lists', () => {
    const o: Record<string, unknown> = {};
    appendUnique(o, 'u', 'a');
    appendUnique(o, 'u', 'b');
    appendUnique(o, 'u', 'a');
    assert.deepEqual(o['u'], ['a', 'b']);
    const p: Record<string, unknown> = { u: 'x' };
    appendUnique(p, 'u', 'y');
    assert.deepEqual(p['u'], ['x', 'y']);
  });
});

describe('DROP-EMPTY', () => {
  test('removes null, "" and emptied containers recursively; keeps false and 0', () => {
    const doc = {
      a: null,
      b: '',
      c: { d: null, e: { f: '' } },
      g: [null, '', [], {}, 'x', 0, false],
      h: { i: [] as unknown[], j: { k: { l: null } } },
      m: 0,
      n: false,
      o: { p: 'keep', q: null },
    };
    assert.deepEqual(dropEmpty(doc), { g: ['x', 0, false], m: 0, n: false, o: { p: 'keep' } });
  });

  test('an all-empty document becomes {}', () => {
    assert.deepEqual(dropEmpty({ a: null, b: { c: [] } }), {});
  });

  test('keeps key order and own __proto__ keys as data', () => {
    const doc = JSON.parse('{"z":1,"__proto__":{"x":1},"a":null,"m":2}') as Record<string, unknown>;
    const out = dropEmpty(doc);
    assert.deepEqual(Object.keys(out), ['z', '__proto__', 'm']);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(JSON.stringify(out), '{"z":1,"__proto__":{"x":1},"m":2}');
  });

  test('the fixture corner cases: diff entries, attributes with an empty locale', () => {
    const ctx = {
      diff: {
        last_name: { new_value: '', previous_value: null },
        id: { new_value: 2107, previous_value: null },
      },
      attributes: { settings: { locale: '' } },
      created: false,
      args: { query: '' },
    };
    assert.deepEqual(dropEmpty(ctx), { diff: { id: { new_value: 2107 } }, created: false });
  });

  test('objects shared by two parents are cleaned consistently (no markers left behind)', () => {
    const shared = { a: { b: null }, c: 1, d: [null] };
    const doc = { x: { m: shared }, y: { m: shared } };
    const out = dropEmpty(doc);
    assert.deepEqual(out, { x: { m: { c: 1 } }, y: { m: { c: 1 } } });
    const scan = (v: unknown): void => {
      assert.notEqual(typeof v, 'symbol');
      if (v && typeof v === 'object') for (const k of Object.keys(v)) scan((v as Record<string, unknown>)[k]);
    };
    scan(out);
  });
});
