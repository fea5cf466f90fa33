/**
 * Receiver-specific metrics. Several `authentik/<name>` receivers share one registry, so every metric
 * is created once per registry and labelled with the receiver id.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { counter as sharedCounter } from '../../runtime/telemetry/metrics.ts';

type Dataset = 'events' | 'users' | 'groups' | 'version';

function counter(reg: Registry, name: string, help: string, labelNames: string[]): Counter {
  const existing = reg.getSingleMetric(name);
  if (existing) return existing as Counter;
  return new Counter({ name, help, labelNames, registers: [reg] });
}

function gauge(reg: Registry, name: string, help: string, labelNames: string[]): Gauge {
  const existing = reg.getSingleMetric(name);
  if (existing) return existing as Gauge;
  return new Gauge({ name, help, labelNames, registers: [reg] });
}

function histogram(
  reg: Registry,
  name: string,
  help: string,
  labelNames: string[],
  buckets: number[],
): Histogram {
  const existing = reg.getSingleMetric(name);
  if (existing) return existing as Histogram;
  return new Histogram({ name, help, labelNames, buckets, registers: [reg] });
}

const PREFIX = 'otelcol_receiver_authentik_';

/** The metrics of one receiver instance (label `receiver` = component id). */
export class ReceiverMetrics {
  readonly #receiver: string;
  readonly #requests: Counter;
  readonly #requestErrors: Counter;
  readonly #requestDuration: Histogram;
  readonly #emitted: Counter;
  readonly #pollDuration: Histogram;
  readonly #backfillDone: Gauge;
  readonly #backfillTotal: Gauge;
  readonly #highWater: Gauge;
  readonly #deliveryRetries: Counter;
  readonly #resyncs: Counter;
  readonly #verifications: Counter<'receiver' | 'result'>;
  readonly #verifyRequests: Counter<'receiver'>;
  readonly #rereads: Counter<'receiver'>;
  readonly #late: Counter<'receiver'>;
  readonly #stalls: Counter;
  readonly #stalled: Gauge;

  constructor(reg: Registry, receiver: string) {
    this.#receiver = receiver;
    this.#requests = counter(
      reg,
      `${PREFIX}requests`,
      'authentik API requests by dataset and HTTP status (or transport error kind)',
      ['receiver', 'dataset', 'status'],
    );
    this.#requestErrors = counter(
      reg,
      `${PREFIX}request_errors`,
      'Failed authentik API requests by dataset and error kind (each was retried)',
      ['receiver', 'dataset', 'kind'],
    );
    this.#requestDuration = histogram(
      reg,
      `${PREFIX}request_duration_seconds`,
      'authentik API request latency (headers and body)',
      ['receiver', 'dataset'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    );
    this.#emitted = counter(
      reg,
      `${PREFIX}records_emitted`,
      'Records delivered to the pipeline (consume resolved) by dataset',
      ['receiver', 'dataset'],
    );
    this.#pollDuration = histogram(
      reg,
      `${PREFIX}poll_duration_seconds`,
      'Duration of one poll (incremental events, or a directory listing)',
      ['receiver', 'dataset'],
      [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    );
    this.#backfillDone = gauge(
      reg,
      `${PREFIX}backfill_pages_done`,
      'Event backfill: pages read and delivered so far',
      ['receiver'],
    );
    this.#backfillTotal = gauge(
      reg,
      `${PREFIX}backfill_pages_estimated`,
      'Event backfill: estimated pages to read in total (0 when no backfill runs)',
      ['receiver'],
    );
    this.#highWater = gauge(
      reg,
      `${PREFIX}events_high_water_timestamp_seconds`,
      'created of the newest delivered event (Unix seconds)',
      ['receiver'],
    );
    this.#deliveryRetries = counter(
      reg,
      `${PREFIX}delivery_retries`,
      'Batches offered again after the pipeline refused them (retryable)',
      ['receiver', 'dataset'],
    );
    this.#resyncs = counter(
      reg,
      `${PREFIX}scan_resyncs`,
      'Times an event scan found pages shifted (inserts/deletes while paging) and re-located its position',
      ['receiver'],
    );
    this.#verifications = sharedCounter(reg, {
      name: `${PREFIX}events_verifications`,
      help: 'Checks that the events above the verified edge are complete, by result (verified or mismatch)',
      labelNames: ['receiver', 'result'],
    });
    this.#verifyRequests = sharedCounter(reg, {
      name: `${PREFIX}events_verify_requests`,
      help: 'Extra small requests made to verify the events above the verified edge',
      labelNames: ['receiver'],
    });
    this.#rereads = sharedCounter(reg, {
      name: `${PREFIX}events_rereads`,
      help: 'Full re-reads of the events above the verified edge (after a mismatch, or verify_reread)',
      labelNames: ['receiver'],
    });
    this.#stalls = counter(
      reg,
      `${PREFIX}events_stalls`,
      'Times the event scan made no progress over many requests or seconds (health recoverable_error, request rate capped)',
      ['receiver'],
    );
    this.#stalled = gauge(
      reg,
      `${PREFIX}events_stalled`,
      '1 while the event scan makes no progress (requests capped), else 0',
      ['receiver'],
    );
    this.#late = sharedCounter(reg, {
      name: `${PREFIX}events_late`,
      help: 'Events found by re-reads older than the high-water mark (committed late) and delivered',
      labelNames: ['receiver'],
    });
  }

  request(dataset: Dataset, status: number | string, seconds: number | undefined): void {
    this.#requests.inc({ receiver: this.#receiver, dataset, status: String(status) });
    if (seconds !== undefined) this.#requestDuration.observe({ receiver: this.#receiver, dataset }, seconds);
  }
  requestError(dataset: Dataset, kind: string): void {
    this.#requestErrors.inc({ receiver: this.#receiver, dataset, kind });
  }
  emitted(dataset: Dataset, n: number): void {
    if (n > 0) this.#emitted.inc({ receiver: this.#receiver, dataset }, n);
  }
  poll(dataset: Dataset, seconds: number): void {
    this.#pollDuration.observe({ receiver: this.#receiver, dataset }, seconds);
  }
  backfill(done: number, total: number): void {
    this.#backfillDone.set({ receiver: this.#receiver }, done);
    this.#backfillTotal.set({ receiver: this.#receiver }, total);
  }
  highWater(us: bigint): void {
    this.#highWater.set({ receiver: this.#receiver }, Number(us) / 1e6);
  }
  deliveryRetry(dataset: Dataset): void {
    this.#deliveryRetries.inc({ receiver: this.#receiver, dataset });
  }
  resync(): void {
    this.#resyncs.inc({ receiver: this.#receiver });
  }
  verification(result: 'verified' | 'mismatch'): void {
    this.#verifications.inc({ receiver: this.#receiver, result });
  }
  verifyRequest(): void {
    this.#verifyRequests.inc({ receiver: this.#receiver });
  }
  reread(): void {
    this.#rereads.inc({ receiver: this.#receiver });
  }
  stall(on: boolean): void {
    if (on) this.#stalls.inc({ receiver: this.#receiver });
    this.#stalled.set({ receiver: this.#receiver }, on ? 1 : 0);
  }
  late(n: number): void {
    if (n > 0) this.#late.inc({ receiver: this.#receiver }, n);
  }
}
