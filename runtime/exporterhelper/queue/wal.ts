/**
 * Write-ahead log of the persistent sending queue.
 *
 * Layout of the queue directory:
 * - `LOCK`: who owns the directory: `{"pid", "start", "hostname", "token"}` (JSON), created with O_EXCL
 *   (`wx`) so two processes can never both take it. `start` is the owner's start time (Linux: field 22
 *   of /proc/<pid>/stat), so a lock whose pid now belongs to another process (pid reuse after a crash,
 *   even another node process) is recognised as stale and taken over; so is a lock of a dead process.
 * - `<seq>.seg`: a segment, an append-only file of batch records. `<seq>` is a zero-padded counter.
 * - `<seq>.ack`: the acknowledgements of that segment's batches (delivered or dropped).
 *
 * Every record, in both file kinds, is framed as
 *
 *     magic u32 BE (0x414b5131, "AKQ1") | payload length u32 BE | CRC-32 of payload u32 BE | payload
 *
 * Batch payload: `0x01 | id u64 BE | record count u32 BE | batch bytes` (see codec.ts).
 * Ack payload:   `0x02 | id u64 BE | outcome u8` (0 delivered, 1 dropped).
 *
 * Appends and acks go through one writer loop that group-commits: all operations queued while a write
 * is in progress are written together and every touched file is fdatasync'ed once before any of the
 * operations resolves. A segment (and its ack file) is deleted when it is sealed (a newer segment
 * exists) and every batch in it is acknowledged. New segments are created when the active one reaches
 * `segmentBytes`, and always on open (old segments are never appended to after a restart).
 *
 * Opening scans every segment: batches without an ack are returned in id order for replay. A record
 * that is cut short at the end of a file (torn write after a crash) or whose CRC does not match is
 * skipped and reported through `onSkipped`; the scan resynchronises on the next magic number. It never
 * throws because of file contents.
 */
