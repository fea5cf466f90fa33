/**
 * Checkpoints of the receiver, stored as JSON values through a storage extension's client (or in
 * memory when no `storage` is configured). Values are written only after the data they describe was
 * delivered (the pipeline's `consume()` resolved).
 */
import type { Logger, StorageClient } from '../../runtime/component.ts';

/** Lower edge of a scan: every event older than `c`, and those at exactly `c` whose pk is listed, are covered. */
export interface FrontierJson {
  /** Epoch microseconds as a decimal string; null = nothing covered (start of history). */
  c: string | null;
  pks: string[];
}

/** Progress of an event backfill (first start). */
export interface BackfillState {
  /** Newest `created` when the backfill began (µs); events after it belong to the incremental poller. */
  upper: string;
  /** Everything at or below this edge was delivered. */
  frontier: FrontierJson;
  /** Estimated rank (0 = newest) of the first event strictly older than the frontier, at `count`. */
  hint: number;
  /** Total events (pagination.count) when `hint` was measured. */
  count: number;
  pagesDone: number;
  pagesTotal: number;
  emitted: number;
  startedAt: number;
  /** pk → created (µs) of delivered events within `overlap` of `upper`, handed to the incremental poller. */
  handover: [string, string][];
}

/** State of the events dataset. */
export interface EventsState {
  v: 1;
  phase: 'backfill' | 'incremental';
  /** Incremental: newest delivered `created` (µs), null when nothing was delivered or seen yet. */
  hw: string | null;
  /** Incremental: pk → created (µs) of events delivered within `overlap` below `hw`. */
  window: [string, string][];
  /** Incremental: an extra covered edge (backfill `none`: the events present at start are skipped). */
  floor: FrontierJson | null;
  backfill: BackfillState | null;
  /**
   * Verified edge E (µs): every event older than it was delivered and the list below it was checked.
   * null: nothing verified yet. Absent in checkpoints of earlier versions (derived from hw − overlap).
   */
  verified?: string | null;
  /**
   * Effective page size observed (the server's clamp, 2025.12+), so that a restart positions its first
   * request with the size the server actually serves. Absent: not observed (or earlier versions).
   */
  pageSize?: number;
}

/** State of users and groups (when the last full listings finished; newest `last_updated` seen). */
export interface DirectoryState {
  v: 1;
  usersFullAt: number | null;
  usersChangesAt: number | null;
  usersHw: string | null;
  groupsFullAt: number | null;
}

export const EVENTS_KEY = 'events';
export const DIRECTORY_KEY = 'directory';

const isStr = (x: unknown): x is string => typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isMicros = (x: unknown): x is string => isStr(x) && /^-?\d{1,20}$/.test(x);
const isPairs = (x: unknown): x is [string, string][] =>
  Array.isArray(x) && x.every((p) => Array.isArray(p) && p.length === 2 && isStr(p[0]) && isMicros(p[1]));

function isFrontier(x: unknown): x is FrontierJson {
  if (x === null || typeof x !== 'object') return false;
  const f = x as Record<string, unknown>;
  return (f.c === null || isMicros(f.c)) && Array.isArray(f.pks) && f.pks.every(isStr);
}

function isBackfill(x: unknown): x is BackfillState {
  if (x === null || typeof x !== 'object') return false;
  const b = x as Record<string, unknown>;
  return (
    isMicros(b.upper) &&
    isFrontier(b.frontier) &&
    isNum(b.hint) &&
    isNum(b.count) &&
    isNum(b.pagesDone) &&
    isNum(b.pagesTotal) &&
    isNum(b.emitted) &&
    isNum(b.startedAt) &&
    isPairs(b.handover)
  );
}

/** Validates a stored events state; a reason string when it is not one. */
export function checkEventsState(x: unknown): EventsState | string {
  if (x === null || typeof x !== 'object') return 'not an object';
  const s = x as Record<string, unknown>;
  if (s.v !== 1) return `unknown version ${String(s.v)}`;
  if (s.phase !== 'backfill' && s.phase !== 'incremental') return 'bad phase';
  if (!(s.hw === null || isMicros(s.hw))) return 'bad hw';
  if (!isPairs(s.window)) return 'bad window';
  if (!(s.floor === null || isFrontier(s.floor))) return 'bad floor';
  if (!(s.backfill === null || isBackfill(s.backfill))) return 'bad backfill';
  if (s.phase === 'backfill' && s.backfill === null) return 'backfill phase without backfill state';
  if (!(s.verified === undefined || s.verified === null || isMicros(s.verified))) return 'bad verified';
  if (!(s.pageSize === undefined || (Number.isSafeInteger(s.pageSize) && (s.pageSize as number) >= 1)))
    return 'bad pageSize';
  return s as unknown as EventsState;
}

export function checkDirectoryState(x: unknown): DirectoryState | string {
  if (x === null || typeof x !== 'object') return 'not an object';
  const s = x as Record<string, unknown>;
  if (s.v !== 1) return `unknown version ${String(s.v)}`;
  const optNum = (v: unknown) => v === null || isNum(v);
  if (!optNum(s.usersFullAt) || !optNum(s.usersChangesAt) || !optNum(s.groupsFullAt)) return 'bad times';
  if (!(s.usersHw === null || isStr(s.usersHw))) return 'bad usersHw';
  return s as unknown as DirectoryState;
}

