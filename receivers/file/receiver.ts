/**
 * The `file` receiver: reads newline-delimited JSON into log records, one batch at a time, waiting for
 * each batch to be acknowledged before reading on. With a storage extension the byte offset of the
 * last acknowledged line is persisted, so a restart continues after it.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Counter } from 'prom-client';
import { isStorageExtension, once } from '../../runtime/component.ts';
import type {
  ComponentSettings,
  Host,
  LogsConsumer,
  Receiver,
  StorageClient,
} from '../../runtime/component.ts';
import { errorMessage, isPermanent } from '../../runtime/errors.ts';
import { RetriesExhaustedError, retry, sleep } from '../../runtime/exporterhelper/retry.ts';
import type { AnyValue, LogAttributes, LogsBatch } from '../../runtime/model.ts';
import { nowHrTime } from '../../runtime/model.ts';
import { counter } from '../../runtime/telemetry/metrics.ts';
import type { Config } from './config.ts';
import { LineReader } from './lines.ts';
import type { Line } from './lines.ts';

/** OTel semantic-convention attribute holding the raw line, so `event.original` can keep it verbatim. */
export const ATTR_ORIGINAL = 'log.record.original';
/** Storage key of the checkpoint inside the receiver's storage client. */
export const CHECKPOINT_KEY = 'checkpoint';
/** Bytes at the head of the file that identify it (a different head means a different file). */
const FINGERPRINT_BYTES = 1024;

/** Where reading resumes: a byte offset in a file identified by a hash of its first bytes. */
export interface Checkpoint {
  version: 1;
  path: string;
  offset: number;
  fingerprint: { bytes: number; sha256: string };
}

