import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { eventIndexOf, eventUuid, permute32, unpermute32, Stream } from './rng.ts';
import { EventStore } from './store.ts';
import { isoMicros, parseIsoMicros, numPkOf } from './data.ts';
import {
  QlError,
  createdRangeOf,
  jsonbText,
  parseOrdering,
  parseQl,
  searchTerms,
  validateEventQl,
  evalEventQl,
} from './query.ts';

void describe('rng', () => {
  void test('permute32 is a bijection and eventUuid decodes back to its index', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const p = permute32(9, i);
      assert.equal(unpermute32(9, p), i);
      seen.add(p);
    }
    assert.equal(seen.size, 5000);
    for (const gi of [0, 1, 77, 999_999, 4_000_000]) {
      const u = eventUuid(9, gi);
      assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(eventIndexOf(9, u), gi);
      assert.notEqual(eventUuid(10, gi), u);
    }
    assert.equal(eventIndexOf(9, 'nope'), undefined);
  });

  void test('Stream is deterministic', () => {
    const a = new Stream(5);
    const b = new Stream(5);
    for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
    assert.notEqual(new Stream(6).next(), new Stream(5).next());
  });
});

void describe('time formatting', () => {
  void test('isoMicros / parseIsoMicros round-trip with microseconds', () => {
    const us = Date.parse('2024-08-07T06:28:59.565Z') * 1000 + 191;
    assert.equal(isoMicros(us), '2024-08-07T06:28:59.565191Z');
    assert.equal(parseIsoMicros('2024-08-07T06:28:59.565191Z'), us);
    assert.equal(parseIsoMicros('2024-08-07T08:28:59.565191+02:00'), us);
    assert.equal(parseIsoMicros('2024-08-07'), Date.parse('2024-08-07T00:00:00Z') * 1000);
    assert.ok(Number.isNaN(parseIsoMicros('yesterday')));
  });

  void test('num_pk is the first five digits of the UUID integer', () => {
    // int('29613be92db34488933860ec7762f60d', 16) = 55003...
    assert.equal(numPkOf('29613be9-2db3-4488-9338-60ec7762f60d'), 55003);
  });
});

void describe('EventStore', () => {
  void test('append, insert in the middle, delete oldest, delete where', () => {
    const s = new EventStore(16);
    const gis = s.appendSorted([10, 20, 30, 40]);
    assert.deepEqual(gis, [0, 1, 2, 3]);
    // non-increasing appends are bumped to stay strictly increasing
    s.appendSorted([40, 40]);
    assert.deepEqual(
      [4, 5].map((g) => s.createdOf(g)),
      [41, 42],
    );
    const mid = s.insertAt(25);
    assert.equal(s.at(2), mid);
    const dup = s.insertAt(25);
    assert.equal(s.createdOf(dup), 26, 'collisions bumped by 1 µs');
    assert.equal(s.size, 8);
    assert.deepEqual(s.deleteOldest(2), [0, 1]);
    assert.equal(s.isAlive(0), false);
    assert.equal(s.size, 6);
    assert.equal(s.lowerBound(30), 2);
    assert.equal(s.lowerBound(30, true), 3);
    const removed = s.deleteWhere((g) => g % 2 === 0);
    assert.equal(removed, 3, 'gis 6 (25), 2 (30), 4 (41)');
    const order: number[] = [];
    for (let k = 0; k < s.size; k++) order.push(s.createdOf(s.at(k)));
    assert.deepEqual(order, [26, 40, 42]);
    const v = s.version;
    s.deleteOldest(0);
    assert.equal(s.version, v, 'no-op does not bump version');
  });

  void test('grows past its capacity and compacts the head', () => {
    const s = new EventStore(16);
    for (let i = 0; i < 100; i++) {
      s.appendSorted([i * 10]);
      if (i % 3 === 0) s.deleteOldest(1);
    }
    assert.equal(s.size, 100 - 34);
    for (let k = 1; k < s.size; k++) assert.ok(s.createdOf(s.at(k)) > s.createdOf(s.at(k - 1)));
  });
});

void describe('query helpers', () => {
  void test('ordering: invalid dropped, default when none', () => {
    assert.deepEqual(parseOrdering('nope, -created ,pk', ['created', 'pk'], ['-created']), [
      { field: 'created', desc: true },
      { field: 'pk', desc: false },
    ]);
    assert.deepEqual(parseOrdering('', ['created'], ['-created']), [{ field: 'created', desc: true }]);
    assert.deepEqual(parseOrdering(undefined, ['created'], ['name']), [{ field: 'name', desc: false }]);
  });

  void test('search terms: whitespace and commas split, quoted phrases kept', () => {
    assert.deepEqual(searchTerms('a b,c  "d e" \'f,g\''), ['a', 'b', 'c', 'd e', 'f,g']);
    assert.deepEqual(searchTerms('created >= "2026-03-01 12:00:00"'), [
      'created',
      '>=',
      '2026-03-01 12:00:00',
    ]);
  });

  void test('jsonb text: keys by length then bytes, spaced separators', () => {
    assert.equal(jsonbText({ username: 'a', pk: 4, email: 'x' }), '{"pk": 4, "email": "x", "username": "a"}');
    assert.equal(jsonbText([1, { b: null, a: true }]), '[1, {"a": true, "b": null}]');
  });

  void test('QL: parse, validate, created range, evaluation', () => {
    const ast = parseQl('created >= "2026-03-01 12:00:00" and created < "2026-03-02"');
    validateEventQl(ast);
    const r = createdRangeOf(ast)!;
    assert.equal(r.lo, Date.parse('2026-03-01T12:00:00Z') * 1000);
    assert.equal(r.loIncl, true);
    assert.equal(r.hi, Date.parse('2026-03-02T00:00:00Z') * 1000);
    assert.equal(r.hiIncl, false);
    assert.equal(createdRangeOf(parseQl('created > "2026-03-01" or created < "2020-01-01"')), undefined);
    assert.equal(createdRangeOf(parseQl('created > "2026-03-01" and action = "login"')), undefined);
    assert.throws(() => parseQl('created >>= "x"'), QlError);
    assert.throws(() => parseQl('created >= "unterminated'), QlError);
    assert.throws(() => validateEventQl(parseQl('nope = 1')), QlError);
    assert.throws(() => validateEventQl(parseQl('created > "03/01/2026"')), QlError);
    const ev = {
      pk: '1e399dbf-bb30-4d0f-acf3-a5275e065cd0',
      action: 'login',
      app: 'authentik.events.signals',
      client_ip: null,
      created: '2026-03-01T12:00:00.500000Z',
      user: { pk: 4, username: 'akadmin' },
      context: { http_request: { method: 'GET' } },
      brand: { name: 'Default brand' },
    };
    const t = (q: string) => {
      const a = parseQl(q);
      validateEventQl(a);
      return evalEventQl(a, ev);
    };
    assert.equal(t('created > "2026-03-01 12:00:00"'), true, 'sub-second after the second boundary');
    assert.equal(t('created = "2026-03-01 12:00:00"'), false);
    assert.equal(t('action in ("login", "logout") and user.pk = 4'), true);
    assert.equal(t('context.http_request.method = "POST"'), false);
    assert.equal(t('client_ip = None'), true);
    assert.equal(t('brand.name ~ "default"'), true);
    assert.equal(t('event_uuid = "1e399dbfbb304d0facf3a5275e065cd0"'), true);
    assert.equal(t('(action = "logout" or app ~ "signals") and created ~ "2026-03-01 12:00"'), true);
  });
});
