/**
 * In-memory sending queue with wait-for-result semantics.
 *
 * `consume` enqueues the batch and resolves only when the exporter delivered it (or rejects with the
 * error that ended delivery), so the caller's checkpoint never passes undelivered data. At most
 * `num_consumers` batches are delivered concurrently and at most `queue_size` wait; when the waiting
 * room is full `consume` blocks (`block_on_overflow`) or rejects with a RetryableError counted in
 * `otelcol_exporter_enqueue_failed_log_records`. Delivery retries retryable errors per
 * `retry_on_failure` (forever by default); the caller is still waiting, so nothing is dropped here:
 * a final error is handed back to the caller, who keeps its checkpoint.
 *
 * Shutdown stops intake (new and blocked callers get a RetryableError) and drains the batches already
 * queued; the runtime's shutdown deadline bounds the drain.
 */
import type { ComponentSettings, Exporter, Host } from '../../component.ts';
import { errorMessage, RetryableError } from '../../errors.ts';
import type { LogsBatch } from '../../model.ts';
import { retry } from '../retry.ts';
import { BlockTracker } from '../blocked.ts';
import { SinkHealth } from '../failure.ts';
import type { SendingQueueConfig } from '../queue.ts';
import { queueMetrics } from './common.ts';
import type { QueueMetrics } from './common.ts';

interface Item {
  batch: LogsBatch;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class MemoryQueue implements Exporter {
  readonly capabilities: { mutatesData: boolean };
  readonly #settings: ComponentSettings;
  readonly #cfg: SendingQueueConfig;
  readonly #exporter: Exporter;
  readonly #metrics: QueueMetrics;
  readonly #waiting: Item[] = [];
  /** Callers blocked on a full queue. */
  readonly #blocked: { wake: () => void }[] = [];
  readonly #abort = new AbortController();
  #inFlight = 0;
  #closing = false;
  #drained: (() => void) | undefined;
  #shutdown: Promise<void> | undefined;
  #full = false;
  readonly #health: SinkHealth;
  readonly #block: BlockTracker;
  /** Items whose delivery failed at least once and is still being retried (their callers wait). */
  readonly #failing = new Set<Item>();
  /** Items being delivered. */
  readonly #delivering = new Set<Item>();
  #abandoned = false;

  constructor(settings: ComponentSettings, cfg: SendingQueueConfig, exporter: Exporter) {
    this.#settings = settings;
    this.#cfg = cfg;
    this.#exporter = exporter;
    this.capabilities = exporter.capabilities;
    this.#metrics = queueMetrics(settings, cfg.queue_size);
    this.#health = new SinkHealth(settings);
    this.#block = new BlockTracker(settings);
  }

  #updateBlocked(lastError?: string): void {
    if (this.#failing.size > 0 || this.#full) {
      this.#block.start(
        this.#full
          ? 'its sending queue is full'
          : `a delivery its caller waits for keeps failing (${lastError ?? 'retrying'})`,
        { queue_size: this.#cfg.queue_size, waiting: this.#waiting.length, in_flight: this.#inFlight },
      );
    } else this.#block.stop();
  }

  start(host: Host): Promise<void> {
    return this.#exporter.start(host);
  }

  /** Batches waiting for a consumer (not counting those being delivered). */
  get size(): number {
    return this.#waiting.length;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  async consume(batch: LogsBatch): Promise<void> {
    while (this.#waiting.length >= this.#cfg.queue_size) {
      if (this.#closing) throw this.#shuttingDown();
      if (!this.#cfg.block_on_overflow) {
        this.#metrics.enqueueFailed.inc(batch.length);
        throw new RetryableError('sending queue is full', { retryAfterMs: 1000 });
      }
      if (!this.#full) {
        this.#full = true;
        this.#updateBlocked();
      }
      await new Promise<void>((wake) => this.#blocked.push({ wake }));
    }
    if (this.#closing) throw this.#shuttingDown();
    return new Promise<void>((resolve, reject) => {
      this.#waiting.push({ batch, resolve, reject });
      this.#metrics.size.set(this.#waiting.length);
      this.#pump();
    });
  }

  #shuttingDown(): RetryableError {
    return new RetryableError(`exporter ${this.#settings.id} is shutting down`);
  }

  #pump(): void {
    while (this.#inFlight < this.#cfg.num_consumers && this.#waiting.length > 0) {
      const item = this.#waiting.shift()!;
      this.#metrics.size.set(this.#waiting.length);
      this.#blocked.shift()?.wake();
      if (this.#full && this.#waiting.length < this.#cfg.queue_size && this.#blocked.length === 0) {
        this.#full = false;
        this.#updateBlocked();
      }
      this.#inFlight++;
      this.#delivering.add(item);
      void this.#deliver(item);
    }
    if (this.#closing && this.#inFlight === 0 && this.#waiting.length === 0) this.#drained?.();
  }

  async #deliver(item: Item): Promise<void> {
    try {
      await retry(this.#cfg.retry_on_failure, () => this.#exporter.consume(item.batch), {
        signal: this.#abort.signal,
        onRetry: (attempt, err, delayMs) => {
          this.#health.failed(err, delayMs);
          this.#failing.add(item);
          this.#updateBlocked(errorMessage(err));
          this.#settings.logger.debug('sending queue: delivery failed, retrying', {
            attempt,
            delay_ms: delayMs,
            error: errorMessage(err),
            records: item.batch.length,
          });
        },
      });
      this.#health.succeeded();
      item.resolve();
    } catch (err) {
      item.reject(err);
    } finally {
      this.#delivering.delete(item);
      if (this.#failing.delete(item)) this.#updateBlocked();
      this.#inFlight--;
      this.#pump();
    }
  }

  /**
   * Gives up on every batch not delivered yet (the collector is stopping and the drain ran out of
   * time): retries stop, waiting and in-flight callers get a retryable error (so they keep their
   * checkpoint), new calls are refused. `shutdown` still follows.
   */
  abandon(): void {
    this.#abandoned = true;
    this.#closing = true;
    this.#abort.abort();
    for (const b of this.#blocked.splice(0)) b.wake();
    for (const item of this.#waiting.splice(0)) item.reject(this.#shuttingDown());
    // Deliveries in progress may hang in the exporter's own retries: their callers are answered now
    // (a late success only means the batch is delivered twice, never lost).
    for (const item of this.#delivering) item.reject(this.#shuttingDown());
    this.#metrics.size.set(0);
    this.#pump();
  }

  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    this.#closing = true;
    for (const b of this.#blocked.splice(0)) b.wake();
    // Abandoned: every caller was answered; stopping the exporter cuts the deliveries still running.
    if (!this.#abandoned && (this.#inFlight > 0 || this.#waiting.length > 0)) {
      this.#settings.logger.info('sending queue: draining before shutdown', {
        waiting: this.#waiting.length,
        in_flight: this.#inFlight,
      });
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#pump();
      });
    }
    this.#abort.abort();
    this.#block.close();
    await this.#exporter.shutdown();
  }
}
