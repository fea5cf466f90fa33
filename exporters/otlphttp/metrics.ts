/**
 * Metrics of the `otlphttp` exporter, on the collector's registry. Every instance shares the metric
 * objects (prom-client allows one per name) and labels its series with `exporter` = component id.
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** Outcome of one HTTP request. */
export type RequestOutcome =
  | 'success'
  | 'partial_success'
  | 'throttled'
  | 'retryable_status'
  | 'permanent_status'
  | 'timeout'
  | 'network_error';

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]) {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

export class OtlpMetrics {
  readonly #exporter: string;
  readonly #records: Counter<'exporter' | 'result'>;
  readonly #requests: Counter<'exporter' | 'outcome'>;
  readonly #retries: Counter<'exporter'>;
  readonly #bytes: Counter<'exporter'>;
  readonly #latency: Histogram<'exporter' | 'outcome'>;

  constructor(registry: Registry, exporterId: string) {
    this.#exporter = exporterId;
    this.#records = counter(
      registry,
      'otelcol_exporter_otlphttp_log_records_total',
      'Log records by result: sent (accepted by the endpoint), rejected (partial success), failed (permanent error)',
      ['exporter', 'result'],
    );
    this.#requests = counter(
      registry,
      'otelcol_exporter_otlphttp_requests_total',
      'OTLP/HTTP export requests by outcome',
      ['exporter', 'outcome'],
    );
    this.#retries = counter(
      registry,
      'otelcol_exporter_otlphttp_retries_total',
      'Export requests retried after a retryable failure',
      ['exporter'],
    );
    this.#bytes = counter(
      registry,
      'otelcol_exporter_otlphttp_sent_bytes_total',
      'Request body bytes sent (after compression)',
      ['exporter'],
    );
    const name = 'otelcol_exporter_otlphttp_request_duration_seconds';
    this.#latency =
      (registry.getSingleMetric(name) as Histogram<'exporter' | 'outcome'> | undefined) ??
      new Histogram({
        name,
        help: 'Duration of one OTLP/HTTP export request, by outcome',
        labelNames: ['exporter', 'outcome'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      });
  }

  request(outcome: RequestOutcome, seconds: number, bytes: number): void {
    this.#requests.inc({ exporter: this.#exporter, outcome });
    this.#latency.observe({ exporter: this.#exporter, outcome }, seconds);
    this.#bytes.inc({ exporter: this.#exporter }, bytes);
  }

  records(result: 'sent' | 'rejected' | 'failed', n: number): void {
    if (n > 0) this.#records.inc({ exporter: this.#exporter, result }, n);
  }

  retry(): void {
    this.#retries.inc({ exporter: this.#exporter });
  }
}
