/**
 * Metrics of the `otlphttp` exporter, on the collector's registry. Every instance shares the metric
 * objects (prom-client allows one per name) and labels its series with `exporter` = component id.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { counter, histogram } from '../../runtime/telemetry/metrics.ts';

/** Outcome of one HTTP request. */
export type RequestOutcome =
  | 'success'
  | 'partial_success'
  | 'throttled'
  | 'retryable_status'
  | 'permanent_status'
  | 'timeout'
  | 'network_error';

export class OtlpMetrics {
  readonly #exporter: string;
  readonly #records: Counter<'exporter' | 'result'>;
  readonly #requests: Counter<'exporter' | 'outcome'>;
  readonly #retries: Counter<'exporter'>;
  readonly #bytes: Counter<'exporter'>;
  readonly #latency: Histogram<'exporter' | 'outcome'>;

  constructor(registry: Registry, exporterId: string) {
    this.#exporter = exporterId;
    this.#records = counter(registry, {
      name: 'otelcol_exporter_otlphttp_log_records',
      help: 'Log records by result: sent (accepted by the endpoint), rejected (partial success), failed (permanent error)',
      labelNames: ['exporter', 'result'],
    });
    this.#requests = counter(registry, {
      name: 'otelcol_exporter_otlphttp_requests',
      help: 'OTLP/HTTP export requests by outcome',
      labelNames: ['exporter', 'outcome'],
    });
    this.#retries = counter(registry, {
      name: 'otelcol_exporter_otlphttp_retries',
      help: 'Export requests retried after a retryable failure',
      labelNames: ['exporter'],
    });
    this.#bytes = counter(registry, {
      name: 'otelcol_exporter_otlphttp_sent_bytes',
      help: 'Request body bytes delivered (requests the endpoint accepted), after compression',
      labelNames: ['exporter'],
    });
    this.#latency = histogram(registry, {
      name: 'otelcol_exporter_otlphttp_request_duration_seconds',
      help: 'Duration of one OTLP/HTTP export request, by outcome',
      labelNames: ['exporter', 'outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
  }

  request(outcome: RequestOutcome, seconds: number, bytes: number): void {
    this.#requests.inc({ exporter: this.#exporter, outcome });
    this.#latency.observe({ exporter: this.#exporter, outcome }, seconds);
    // Only bytes the endpoint took: a failed or refused request delivered nothing.
    if (outcome === 'success' || outcome === 'partial_success')
      this.#bytes.inc({ exporter: this.#exporter }, bytes);
  }

  records(result: 'sent' | 'rejected' | 'failed', n: number): void {
    if (n > 0) this.#records.inc({ exporter: this.#exporter, result }, n);
  }

  retry(): void {
    this.#retries.inc({ exporter: this.#exporter });
  }
}
