import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatIsoMillis, normaliseDate, parseIsoDate } from './date.ts';

function text(s: string): string {
  const r = normaliseDate(s);
  if (!r.ok) assert.fail(`${s}: ${r.message}`);
  return r.text;
}

function message(s: string): string {
  const r = normaliseDate(s);
  if (r.ok) assert.fail(`${s} should not parse (got ${r.text})`);
  return r.message;
}

describe('date normalisation (ISO8601 → UTC, milliseconds truncated)', () => {
  test('authentik microsecond timestamps are truncated, not rounded', () => {
    assert.equal(text('2024-08-07T06:28:59.565191Z'), '2024-08-07T06:28:59.565Z');
    assert.equal(text('2024-08-07T06:29:14.097848Z'), '2024-08-07T06:29:14.097Z');
    assert.equal(text('2024-08-07T06:29:14.999999Z'), '2024-08-07T06:29:14.999Z');
  });

  test('the canonical fast path agrees with the general parser for every fraction length', () => {
    for (let fd = 0; fd <= 9; fd++) {
      const s = `2024-02-29T23:59:58${fd > 0 ? '.' : ''}${'987654321'.slice(0, fd)}Z`;
      const r = normaliseDate(s);
      const g = parseIsoDate(s);
      if (!r.ok || !g.ok) assert.fail(s);
      assert.equal(r.text, formatIsoMillis(g.date), s);
      assert.deepEqual(r.date, g.date, s);
    }
  });

  test('short or missing fractions are padded', () => {
    assert.equal(text('2024-08-07T06:28:59Z'), '2024-08-07T06:28:59.000Z');
    assert.equal(text('2024-08-07T06:28:59.5Z'), '2024-08-07T06:28:59.500Z');
    assert.equal(text('2024-08-07T06:28:59,25Z'), '2024-08-07T06:28:59.250Z');
  });

  test('offsets are converted to UTC', () => {
    assert.equal(text('2024-08-07T08:28:59.565191+02:00'), '2024-08-07T06:28:59.565Z');
    assert.equal(text('2024-08-07T01:28:59.1-0500'), '2024-08-07T06:28:59.100Z');
    assert.equal(text('2024-01-01T00:30:00+01'), '2023-12-31T23:30:00.000Z');
    assert.equal(text('2024-03-01T05:00:00+05:30'), '2024-02-29T23:30:00.000Z');
  });

  test('partial forms default to midnight / the first day, in UTC', () => {
    assert.equal(text('2024-08-07'), '2024-08-07T00:00:00.000Z');
    assert.equal(text('2024-08'), '2024-08-01T00:00:00.000Z');
    assert.equal(text('2024'), '2024-01-01T00:00:00.000Z');
    assert.equal(text('2024-08-07T06:28'), '2024-08-07T06:28:00.000Z');
  });

  test('errors carry the innermost Java message', () => {
    assert.equal(message('yesterday'), "Text 'yesterday' could not be parsed at index 0");
    assert.equal(
      message('2024-08-07 06:28:59'),
      "Text '2024-08-07 06:28:59' could not be parsed, unparsed text found at index 10",
    );
    assert.equal(message('2024-13-01'), 'Invalid value for MonthOfYear (valid values 1 - 12): 13');
    assert.equal(message('2024-02-30'), "Invalid date 'FEBRUARY 30'");
    assert.equal(message('2023-02-29'), "Invalid date 'February 29' as '2023' is not a leap year");
    assert.equal(message('2024-01-01T24:00:00Z'), 'Invalid value for HourOfDay (valid values 0 - 23): 24');
    assert.equal(message(''), "Text '' could not be parsed at index 0");
  });

  test('leap day and epoch arithmetic', () => {
    const r = parseIsoDate('2024-02-29T12:00:00.123456789Z');
    assert.ok(r.ok);
    assert.deepEqual(r.date, { epochSecond: Date.UTC(2024, 1, 29, 12) / 1000, nano: 123456789 });
    assert.equal(formatIsoMillis({ epochSecond: 0, nano: 999_999_999 }), '1970-01-01T00:00:00.999Z');
    assert.equal(formatIsoMillis({ epochSecond: -1, nano: 0 }), '1969-12-31T23:59:59.000Z');
  });

  test('fast path and general parser agree', () => {
    for (const s of ['2024-08-07T06:28:59.565191Z', '1999-12-31T23:59:59Z', '2000-02-29T00:00:00.1Z']) {
      const fast = normaliseDate(s);
      const slow = parseIsoDate(s);
      assert.ok(fast.ok && slow.ok);
      assert.deepEqual(fast.date, slow.date);
      assert.equal(fast.text, formatIsoMillis(slow.date));
    }
  });
});
