/** Metrics of the `authentik_webhook` receiver (label `receiver` = component id). */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

const PREFIX = 'otelcol_receiver_authentik_webhook_';

function get<T>(reg: Registry, name: string, make: () => T): T {
  return (reg.getSingleMetric(name) as T | undefined) ?? make();
}

/** Why a webhook was not accepted (the `reason` label). */
export type RejectReason =
  | 'unauthorized'
  | 'too_large'
  | 'rate_limited'
  | 'bad_request'
  | 'not_an_event'
  | 'method'
  | 'not_found'
  | 'pipeline_refused'
  | 'shutting_down';

export class WebhookMetrics {
  readonly #id: string;
  readonly #received: Counter<'receiver'>;
  readonly #accepted: Counter<'receiver'>;
  readonly #rejected: Counter<'receiver' | 'reason'>;
  readonly #duplicates: Counter<'receiver'>;
  readonly #delay: Histogram<'receiver'>;
  readonly #healthy: Gauge<'receiver'>;
  readonly #provision: Counter<'receiver' | 'action'>;

  constructor(reg: Registry, id: string) {
    this.#id = id;
    const labelNames = ['receiver'] as const;
    this.#received = get(
      reg,
      `${PREFIX}received`,
      () =>
        new Counter({
          name: `${PREFIX}received`,
          help: 'webhook requests received',
          labelNames,
          registers: [reg],
        }),
    );
    this.#accepted = get(
      reg,
      `${PREFIX}accepted`,
      () =>
        new Counter({
          name: `${PREFIX}accepted`,
          help: 'webhooks whose event the pipeline accepted (answered 200)',
          labelNames,
          registers: [reg],
        }),
    );
    this.#rejected = get(
      reg,
      `${PREFIX}rejected`,
      () =>
        new Counter({
          name: `${PREFIX}rejected`,
          help: 'webhooks not accepted, by reason (unauthorized, too_large, rate_limited, bad_request, not_an_event, pipeline_refused, ...)',
          labelNames: ['receiver', 'reason'],
          registers: [reg],
        }),
    );
    this.#duplicates = get(
      reg,
      `${PREFIX}duplicates`,
      () =>
        new Counter({
          name: `${PREFIX}duplicates`,
          help: 'webhooks for an event this receiver had already accepted (authentik retries); still forwarded, the authentik_dedupe processor drops them',
          labelNames,
          registers: [reg],
        }),
    );
    this.#delay = get(
      reg,
      `${PREFIX}delay_seconds`,
      () =>
        new Histogram({
          name: `${PREFIX}delay_seconds`,
          help: "from the event's created to the pipeline accepting the pushed event (exported, or durably queued)",
          labelNames,
          buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60, 300, 1800],
          registers: [reg],
        }),
    );
    this.#healthy = get(
      reg,
      `${PREFIX}push_healthy`,
      () =>
        new Gauge({
          name: `${PREFIX}push_healthy`,
          help: '1 while a webhook was accepted within health_window',
          labelNames,
          registers: [reg],
        }),
    );
    this.#provision = get(
      reg,
      `${PREFIX}provisioned_objects`,
      () =>
        new Counter({
          name: `${PREFIX}provisioned_objects`,
          help: 'authentik objects provisioning created, updated or found unchanged',
          labelNames: ['receiver', 'action'],
          registers: [reg],
        }),
    );
    this.#healthy.set({ receiver: id }, 0);
  }

  received(): void {
    this.#received.inc({ receiver: this.#id });
  }
  accepted(delaySeconds: number | undefined): void {
    this.#accepted.inc({ receiver: this.#id });
    if (delaySeconds !== undefined && Number.isFinite(delaySeconds))
      this.#delay.observe({ receiver: this.#id }, Math.max(0, delaySeconds));
  }
  rejected(reason: RejectReason): void {
    this.#rejected.inc({ receiver: this.#id, reason });
  }
  duplicate(): void {
    this.#duplicates.inc({ receiver: this.#id });
  }
  healthy(v: boolean): void {
    this.#healthy.set({ receiver: this.#id }, v ? 1 : 0);
  }
  provisioned(action: string): void {
    this.#provision.inc({ receiver: this.#id, action });
  }
}
