import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { floorSecond, formatMicros, parseMicros, qlSecond } from './time.ts';

describe('microsecond timestamps', () => {
  test('parse keeps microseconds and honours zones', () => {
    const us = parseMicros('2023-02-15T15:33:42.771091Z')!;
    assert.equal(us % 1_000_000n, 771_091n);
    assert.equal(formatMicros(us), '2023-02-15T15:33:42.771091Z');
    assert.equal(parseMicros('2023-02-15T16:33:42.771091+01:00'), us);
    assert.equal(parseMicros('2023-02-15T15:33:42.7710919Z'), us, 'digits beyond µs are dropped');
    assert.equal(parseMicros('2023-02-15T15:33:42Z')! % 1_000_000n, 0n);
    assert.equal(parseMicros('2023-02-15 15:33:42.1'), parseMicros('2023-02-15T15:33:42.100000Z'));
    assert.equal(parseMicros('yesterday'), undefined);
    assert.equal(parseMicros(42), undefined);
    assert.ok(parseMicros('2023-02-15T15:33:42.000001Z')! > parseMicros('2023-02-15T15:33:42Z')!);
  });

  test('QL second values are floored UTC', () => {
    const us = parseMicros('2026-03-01T12:00:05.999999Z')!;
    assert.equal(qlSecond(us), '2026-03-01 12:00:05');
    assert.equal(floorSecond(us), parseMicros('2026-03-01T12:00:05Z'));
  });
});
