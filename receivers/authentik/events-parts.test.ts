/** Unit tests of the pure parts of the events collector (split out of events.ts). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLogger } from '../../test/kit/index.ts';
import type { BackfillState } from './checkpoint.ts';
import { BackfillProgress, fmtDuration } from './events-backfill.ts';
import { decideAfterNew, firstPageSize, judgeProbe, measure } from './events-decide.ts';
import { licenceValid, qlHonoured } from './events-ql.ts';
import { countLate, forgetUnseen } from './events-rescan.ts';
import { frontierFromJson, frontierKey, frontierToJson } from './events-state.ts';
import { StallDetector } from './stall.ts';
import { parseMicros } from './time.ts';

const at = (us: number) => `2023-11-14T22:13:20.${String(us).padStart(6, '0')}Z`;
const edge = (us: number) => parseMicros(at(us))!;

describe('events-state: frontier mapping', () => {
  test('round trip keeps the total-order position and the malformed rows covered; old checkpoints load', () => {
    const f = { c: 1_700_000_000_000_001n, pks: new Set(['a']), pk: 'b', bad: new Set(['pk:x']) };
    const back = frontierFromJson(frontierToJson(f));
    assert.deepEqual(back, f);
    assert.equal(frontierKey(back), frontierKey(f));
    assert.deepEqual(frontierFromJson({ c: null, pks: [] }), { c: null, pks: new Set() });
    assert.notEqual(frontierKey({ ...f, pk: 'c' }), frontierKey(f));
  });
});

describe('events-decide', () => {
  const known = new Set(['p1', 'p2', 'p3']);
  const base = {
    countRef: 100,
    n: 2,
    due: false,
    verifyReread: false,
    known: 3,
    isKnown: (pk: string) => known.has(pk),
  };
  test('count check passes: the poll ends; a disagreeing top is a mismatch; otherwise a probe', () => {
    assert.deepEqual(decideAfterNew({ ...base, count: 102, top: undefined }).outcome, {
      kind: 'count',
      count: 102,
      verified: false,
    });
    assert.deepEqual(
      decideAfterNew({ ...base, count: 102, top: { rank: 3, above: ['p1', 'p2', 'p3'] } }).outcome,
      {
        kind: 'count',
        count: 102,
        verified: true,
      },
    );
    assert.deepEqual(
      decideAfterNew({ ...base, count: 102, top: { rank: 4, above: ['p1', 'p2', 'p3', 'zz'] } }).outcome,
      {
        kind: 'mismatch',
        rank: 4,
        count: 102,
      },
    );
    assert.equal(decideAfterNew({ ...base, count: 101, top: undefined }).outcome, 'probe');
    assert.deepEqual(
      decideAfterNew({ ...base, count: 102, due: true, verifyReread: true, top: undefined }).outcome,
      {
        kind: 'reread',
        count: 102,
      },
    );
  });
  test('a probe agrees, agrees after inserts at the top, or disagrees', () => {
    const isKnown = (pk: string) => known.has(pk);
    assert.deepEqual(judgeProbe({ rank: 3, above: ['p3'] }, 3, isKnown, 102, 102), {
      kind: 'verified',
      countRef: 102,
    });
    assert.deepEqual(judgeProbe({ rank: 5, above: ['p3'] }, 3, isKnown, 102, 104), {
      kind: 'verified',
      countRef: 102,
    });
    assert.deepEqual(judgeProbe({ rank: 5, above: ['p3'] }, 3, isKnown, 102, 103), {
      kind: 'mismatch',
      rank: 5,
      count: 103,
    });
    assert.deepEqual(judgeProbe(undefined, 3, isKnown, 102, 103), {
      kind: 'mismatch',
      rank: undefined,
      count: 103,
    });
  });
  test('measure: rank of the first event older than the edge', () => {
    const rows = [30, 20, 10].map((c, i) => ({ pk: `p${i}`, created: at(c) }));
    assert.deepEqual(measure(rows, 0, false, edge(15)), { rank: 2, above: ['p0', 'p1'] });
    assert.equal(measure(rows, 5, false, edge(40)), undefined, 'first row already older at s > 0');
    assert.deepEqual(measure(rows, 0, true, edge(1)), { rank: 3, above: ['p0', 'p1', 'p2'] });
    assert.equal(measure([{ pk: 1, created: 'x' }], 0, true, null), undefined);
  });
  test('first page size follows the recent rate plus the largest excess, clamped to [10, P]', () => {
    assert.equal(firstPageSize([], undefined, 0, 100), 100);
    assert.equal(firstPageSize([{ ms: 10_000, n: 17 }], 0, 10_000, 100), 17 + 2 + 2);
    assert.equal(firstPageSize([{ ms: 10_000, n: 0 }], 0, 10_000, 100), 10);
    assert.equal(firstPageSize([{ ms: 10_000, n: 1000 }], 0, 10_000, 100), 100);
  });
});

describe('events-ql', () => {
  test('licence summary: valid statuses honour QL, others not, older shape with valid', () => {
    assert.equal(licenceValid({ status: 'valid' }), true);
    assert.equal(licenceValid({ status: 'expiry_soon' }), true);
    assert.equal(licenceValid({ status: 'unlicensed' }), false);
    assert.equal(licenceValid({ status: 'expired' }), false);
    assert.equal(licenceValid({ valid: true }), true);
    assert.equal(licenceValid('nope'), undefined);
  });
  test('a QL answer is honoured only when nothing older came back and page 1 events at the bound did', () => {
    const r = (pk: string, c: bigint) => ({ pk, c, raw: {} });
    assert.ok(qlHonoured([r('a', 10n), r('b', 11n)], 10n, ['a']));
    assert.ok(!qlHonoured([r('a', 9n)], 10n, []));
    assert.ok(!qlHonoured([r('b', 11n)], 10n, ['a']));
  });
});

describe('events-rescan', () => {
  test('known events not seen by a re-read are forgotten; late commits counted', () => {
    const w = new Map([
      ['a', 5n],
      ['b', 10n],
      ['c', 12n],
    ]);
    assert.equal(forgetUnseen(w, 10n, new Set(['c'])), 1);
    assert.deepEqual([...w.keys()], ['a', 'c']);
    assert.equal(
      countLate(
        [
          { pk: 'x', c: 9n, raw: {} },
          { pk: 'y', c: 20n, raw: {} },
        ],
        10n,
      ),
      1,
    );
    assert.equal(countLate([{ pk: 'x', c: 9n, raw: {} }], null), 0);
  });
});

describe('events-backfill progress', () => {
  test('pages, totals and the progress line cadence', () => {
    let now = 0;
    const bf: BackfillState = {
      upper: '1',
      frontier: { c: null, pks: [] },
      hint: 0,
      count: 0,
      pagesDone: 0,
      pagesTotal: 10,
      emitted: 0,
      startedAt: 0,
      handover: [],
    };
    const log = new MemoryLogger();
    const p = new BackfillProgress(bf, log, () => now);
    p.delivered(3, 300, 1500, 100, false);
    assert.equal(bf.pagesDone, 3);
    assert.equal(bf.pagesTotal, 18);
    now = 1000;
    assert.equal(p.report(false), false);
    assert.equal(p.report(true), true);
    assert.match(log.lines[0]!.msg, /3\/18 pages, 300 events, 300 events\/s, ETA 5s/);
    p.delivered(1, 10, 0, 100, true);
    assert.equal(bf.pagesTotal, bf.pagesDone);
    assert.equal(fmtDuration(3_725_000), '1h02m');
  });
});

describe('stall detector', () => {
  test('stalls after too many requests or too long without progress, caps the rate, recovers', () => {
    let now = 0;
    const changes: (string | undefined)[] = [];
    const s = new StallDetector({
      maxRequests: 5,
      maxMs: 10_000,
      stalledIntervalMs: 1000,
      onChange: (r) => changes.push(r),
      now: () => now,
    });
    for (let i = 0; i < 5; i++) assert.equal(s.beforeRequest(), 0);
    assert.equal(s.stalled, false);
    s.beforeRequest();
    assert.equal(s.stalled, true);
    assert.match(changes[0]!, /no progress/);
    now = 5000;
    assert.equal(s.beforeRequest(), 0, 'a second has passed');
    assert.equal(s.beforeRequest(), 1000, 'rate capped to one per second');
    s.progress();
    assert.equal(s.stalled, false);
    assert.deepEqual(changes.slice(1), [undefined]);
    // time-based
    now = 20_000;
    s.beforeRequest();
    now = 40_000;
    s.beforeRequest();
    assert.equal(s.stalled, true);
    assert.equal(changes.length, 3, 'one change per episode');
  });
});