async function fingerprintOf(fh: FileHandle, bytes: number): Promise<Checkpoint['fingerprint']> {
  const buf = Buffer.alloc(bytes);
  const { bytesRead } = await fh.read(buf, 0, bytes, 0);
  return { bytes: bytesRead, sha256: createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex') };
}

function parseCheckpoint(data: Buffer): Checkpoint | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<Checkpoint>;
    const fp = v.fingerprint;
    if (
      v.version === 1 &&
      typeof v.offset === 'number' &&
      Number.isSafeInteger(v.offset) &&
      v.offset >= 0 &&
      fp &&
      typeof fp.bytes === 'number' &&
      typeof fp.sha256 === 'string'
    ) {
      return { version: 1, path: String(v.path), offset: v.offset, fingerprint: fp };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** Why reading one file ended. */
type Outcome = 'done' | 'stopped' | 'rotated';

/** The `file` receiver. */
export class FileReceiver implements Receiver {
  /** Present when `follow` is false: resolves after the last batch was acknowledged (or at shutdown). */
  readonly finished?: Promise<void>;
  readonly #settings: ComponentSettings;
  readonly #cfg: Config;
  readonly #next: LogsConsumer;
  readonly #path: string;
  readonly #stableKey: string;
  readonly #staticAttributes: LogAttributes;
  readonly #abort = new AbortController();
  readonly #invalidLines: Counter<'receiver'>;
  readonly #readBytes: Counter<'receiver'>;
  #resolveFinished: () => void = () => undefined;
  #rejectFinished: (err: unknown) => void = () => undefined;
  #client: StorageClient | undefined;
  #run: Promise<void> | undefined;
  #started = false;
  /** Position after the last acknowledged line of the current file (in-memory checkpoint). */
  #resume: Checkpoint | undefined;
  /** Checkpoint waiting to be written, and the writer loop if one runs. */
  #ckptWanted: Checkpoint | undefined;
  #ckptWriter: Promise<void> | undefined;
  #records = 0;
  #invalid = 0;

  constructor(settings: ComponentSettings, cfg: Config, next: LogsConsumer) {
    this.#settings = settings;
    this.#cfg = cfg;
    this.#next = next;
    this.#path = resolve(settings.configDir, cfg.path);
    this.#stableKey = cfg.storage_key ?? `file:${this.#path}`;
    const attrs: LogAttributes = { ...cfg.attributes };
    if (cfg.include_file_name) attrs['log.file.name'] = basename(this.#path);
    if (cfg.include_file_path) attrs['log.file.path'] = this.#path;
    this.#staticAttributes = attrs;
    this.#invalidLines = counter(settings.metrics, {
      name: 'otelcol_receiver_file_invalid_json_lines',
      help: 'Lines of the file receiver that were not valid JSON (forwarded with the raw text as body)',
      labelNames: ['receiver'],
    });
    this.#readBytes = counter(settings.metrics, {
      name: 'otelcol_receiver_file_read_bytes',
      help: 'Bytes read by the file receiver',
      labelNames: ['receiver'],
    });
    if (!cfg.follow) {
      this.finished = new Promise<void>((res, rej) => {
        this.#resolveFinished = res;
        this.#rejectFinished = rej;
      });
      // The runtime observes `finished`; this keeps an unobserved failure from becoming an unhandled rejection.
      this.finished.catch(() => undefined);
    }
  }

  async start(host: Host): Promise<void> {
    if (this.#started) throw new Error(`receiver ${this.#settings.id}: start called twice`);
    this.#started = true;
    if (this.#cfg.storage !== undefined) {
      const ext = host.getExtension(this.#cfg.storage);
      if (ext === undefined) {
        throw new Error(
          `storage extension "${this.#cfg.storage}" is not available: configure it under extensions: and list it in service.extensions`,
        );
      }
      if (!isStorageExtension(ext))
        throw new Error(`extension "${this.#cfg.storage}" is not a storage extension`);
      this.#client = await ext.getClient('receiver', this.#settings.id, this.#stableKey);
      const data = await this.#client.get(CHECKPOINT_KEY);
      if (data !== undefined) {
        this.#resume = parseCheckpoint(data);
        if (!this.#resume) {
          this.#settings.logger.warn('stored checkpoint is unreadable; ignoring it', { path: this.#path });
        }
      }
    }
    if (!this.#cfg.follow) {
      const st = await stat(this.#path).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot read ${this.#path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
      });
      if (!st.isFile()) throw new Error(`${this.#path} is not a regular file`);
    }
    this.#run = this.#loop().then(
      () => this.#resolveFinished(),
      (err: unknown) => {
        this.#settings.logger.error('file receiver stopped on an error', {
          path: this.#path,
          error: errorMessage(err),
        });
        this.#settings.reportStatus('permanent_error', errorMessage(err));
        this.#rejectFinished(err);
      },
    );
  }

  readonly shutdown = once(async () => {
    this.#abort.abort();
    await this.#run;
    await this.#ckptWriter;
    await this.#client?.close();
    this.#resolveFinished();
  });

  get #stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  async #loop(): Promise<void> {
    let first = true;
    while (!this.#stopped) {
      const opened = await this.#open();
      if (!opened) return;
      const { fh, waited } = opened;
      let outcome: Outcome;
      try {
        // start_at applies to a file present at start; one that appears later is new, read in full.
        const offset = await this.#initialOffset(fh, first && !waited);
        first = false;
        this.#settings.logger.info('reading file', { path: this.#path, offset, follow: this.#cfg.follow });
        outcome = await this.#readFile(fh, offset);
      } catch (err) {
        if (!this.#cfg.follow) throw err;
        this.#settings.logger.warn('error reading file; retrying', {
          path: this.#path,
          error: errorMessage(err),
        });
        this.#settings.reportStatus('recoverable_error', errorMessage(err));
        await sleep(this.#cfg.poll_interval, this.#abort.signal);
        continue;
      } finally {
        await fh.close().catch(() => undefined);
      }
      if (outcome === 'done') {
        await this.#ckptWriter;
        this.#settings.logger.info('reached the end of the file', {
          path: this.#path,
          records: this.#records,
          invalid_json_lines: this.#invalid,
        });
        return;
      }
      if (outcome === 'stopped') return;
      // Rotated: the new file at the path is read from its start.
      this.#resume = undefined;
      this.#settings.logger.info('file was rotated; reading the new file from its start', {
        path: this.#path,
      });
    }
  }

  /** Opens the file; with follow, waits for it to appear. Undefined when stopped while waiting. */
  async #open(): Promise<{ fh: FileHandle; waited: boolean } | undefined> {
    let waited = false;
    for (;;) {
      if (this.#stopped) return undefined;
      try {
        return { fh: await open(this.#path, 'r'), waited };
      } catch (err) {
        if (!this.#cfg.follow || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        if (!waited) this.#settings.logger.info('waiting for the file to appear', { path: this.#path });
        waited = true;
        await sleep(this.#cfg.poll_interval, this.#abort.signal);
      }
    }
  }

  /** The offset to start at: the checkpoint when it matches this file, else `start_at` (first file) or 0. */
  async #initialOffset(fh: FileHandle, first: boolean): Promise<number> {
    const size = (await fh.stat()).size;
    const saved = this.#resume;
    if (saved) {
      if (saved.offset > size) {
        this.#settings.logger.info(
          'file is shorter than the checkpoint (truncated or replaced); reading from the start',
          {
            path: this.#path,
            checkpoint: saved.offset,
            size,
          },
        );
        return 0;
      }
      const fp = await fingerprintOf(fh, saved.fingerprint.bytes);
      if (fp.bytes === saved.fingerprint.bytes && fp.sha256 === saved.fingerprint.sha256) {
        if (first)
          this.#settings.logger.info('resuming after checkpoint', { path: this.#path, offset: saved.offset });
        return saved.offset;
      }
      this.#settings.logger.info(
        'file content changed since the checkpoint (replaced); reading from the start',
        {
          path: this.#path,
        },
      );
      return 0;
    }
    return first && this.#cfg.start_at === 'end' ? size : 0;
  }

  /** Reads one open file until its end (no follow), rotation, or shutdown. */
  async #readFile(fh: FileHandle, offset: number): Promise<Outcome> {
    const cfg = this.#cfg;
    const ident = await fh.stat();
    let reader = new LineReader(fh, offset, { maxLineBytes: cfg.max_line_size });
    let pending: Line[] = [];
    /** End of the last line taken from the reader (records, empty lines, skipped lines). */
    let processed = offset;
    let acked = offset;
    let lastPendingBytes = 0;
    let lastGrowth = Date.now();

    const take = async (lines: Line[]): Promise<boolean> => {
      for (const line of lines) {
        processed = line.end;
        if (line.oversizedBytes !== undefined) {
          this.#settings.reportDropped(1, 'line_too_long', {
            path: this.#path,
            offset: line.start,
            bytes: line.oversizedBytes,
            max_line_size: cfg.max_line_size,
          });
        } else if (line.text.trim() !== '') {
          pending.push(line);
          if (pending.length >= cfg.batch_size && !(await flush())) return false;
        }
      }
      return true;
    };
    const flush = async (): Promise<boolean> => {
      if (processed === acked) return true;
      const lines = pending;
      pending = [];
      if (!(await this.#deliver(lines))) return false;
      acked = processed;
      await this.#checkpoint(fh, acked);
      return true;
    };

    for (;;) {
      if (this.#stopped) return 'stopped';
      const before = reader.position;
      const { lines, eof } = await reader.read();
      if (!eof) {
        this.#readBytes.inc({ receiver: this.#settings.id }, reader.position - before);
        if (!(await take(lines))) return 'stopped';
        continue;
      }
      if (!cfg.follow) {
        const tail = reader.flushPartial();
        if (!(await take(tail ? [tail] : [])) || !(await flush())) return 'stopped';
        return 'done';
      }
      if (!(await flush())) return 'stopped';

      // Follow: an unterminated last line is emitted once it stopped growing for force_flush_period.
      const partial = reader.pendingBytes;
      if (partial === 0 || partial !== lastPendingBytes) {
        lastPendingBytes = partial;
        lastGrowth = Date.now();
      } else if (cfg.force_flush_period > 0 && Date.now() - lastGrowth >= cfg.force_flush_period) {
        const tail = reader.flushPartial();
        lastPendingBytes = 0;
        if (!(await take(tail ? [tail] : [])) || !(await flush())) return 'stopped';
      }

      const current = await stat(this.#path).catch(() => undefined);
      if (current && (current.ino !== ident.ino || current.dev !== ident.dev)) {
        // Rotated: whatever was appended to the old file before the switch is read first.
        for (;;) {
          const more = await reader.read();
          if (more.eof) break;
          if (!(await take(more.lines))) return 'stopped';
        }
        const tail = reader.flushPartial();
        if (!(await take(tail ? [tail] : [])) || !(await flush())) return 'stopped';
        return 'rotated';
      }
      const size = (await fh.stat()).size;
      if (size < reader.position) {
        this.#settings.logger.info('file was truncated; reading from its start', {
          path: this.#path,
          size,
          position: reader.position,
        });
        reader = new LineReader(fh, 0, { maxLineBytes: cfg.max_line_size });
        pending = [];
        processed = acked = 0;
        lastPendingBytes = 0;
        await this.#checkpoint(fh, 0);
        continue;
      }
      if (size > reader.position) continue;
      await sleep(cfg.poll_interval, this.#abort.signal);
    }
  }

  /** Builds records from lines. `count` is false on retries so invalid lines are counted once. */
  #build(lines: Line[], count: boolean): LogsBatch {
    const batch: LogsBatch = [];
    for (const line of lines) {
      let body: AnyValue;
      try {
        body = JSON.parse(line.text) as AnyValue;
      } catch {
        body = line.text;
        if (count) {
          this.#invalid++;
          this.#invalidLines.inc({ receiver: this.#settings.id });
          this.#settings.logger.debug('line is not valid JSON; forwarding it as a string body', {
            path: this.#path,
            offset: line.start,
            bytes: line.end - line.start,
          });
        }
      }
      const attributes: LogAttributes = {};
      for (const [k, v] of Object.entries(this.#staticAttributes))
        attributes[k] = Array.isArray(v) ? [...v] : v;
      attributes[ATTR_ORIGINAL] = line.text;
      const now = nowHrTime();
      batch.push({ observedTimestamp: now, body, attributes });
    }
    return batch;
  }

  /**
   * Sends one batch, retrying retryable failures with backoff. Returns true when the batch is done
   * with (delivered, or dropped and counted after a permanent failure); false when shutdown
   * interrupted it before delivery.
   */
  async #deliver(lines: Line[]): Promise<boolean> {
    if (lines.length === 0) return true;
    const first = this.#build(lines, true);
    try {
      await retry(
        this.#cfg.retry_on_failure,
        // The pipeline owns a batch once consume settles, so every retry sends freshly built records.
        (attempt) => this.#next.consume(attempt === 1 ? first : this.#build(lines, false)),
        {
          signal: this.#abort.signal,
          onRetry: (attempt, err, delayMs) =>
            this.#settings.logger.warn('pipeline refused a batch; retrying', {
              path: this.#path,
              records: lines.length,
              attempt,
              delay_ms: delayMs,
              error: errorMessage(err),
            }),
        },
      );
      this.#records += lines.length;
      return true;
    } catch (err) {
      const from = lines[0]!.start;
      if (!isPermanent(err) && this.#stopped) {
        const fields = { path: this.#path, records: lines.length, offset: from, error: errorMessage(err) };
        if (this.#client) {
          this.#settings.logger.info(
            'shutdown before the pipeline accepted a batch; it is read again on the next start',
            fields,
          );
        } else {
          this.#settings.reportDropped(lines.length, 'shutdown_before_delivery', fields);
        }
        return false;
      }
      const reason =
        err instanceof RetriesExhaustedError
          ? 'retries_exhausted'
          : isPermanent(err)
            ? 'rejected_permanent'
            : 'rejected';
      this.#settings.reportDropped(lines.length, reason, {
        path: this.#path,
        offset: from,
        error: errorMessage(err),
      });
      return true;
    }
  }

  /** Records `offset` as acknowledged; with storage, persists it in the background (latest wins). */
  async #checkpoint(fh: FileHandle, offset: number): Promise<void> {
    const bytes = Math.min(offset, FINGERPRINT_BYTES);
    const prev = this.#resume;
    const fingerprint =
      prev && prev.fingerprint.bytes === FINGERPRINT_BYTES && bytes === FINGERPRINT_BYTES
        ? prev.fingerprint
        : await fingerprintOf(fh, bytes);
    this.#resume = { version: 1, path: this.#path, offset, fingerprint };
    if (!this.#client) return;
    this.#ckptWanted = this.#resume;
    this.#ckptWriter ??= this.#writeCheckpoints();
  }

  async #writeCheckpoints(): Promise<void> {
    const client = this.#client!;
    for (let c = this.#ckptWanted; c !== undefined; c = this.#ckptWanted) {
      this.#ckptWanted = undefined;
      try {
        await client.set(CHECKPOINT_KEY, Buffer.from(JSON.stringify(c)));
      } catch (err) {
        this.#settings.logger.warn(
          'could not store the checkpoint; records may be read again after a restart',
          {
            path: this.#path,
            offset: c.offset,
            error: errorMessage(err),
          },
        );
      }
    }
    this.#ckptWriter = undefined;
  }
}
