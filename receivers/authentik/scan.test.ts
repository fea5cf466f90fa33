import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from './client.ts';
import type { Frontier, Row, ScanEmit } from './scan.ts';
import { classify, plan, scan } from './scan.ts';
import { FakeEvents } from './testing.ts';
import { parseMicros } from './time.ts';

const T = 1_800_000_000_000_000n; // some instant in µs

function parse(page: Page): Row[] {
  const out: Row[] = [];
  for (const raw of page.results) {
    const c = parseMicros(raw.created);
    if (typeof raw.pk === 'string' && c !== undefined) out.push({ pk: raw.pk, c, raw });
  }
  return out;
}

interface RunOpts {
  fake: FakeEvents;
  frontier?: Frontier;
  upper?: bigint | null;
  hint?: number;
  hintCount?: number;
  firstSize?: number;
  /** Receives `size x page` of every request. */
  log?: string[];
  pageSize?: number;
  concurrency?: number;
  accept?: (r: Row) => boolean;
  /** Stop (throw) after this many emits, to simulate a crash. */
  stopAfter?: number;
  /** Request `-created,pk` and interpret responses in the total order. */
  total?: boolean;
}

async function run(o: RunOpts) {
  const emitted: Row[] = [];
  const emits: ScanEmit[] = [];
  let size = o.pageSize ?? 37;
  let resyncs = 0;
  const ac = new AbortController();
  const res = await scan({
    fetch: async (s, p) => {
      o.log?.push(`${s}x${p}`);
      await new Promise((r) => setImmediate(r));
      return o.fake.page(s, p, o.total ? '-created,pk' : '-created');
    },
    parse,
    pageSize: () => size,
    totalOrder: () => o.total ?? false,
    servedSize: (req, n, exact) => {
      if (exact && n < req) size = Math.min(size, n);
    },
    concurrency: o.concurrency ?? 4,
    frontier: o.frontier ?? { c: null, pks: new Set() },
    upper: o.upper === undefined ? null : o.upper,
    hint: o.hint ?? Math.max(0, o.fake.rows.length - 1),
    hintCount: o.hintCount,
    ...(o.firstSize !== undefined ? { firstSize: o.firstSize } : {}),
    accept: o.accept ?? (() => true),
    emit: async (e) => {
      if (o.stopAfter !== undefined && emits.length >= o.stopAfter) throw new Error('crash');
      await new Promise((r) => setImmediate(r));
      emitted.push(...e.rows);
      emits.push(e);
    },
    onResync: () => resyncs++,
    signal: ac.signal,
  });
  return { res, emitted, emits, resyncs };
}

function assertAscendingUnique(rows: Row[]) {
  const seen = new Set<string>();
  for (let i = 0; i < rows.length; i++) {
    assert.ok(!seen.has(rows[i]!.pk), `duplicate ${rows[i]!.pk}`);
    seen.add(rows[i]!.pk);
    if (i > 0) assert.ok(rows[i]!.c >= rows[i - 1]!.c, `not ascending at ${i}`);
  }
}

describe('plan', () => {
  test('reaches the target plus margin and starts as high as possible', () => {
    for (const [need, margin, P] of [
      [0, 2, 100],
      [99, 2, 100],
      [100, 2, 100],
      [9_999, 3, 100],
      [123_457, 5, 100],
      [5, 0, 10],
      [77_777, 2, 20],
      [1_000_003, 2, 37],
    ] as const) {
      const p = plan(need, margin, P, undefined);
      assert.ok(p.size <= P && p.size >= Math.ceil(P / 2));
      assert.equal(p.s, (p.page - 1) * p.size);
      assert.ok(p.s + p.size >= need + 1 + margin, `covers need ${need}`);
      // Typical progress is close to a full page (the overlap costs margin + a few rows).
      if (need > P * 10) assert.ok(need - p.s >= P / 2, `progress ${need - p.s} for ${need}`);
    }
  });

  test('a rank that no page of at most P rows can cross is crossed by a slightly larger page', () => {
    // 1800 and 1799 are multiples of every size in [2, 10]: only a page > 10 holds 1798..1800.
    const p = plan(1800, 2, 10, undefined);
    assert.ok(p.s <= 1798 && p.s + p.size > 1800, `${p.size}x${p.page} s=${p.s}`);
    assert.equal(p.s, (p.page - 1) * p.size);
  });

  test('caps the target at the last row when the count is known', () => {
    const p = plan(10_000, 5, 100, 1000);
    assert.ok(p.s < 1000 && p.s + p.size >= 1000);
  });
});