/** A stored checkpoint exists but cannot be used (damaged file, invalid JSON or content). */
export class CorruptCheckpointError extends Error {
  readonly key: string;
  readonly reason: string;
  /** The file holding it, when the storage extension tells (`file_storage`). */
  readonly file: string | undefined;
  constructor(key: string, reason: string, file: string | undefined) {
    super(`checkpoint "${key}"${file ? ` (${file})` : ''} is unreadable: ${reason}`);
    this.key = key;
    this.reason = reason;
    this.file = file;
  }
}

/** Storage clients that can tell where a value lives and whether it is damaged (`file_storage`). */
interface Inspectable {
  inspect(key: string): Promise<{ file: string; exists: boolean; problem?: string }>;
}
const inspectable = (c: unknown): c is Inspectable =>
  typeof (c as Partial<Inspectable> | undefined)?.inspect === 'function';

/** Backoff of failed checkpoint writes (ms): 0.5 s doubling to 30 s. */
const SAVE_RETRY_MS = [500, 1000, 2000, 4000, 8000, 16000, 30000];

/**
 * JSON values by key, durable when a storage client is given. A write that fails (disk full, I/O
 * error) is not lost until the state changes: the newest value of each key stays pending and is
 * written again with backoff in the background, and once more at `close()`.
 */
export class CheckpointStore {
  readonly #client: StorageClient | undefined;
  readonly #memory = new Map<string, string>();
  readonly #logger: Logger;
  /** Newest value of each key not yet written. */
  readonly #pending = new Map<string, string>();
  #writing: Promise<void> = Promise.resolve();
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #closed = false;

  constructor(client: StorageClient | undefined, logger: Logger) {
    this.#client = client;
    this.#logger = logger;
  }

  get durable(): boolean {
    return this.#client !== undefined;
  }

  /** Keys whose newest value is not written yet (a write failed and is being retried). */
  get unsaved(): string[] {
    return [...this.#pending.keys()];
  }

  /**
   * Loads and validates a value. A corrupt value is reported (error log) and ignored: the dataset then
   * starts as configured for a first run.
   */
  async load<T>(
    key: string,
    check: (x: unknown) => T | string,
    opts: { strict?: boolean } = {},
  ): Promise<T | undefined> {
    let text: string | undefined;
    if (this.#client) {
      const buf = await this.#client.get(key);
      text = buf?.toString('utf8');
    } else text = this.#memory.get(key);
    // strict: a value that exists but cannot be used throws CorruptCheckpointError instead of being ignored.
    const where = async () => (inspectable(this.#client) ? await this.#client.inspect(key) : undefined);
    if (text === undefined) {
      if (opts.strict) {
        const w = await where();
        if (w?.exists && w.problem !== undefined) throw new CorruptCheckpointError(key, w.problem, w.file);
      }
      return undefined;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      if (opts.strict) throw new CorruptCheckpointError(key, 'not valid JSON', (await where())?.file);
      this.#logger.error('stored checkpoint is not valid JSON; ignoring it (starting as on a first run)', {
        key,
      });
      return undefined;
    }
    const r = check(parsed);
    if (typeof r === 'string' && opts.strict) throw new CorruptCheckpointError(key, r, (await where())?.file);
    if (typeof r === 'string') {
      this.#logger.error('stored checkpoint is invalid; ignoring it (starting as on a first run)', {
        key,
        reason: r,
      });
      return undefined;
    }
    return r;
  }

  /**
   * Replaces a value (atomically with file_storage). Resolves once this value (or a newer one) was
   * written, or after the first attempt failed: the value then stays pending and is retried in the
   * background (and at `close()`), so a failed write never waits for the next state change. No-op
   * after close.
   */
  async save(key: string, value: unknown): Promise<void> {
    if (this.#closed) return;
    const text = JSON.stringify(value);
    if (!this.#client) {
      this.#memory.set(key, text);
      return;
    }
    this.#pending.set(key, text);
    await this.#flush();
  }

  /** Writes every pending value, one write at a time. */
  #flush(): Promise<void> {
    const run = async () => {
      const client = this.#client;
      if (!client) return;
      for (const [key, text] of [...this.#pending]) {
        try {
          await client.set(key, Buffer.from(text, 'utf8'));
        } catch (err) {
          this.#failures++;
          const delay = SAVE_RETRY_MS[Math.min(this.#failures, SAVE_RETRY_MS.length) - 1]!;
          if (this.#failures === 1 || this.#failures % 10 === 0) {
            this.#logger.error('cannot write a checkpoint; retrying in the background', {
              key,
              attempt: this.#failures,
              retry_in_ms: delay,
              reason: errorText(err),
            });
          }
          this.#scheduleRetry(delay);
          return;
        }
        // A newer value may have arrived during the write: keep it pending.
        if (this.#pending.get(key) === text) this.#pending.delete(key);
      }
      if (this.#failures > 0) {
        this.#logger.info('checkpoints written again after failures', { failed_attempts: this.#failures });
        this.#failures = 0;
      }
    };
    const p = this.#writing.then(run, run);
    this.#writing = p.catch(() => undefined);
    return p;
  }

  #scheduleRetry(ms: number): void {
    if (this.#retryTimer || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed && this.#pending.size > 0) void this.#flush();
    }, ms);
    this.#retryTimer.unref();
  }

  /** Stops accepting writes, tries pending writes once more, and closes the storage client. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    await this.#writing;
    if (this.#pending.size > 0) await this.#flush();
    if (this.#pending.size > 0) {
      this.#logger.error(
        'checkpoints not written at shutdown; the data they cover will be read again at the next start',
        { keys: [...this.#pending.keys()] },
      );
    }
    await this.#client?.close();
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
