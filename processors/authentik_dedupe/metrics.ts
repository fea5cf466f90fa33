/** Metrics of the `authentik_dedupe` processor (labels `processor`, `pipeline`). */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

const PREFIX = 'otelcol_processor_authentik_dedupe_';

function get<T>(reg: Registry, name: string, make: () => T): T {
  return (reg.getSingleMetric(name) as T | undefined) ?? make();
}

export class DedupeMetrics {
  readonly #labels: { processor: string; pipeline: string };
  readonly #dups: Counter<'processor' | 'pipeline' | 'source'>;
  readonly #fwd: Counter<'processor' | 'pipeline' | 'source'>;
  readonly #delay: Histogram<'processor' | 'pipeline' | 'source'>;
  readonly #size: Gauge<'processor' | 'pipeline'>;

  constructor(reg: Registry, processor: string, pipeline: string) {
    this.#labels = { processor, pipeline };
    const withSource = ['processor', 'pipeline', 'source'] as const;
    this.#dups = get(
      reg,
      `${PREFIX}duplicates`,
      () =>
        new Counter({
          name: `${PREFIX}duplicates`,
          help: 'authentik events dropped because their pk was already delivered, by source (push, poll, other); acknowledged, not lost',
          labelNames: withSource,
          registers: [reg],
        }),
    );
    this.#fwd = get(
      reg,
      `${PREFIX}forwarded`,
      () =>
        new Counter({
          name: `${PREFIX}forwarded`,
          help: 'authentik events forwarded (first copy), by source',
          labelNames: withSource,
          registers: [reg],
        }),
    );
    this.#delay = get(
      reg,
      `${PREFIX}delivery_delay_seconds`,
      () =>
        new Histogram({
          name: `${PREFIX}delivery_delay_seconds`,
          help: "from the event's created to downstream delivery of its first copy, by source (push, poll)",
          labelNames: withSource,
          buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60, 300, 1800],
          registers: [reg],
        }),
    );
    this.#size = get(
      reg,
      `${PREFIX}remembered_pks`,
      () =>
        new Gauge({
          name: `${PREFIX}remembered_pks`,
          help: 'delivered event pks remembered (within ttl)',
          labelNames: ['processor', 'pipeline'],
          registers: [reg],
        }),
    );
  }

  duplicates(source: string, n: number): void {
    this.#dups.inc({ ...this.#labels, source }, n);
  }
  forwarded(source: string, delaySeconds: number): void {
    this.#fwd.inc({ ...this.#labels, source });
    this.#delay.observe({ ...this.#labels, source }, Math.max(0, delaySeconds));
  }
  remembered(n: number): void {
    this.#size.set(this.#labels, n);
  }
}