describe('classify', () => {
  const mk = (cs: bigint[], s = 0, last = false) => ({
    s,
    rows: cs.map((c, i) => ({ pk: `p${i}`, c, raw: {} })),
    count: 100,
    last,
    page: undefined,
    invalid: false,
    size: cs.length,
    pageNo: 1,
  });
  const f: Frontier = { c: 10n, pks: new Set() };
  test('found / above / below / end', () => {
    assert.equal(classify(mk([12n, 11n, 9n]), f), 'found');
    assert.equal(classify(mk([12n, 11n, 10n]), f), 'above');
    assert.equal(classify(mk([12n, 11n, 10n], 50, true), f), 'found');
    assert.equal(classify(mk([9n, 8n]), f), 'below');
    assert.equal(classify({ ...mk([]), invalid: true }, f), 'end');
    assert.equal(classify(mk([5n], 0, true), { c: null, pks: new Set() }), 'found');
    assert.equal(classify(mk([5n], 0, false), { c: null, pks: new Set() }), 'above');
  });
});

describe('scan without changes', () => {
  test('backfill of everything: oldest first, exactly once, overlapping requests', async () => {
    const fake = new FakeEvents(1);
    fake.seed(10_000, T);
    const { emitted, res } = await run({ fake, pageSize: 100 });
    assert.equal(emitted.length, 10_000);
    assertAscendingUnique(emitted);
    // Requests: about one per page plus the overlap overhead (~15% at page size 100), not a multiple.
    assert.ok(res.requests <= Math.ceil(10_000 / 100) * 1.25 + 5, `requests ${res.requests}`);
  });

  for (const P of [10, 11]) {
    test(`page size ${P}: 2,000 events complete exactly once (no stall at a trap rank)`, async () => {
      const fake = new FakeEvents(1);
      fake.shuffleTies = false;
      fake.seed(2_000, T);
      const { emitted, res } = await run({ fake, pageSize: P });
      assert.equal(emitted.length, 2_000);
      assertAscendingUnique(emitted);
      assert.ok(res.requests <= (2_000 / P) * 3, `requests ${res.requests}`);
    });
  }

  test('an empty list finishes at once', async () => {
    const fake = new FakeEvents(1);
    const { emitted, res } = await run({ fake, hint: 0 });
    assert.equal(emitted.length, 0);
    assert.equal(res.requests, 1);
  });

  test('upper bound: newer events are left for the incremental poller', async () => {
    const fake = new FakeEvents(2);
    fake.seed(1000, T);
    const upper = fake.rows[100]!.c;
    const { emitted } = await run({ fake, upper });
    assert.equal(emitted.length, 900);
    assert.ok(emitted.every((r) => r.c <= upper));
  });

  test('lower frontier with ties: events at the edge not yet covered are emitted', async () => {
    const fake = new FakeEvents(3);
    fake.seed(2000, T, 1_000_000n, true);
    const edgeRow = fake.rows[1500]!;
    const atEdge = fake.rows.filter((r) => r.c === edgeRow.c).map((r) => r.pk);
    const coveredPk = atEdge[0]!;
    const { emitted } = await run({ fake, frontier: { c: edgeRow.c, pks: new Set([coveredPk]) }, hint: 0 });
    const expected = fake.rows.filter((r) => r.c > edgeRow.c || (r.c === edgeRow.c && r.pk !== coveredPk));
    assert.deepEqual(new Set(emitted.map((r) => r.pk)), new Set(expected.map((r) => r.pk)));
    assertAscendingUnique(emitted);
  });

  test('incremental from the top gallops to the edge (page 1 not enough)', async () => {
    const fake = new FakeEvents(4);
    fake.seed(10_000, T);
    const edge = fake.rows[700]!.c;
    const { emitted, res } = await run({
      fake,
      frontier: { c: edge, pks: new Set([fake.rows[700]!.pk]) },
      hint: 0,
    });
    assert.equal(emitted.length, 700);
    assertAscendingUnique(emitted);
    assert.ok(res.requests < 40, `requests ${res.requests}`);
  });

  test('firstSize: a small page 1 when it reaches the edge; full pages after it when it does not', async () => {
    const fake = new FakeEvents(6);
    fake.seed(5000, T);
    const at = (i: number): Frontier => ({ c: fake.rows[i]!.c, pks: new Set([fake.rows[i]!.pk]) });
    // 17 new events above the frontier: page 1 of 20 shows them and two known ones.
    const log: string[] = [];
    const small = await run({ fake, frontier: at(17), hint: 0, firstSize: 20, pageSize: 100, log });
    assert.equal(small.emitted.length, 17);
    assert.equal(small.res.requests, 1);
    assert.equal(log[0], '20x1');
    assert.equal(small.res.lastRead?.s, 0);
    assert.equal(small.res.lastRead?.count, 5000);
    // A burst of 60: page 1 of 20 is all new; the scan goes on with full pages, nothing missed.
    log.length = 0;
    const burst = await run({ fake, frontier: at(60), hint: 0, firstSize: 20, pageSize: 100, log });
    assert.equal(burst.emitted.length, 60);
    assertAscendingUnique(burst.emitted);
    assert.equal(log[0], '20x1');
    assert.ok(
      log.slice(1).every((r) => r.startsWith('100x')),
      log.join(' '),
    );
    assert.equal(burst.res.lastRead?.s, 0);
  });

  test('a page-size clamp is detected and followed', async () => {
    const fake = new FakeEvents(5);
    fake.seed(3000, T);
    fake.maxPageSize = 20;
    const { emitted } = await run({ fake, pageSize: 100 });
    assert.equal(emitted.length, 3000);
    assertAscendingUnique(emitted);
  });
});

