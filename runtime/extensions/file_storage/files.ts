/**
 * Low-level file helpers of `file_storage`: framed value files, atomic replace, the directory lock.
 * Kept free of component concerns so they can be tested (and crash-simulated) on their own.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** Prefix of temporary files; anything starting with it is an unfinished write and is ignored. */
export const TEMP_PREFIX = '.tmp-';

const MAGIC = Buffer.from('AKS1', 'latin1');
const HEADER_BYTES = 12;

/** Wraps a value in a header (magic, length, CRC-32) so a torn or corrupted file is detected on read. */
export function frame(value: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(value.length, 4);
  header.writeUInt32BE(crc32(value), 8);
  return Buffer.concat([header, value]);
}

/** The value inside a framed file, or undefined with a reason when the file is not intact. */
export function unframe(data: Buffer): { value: Buffer } | { problem: string } {
  if (data.length < HEADER_BYTES || !data.subarray(0, 4).equals(MAGIC)) return { problem: 'bad header' };
  const len = data.readUInt32BE(4);
  if (data.length !== HEADER_BYTES + len) {
    return { problem: `length mismatch (header ${len}, file ${data.length - HEADER_BYTES})` };
  }
  const value = data.subarray(HEADER_BYTES);
  if (crc32(value) !== data.readUInt32BE(8)) return { problem: 'checksum mismatch' };
  return { value };
}

/** fsyncs a directory so a rename or unlink inside it is durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `dir/name` with `data` atomically: write a temp file in the same directory, fsync it,
 * rename it over the target, fsync the directory. A crash leaves either the old or the new content
 * (plus possibly a temp file, which readers ignore).
 */
export async function writeAtomic(dir: string, name: string, data: Buffer, fsync: boolean): Promise<void> {
  const tmp = join(dir, `${TEMP_PREFIX}${randomBytes(6).toString('hex')}-${name}`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    if (fsync) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (fsync) await syncDir(dir);
}

/** Reads a file, or undefined when it does not exist. */
export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Who holds a lock. */
interface LockHolder {
  pid: number;
  hostname: string;
  started: string;
  token: string;
}

/** Lock tokens held by this process, to tell "held by me" from "a dead process that had my pid". */
const heldTokens = new Set<string>();

/** The lock could not be taken. */
export class LockError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockError';
  }
}

/** Name of the lock file inside the storage directory. */
export const LOCK_FILE = 'LOCK';

/** A lock older than this with unreadable content is a leftover of a crash during lock creation. */
const UNREADABLE_LOCK_STALE_MS = 5000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.hostname === 'string' && typeof v.token === 'string') {
      return { pid: v.pid, hostname: v.hostname, started: String(v.started), token: v.token };
    }
  } catch {
    // unreadable or vanished: handled by the caller
  }
  return undefined;
}

/**
 * Takes the exclusive lock of `dir`, waiting up to `timeoutMs` for another holder. A lock left by a
 * dead process on this host is removed (`onStale` is told). Returns the release function.
 */
export async function acquireLock(
  dir: string,
  timeoutMs: number,
  onStale: (why: string) => void,
): Promise<() => Promise<void>> {
  const file = join(dir, LOCK_FILE);
  const me: LockHolder = {
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    token: randomUUID(),
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(file, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(me));
        await fh.sync();
      } finally {
        await fh.close();
      }
      heldTokens.add(me.token);
      return async () => {
        heldTokens.delete(me.token);
        const holder = await readHolder(file);
        if (holder?.token === me.token) await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(file);
    let stale: string | undefined;
    if (holder) {
      const sameHost = holder.hostname === me.hostname;
      if (sameHost && holder.pid !== process.pid && !alive(holder.pid)) {
        stale = `process ${holder.pid} that held it is gone`;
      } else if (sameHost && holder.pid === process.pid && !heldTokens.has(holder.token)) {
        stale = 'it was left by an earlier process with the same pid';
      }
    } else {
      const st = await stat(file).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > UNREADABLE_LOCK_STALE_MS) stale = 'its content is unreadable';
    }
    if (stale) {
      onStale(stale);
      await rm(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      const who = !holder
        ? 'another process'
        : holder.pid === process.pid && holder.hostname === me.hostname
          ? 'another file_storage extension of this collector'
          : `process ${holder.pid} on host ${holder.hostname} (since ${holder.started})`;
      throw new LockError(
        `storage directory ${dir} is in use by ${who}; give each collector (and each file_storage extension) ` +
          `its own directory, or delete ${file} if that process no longer runs`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
  }
}
