import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Lru } from './lru.ts';

describe('Lru', () => {
  test('keeps at most max entries and evicts unused ones first', () => {
    const c = new Lru<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    assert.equal(c.get('a'), 1); // a gets a second chance
    c.set('d', 4);
    assert.equal(c.size, 3);
    assert.equal(c.has('b'), false, 'b was the oldest unused entry');
    assert.equal(c.get('a'), 1);
    assert.equal(c.get('d'), 4);
  });

  test('when every entry was used, the oldest goes after one pass', () => {
    const c = new Lru<number, number>(2);
    c.set(1, 1);
    c.set(2, 2);
    c.get(1);
    c.get(2);
    c.set(3, 3);
    assert.equal(c.size, 2);
    assert.equal(c.has(1), false);
    assert.equal(c.has(3), true);
  });

  test('updates in place and max 0 disables the cache', () => {
    const c = new Lru<string, number>(2);
    c.set('a', 1);
    c.set('a', 2);
    assert.equal(c.get('a'), 2);
    assert.equal(c.size, 1);
    const off = new Lru<string, number>(0);
    off.set('a', 1);
    assert.equal(off.get('a'), undefined);
    assert.equal(off.size, 0);
  });

  test('stays bounded under churn', () => {
    const c = new Lru<number, number>(100);
    for (let i = 0; i < 10_000; i++) {
      c.set(i, i);
      if (i % 3 === 0) c.get(i - 50);
    }
    assert.equal(c.size, 100);
  });
});