describe('scan under drift (randomised)', () => {
  for (const [seed, total] of [11, 12, 13, 14, 15, 16, 17, 18].map((x) => [x, x > 14] as const)) {
    test(`seed ${seed}${total ? ' (total order)' : ''}: inserts, late inserts, retention and GDPR deletes, ties`, async () => {
      const fake = new FakeEvents(seed);
      fake.seed(3000, T, 1_000_000n, seed % 2 === 0);
      const upper = fake.top()!;
      const initial = new Map(fake.rows.map((r) => [r.pk, r.c]));
      const deleted = new Set<string>();
      let clock = T;
      fake.beforeServe = () => {
        const x = fake.random();
        if (x < 0.5) {
          for (let i = 0; i < 1 + Math.floor(fake.random() * 8); i++) fake.add((clock += 1000n)); // inserts on top
        } else if (x < 0.6) {
          fake.add(upper - BigInt(Math.floor(fake.random() * 5_000_000))); // late insert below upper
        } else if (x < 0.75 && fake.rows.length > 10) {
          deleted.add(fake.deleteAt(fake.rows.length - 1)!.pk); // retention
        } else if (x < 0.85 && fake.rows.length > 10) {
          const n = 1 + Math.floor(fake.random() * 40);
          const at = Math.floor(fake.random() * (fake.rows.length - n)); // GDPR: a run of events anywhere
          for (const r of fake.rows.splice(at, n)) deleted.add(r.pk);
        }
      };
      const { emitted, resyncs } = await run({ fake, upper, pageSize: 37, total });
      assertAscendingUnique(emitted);
      const got = new Set(emitted.map((r) => r.pk));
      // Every event that existed at the start and was never deleted is delivered.
      for (const [pk] of initial) if (!deleted.has(pk)) assert.ok(got.has(pk), `missing ${pk}`);
      assert.ok(emitted.every((r) => r.c <= upper));
      assert.ok(resyncs >= 0);
    });
  }

  for (const total of [false, true]) {
    test(`a few inserts between two reads are bridged with one request, the reads ahead are kept${total ? ' (total order)' : ''}`, async () => {
      const fake = new FakeEvents(23);
      fake.seed(20_000, T);
      const upper = fake.top()!;
      let clock = T;
      let n = 0;
      // Every 25th request is served after 1-3 new events: each is a gap for a read planned without margin.
      fake.beforeServe = () => {
        if (++n % 25 === 0) for (let i = 0; i < 1 + (n % 3); i++) fake.add((clock += 10n));
      };
      const { emitted, resyncs } = await run({ fake, upper, pageSize: 100, concurrency: 4, total });
      assertAscendingUnique(emitted);
      assert.equal(emitted.length, 20_000);
      assert.equal(resyncs, 0, 'bridged gaps need no re-locating');
      // One plain walk is 200 pages; overlap and bridges stay within 1.2x.
      assert.ok(fake.requests <= 240, `${fake.requests} requests`);
    });
  }

  test('bursts of inserts during the scan cause re-locating, never skips', async () => {
    const fake = new FakeEvents(21);
    fake.seed(4000, T);
    const upper = fake.top()!;
    const initial = fake.rows.map((r) => r.pk);
    let clock = T;
    let n = 0;
    fake.beforeServe = () => {
      // Every 10th request sees a burst of 120 new events (more than two pages).
      if (++n % 10 === 0) for (let i = 0; i < 120; i++) fake.add((clock += 10n));
      else for (let i = 0; i < 3; i++) fake.add((clock += 10n));
    };
    const { emitted, resyncs } = await run({ fake, upper, pageSize: 50 });
    const got = new Set(emitted.map((r) => r.pk));
    assert.equal(emitted.length, 4000);
    for (const pk of initial) assert.ok(got.has(pk));
    assert.ok(resyncs > 0, 'expected the scan to detect shifted pages');
  });
});

