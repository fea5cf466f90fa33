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
 * Opening scans every segment: batches without an ack are returned in id order for replay. Damage
 * never throws and never costs more than the records whose bytes are damaged: the scan accepts a
 * record only when magic, length and CRC-32 all validate, and after a bad position resumes at the next
 * magic number (not at a length read from a damaged header), so every intact record after the damage
 * is found (see {@link scanRecords}). Batch ids are consecutive within a segment, so the ids between
 * the intact batches around a damaged stretch name exactly the lost batches: each one not yet
 * acknowledged is reported through `onSkipped` (`lost: true`, with its record count when its header
 * survived) and then acknowledged as dropped, so a later start does not count it again. Damage that
 * reaches the end of one of the two newest segments is a torn write of an unacknowledged append
 * (`atTail`, not lost; the tail is cut). The format is unchanged from earlier versions.
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

export type SkipReason = 'torn_tail' | 'bad_crc' | 'bad_header' | 'duplicate' | 'bad_payload' | 'unreadable';

export interface SkippedRecord {
  file: string;
  /** Where the damaged bytes start. */
  offset: number;
  /** First byte after the damaged bytes (the next intact record or the end of the file). */
  end?: number | undefined;
  reason: SkipReason;
  /** Log records the lost batch held; 0 when unknown (its header was damaged too). */
  items: number;
  /** True for a torn final write of an unacknowledged append (the end of one of the newest segments). */
  atTail: boolean;
  /**
   * True when an unacknowledged batch was lost (one report per lost batch). False when the damaged
   * bytes held nothing undelivered: a torn tail, an ack record, garbage between consecutive batches,
   * batches already acknowledged, or a lost batch already reported by an earlier start.
   */
  lost: boolean;
  /** Id of the lost batch, when known. */
  batchId?: number | undefined;
  /** Error text (reason `unreadable`). */
  error?: string | undefined;
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

/** A run of bytes between two valid records (or a file end) that holds no valid record. */
export interface DamagedStretch {
  offset: number;
  /** First byte after the stretch: the next valid record, or the end of the buffer. */
  end: number;
  reason: 'torn_tail' | 'bad_crc' | 'bad_header';
  /** The bytes after the first bad header (what the damaged record claimed as its payload), if any. */
  claimed: Buffer | undefined;
}

/**
 * Scans framed records in `buf` and resynchronises after damage.
 *
 * A record is accepted only when its magic matches, its length fits in the buffer and the CRC-32 of
 * the payload that length delimits matches. Anything else advances the scan to the next occurrence
 * of the magic after the bad position (never by a length read from a record that did not validate),
 * so an intact record after a damaged one is always found. A false positive needs the 4-byte magic
 * and a matching CRC-32 over the span its length names (about 2^-64 per byte position of random
 * data); a record can also not hide inside another record's payload, since batch JSON never contains
 * the 0x00 bytes a length below 16 MiB starts with. Consecutive bad positions are merged into one
 * {@link DamagedStretch}.
 */
export function scanRecords(buf: Buffer): {
  records: ScannedRecord[];
  bad: DamagedStretch[];
  validEnd: number;
} {
  const records: ScannedRecord[] = [];
  const bad: DamagedStretch[] = [];
  let pos = 0;
  let validEnd = 0;
  const magic = Buffer.alloc(4);
  magic.writeUInt32BE(MAGIC, 0);
  let open: DamagedStretch | undefined;
  const damaged = (reason: DamagedStretch['reason'], claimed: Buffer | undefined): void => {
    if (!open) {
      open = { offset: pos, end: buf.length, reason, claimed };
      bad.push(open);
    }
    const next = buf.indexOf(magic, pos + 1);
    pos = next < 0 ? buf.length : next;
    open.end = pos;
  };
  while (pos < buf.length) {
    if (buf.length - pos < HEADER_BYTES) {
      damaged('torn_tail', undefined);
      continue;
    }
    if (buf.readUInt32BE(pos) !== MAGIC) {
      damaged('bad_header', undefined);
      continue;
    }
    const len = buf.readUInt32BE(pos + 4);
    const end = pos + HEADER_BYTES + len;
    if (len > MAX_PAYLOAD) {
      damaged('bad_header', buf.subarray(pos + HEADER_BYTES));
      continue;
    }
    if (end > buf.length) {
      // A torn final write, or a damaged length field in the middle: look for a later record.
      damaged('torn_tail', buf.subarray(pos + HEADER_BYTES));
      continue;
    }
    const payload = buf.subarray(pos + HEADER_BYTES, end);
    if (crc32(payload) !== buf.readUInt32BE(pos + 8)) {
      damaged('bad_crc', buf.subarray(pos + HEADER_BYTES));
      continue;
    }
    if (open) {
      // A stretch followed by a valid record was not a torn tail.
      if (open.reason === 'torn_tail') open.reason = 'bad_header';
      open = undefined;
    }
    records.push({ offset: pos, end, payload });
    pos = end;
    validEnd = end;
  }
  return { records, bad, validEnd };
}

/** What the first damaged record of a stretch claims to be, when its batch metadata is readable. */
function claimedBatch(payload: Buffer | undefined): { id: number; items: number } | undefined {
  if (!payload || payload.length < BATCH_META_BYTES || payload[0] !== TYPE_BATCH) return undefined;
  const id = Number(payload.readBigUInt64BE(1));
  const items = payload.readUInt32BE(9);
  if (!Number.isSafeInteger(id) || id < 1 || items > 10_000_000) return undefined;
  return { id, items };
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
    const seqs = [...segSeqs].sort((a, b) => a - b);
    // A crash can tear the end of the newest segment, and of the one before it when the last group
    // commit started a new segment; everywhere else every record was fdatasync'ed before it was
    // acknowledged to the sender, so damage there is lost data.
    const mayBeTorn = new Set(seqs.slice(-2));
    const seen = new Set<number>();
    const pending: WalEntry[] = [];
    for (const seq of seqs) {
      const path = join(this.dir, `${segName(seq)}.seg`);
      const ackPath = join(this.dir, `${segName(seq)}.ack`);
      this.#nextSeq = Math.max(this.#nextSeq, seq + 1);
      const acked = new Set<number>();
      let ackSize = 0;
      let buf: Buffer;
      if (ackSeqs.has(seq)) {
        try {
          ackSize = await this.#readAcks(ackPath, acked);
        } catch (err) {
          // Without its acks every batch of the segment is replayed: duplicates, never a loss.
          this.#opts.onSkipped?.({
            file: ackPath,
            offset: 0,
            reason: 'unreadable',
            items: 0,
            atTail: false,
            lost: false,
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }
      try {
        buf = await readFile(path);
      } catch (err) {
        // Unreadable (I/O error, permissions): keep the files for inspection, replay nothing of them.
        this.#opts.onSkipped?.({
          file: path,
          offset: 0,
          reason: 'unreadable',
          items: 0,
          atTail: false,
          lost: true,
          error: err instanceof Error ? err.message : String(err),
        });
        continue;
      }
      const { records, bad } = scanRecords(buf);
      const seg: Segment = { seq, path, ackPath, size: buf.length, ackSize, live: 0, sealed: true };
      const batches: { offset: number; end: number; id: number; items: number }[] = [];
      for (const r of records) {
        const p = r.payload;
        if (p.length < BATCH_META_BYTES || p[0] !== TYPE_BATCH) {
          this.#opts.onSkipped?.({
            file: path,
            offset: r.offset,
            reason: 'bad_payload',
            items: 0,
            atTail: false,
            lost: false,
          });
          continue;
        }
        batches.push({
          offset: r.offset,
          end: r.end,
          id: Number(p.readBigUInt64BE(1)),
          items: p.readUInt32BE(9),
        });
      }
      // An older segment's damaged tail is still a torn write when the next run reused its id (a run
      // starts at the highest intact id + 1): a crash left it, possibly before this version cut tails.
      let torn = mayBeTorn.has(seq);
      const claim = bad.at(-1)?.end === buf.length ? claimedBatch(bad.at(-1)!.claimed) : undefined;
      if (!torn && claim) {
        const later = seqs.find((q) => q > seq);
        const first =
          later === undefined ? undefined : await firstBatchId(join(this.dir, `${segName(later)}.seg`));
        torn = first !== undefined && claim.id >= first;
      }
      const lostIds = this.#damage(path, buf.length, bad, batches, acked, torn);
      for (const b of batches) {
        this.#nextId = Math.max(this.#nextId, b.id + 1);
        if (acked.has(b.id)) continue;
        if (seen.has(b.id)) {
          this.#opts.onSkipped?.({
            file: path,
            offset: b.offset,
            reason: 'duplicate',
            items: 0,
            atTail: false,
            lost: false,
          });
          continue;
        }
        seen.add(b.id);
        seg.live++;
        pending.push({ id: b.id, segment: seq, offset: b.offset, length: b.end - b.offset, items: b.items });
      }
      for (const id of lostIds) this.#nextId = Math.max(this.#nextId, id + 1);
      if (seg.live === 0) {
        await unlink(path).catch(() => undefined);
        await rm(ackPath, { force: true });
        continue;
      }
      const tail = bad.at(-1);
      if (torn && tail && tail.end === buf.length && tail.offset >= (batches.at(-1)?.end ?? 0)) {
        // Cut a torn tail so the next start does not report it again (the process that wrote it is gone).
        seg.size = await truncateTo(path, tail.offset).catch(() => buf.length);
      }
      if (lostIds.length) {
        // Mark the lost batches as dropped, so a later start does not count them a second time.
        seg.ackSize = await this.#appendDropAcks(ackPath, ackSize, lostIds).catch(() => ackSize);
      }
      this.#segments.set(seq, seg);
      this.#diskBytes += seg.size + seg.ackSize;
    }
    pending.sort((a, b) => a.id - b.id);
    return pending;
  }

  /** Reads an ack file into `acked`; cuts a torn tail. Returns the file's (new) size. */
  async #readAcks(ackPath: string, acked: Set<number>): Promise<number> {
    const abuf = await readFile(ackPath);
    const { records, bad, validEnd } = scanRecords(abuf);
    for (const b of bad) {
      // A damaged ack only means a batch may be delivered twice.
      this.#opts.onSkipped?.({
        file: ackPath,
        offset: b.offset,
        end: b.end,
        reason: b.reason,
        items: 0,
        atTail: b.end === abuf.length,
        lost: false,
      });
    }
    for (const r of records) {
      if (r.payload.length === ACK_PAYLOAD_BYTES && r.payload[0] === TYPE_ACK) {
        acked.add(Number(r.payload.readBigUInt64BE(1)));
      }
    }
    // Cut a torn tail so later acks appended to this file stay readable.
    if (validEnd < abuf.length && bad.at(-1)?.end === abuf.length) {
      return truncateTo(ackPath, Math.max(validEnd, bad.at(-1)!.offset));
    }
    return abuf.length;
  }

  /**
   * Works out which batches the damaged stretches of a segment held and reports each: ids are
   * consecutive within a segment (a failed write seals its segment), so the ids between the intact
   * batches around a stretch are exactly the batches whose bytes were damaged. Acknowledged ones were
   * delivered already and are not lost. Returns the ids reported as lost.
   */
  #damage(
    file: string,
    size: number,
    bad: DamagedStretch[],
    batches: { offset: number; end: number; id: number }[],
    acked: Set<number>,
    mayBeTorn: boolean,
  ): number[] {
    const lostIds: number[] = [];
    const present = new Set(batches.map((b) => b.id));
    let i = 0;
    for (const b of bad) {
      while (i < batches.length && batches[i]!.end <= b.offset) i++;
      const prev = i > 0 ? batches[i - 1] : undefined;
      const next = i < batches.length ? batches[i] : undefined;
      const claim = claimedBatch(b.claimed);
      const base = { file, offset: b.offset, end: b.end, reason: b.reason };
      const atTail = !next && b.end === size;
      if (atTail && mayBeTorn) {
        // A write cut short by the crash: never acknowledged to the sender, which sends it again.
        this.#opts.onSkipped?.({ ...base, items: claim?.items ?? 0, atTail: true, lost: false });
        continue;
      }
      let lo = prev ? prev.id + 1 : undefined;
      let hi = next ? next.id - 1 : undefined;
      const fits = claim && (lo === undefined || claim.id >= lo) && (hi === undefined || claim.id <= hi);
      if (fits) {
        lo ??= claim.id;
        hi ??= claim.id;
      } else if (hi === undefined && lo !== undefined) {
        hi = lo; // a damaged tail of a sealed segment: at least one batch (more cannot be told)
      }
      // Every record takes at least this many bytes: a wider id range means the ids cannot be trusted.
      const maxBatches = Math.ceil((b.end - b.offset) / (HEADER_BYTES + BATCH_META_BYTES));
      if (lo === undefined || hi === undefined || hi - lo + 1 > maxBatches) {
        this.#opts.onSkipped?.({ ...base, items: claim?.items ?? 0, atTail: false, lost: true });
        continue;
      }
      let reported = false;
      for (let id = lo; id <= hi; id++) {
        // Acknowledged: delivered before. Present: a copy of it is intact elsewhere in the segment.
        if (acked.has(id) || present.has(id)) continue;
        const items = fits && claim.id === id ? claim.items : 0;
        this.#opts.onSkipped?.({ ...base, items, atTail: false, lost: true, batchId: id });
        lostIds.push(id);
        reported = true;
      }
      // Nothing undelivered in it (garbage between batches, batches delivered or reported before).
      if (!reported) this.#opts.onSkipped?.({ ...base, items: 0, atTail: false, lost: false });
    }
    return lostIds;
  }

  /** Appends `dropped` acks for `ids` to an ack file (fdatasync'ed); returns the new size. */
  async #appendDropAcks(ackPath: string, size: number, ids: number[]): Promise<number> {
    const recs = Buffer.concat(ids.map((id) => ackRecord(id, 'dropped')));
    const fh = await open(ackPath, 'a');
    try {
      await writeFully(fh, recs, null);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    if (size === 0) await syncDir(this.dir);
    return size + recs.length;
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
    const rec = ackRecord(entry.id, outcome);
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

function ackRecord(id: number, outcome: AckOutcome): Buffer {
  const payload = Buffer.allocUnsafe(ACK_PAYLOAD_BYTES);
  payload[0] = TYPE_ACK;
  payload.writeBigUInt64BE(BigInt(id), 1);
  payload[9] = outcome === 'delivered' ? 0 : 1;
  return frame(payload);
}

/** Id of the first batch of a segment file when its first record is intact, else undefined. */
async function firstBatchId(path: string): Promise<number | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    const head = Buffer.alloc(HEADER_BYTES);
    if ((await fh.read(head, 0, HEADER_BYTES, 0)).bytesRead < HEADER_BYTES) return undefined;
    const len = head.readUInt32BE(4);
    if (head.readUInt32BE(0) !== MAGIC || len < BATCH_META_BYTES || len > 64 * 1024 * 1024) return undefined;
    const payload = Buffer.alloc(len);
    if ((await fh.read(payload, 0, len, HEADER_BYTES)).bytesRead < len) return undefined;
    if (crc32(payload) !== head.readUInt32BE(8)) return undefined;
    return claimedBatch(payload)?.id;
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

async function truncateTo(path: string, size: number): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    await fh.truncate(size);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return size;
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
