/**
 * Metrics of the `elasticsearch` exporter on the collector's registry. Instances share the metric objects
 * and label their series with `exporter` = component id.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { counter, gauge, histogram } from '../../runtime/telemetry/metrics.ts';

/**
 * What happened to a document:
 * - indexed: created (201)
 * - duplicate: 409 version conflict on `create` with an `_id` = already delivered earlier
 * - retried: sent again after a 429/5xx item status or a failed request (counted per resend)
 * - dead_lettered: permanently rejected and written to the dead-letter file
 * - rejected: permanently rejected and not written anywhere (no dead-letter file, or writing it failed)
 * - replay_skipped: found already in the target by `replay_check` (e.g. in an older backing index) and not sent
 */
export type DocOutcome =
  'indexed' | 'duplicate' | 'retried' | 'dead_lettered' | 'rejected' | 'replay_skipped';

export class EsMetrics {
  readonly #exporter: string;
  readonly #docs: Counter<'exporter' | 'outcome'>;
  readonly #requests: Counter<'exporter' | 'status'>;
  readonly #bytes: Counter<'exporter' | 'encoding'>;
  readonly #latency: Histogram<'exporter' | 'status'>;
  readonly #endpointUp: Gauge<'exporter' | 'endpoint'>;
  readonly #replayChecks: Counter<'exporter' | 'result'>;

  constructor(registry: Registry, exporterId: string) {
    this.#exporter = exporterId;
    this.#docs = counter(registry, {
      name: 'otelcol_exporter_elasticsearch_documents',
      help: 'Documents by outcome: indexed, duplicate (409, already delivered), retried (resends), dead_lettered, rejected (permanent, not dead-lettered)',
      labelNames: ['exporter', 'outcome'],
    });
    this.#requests = counter(registry, {
      name: 'otelcol_exporter_elasticsearch_bulk_requests',
      help: '_bulk requests by HTTP status (or timeout / network_error)',
      labelNames: ['exporter', 'status'],
    });
    this.#bytes = counter(registry, {
      name: 'otelcol_exporter_elasticsearch_bulk_sent_bytes',
      help: '_bulk request body bytes delivered (requests answered 2xx): on the wire (encoding=wire, after compression) and before compression (encoding=raw)',
      labelNames: ['exporter', 'encoding'],
    });
    this.#latency = histogram(registry, {
      name: 'otelcol_exporter_elasticsearch_bulk_request_duration_seconds',
      help: 'Duration of one _bulk request, by HTTP status (or timeout / network_error)',
      labelNames: ['exporter', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    });
    this.#endpointUp = gauge(registry, {
      name: 'otelcol_exporter_elasticsearch_endpoint_up',
      help: '1 while the endpoint (configured base URL) is reachable, 0 from a failed connection until it answers again',
      labelNames: ['exporter', 'endpoint'],
    });
    this.#replayChecks = counter(registry, {
      name: 'otelcol_exporter_elasticsearch_replay_checks',
      help: 'Id look-ups of replay_check (one per target and chunk), by result: ok, failed (the documents were sent unchecked)',
      labelNames: ['exporter', 'result'],
    });
  }

  endpointUp(endpoint: string, up: boolean): void {
    this.#endpointUp.set({ exporter: this.#exporter, endpoint }, up ? 1 : 0);
  }

  replayCheck(result: 'ok' | 'failed'): void {
    this.#replayChecks.inc({ exporter: this.#exporter, result });
  }

  docs(outcome: DocOutcome, n = 1): void {
    if (n > 0) this.#docs.inc({ exporter: this.#exporter, outcome }, n);
  }

  request(status: string, seconds: number, wireBytes: number, rawBytes: number): void {
    this.#requests.inc({ exporter: this.#exporter, status });
    this.#latency.observe({ exporter: this.#exporter, status }, seconds);
    // Only bytes the server took: a request that timed out, failed or was refused delivered nothing.
    if (!/^2\d\d$/.test(status)) return;
    this.#bytes.inc({ exporter: this.#exporter, encoding: 'wire' }, wireBytes);
    this.#bytes.inc({ exporter: this.#exporter, encoding: 'raw' }, rawBytes);
  }
}
