import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
  copyFile,
  unlink,
  truncate,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEADER_BYTES, Wal } from './wal.ts';
import type { SkippedRecord, WalEntry } from './wal.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wal-test-'));
  dirs.push(d);
  return d;
}

/** Batch bytes of record `id`: JSON-like text, ~200 bytes, distinct per id. */
function body(id: number): Buffer {
  return Buffer.from(JSON.stringify([{ n: id, pad: 'x'.repeat(150 + (id % 17)) }]));
}

interface Written {
  dir: string;
  /** id → where its record is (segment seq, offset, length) and its bytes. */
  entries: Map<number, WalEntry>;
  bytes: Map<number, Buffer>;
}

/** Writes batches 1..n (batch i holds i log records), acknowledges `ack`, closes (a previous run). */
async function writeRun(
  n: number,
  opts: { segmentBytes?: number; ack?: (id: number) => boolean; dir?: string } = {},
): Promise<Written> {
  const dir = opts.dir ?? (await tmp());
  const { wal } = await Wal.open(dir, { segmentBytes: opts.segmentBytes ?? 1 << 30 });
  const entries = new Map<number, WalEntry>();
  const bytes = new Map<number, Buffer>();
  for (let i = 1; i <= n; i++) {
    const e = await wal.append(i, body(i));
    assert.equal(e.id, i);
    entries.set(i, e);
    bytes.set(i, body(i));
  }
  for (const [id, e] of entries) if (opts.ack?.(id)) await wal.ack(e, 'delivered');
  await wal.close();
  return { dir, entries, bytes };
}

async function reopen(dir: string): Promise<{ wal: Wal; pending: WalEntry[]; skipped: SkippedRecord[] }> {
  const skipped: SkippedRecord[] = [];
  const { wal, pending } = await Wal.open(dir, { segmentBytes: 1 << 30, onSkipped: (s) => skipped.push(s) });
  return { wal, pending, skipped };
}

async function segPath(dir: string, seq: number): Promise<string> {
  const name = (await readdir(dir)).find((f) => f.endsWith('.seg') && Number(f.slice(0, 20)) === seq);
  assert.ok(name, `segment ${seq}`);
  return join(dir, name);
}

async function damage(dir: string, e: WalEntry, at: number, bytes: Buffer): Promise<void> {
  const path = await segPath(dir, e.segment);
  const buf = await readFile(path);
  bytes.copy(buf, e.offset + at);
  await writeFile(path, buf);
}

const ids = (p: WalEntry[]): number[] => p.map((e) => e.id);
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const lost = (s: SkippedRecord[]): SkippedRecord[] => s.filter((x) => x.lost);

