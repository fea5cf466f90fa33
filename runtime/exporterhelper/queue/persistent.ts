/**
 * Persistent sending queue: batches go to a write-ahead log (wal.ts) in a directory handed out by a
 * storage extension (`file_storage`), and background consumers deliver them.
 *
 * - `consume` resolves once the batch is fdatasync'ed to the log (durably queued), so a long backend
 *   outage does not stall the caller's checkpoint. When the log holds `queue_size` batches or
 *   `max_size_mib` MiB, `consume` blocks (`block_on_overflow`, default) or rejects with a
 *   RetryableError counted in `otelcol_exporter_enqueue_failed_log_records`.
 * - `num_consumers` background loops deliver the oldest batches with `retry_on_failure` (forever by
 *   default: a retryable error never drops data unless the user set a finite `max_elapsed_time`).
 *   A batch is acknowledged in the log only after delivery, or after a permanent failure (counted
 *   through reportDropped with the reason and logged); its segment is deleted once all batches in it
 *   are acknowledged.
 * - Start replays every unacknowledged batch left by a previous run (crash or shutdown). A batch that
 *   was being delivered when the process died is delivered again: at-least-once.
 * - Shutdown stops intake, stops the consumers quickly (an in-flight delivery gets `stopGraceMs` to
 *   finish, then the exporter is shut down, which cuts its own retries) and leaves undelivered batches
 *   on disk for the next start.
 */
import { join } from 'node:path';
import { isStorageExtension } from '../../component.ts';
import type { ComponentSettings, Exporter, Host } from '../../component.ts';
import { errorMessage, isPermanent, RetryableError } from '../../errors.ts';
import type { LogsBatch } from '../../model.ts';
import { retry, RetriesExhaustedError, sleep } from '../retry.ts';
import { BlockTracker } from '../blocked.ts';
import { SinkHealth } from '../failure.ts';
import type { SendingQueueConfig } from '../queue.ts';
import { decodeBatch, encodeBatch } from './codec.ts';
import { queueMetrics } from './common.ts';
import type { QueueMetrics } from './common.ts';
import { boundGauge, reasonCounter } from './metrics.ts';
import type { BoundGauge } from './metrics.ts';
import { recordBytes, Wal } from './wal.ts';
import type { AckOutcome, SkippedRecord, WalEntry } from './wal.ts';

const MIB = 1024 * 1024;

export interface PersistentQueueOptions {
  /** Segment size; default: max_size / (4 × (num_consumers + 2)), between 64 KiB and 16 MiB. */
  segmentBytes?: number;
  /** How long shutdown waits for in-flight deliveries before shutting the exporter down. Default 2 s. */
  stopGraceMs?: number;
}

export class PersistentQueue implements Exporter {
  readonly capabilities: { mutatesData: boolean };
  readonly #settings: ComponentSettings;
  readonly #cfg: SendingQueueConfig;
  readonly #exporter: Exporter;
  readonly #opts: PersistentQueueOptions;
  readonly #metrics: QueueMetrics;
  readonly #bytes: BoundGauge;
  readonly #skipped: (reason: string, n?: number) => void;
  readonly #maxBytes: number;
  readonly #abort = new AbortController();
  #wal: Wal | undefined;
  readonly #pending: WalEntry[] = [];
  readonly #inFlight = new Map<number, { entry: WalEntry; done: Promise<void> }>();
  #reservedBytes = 0;
  #reservedCount = 0;
  #waiters: (() => void)[] = [];
  #workWaiters: (() => void)[] = [];
  #consumers: Promise<void>[] = [];
  #closing = false;
  #full = false;
  #shutdown: Promise<void> | undefined;
  readonly #health: SinkHealth;
  readonly #block: BlockTracker;