import { open, readdir, readFile, rm, stat, unlink, mkdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

export const MAGIC = 0x414b5131;
export const HEADER_BYTES = 12;
const TYPE_BATCH = 1;
const TYPE_ACK = 2;
/** Bytes of a batch payload before the batch bytes. */
const BATCH_META_BYTES = 1 + 8 + 4;
const ACK_PAYLOAD_BYTES = 1 + 8 + 1;
/** Sanity bound on one record's payload (a corrupted length field must not make us allocate GiBs). */
const MAX_PAYLOAD = 1024 * 1024 * 1024;

/** One stored, not yet acknowledged batch. */
export interface WalEntry {
  id: number;
  segment: number;
  /** Offset of the framed record in the segment file. */
  offset: number;
  /** Length of the framed record (header + payload). */
  length: number;
  /** Number of log records in the batch. */
  items: number;
}

export type SkipReason = 'torn_tail' | 'bad_crc' | 'bad_header' | 'duplicate' | 'bad_payload';

export interface SkippedRecord {
  file: string;
  offset: number;
  reason: SkipReason;
  /** Log records the damaged record claimed to hold (best effort: the header may be damaged too). */
  items: number;
  /** True when the damaged record was the last one of its file (a torn write of an unacknowledged append). */
  atTail: boolean;
}

export interface WalOptions {
  /** Size at which the active segment is sealed and a new one started. */
  segmentBytes: number;
  /** Called for every damaged or skipped record found while opening. */
  onSkipped?: (s: SkippedRecord) => void;
  /** Called when a stale `LOCK` (its owner is gone) is taken over. */
  onStaleLock?: (why: string) => void;
}

export type AckOutcome = 'delivered' | 'dropped';

interface Segment {
  seq: number;
  path: string;
  ackPath: string;
  size: number;
  ackSize: number;
  /** Batches stored here and not yet acknowledged. */
  live: number;
  sealed: boolean;
  fh?: FileHandle | undefined;
  ackFh?: FileHandle | undefined;
}

interface AppendOp {
  kind: 'append';
  items: number;
  bytes: Buffer;
  resolve: (e: WalEntry) => void;
  reject: (err: unknown) => void;
}
interface AckOp {
  kind: 'ack';
  entry: WalEntry;
  outcome: AckOutcome;
  resolve: () => void;
  reject: (err: unknown) => void;
}
interface RotateOp {
  kind: 'rotate';
  resolve: () => void;
  reject: (err: unknown) => void;
}
type Op = AppendOp | AckOp | RotateOp;

/** Frames a payload: magic, length, CRC-32, payload. */
export function frame(payload: Buffer): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(payload.length, 4);
  header.writeUInt32BE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

/** Bytes a batch of `n` encoded bytes takes in a segment. */
export function recordBytes(n: number): number {
  return HEADER_BYTES + BATCH_META_BYTES + n;
}

interface ScannedRecord {
  offset: number;
  end: number;
  payload: Buffer;
}

/**
 * Scans framed records in `buf`. Damaged stretches are reported via `onBad` (with the offset and
 * whether the stretch reaches the end of the buffer) and skipped by searching for the next magic.
 */
export function scanRecords(
  buf: Buffer,
  onBad: (
    offset: number,
    reason: 'torn_tail' | 'bad_crc' | 'bad_header',
    atTail: boolean,
    claimed: Buffer | undefined,
  ) => void,
): { records: ScannedRecord[]; validEnd: number } {
  const records: ScannedRecord[] = [];
  let pos = 0;
  let validEnd = 0;
  const magic = Buffer.alloc(4);
  magic.writeUInt32BE(MAGIC, 0);
  const resync = (from: number): number => {
    const next = buf.indexOf(magic, from);
    return next < 0 ? buf.length : next;
  };
  while (pos < buf.length) {
    if (buf.length - pos < HEADER_BYTES) {
      onBad(pos, 'torn_tail', true, undefined);
      break;
    }
    if (buf.readUInt32BE(pos) !== MAGIC) {
      const next = resync(pos + 1);
      onBad(pos, 'bad_header', next >= buf.length, undefined);
      pos = next;
      continue;
    }
    const len = buf.readUInt32BE(pos + 4);
    const crc = buf.readUInt32BE(pos + 8);
    const end = pos + HEADER_BYTES + len;
    if (len > MAX_PAYLOAD) {
      const next = resync(pos + 1);
      onBad(pos, 'bad_header', next >= buf.length, undefined);
      pos = next;
      continue;
    }
    if (end > buf.length) {
      // Either a torn final write or a damaged length field in the middle: look for a later record.
      const next = resync(pos + 1);
      onBad(
        pos,
        next >= buf.length ? 'torn_tail' : 'bad_header',
        next >= buf.length,
        buf.subarray(pos + HEADER_BYTES),
      );
      pos = next;
      continue;
    }
    const payload = buf.subarray(pos + HEADER_BYTES, end);
    if (crc32(payload) !== crc) {
      // Trust the length only if a record (or the end of file) follows it; else resync byte-wise.
      const plausible = end === buf.length || (end + 4 <= buf.length && buf.readUInt32BE(end) === MAGIC);
      const next = plausible ? end : resync(pos + 1);
      onBad(pos, 'bad_crc', next >= buf.length, payload);
      pos = next;
      continue;
    }
    records.push({ offset: pos, end, payload });
    pos = end;
    validEnd = end;
  }
  return { records, validEnd };
}

function claimedItems(payload: Buffer | undefined): number {
  if (!payload || payload.length < BATCH_META_BYTES || payload[0] !== TYPE_BATCH) return 0;
  const n = payload.readUInt32BE(9);
  return n <= 10_000_000 ? n : 0;
}

function segName(seq: number): string {
  return String(seq).padStart(20, '0');
}

/**
 * Start time of a process, as an opaque string (Linux: clock ticks since boot, field 22 of
 * /proc/<pid>/stat). Undefined when the process does not exist or there is no /proc.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may contain spaces: count from the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // rest[0] is field 3 (state), so field 22 (starttime) is rest[19]
  } catch {
    return undefined;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface LockOwner {
  pid: number;
  start?: string | undefined;
  hostname?: string | undefined;
  token?: string | undefined;
}

function parseLock(text: string): LockOwner | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return { pid: Number(t) }; // written by earlier versions: a bare pid
  try {
    const v = JSON.parse(t) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && Number.isInteger(v.pid) && v.pid > 0) {
      return { pid: v.pid, start: v.start, hostname: v.hostname, token: v.token };
    }
  } catch {
    // unreadable: stale (see takeLock)
  }
  return undefined;
}

/** Lock tokens taken by this process (to tell an in-process leftover from one of an earlier process). */
const heldTokens = new Set<string>();

/** Why the owner recorded in a lock is not running any more, or undefined when it still runs. */
function staleReason(o: LockOwner): string | undefined {
  if (o.hostname !== undefined && o.hostname !== hostname()) return undefined; // cannot check: respect it
  if (o.pid === process.pid) {
    // Another instance in this very process that was never closed (an in-process restart), or an
    // earlier process that had our pid: either way nobody else writes here.
    return o.token !== undefined && heldTokens.has(o.token)
      ? 'an earlier queue of this process did not release it'
      : 'it was left by an earlier process with the same pid';
  }
  if (!pidExists(o.pid)) return `process ${o.pid} that held it is gone`;
  const now = processStart(o.pid);
  if (o.start !== undefined && now !== undefined && now !== o.start) {
    return `pid ${o.pid} now belongs to another process (started at a different time)`;
  }
  if (o.start === undefined && now !== undefined) {
    // A lock of an earlier version (bare pid): only a collector is a plausible owner.
    try {
      const cmd = readFileSync(`/proc/${o.pid}/cmdline`, 'utf8');
      if (!/authentik-collector/.test(cmd)) return `pid ${o.pid} now belongs to another program`;
    } catch {
      return `process ${o.pid} that held it is gone`;
    }
  }
  return undefined;
}

/** Thrown when another live process owns the queue directory. */
export class WalLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(
      `queue directory ${dir} is in use by process ${pid}; give each collector its own storage directory, or delete ${join(dir, 'LOCK')} if that process no longer runs`,
    );
    this.name = 'WalLockedError';
  }
}