void describe('queue log: resynchronising after damage in the middle of a segment', () => {
  void test('a corrupted payload (CRC mismatch) of record 40 of 100: 99 replayed in order, 1 dropped', async () => {
    const w = await writeRun(100);
    const e40 = w.entries.get(40)!;
    await damage(w.dir, e40, HEADER_BYTES + 13 + 20, Buffer.from('#####'));
    const { wal, pending, skipped } = await reopen(w.dir);
    assert.deepEqual(
      ids(pending),
      range(1, 100).filter((i) => i !== 40),
    );
    for (const e of pending) assert.deepEqual(await wal.read(e), w.bytes.get(e.id));
    assert.equal(lost(skipped).length, 1);
    assert.deepEqual(
      { ...lost(skipped)[0], file: undefined },
      {
        file: undefined,
        offset: e40.offset,
        end: e40.offset + e40.length,
        reason: 'bad_crc',
        items: 40,
        atTail: false,
        lost: true,
        batchId: 40,
      },
    );
    assert.match(lost(skipped)[0]!.file, /\.seg$/);
    await wal.close();
    // The loss is recorded: a second start replays the same batches and does not count it again.
    const again = await reopen(w.dir);
    assert.deepEqual(ids(again.pending), ids(pending));
    assert.equal(lost(again.skipped).length, 0);
    await again.wal.close();
  });

  for (const [what, len] of [
    ['a few bytes longer', 5],
    ['shorter', -30],
    ['huge (0xffffffff)', 'huge'],
    ['larger than the rest of the file', 'file'],
    ['zero', 'zero'],
  ] as const) {
    void test(`a damaged length field (${what}): only the record whose bytes are damaged is lost`, async () => {
      const w = await writeRun(100);
      const e = w.entries.get(40)!;
      const real = e.length - HEADER_BYTES;
      const v = len === 'huge' ? 0xffffffff : len === 'file' ? 1 << 28 : len === 'zero' ? 0 : real + len;
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v);
      await damage(w.dir, e, 4, b);
      const { wal, pending, skipped } = await reopen(w.dir);
      assert.deepEqual(
        ids(pending),
        range(1, 100).filter((i) => i !== 40),
      );
      assert.deepEqual(
        lost(skipped).map((s) => [s.batchId, s.items]),
        [[40, 40]],
      );
      await wal.close();
    });
  }

  void test('a zero-filled 4 KiB hole: exactly the records it touches are lost, each reported', async () => {
    const w = await writeRun(100);
    const start = w.entries.get(40)!.offset + 50;
    const seg = await segPath(w.dir, w.entries.get(40)!.segment);
    const buf = await readFile(seg);
    buf.fill(0, start, start + 4096);
    await writeFile(seg, buf);
    const touched = [...w.entries.values()]
      .filter((e) => e.offset < start + 4096 && e.offset + e.length > start)
      .map((e) => e.id);
    assert.ok(touched.length > 15, `the hole spans many records (${touched.length})`);
    const { wal, pending, skipped } = await reopen(w.dir);
    assert.deepEqual(
      ids(pending),
      range(1, 100).filter((i) => !touched.includes(i)),
    );
    assert.deepEqual(
      lost(skipped).map((s) => s.batchId),
      touched,
    );
    // The first one's header survived: its size is known; the others' headers are zeros.
    assert.equal(lost(skipped)[0]!.items, 40);
    for (const s of lost(skipped).slice(1)) assert.equal(s.items, 0);
    await wal.close();
  });

  void test('damage to batches that were already delivered loses nothing', async () => {
    const w = await writeRun(100, { ack: (id) => id <= 50 });
    const seg = await segPath(w.dir, 1);
    const buf = await readFile(seg);
    buf.fill(0, w.entries.get(10)!.offset, w.entries.get(20)!.offset);
    await writeFile(seg, buf);
    const { wal, pending, skipped } = await reopen(w.dir);
    assert.deepEqual(ids(pending), range(51, 100));
    assert.equal(lost(skipped).length, 0);
    assert.equal(skipped.length, 1, 'the damage is still reported (a warning)');
    await wal.close();
  });

  void test('a damaged tail: torn write in the newest segment, lost data in an older one', async () => {
    const w = await writeRun(60, { segmentBytes: 4096 });
    const segs = (await readdir(w.dir)).filter((f) => f.endsWith('.seg')).sort();
    assert.ok(segs.length >= 3, `${segs.length} segments`);
    const last = [...w.entries.values()].filter((e) => e.segment === 1).at(-1)!;
    await damage(w.dir, last, HEADER_BYTES + 30, Buffer.from('!!!!'));
    const newest = [...w.entries.values()].at(-1)!;
    await truncate(await segPath(w.dir, newest.segment), newest.offset + 20);
    const { wal, pending, skipped } = await reopen(w.dir);
    assert.deepEqual(
      ids(pending),
      range(1, 60).filter((i) => i !== last.id && i !== newest.id),
    );
    assert.deepEqual(
      lost(skipped).map((s) => s.batchId),
      [last.id],
    );
    const torn = skipped.filter((s) => s.atTail);
    assert.equal(torn.length, 1);
    assert.equal(torn[0]!.lost, false);
    await wal.close();
    const again = await reopen(w.dir);
    // The torn tail was cut, the loss recorded: nothing is counted twice (the damage is still warned about).
    assert.deepEqual(
      again.skipped.map((s) => [s.lost, s.atTail]),
      [[false, false]],
    );
    await again.wal.close();
  });

  void test('an old torn tail left by an earlier version (its id reused by the next run) is not a loss', async () => {
    const w = await writeRun(20);
    const e20 = w.entries.get(20)!;
    const seg1 = await segPath(w.dir, 1);
    await truncate(seg1, e20.offset + 30);
    const tornCopy = await readFile(seg1);
    // Two later runs (an earlier version did not cut the torn tail): segments 2 and 3.
    for (let run = 0; run < 2; run++) {
      const { wal } = await Wal.open(w.dir, { segmentBytes: 1 << 30 });
      for (let i = 0; i < 3; i++) await wal.append(1, body(100 + i));
      await wal.close();
    }
    await writeFile(seg1, tornCopy);
    const { wal, pending, skipped } = await reopen(w.dir);
    assert.equal(lost(skipped).length, 0, JSON.stringify(skipped));
    assert.equal(skipped.filter((x) => x.atTail).length, 1);
    assert.equal(pending.length, 19 + 6);
    await wal.close();
  });

  void test('a deleted segment in the middle, an empty segment, an unreadable one: no crash', async () => {
    const w = await writeRun(60, { segmentBytes: 4096 });
    await unlink(await segPath(w.dir, 2));
    const third = await segPath(w.dir, 3);
    await unlink(third);
    await mkdir(third); // readFile fails with EISDIR
    // An unreadable ack file: that segment's batches are all replayed (duplicates, not a loss).
    const e1 = w.entries.get(1)!;
    const { wal: w1 } = await Wal.open(w.dir, { segmentBytes: 1 << 30 });
    await w1.ack(e1, 'delivered');
    await w1.close();
    const ack1 = (await segPath(w.dir, 1)).replace(/\.seg$/, '.ack');
    await unlink(ack1);
    await mkdir(ack1);
    const { wal, pending, skipped } = await reopen(w.dir);
    assert.deepEqual(
      skipped.map((s) => [s.reason, s.lost]),
      [
        ['unreadable', false],
        ['unreadable', true],
      ],
    );
    const gone = new Set(
      [...w.entries.values()].filter((e) => e.segment === 2 || e.segment === 3).map((e) => e.id),
    );
    assert.deepEqual(
      ids(pending),
      range(1, 60).filter((i) => !gone.has(i)),
    );
    for (const e of pending) assert.deepEqual(await wal.read(e), w.bytes.get(e.id));
    await wal.close();
  });

  void test('random damage (seeded fuzz): never throws, never replays a record that was not written', async () => {
    const seed = Number(process.env['WAL_FUZZ_SEED'] ?? 16);
    let state = seed >>> 0;
    const rnd = (): number => {
      // mulberry32
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const int = (n: number): number => Math.floor(rnd() * n);
    const pristine = await writeRun(80, { segmentBytes: 6000, ack: (id) => id % 7 === 0 });
    const files = (await readdir(pristine.dir)).filter((f) => /\.(seg|ack)$/.test(f));
    const segFiles = files.filter((f) => f.endsWith('.seg')).sort();
    const iterations = 150;
    for (let it = 0; it < iterations; it++) {
      const dir = await tmp();
      for (const f of files) await copyFile(join(pristine.dir, f), join(dir, f));
      /** Per segment seq: damaged byte ranges; Infinity = from there to the end (truncated/deleted). */
      const hit = new Map<number, [number, number][]>();
      const shifted = new Set<number>();
      const note = (seq: number, a: number, b: number) => hit.set(seq, [...(hit.get(seq) ?? []), [a, b]]);
      for (let k = 1 + int(3); k > 0; k--) {
        const name = segFiles[int(segFiles.length)]!;
        const seq = Number(name.slice(0, 20));
        if (shifted.has(seq)) continue;
        const path = join(dir, name);
        const buf = await readFile(path).catch(() => undefined);
        if (!buf) continue;
        const at = int(buf.length + 1);
        const kind = int(7);
        if (kind === 0) {
          // a few random bytes
          const n = 1 + int(8);
          for (let j = 0; j < n && at + j < buf.length; j++) buf[at + j] = int(256);
          note(seq, at, at + n);
        } else if (kind === 1) {
          const n = 1 + int(4096);
          buf.fill(0, at, Math.min(buf.length, at + n));
          note(seq, at, at + n);
        } else if (kind === 2) {
          // a random length field
          const e = [...pristine.entries.values()].filter((x) => x.segment === seq)[int(3)];
          if (e && e.offset + 8 <= buf.length) {
            buf.writeUInt32BE(int(2 ** 32), e.offset + 4);
            note(seq, e.offset + 4, e.offset + 8);
          }
        } else if (kind === 3) {
          await writeFile(path, buf.subarray(0, at));
          note(seq, at, Infinity);
          continue;
        } else if (kind === 4) {
          await unlink(path);
          note(seq, 0, Infinity);
          continue;
        } else if (kind === 5) {
          // garbage inserted (shifts everything after it)
          const g = Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)));
          await writeFile(path, Buffer.concat([buf.subarray(0, at), g, buf.subarray(at)]));
          // Records wholly after `at` are intact, only shifted; no further damage to this segment.
          note(seq, at, at + 1);
          shifted.add(seq);
          continue;
        } else {
          // a copy of an earlier part of the segment over a later part (misdirected write)
          const from = int(Math.max(1, at));
          const n = 1 + int(512);
          buf.copy(buf, at, from, Math.min(buf.length, from + n));
          note(seq, at, at + n);
        }
        await writeFile(path, buf);
      }
      let opened: Awaited<ReturnType<typeof reopen>>;
      try {
        opened = await reopen(dir);
      } catch (err) {
        assert.fail(`iteration ${it} (seed ${seed}): open threw ${String(err)}`);
      }
      const { wal, pending, skipped } = opened;
      const seen = new Set<number>();
      for (const e of pending) {
        assert.ok(pristine.bytes.has(e.id), `iteration ${it}: replayed id ${e.id} was never written`);
        assert.ok(!seen.has(e.id), `iteration ${it}: id ${e.id} replayed twice`);
        seen.add(e.id);
        assert.deepEqual(await wal.read(e), pristine.bytes.get(e.id), `iteration ${it}: bytes of ${e.id}`);
        assert.notEqual(e.id % 7, 0, `iteration ${it}: acknowledged batch ${e.id} replayed`);
      }
      // Every intact, unacknowledged record is replayed.
      for (const [id, e] of pristine.entries) {
        if (id % 7 === 0) continue;
        const ranges = hit.get(e.segment) ?? [];
        const damaged = ranges.some(([a, b]) => a < e.offset + e.length && b > e.offset);
        if (!damaged) assert.ok(seen.has(id), `iteration ${it}: intact batch ${id} not replayed`);
      }
      for (const s of skipped) assert.ok(!s.lost || s.batchId === undefined || !seen.has(s.batchId));
      await wal.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