  constructor(
    settings: ComponentSettings,
    cfg: SendingQueueConfig,
    exporter: Exporter,
    opts: PersistentQueueOptions = {},
  ) {
    this.#settings = settings;
    this.#cfg = cfg;
    this.#exporter = exporter;
    this.#opts = opts;
    this.capabilities = exporter.capabilities;
    this.#maxBytes = cfg.max_size_mib * MIB;
    this.#metrics = queueMetrics(settings, cfg.queue_size);
    const labels = { exporter: settings.id };
    this.#bytes = boundGauge(
      settings.metrics,
      'otelcol_exporter_queue_size_bytes',
      'Bytes used on disk by the persistent sending queue.',
      labels,
    );
    boundGauge(
      settings.metrics,
      'otelcol_exporter_queue_capacity_bytes',
      'Disk bound of the persistent sending queue (max_size_mib).',
      labels,
    ).set(this.#maxBytes);
    this.#health = new SinkHealth(settings);
    this.#block = new BlockTracker(settings);
    this.#skipped = reasonCounter(
      settings.metrics,
      'otelcol_exporter_queue_skipped_records',
      'Damaged or duplicate records skipped while replaying the persistent queue, by reason.',
      labels,
      'reason',
    );
  }

  /** Batches stored (waiting or being delivered), including those being written. */
  get size(): number {
    return this.#pending.length + this.#inFlight.size + this.#reservedCount;
  }

  /** Bytes the log uses on disk. */
  get diskBytes(): number {
    return this.#wal?.diskBytes ?? 0;
  }

  async start(host: Host): Promise<void> {
    await this.#exporter.start(host);
    const storageId = this.#cfg.storage!;
    const ext = host.getExtension(storageId);
    if (!isStorageExtension(ext)) {
      throw new Error(
        `sending_queue.storage: "${storageId}" is not a configured storage extension ` +
          `(declare it under extensions: and list it in service.extensions)`,
      );
    }
    const dir = join(await ext.getDirectory('exporter', this.#settings.id), 'sending_queue');
    const segmentBytes =
      this.#opts.segmentBytes ??
      Math.min(
        16 * MIB,
        Math.max(64 * 1024, Math.floor(this.#maxBytes / (4 * (this.#cfg.num_consumers + 2)))),
      );
    const { wal, pending } = await Wal.open(dir, {
      segmentBytes,
      onSkipped: (s) => this.#onSkipped(s),
      onStaleLock: (why) =>
        this.#settings.logger.warn('sending queue: taking over a stale queue lock', { dir, reason: why }),
    });
    this.#wal = wal;
    this.#pending.push(...pending);
    if (pending.length) {
      this.#settings.logger.info('sending queue: replaying batches left by the previous run', {
        batches: pending.length,
        records: pending.reduce((n, e) => n + e.items, 0),
        dir,
      });
    }
    this.#updateGauges();
    for (let i = 0; i < this.#cfg.num_consumers; i++) this.#consumers.push(this.#consumerLoop());
  }

  #onSkipped(s: SkippedRecord): void {
    this.#skipped(s.reason);
    const fields: Record<string, unknown> = { file: s.file, offset: s.offset, damage: s.reason };
    if (s.end !== undefined) fields['damaged_until'] = s.end;
    if (s.batchId !== undefined) fields['batch'] = s.batchId;
    if (s.error !== undefined) fields['error'] = s.error;
    if (!s.lost) {
      // A torn final write was never acknowledged to the sender, so it is re-sent by it; a damaged
      // ack only means a batch may be delivered twice; the rest held nothing undelivered.
      this.#settings.logger.warn('sending queue: skipped a damaged or duplicate record in the queue log', {
        ...fields,
        reason: s.reason,
      });
    } else if (s.items > 0) {
      this.#settings.reportDropped(s.items, 'queue_corrupted', fields);
    } else {
      this.#settings.logger.error(
        s.reason === 'unreadable'
          ? 'sending queue: a queue log segment cannot be read; its batches are not replayed (file kept)'
          : 'sending queue: lost a damaged batch of unknown size in the queue log (dropped, reason queue_corrupted)',
        { ...fields, reason: 'queue_corrupted' },
      );
    }
  }

  async consume(batch: LogsBatch): Promise<void> {
    if (this.#closing || !this.#wal) throw this.#unavailable();
    const parts = this.#encode(batch);
    const bytes = parts.reduce((n, p) => n + recordBytes(p.bytes.length), 0);
    await this.#admit(bytes, parts.length, batch.length);
    const wal = this.#wal;
    try {
      for (const p of parts) {
        const entry = await wal.append(p.items, p.bytes);
        this.#reservedBytes -= recordBytes(p.bytes.length);
        this.#reservedCount--;
        this.#pending.push(entry);
        this.#wakeConsumers();
      }
    } catch (err) {
      // Parts already written stay queued (they are delivered); the caller re-sends the batch.
      this.#reservedBytes = Math.max(0, this.#reservedBytes - bytes);
      this.#reservedCount = Math.max(0, this.#reservedCount - parts.length);
      this.#metrics.enqueueFailed.inc(batch.length);
      throw new RetryableError(`sending queue: could not write to the queue log: ${errorMessage(err)}`, {
        cause: err,
        retryAfterMs: 1000,
      });
    } finally {
      this.#updateGauges();
      this.#notify();
    }
  }

  #unavailable(): RetryableError {
    return new RetryableError(
      this.#closing
        ? `exporter ${this.#settings.id} is shutting down`
        : `exporter ${this.#settings.id}: sending queue not started`,
    );
  }

  #encode(batch: LogsBatch): { items: number; bytes: Buffer }[] {
    const bytes = encodeBatch(batch);
    const max = this.#cfg.max_batch_bytes;
    if (max <= 0 || bytes.length <= max || batch.length <= 1) return [{ items: batch.length, bytes }];
    const mid = Math.ceil(batch.length / 2);
    return [...this.#encode(batch.slice(0, mid)), ...this.#encode(batch.slice(mid))];
  }

  async #admit(bytes: number, count: number, records: number): Promise<void> {
    for (;;) {
      if (this.#closing || !this.#wal) throw this.#unavailable();
      const stored = this.size;
      const fitsBytes = this.#wal.diskBytes + this.#reservedBytes + bytes <= this.#maxBytes;
      const fitsCount = stored + count <= this.#cfg.queue_size;
      if (!fitsBytes && this.#wal.activeReclaimable) {
        await this.#wal.rotate();
        continue;
      }
      // An empty queue always takes one batch, even one larger than the bound, so it cannot deadlock.
      if ((fitsBytes && fitsCount) || stored === 0) {
        this.#reservedBytes += bytes;
        this.#reservedCount += count;
        if (this.#full) {
          this.#full = false;
          this.#block.stop();
        }
        return;
      }
      if (!this.#cfg.block_on_overflow) {
        this.#metrics.enqueueFailed.inc(records);
        throw new RetryableError('sending queue is full', { retryAfterMs: 1000 });
      }
      if (!this.#full) {
        this.#full = true;
        this.#block.start('sending queue is full; waiting until batches are delivered', {
          batches: stored,
          queue_size: this.#cfg.queue_size,
          bytes: this.#wal.diskBytes,
          max_bytes: this.#maxBytes,
        });
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  #notify(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #wakeConsumers(): void {
    for (const w of this.#workWaiters.splice(0)) w();
  }

  #updateGauges(): void {
    this.#metrics.size.set(this.size);
    this.#bytes.set(this.diskBytes);
  }

  async #consumerLoop(): Promise<void> {
    while (!this.#abort.signal.aborted) {
      const entry = this.#pending.shift();
      if (!entry) {
        await new Promise<void>((resolve) => this.#workWaiters.push(resolve));
        continue;
      }
      const done = this.#deliver(entry);
      this.#inFlight.set(entry.id, { entry, done });
      try {
        await done;
      } finally {
        this.#inFlight.delete(entry.id);
        this.#updateGauges();
        this.#notify();
      }
    }
  }

  async #deliver(entry: WalEntry): Promise<void> {
    const wal = this.#wal!;
    let batch: LogsBatch;
    try {
      batch = decodeBatch(await wal.read(entry));
    } catch (err) {
      this.#settings.reportDropped(entry.items, 'queue_read_failed', { error: errorMessage(err) });
      await this.#ack(entry, 'dropped');
      return;
    }
    try {
      await retry(this.#cfg.retry_on_failure, () => this.#exporter.consume(batch), {
        signal: this.#abort.signal,
        onRetry: (attempt, err, delayMs) => {
          this.#health.failed(err, delayMs);
          this.#settings.logger.debug('sending queue: delivery failed, retrying', {
            attempt,
            delay_ms: delayMs,
            error: errorMessage(err),
            records: entry.items,
          });
        },
      });
      this.#health.succeeded();
    } catch (err) {
      if (this.#abort.signal.aborted) {
        // Shutting down: the batch stays in the log and is delivered after the next start.
        return;
      }
      const reason =
        err instanceof RetriesExhaustedError
          ? 'retries_exhausted'
          : isPermanent(err)
            ? 'permanent_error'
            : 'retry_disabled';
      this.#settings.reportDropped(entry.items, reason, { error: errorMessage(err) });
      await this.#ack(entry, 'dropped');
      return;
    }
    await this.#ack(entry, 'delivered');
  }

  async #ack(entry: WalEntry, outcome: AckOutcome): Promise<void> {
    try {
      await this.#wal!.ack(entry, outcome);
    } catch (err) {
      // The batch stays in the log and is delivered again after a restart (a duplicate, not a loss).
      this.#settings.logger[this.#closing ? 'info' : 'error'](
        'sending queue: could not record the outcome of a batch in the queue log',
        {
          error: errorMessage(err),
          outcome,
        },
      );
    }
  }

  /**
   * The collector is stopping and the drain ran out of time: callers waiting for room get a retryable
   * error (they keep their checkpoint), new calls are refused. Stored batches stay; `shutdown` follows.
   */
  abandon(): void {
    this.#closing = true;
    this.#notify();
  }

  /** Batches and records still in the log (waiting or being delivered). */
  get backlog(): { batches: number; records: number } {
    const entries = [...this.#pending, ...[...this.#inFlight.values()].map((f) => f.entry)];
    return { batches: entries.length, records: entries.reduce((n, e) => n + e.items, 0) };
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    this.#closing = true;
    this.#block.close();
    this.#notify();
    this.#abort.abort();
    this.#wakeConsumers();
    const grace = this.#opts.stopGraceMs ?? 2000;
    const settled = () => Promise.allSettled([...this.#inFlight.values()].map((f) => f.done));
    if (this.#inFlight.size > 0) await Promise.race([settled(), sleep(grace)]);
    try {
      await this.#exporter.shutdown();
    } finally {
      if (this.#inFlight.size > 0) await Promise.race([settled(), sleep(grace)]);
      await Promise.race([Promise.allSettled(this.#consumers), sleep(grace)]);
      const left = [...this.#pending, ...[...this.#inFlight.values()].map((f) => f.entry)];
      if (this.#wal) {
        await this.#wal.close();
        if (left.length > 0) {
          this.#settings.logger.info('sending queue: undelivered batches kept on disk for the next start', {
            batches: left.length,
            records: left.reduce((n, e) => n + e.items, 0),
            dir: this.#wal.dir,
          });
        }
      }
    }
  }
}