export class Wal {
  readonly dir: string;
  readonly #opts: WalOptions;
  readonly #segments = new Map<number, Segment>();
  #active: Segment | undefined;
  #nextSeq = 1;
  #nextId = 1;
  #ops: Op[] = [];
  #running: Promise<void> | undefined;
  #closed = false;
  #diskBytes = 0;
  #lockToken: string | undefined;

  private constructor(dir: string, opts: WalOptions) {
    this.dir = dir;
    this.#opts = opts;
  }

  /** Bytes currently used on disk by segments and ack files. */
  get diskBytes(): number {
    return this.#diskBytes;
  }

  /** Number of segment files. */
  get segmentCount(): number {
    return this.#segments.size;
  }

  /**
   * Opens (creating if needed) the log in `dir` and returns the unacknowledged batches, oldest first.
   */
  static async open(dir: string, opts: WalOptions): Promise<{ wal: Wal; pending: WalEntry[] }> {
    await mkdir(dir, { recursive: true });
    const token = await takeLock(dir, opts.onStaleLock);
    const wal = new Wal(dir, opts);
    wal.#lockToken = token;
    const pending = await wal.#scan();
    return { wal, pending };
  }

  async #scan(): Promise<WalEntry[]> {
    const names = await readdir(this.dir);
    const segSeqs = new Set<number>();
    const ackSeqs = new Set<number>();
    for (const n of names) {
      const m = /^(\d{20})\.(seg|ack)$/.exec(n);
      if (!m) continue;
      (m[2] === 'seg' ? segSeqs : ackSeqs).add(Number(m[1]));
    }
    // An ack file without its segment is left over from a deletion cut short.
    for (const seq of ackSeqs) {
      if (!segSeqs.has(seq)) await rm(join(this.dir, `${segName(seq)}.ack`), { force: true });
    }
    const seen = new Set<number>();
    const pending: WalEntry[] = [];
    for (const seq of [...segSeqs].sort((a, b) => a - b)) {
      const path = join(this.dir, `${segName(seq)}.seg`);
      const ackPath = join(this.dir, `${segName(seq)}.ack`);
      const acked = new Set<number>();
      let ackSize = 0;
      if (ackSeqs.has(seq)) {
        const abuf = await readFile(ackPath);
        const { records, validEnd } = scanRecords(abuf, (offset, reason, atTail) =>
          this.#opts.onSkipped?.({ file: ackPath, offset, reason, items: 0, atTail }),
        );
        for (const r of records) {
          if (r.payload.length === ACK_PAYLOAD_BYTES && r.payload[0] === TYPE_ACK) {
            acked.add(Number(r.payload.readBigUInt64BE(1)));
          }
        }
        ackSize = abuf.length;
        if (validEnd < abuf.length) {
          // Cut the torn tail so later acks appended to this file stay readable.
          const fh = await open(ackPath, 'r+');
          try {
            await fh.truncate(validEnd);
            await fh.datasync();
          } finally {
            await fh.close();
          }
          ackSize = validEnd;
        }
      }
      const buf = await readFile(path);
      const { records } = scanRecords(buf, (offset, reason, atTail, claimed) =>
        this.#opts.onSkipped?.({ file: path, offset, reason, items: claimedItems(claimed), atTail }),
      );
      const seg: Segment = { seq, path, ackPath, size: buf.length, ackSize, live: 0, sealed: true };
      for (const r of records) {
        const p = r.payload;
        if (p.length < BATCH_META_BYTES || p[0] !== TYPE_BATCH) {
          this.#opts.onSkipped?.({
            file: path,
            offset: r.offset,
            reason: 'bad_payload',
            items: 0,
            atTail: false,
          });
          continue;
        }
        const id = Number(p.readBigUInt64BE(1));
        const items = p.readUInt32BE(9);
        this.#nextId = Math.max(this.#nextId, id + 1);
        if (acked.has(id)) continue;
        if (seen.has(id)) {
          this.#opts.onSkipped?.({
            file: path,
            offset: r.offset,
            reason: 'duplicate',
            items: 0,
            atTail: false,
          });
          continue;
        }
        seen.add(id);
        seg.live++;
        pending.push({ id, segment: seq, offset: r.offset, length: r.end - r.offset, items });
      }
      this.#nextSeq = Math.max(this.#nextSeq, seq + 1);
      if (seg.live === 0) {
        await unlink(path);
        await rm(ackPath, { force: true });
      } else {
        this.#segments.set(seq, seg);
        this.#diskBytes += seg.size + seg.ackSize;
      }
    }
    pending.sort((a, b) => a.id - b.id);
    return pending;
  }

  /** Appends batches (each `bytes` from codec.ts); resolves once they are on disk (fdatasync). */
  append(items: number, bytes: Buffer): Promise<WalEntry> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'append', items, bytes, resolve, reject }));
  }

  /** Records the outcome of a batch; its segment is deleted once all its batches are acknowledged. */
  ack(entry: WalEntry, outcome: AckOutcome): Promise<void> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'ack', entry, outcome, resolve, reject }));
  }

  /** Seals the active segment (deleting it if fully acknowledged) so its space can be reclaimed. */
  rotate(): Promise<void> {
    return new Promise((resolve, reject) => this.#enqueue({ kind: 'rotate', resolve, reject }));
  }

  /** Reads a stored batch back (the batch bytes, without framing); verifies its CRC. */
  async read(entry: WalEntry): Promise<Buffer> {
    const seg = this.#segments.get(entry.segment);
    if (!seg) throw new Error(`segment ${entry.segment} of batch ${entry.id} is gone`);
    const buf = Buffer.allocUnsafe(entry.length);
    const fh = await open(seg.path, 'r');
    try {
      const { bytesRead } = await fh.read(buf, 0, entry.length, entry.offset);
      if (bytesRead !== entry.length) throw new Error(`batch ${entry.id}: short read`);
    } finally {
      await fh.close();
    }
    const len = buf.readUInt32BE(4);
    const payload = buf.subarray(HEADER_BYTES);
    if (buf.readUInt32BE(0) !== MAGIC || len !== payload.length || crc32(payload) !== buf.readUInt32BE(8)) {
      throw new Error(`batch ${entry.id}: stored record is damaged (CRC mismatch)`);
    }
    return payload.subarray(BATCH_META_BYTES);
  }

  /** Waits for queued writes, then closes every file. Later calls reject. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running;
    for (const seg of this.#segments.values()) await closeSegmentFiles(seg);
    const lock = join(this.dir, 'LOCK');
    const owner = parseLock(await readFile(lock, 'utf8').catch(() => ''));
    if (this.#lockToken !== undefined) heldTokens.delete(this.#lockToken);
    if (owner?.token === this.#lockToken) await rm(lock, { force: true });
  }

  #enqueue(op: Op): void {
    if (this.#closed) {
      op.reject(new Error('queue log is closed'));
      return;
    }
    this.#ops.push(op);
    this.#running ??= this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      while (this.#ops.length) {
        const ops = this.#ops;
        this.#ops = [];
        await this.#apply(ops);
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #apply(ops: Op[]): Promise<void> {
    const touched = new Set<FileHandle>();
    const done: (() => void)[] = [];
    const failed: { op: Op; err: unknown }[] = [];
    for (const op of ops) {
      try {
        if (op.kind === 'append') {
          const entry = await this.#writeBatch(op.items, op.bytes, touched);
          done.push(() => op.resolve(entry));
        } else if (op.kind === 'ack') {
          await this.#writeAck(op.entry, op.outcome, touched);
          done.push(() => op.resolve());
        } else {
          if (this.#active) this.#seal(this.#active, touched);
          done.push(() => op.resolve());
        }
      } catch (err) {
        failed.push({ op, err });
      }
    }
    let syncErr: unknown;
    for (const fh of touched) {
      try {
        await fh.datasync();
      } catch (err) {
        syncErr ??= err;
      }
    }
    for (const seg of this.#segments.values()) {
      // Sealed segments are only read from now on: release their write handle.
      if (seg.sealed && seg.fh) {
        const fh = seg.fh;
        seg.fh = undefined;
        await fh.close().catch(() => undefined);
      }
    }
    if (syncErr) {
      // Nothing in this group is known durable.
      for (const op of ops) op.reject(syncErr);
      if (this.#active) this.#seal(this.#active, touched);
      await this.#collect();
      return;
    }
    for (const f of failed) f.op.reject(f.err);
    for (const d of done) d();
    await this.#collect();
  }

  #seal(seg: Segment, touched: Set<FileHandle>): void {
    seg.sealed = true;
    if (seg.fh) touched.add(seg.fh);
    if (this.#active === seg) this.#active = undefined;
  }

  async #newSegment(): Promise<Segment> {
    const seq = this.#nextSeq++;
    const name = segName(seq);
    const seg: Segment = {
      seq,
      path: join(this.dir, `${name}.seg`),
      ackPath: join(this.dir, `${name}.ack`),
      size: 0,
      ackSize: 0,
      live: 0,
      sealed: false,
    };
    seg.fh = await open(seg.path, 'wx');
    await syncDir(this.dir);
    this.#segments.set(seq, seg);
    return seg;
  }

  async #writeBatch(items: number, bytes: Buffer, touched: Set<FileHandle>): Promise<WalEntry> {
    let seg = this.#active;
    if (seg && seg.size > 0 && seg.size + recordBytes(bytes.length) > this.#opts.segmentBytes) {
      this.#seal(seg, touched);
      seg = undefined;
    }
    seg ??= this.#active = await this.#newSegment();
    const id = this.#nextId++;
    const meta = Buffer.allocUnsafe(BATCH_META_BYTES);
    meta[0] = TYPE_BATCH;
    meta.writeBigUInt64BE(BigInt(id), 1);
    meta.writeUInt32BE(items, 9);
    const rec = frame(Buffer.concat([meta, bytes]));
    const fh = seg.fh!;
    const offset = seg.size;
    try {
      await writeFully(fh, rec, offset);
    } catch (err) {
      // Undo a partial write so the segment stays well-formed; stop appending to it either way.
      await fh.truncate(offset).catch(() => undefined);
      this.#seal(seg, touched);
      throw err;
    }
    touched.add(fh);
    seg.size += rec.length;
    seg.live++;
    this.#diskBytes += rec.length;
    return { id, segment: seg.seq, offset, length: rec.length, items };
  }

  async #writeAck(entry: WalEntry, outcome: AckOutcome, touched: Set<FileHandle>): Promise<void> {
    const seg = this.#segments.get(entry.segment);
    if (!seg) return;
    const payload = Buffer.allocUnsafe(ACK_PAYLOAD_BYTES);
    payload[0] = TYPE_ACK;
    payload.writeBigUInt64BE(BigInt(entry.id), 1);
    payload[9] = outcome === 'delivered' ? 0 : 1;
    const rec = frame(payload);
    if (!seg.ackFh) {
      seg.ackFh = await open(seg.ackPath, 'a');
      // A new file's directory entry must be durable too, or a crash can lose the whole ack file
      // (every batch of the segment would then be delivered again).
      if (seg.ackSize === 0) await syncDir(this.dir);
    }
    await writeFully(seg.ackFh, rec, null);
    touched.add(seg.ackFh);
    seg.ackSize += rec.length;
    seg.live--;
    this.#diskBytes += rec.length;
  }

  /** Deletes sealed, fully acknowledged segments. */
  async #collect(): Promise<void> {
    for (const seg of [...this.#segments.values()]) {
      if (!seg.sealed || seg.live > 0) continue;
      this.#segments.delete(seg.seq);
      await closeSegmentFiles(seg);
      await rm(seg.path, { force: true });
      await rm(seg.ackPath, { force: true });
      this.#diskBytes -= seg.size + seg.ackSize;
    }
  }

  /** True when the active segment holds no unacknowledged batch (rotating it frees its space). */
  get activeReclaimable(): boolean {
    return !!this.#active && this.#active.live === 0 && this.#active.size > 0;
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number | null): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(
      buf,
      off,
      buf.length - off,
      position === null ? null : position + off,
    );
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

async function closeSegmentFiles(seg: Segment): Promise<void> {
  const fh = seg.fh;
  const ackFh = seg.ackFh;
  seg.fh = undefined;
  seg.ackFh = undefined;
  await fh?.close().catch(() => undefined);
  await ackFh?.close().catch(() => undefined);
}

async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Directory fsync is not supported everywhere; the file's own fsync still applies.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/**
 * Takes `dir/LOCK` by exclusive create. A lock whose owner is gone (dead, or its pid reused by another
 * process) is taken over; a live owner fails with {@link WalLockedError}. Returns the lock's token.
 */
async function takeLock(dir: string, onStale?: (why: string) => void): Promise<string> {
  const lock = join(dir, 'LOCK');
  const token = randomUUID();
  const me = { pid: process.pid, start: processStart(process.pid), hostname: hostname(), token };
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    try {
      const fh = await open(lock, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(me)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(dir);
      heldTokens.add(token);
      return token;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = parseLock(await readFile(lock, 'utf8').catch(() => ''));
    if (!owner) {
      // Being written by its creator right now, or left half-written by a crash.
      const st = await stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs < 1000) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
    }
    const why = owner ? staleReason(owner) : 'its content is unreadable';
    if (owner && why === undefined) throw new WalLockedError(dir, owner.pid);
    onStale?.(why ?? 'stale');
    await rm(lock, { force: true });
  }
  throw new Error(`cannot take the lock ${lock}: it keeps reappearing`);
}
