/**
 * An append-only line file with optional size-based rotation. Lines are never split across files; a
 * failed write is rolled back to the last whole line so a retry does not leave a torn line behind.
 */
import { access, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/** Rotation limits. */
export interface RotationLimits {
  maxBytes: number;
  /** 0 keeps every backup. */
  maxBackups: number;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

/** Timestamp used in backup names: `2025-01-31T10-20-30.123` (sorts by time, safe on every file system). */
function stamp(d: Date): string {
  return d.toISOString().replace(/:/g, '-').replace(/Z$/, '');
}

/** Writes whole lines to one file, rotating by size. Not safe for concurrent calls: the caller serialises. */
export class LineFile {
  readonly path: string;
  readonly #fsync: boolean;
  readonly #rotation: RotationLimits | undefined;
  readonly #onRotate: () => void;
  #fh: FileHandle | undefined;
  #size = 0;
  /** Time (ms) used in the newest backup name. */
  #lastStamp = 0;

  constructor(path: string, opts: { fsync: boolean; rotation?: RotationLimits; onRotate?: () => void }) {
    this.path = path;
    this.#fsync = opts.fsync;
    this.#rotation = opts.rotation;
    this.#onRotate = opts.onRotate ?? (() => undefined);
  }

  /** Creates parent directories and opens the file for appending (mode 0600 when created). */
  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const fh = await open(this.path, 'a', 0o600);
    this.#size = (await fh.stat()).size;
    this.#fh = fh;
  }

  /** Appends the lines (each already ending in `\n`), then fsyncs when configured. */
  async write(lines: Buffer[]): Promise<void> {
    if (!this.#fh) await this.open();
    const max = this.#rotation?.maxBytes ?? Infinity;
    let i = 0;
    while (i < lines.length) {
      if (this.#size > 0 && this.#size + lines[i]!.length > max) await this.#rotate();
      const seg: Buffer[] = [];
      let segBytes = 0;
      while (i < lines.length) {
        const len = lines[i]!.length;
        if (seg.length > 0 && this.#size + segBytes + len > max) break;
        seg.push(lines[i]!);
        segBytes += len;
        i++;
      }
      await this.#append(Buffer.concat(seg, segBytes));
    }
    if (this.#fsync) await this.#fh!.datasync();
  }

  async #append(buf: Buffer): Promise<void> {
    const fh = this.#fh!;
    const before = this.#size;
    try {
      await writeAll(fh, buf);
      this.#size += buf.length;
    } catch (err) {
      // Roll back a partial write; if even that fails, reopen on the next write.
      try {
        await fh.truncate(before);
      } catch {
        this.#fh = undefined;
        await fh.close().catch(() => undefined);
      }
      throw err;
    }
  }

  async #rotate(): Promise<void> {
    const fh = this.#fh!;
    if (this.#fsync) await fh.datasync();
    await fh.close();
    this.#fh = undefined;
    const dir = dirname(this.path);
    const ext = extname(this.path);
    const stem = basename(this.path, ext);
    // Several rotations within one millisecond: bump the stamp so names stay unique and sort by age
    // (never reusing the stamp of a backup that was already pruned).
    let t = Math.max(Date.now(), this.#lastStamp + 1);
    while (await exists(join(dir, `${stem}-${stamp(new Date(t))}${ext}`))) t++;
    const target = join(dir, `${stem}-${stamp(new Date(t))}${ext}`);
    this.#lastStamp = t;
    await rename(this.path, target);
    if (this.#fsync) await syncDir(dir);
    this.#onRotate();
    await this.open();
    await this.#prune(dir, stem, ext);
  }

  async #prune(dir: string, stem: string, ext: string): Promise<void> {
    const keep = this.#rotation?.maxBackups ?? 0;
    if (keep === 0) return;
    const re = new RegExp(
      `^${escape(stem)}-\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}\\.\\d{3}${escape(ext)}$`,
    );
    // Names embed the rotation time, so lexical order is age order.
    const backups = (await readdir(dir)).filter((f) => re.test(f)).sort();
    for (const old of backups.slice(0, Math.max(0, backups.length - keep))) {
      await rm(join(dir, old), { force: true });
    }
  }

  /** Current size of the active file in bytes. */
  get size(): number {
    return this.#size;
  }

  /** fsyncs (when configured) and closes the file. */
  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    if (!fh) return;
    try {
      if (this.#fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