describe('resume', () => {
  test('continues from a persisted frontier and hint without re-reading finished history', async () => {
    // A first run "crashes" after 60 delivered batches.
    const fake3 = new FakeEvents(31);
    fake3.seed(6000, T);
    const upper = fake3.top()!;
    const rec: ScanEmit[] = [];
    const delivered: Row[] = [];
    await scan({
      fetch: (s, p) => Promise.resolve(fake3.page(s, p)),
      parse,
      pageSize: () => 100,
      concurrency: 4,
      frontier: { c: null, pks: new Set() },
      upper,
      hint: 5999,
      hintCount: 6000,
      accept: () => true,
      emit: (e) => {
        if (rec.length >= 60) return Promise.reject(new Error('crash'));
        rec.push(e);
        delivered.push(...e.rows);
        return Promise.resolve();
      },
      signal: new AbortController().signal,
    }).catch(() => undefined);
    const last = rec[rec.length - 1]!;
    // 500 events arrive while "down"; then resume.
    let clock = T;
    for (let i = 0; i < 500; i++) fake3.add((clock += 1000n));
    const before = fake3.requests;
    const resumed = await run({
      fake: fake3,
      upper,
      frontier: last.frontier,
      hint: last.hint,
      hintCount: last.count,
      pageSize: 100,
    });
    const all = [...delivered, ...resumed.emitted];
    assert.equal(all.length, 6000);
    assertAscendingUnique(all);
    const remainingPages = Math.ceil((6000 - delivered.length) / 100);
    const used = fake3.requests - before;
    assert.ok(used <= remainingPages * 1.25 + 6, `resume used ${used} requests for ${remainingPages} pages`);
  });
});

describe('tie blocks in the total order (-created,pk)', () => {
  for (const block of [1, 99, 100, 101, 250, 1000]) {
    for (const P of [10, 100]) {
      test(`block of ${block} at page size ${P}: exact, bounded`, async () => {
        const fake = new FakeEvents(block + P);
        fake.seed(300, T);
        const mid = fake.rows[150]!.c - 1n;
        for (let i = 0; i < block; i++) fake.add(mid);
        fake.maxPageSize = 100;
        const log: string[] = [];
        // The collector asks for slices of up to 2 × page_size (at most the server's clamp).
        const { emitted } = await run({ fake, pageSize: Math.min(2 * P, 100), total: true, log });
        assert.equal(emitted.length, 300 + block);
        assertAscendingUnique(emitted);
        const pages = Math.ceil((300 + block) / P);
        console.log(`block ${block} P ${P}: ${log.length} requests for ${pages} pages`);
        assert.ok(log.length <= pages * 1.2 + 8, `${log.length} requests for ${pages} pages`);
      });
    }
  }

  test('1 older + 101 tied + 1 newer at page size 100 (the livelock of issue 11)', async () => {
    const fake = new FakeEvents(3);
    fake.seed(1, T);
    for (let i = 0; i < 101; i++) fake.add(T + 1000n);
    fake.add(T + 2000n);
    const ok = await run({ fake, pageSize: 100, total: true });
    assert.equal(ok.emitted.length, 103);
    assertAscendingUnique(ok.emitted);
    assert.ok(fake.requests < 10, `${fake.requests} requests`);
  });
});

describe('ends and malformed rows', () => {
  test('next == 0 from a stale COUNT: the page after it is asked, nothing is lost', async () => {
    const fake = new FakeEvents(4);
    fake.seed(1000, T);
    let clock = T;
    // The first request (the last page by count) sees 3 inserts land between its COUNT and its rows.
    fake.betweenCountAndRows = () => {
      for (let i = 0; i < 3; i++) fake.add((clock += 1000n));
    };
    const { emitted } = await run({ fake, pageSize: 100, total: true, hint: 999, hintCount: 1000 });
    assert.equal(emitted.length, 1003);
    assertAscendingUnique(emitted);
  });

  test('a last page made only of malformed rows does not stall the backfill', async () => {
    const fake = new FakeEvents(6);
    fake.seed(250, T);
    for (const r of fake.rows.slice(-50)) fake.malformed.add(r.pk);
    const log: string[] = [];
    const { emitted } = await run({ fake, pageSize: 50, total: true, log });
    assert.equal(emitted.length, 200);
    assertAscendingUnique(emitted);
    assert.ok(log.length < 20, `${log.length} requests`);
  });

  test('malformed rows in the middle occupy their positions', async () => {
    const fake = new FakeEvents(7);
    fake.seed(500, T);
    for (const r of fake.rows.slice(100, 180)) fake.malformed.add(r.pk);
    const { emitted } = await run({ fake, pageSize: 50, total: true });
    assert.equal(emitted.length, 420);
    assertAscendingUnique(emitted);
  });
});
