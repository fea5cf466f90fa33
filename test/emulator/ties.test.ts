/**
 * Tie blocks, count/rows races and GDPR mass deletion, as observed on real 2023.10.7 and 2025.12.4
 * (../shared/spec/authentik-api.md "Verified against real servers"; captures tie_ordering_check.txt).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from './index.ts';
import type { Emulator, EmulatorOptions } from './index.ts';
import { get } from './helpers.ts';
import type { Json } from './helpers.ts';

const EV = '/api/v3/events/events/';

async function withEmu<T>(o: EmulatorOptions, fn: (e: Emulator) => Promise<T>): Promise<T> {
  const e = await startEmulator(o);
  try {
    return await fn(e);
  } finally {
    await e.close();
  }
}

async function walk(e: Emulator, ordering: string, size: number): Promise<string[]> {
  const out: string[] = [];
  for (let page = 1; ; page++) {
    const r = await get(e, `${EV}?ordering=${ordering}&page_size=${size}&page=${page}`);
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.results.map((x: Json) => x.pk as string));
    if (r.json.pagination.next === 0) return out;
  }
}

void describe('tie blocks', () => {
  void test('a plain walk under -created misses and doubles tied rows; -created,pk is total and stable', async () => {
    await withEmu({ events: 300, version: '2025.12' }, async (e) => {
      const mid = e.events.allPks()[150]!;
      const at = new Date(Date.parse((e.events.get(mid) as { created: string }).created) + 1);
      const tied = e.events.insertTied(250, at);
      assert.equal(tied.length, 250);
      const all = new Set(e.events.allPks());
      assert.equal(all.size, 550);

      const plain = await walk(e, '-created', 100);
      assert.equal(plain.length, 550);
      const unique = new Set(plain);
      assert.ok(unique.size < 550, `unstable tie order must lose rows in a plain walk (got ${unique.size})`);

      const stable = await walk(e, '-created,pk', 100);
      assert.deepEqual(new Set(stable), all);
      assert.equal(stable.length, 550);
      // within the block, pk ascending; the same on every walk
      const inBlock = stable.filter((pk) => tied.includes(pk));
      assert.deepEqual(inBlock, [...inBlock].sort());
      assert.deepEqual(await walk(e, '-created,pk', 100), stable);
      const asc = await walk(e, 'created,-pk', 100);
      assert.deepEqual(asc, [...stable].reverse());
    });
  });

  void test('every response is still sorted by created (ties only permute among themselves)', async () => {
    await withEmu({ events: 50, version: '2024.2' }, async (e) => {
      e.events.insertTied(30);
      const r = await get(e, `${EV}?page_size=20`);
      const cs = r.json.results.map((x: Json) => Date.parse(x.created as string));
      for (let i = 1; i < cs.length; i++) assert.ok(cs[i - 1] >= cs[i]);
    });
  });
});

void describe('count and rows from two moments', () => {
  void test('inserts between COUNT and the rows: next == 0 on a page that is not the true last one', async () => {
    await withEmu({ events: 1000, version: '2025.12' }, async (e) => {
      e.events.betweenCountAndRows(() => e.events.insert(3));
      const r = await get(e, `${EV}?ordering=-created,pk&page_size=100&page=10`);
      assert.equal(r.json.pagination.count, 1000);
      assert.equal(r.json.pagination.next, 0);
      assert.equal(r.json.results.length, 100);
      // the three oldest rows are now on page 11, which the next request (fresh count) serves
      const r11 = await get(e, `${EV}?ordering=-created,pk&page_size=100&page=11`);
      assert.equal(r11.status, 200);
      assert.equal(r11.json.results.length, 3);
    });
  });
});

void describe('GDPR cleanup', () => {
  void test("deleting a user's events removes rows from the middle of the table at once", async () => {
    await withEmu({ events: 2000 }, async (e) => {
      await Promise.resolve();
      const pks = e.events.allPks();
      const counts = new Map<number, number>();
      for (const pk of pks) {
        const u = e.events.userPkOf(pk);
        if (u !== undefined) counts.set(u, (counts.get(u) ?? 0) + 1);
      }
      const [user, n] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
      assert.equal(e.events.deleteByUserPk(user), n);
      assert.equal(e.events.count(), 2000 - n);
    });
  });
});
