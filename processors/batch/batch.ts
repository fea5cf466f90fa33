/**
 * The `batch` processor. Records from incoming `consume` calls are queued and sent downstream in
 * batches of `send_batch_size` (split at `send_batch_max_size`), or whatever is pending after
 * `timeout`. Unlike OTel's batch processor it never acknowledges early: each incoming call settles
 * only when every downstream batch holding its records has settled, and rejects with the downstream
 * error if any of them failed.
 *
 * Because every caller waits for its acknowledgement, holding records while nothing is being sent only
 * adds latency (a receiver with a few batches in flight would wait `timeout` on every page: a backfill
 * 65x slower). So records are held only while a downstream send is in progress:
 * - downstream idle: what is pending goes out at once;
 * - a send in progress: records accumulate; they go out together when it settles, or earlier, in a
 *   send of their own, when `send_batch_size` records are pending or the oldest waited `timeout`.
 * Sends start in arrival order (several may be in progress).
 */
import type { Counter, Histogram } from 'prom-client';
import { once } from '../../runtime/component.ts';
import type { ComponentSettings, Host, LogsConsumer, Processor } from '../../runtime/component.ts';
import { CollectorError, ErrorCode, isPermanent } from '../../runtime/errors.ts';
import type { LogRecord, LogsBatch } from '../../runtime/model.ts';
import { counter, histogram } from '../../runtime/telemetry/metrics.ts';
import type { Config } from './config.ts';

/** One incoming `consume` call waiting for its records to be delivered. */
interface Ticket {
  /** Records not yet placed in a downstream batch. */
  unsent: number;
  /** Downstream batches holding its records that have not settled. */
  inFlight: number;
  error: unknown;
  failed: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A run of records from one ticket, queued for sending. */
interface Segment {
  records: LogRecord[];
  from: number;
  ticket: Ticket;
}

type Labels = 'processor' | 'pipeline';

/** Which of two failures an incoming call reports: a retryable one wins, so nothing retryable is dropped. */
function preferRetryable(current: unknown, next: unknown, hasCurrent: boolean): unknown {
  if (!hasCurrent) return next;
  return isPermanent(current) && !isPermanent(next) ? next : current;
}

const SEND_SIZE_BUCKETS = [
  10, 25, 50, 75, 100, 250, 500, 750, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 20000,
  30000, 50000, 100000,
];

/** The `batch` processor. */
export class BatchProcessor implements Processor {
  readonly capabilities = { mutatesData: false };
  readonly #cfg: Config;
  readonly #next: LogsConsumer;
  readonly #labels: Record<Labels, string>;
  readonly #sizeTrigger: Counter<Labels>;
  readonly #timeoutTrigger: Counter<Labels>;
  readonly #sendSize: Histogram<Labels>;
  #queue: Segment[] = [];
  #queued = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Downstream sends in progress. */
  readonly #sending = new Set<Promise<void>>();
  #stopped = false;

  constructor(settings: ComponentSettings, cfg: Config, next: LogsConsumer) {
    this.#cfg = cfg;
    this.#next = next;
    this.#labels = { processor: settings.id, pipeline: settings.pipeline ?? '' };
    const labelNames: Labels[] = ['processor', 'pipeline'];
    this.#sizeTrigger = counter(settings.metrics, {
      name: 'otelcol_processor_batch_batch_size_trigger_send',
      help: 'Batches sent because send_batch_size was reached',
      labelNames,
    });
    this.#timeoutTrigger = counter(settings.metrics, {
      name: 'otelcol_processor_batch_timeout_trigger_send',
      help: 'Batches sent because the timeout expired',
      labelNames,
    });
    this.#sendSize = histogram(settings.metrics, {
      name: 'otelcol_processor_batch_batch_send_size',
      help: 'Records per batch sent downstream',
      labelNames,
      buckets: SEND_SIZE_BUCKETS,
    });
  }

  start(_host: Host): Promise<void> {
    return Promise.resolve();
  }

  consume(batch: LogsBatch): Promise<void> {
    if (this.#stopped) {
      return Promise.reject(new CollectorError(ErrorCode.SHUTTING_DOWN, 'batch processor is shut down'));
    }
    if (batch.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const ticket: Ticket = {
        unsent: batch.length,
        inFlight: 0,
        error: undefined,
        failed: false,
        resolve,
        reject,
      };
      this.#queue.push({ records: batch, from: 0, ticket });
      this.#queued += batch.length;
      if (this.#cfg.timeout === 0) {
        this.#sendAll('size');
        return;
      }
      while (this.#queued >= this.#cfg.send_batch_size) this.#sendOne(this.#maxTake(), 'size');
      // Downstream idle: waiting would only delay the callers, who wait for their acknowledgement.
      if (this.#sending.size === 0) this.#sendAll(undefined);
      this.#armTimer();
    });
  }

  readonly shutdown = once(async () => {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sendAll(undefined);
    while (this.#sending.size > 0) await Promise.allSettled([...this.#sending]);
  });

  #maxTake(): number {
    const max = this.#cfg.send_batch_max_size;
    return max > 0 ? Math.min(max, this.#queued) : this.#queued;
  }

  #armTimer(): void {
    if (this.#queued === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#sendAll('timeout');
      }, this.#cfg.timeout);
    }
  }

  #sendAll(trigger: 'size' | 'timeout' | undefined): void {
    while (this.#queued > 0) this.#sendOne(this.#maxTake(), trigger);
  }

  /** Takes `n` records off the queue and starts their downstream send. */
  #sendOne(n: number, trigger: 'size' | 'timeout' | undefined): void {
    const batch: LogsBatch = [];
    const tickets = new Set<Ticket>();
    while (batch.length < n) {
      const seg = this.#queue[0]!;
      const take = Math.min(n - batch.length, seg.records.length - seg.from);
      for (let i = seg.from; i < seg.from + take; i++) batch.push(seg.records[i]!);
      seg.from += take;
      seg.ticket.unsent -= take;
      tickets.add(seg.ticket);
      if (seg.from === seg.records.length) this.#queue.shift();
    }
    this.#queued -= n;
    for (const t of tickets) t.inFlight++;
    if (trigger === 'size') this.#sizeTrigger.inc(this.#labels);
    else if (trigger === 'timeout') this.#timeoutTrigger.inc(this.#labels);
    this.#sendSize.observe(this.#labels, batch.length);

    const settle = (err: unknown, failed: boolean) => {
      for (const t of tickets) {
        t.inFlight--;
        if (failed) {
          t.error = preferRetryable(t.error, err, t.failed);
          t.failed = true;
        }
        if (t.unsent === 0 && t.inFlight === 0) {
          if (t.failed) t.reject(t.error);
          else t.resolve();
        }
      }
    };
    const p = (async () => {
      try {
        await this.#next.consume(batch);
      } catch (err) {
        settle(err, true);
        return;
      }
      settle(undefined, false);
    })().finally(() => {
      this.#sending.delete(p);
      // Everything that arrived during the send goes out now, together.
      if (this.#sending.size === 0 && this.#queued > 0) {
        this.#sendAll(undefined);
        this.#armTimer();
      }
    });
    this.#sending.add(p);
  }
}
