/**
 * Metric helpers for the sending queue and memory_limiter: get-or-create on the collector's registry
 * (the runtime may already have registered a metric of the same name; then it is reused and only the
 * label names it declares are set).
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

function labelNamesOf(metric: unknown): string[] {
  const names = (metric as { labelNames?: unknown }).labelNames;
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
}

function pick(labels: Labels, names: string[]): Labels {
  const out: Labels = {};
  for (const n of names) out[n] = labels[n] ?? '';
  return out;
}

/** A counter bound to one set of labels. */
export interface BoundCounter {
  inc(n?: number): void;
}

/** A gauge bound to one set of labels. */
export interface BoundGauge {
  set(n: number): void;
}

export function boundCounter(registry: Registry, name: string, help: string, labels: Labels): BoundCounter {
  let metric = registry.getSingleMetric(name);
  if (!metric) {
    metric = new Counter({ name, help, labelNames: Object.keys(labels), registers: [registry] });
  }
  if (!(metric instanceof Counter)) {
    // Someone registered the name as another type: count nowhere rather than crash.
    return { inc: () => undefined };
  }
  const c = metric;
  const l = pick(labels, labelNamesOf(c));
  return { inc: (n = 1) => c.inc(l, n) };
}

export function boundGauge(registry: Registry, name: string, help: string, labels: Labels): BoundGauge {
  let metric = registry.getSingleMetric(name);
  if (!metric) {
    metric = new Gauge({ name, help, labelNames: Object.keys(labels), registers: [registry] });
  }
  if (!(metric instanceof Gauge)) return { set: () => undefined };
  const g = metric;
  const l = pick(labels, labelNamesOf(g));
  return { set: (n) => g.set(l, n) };
}

/**
 * A counter with one extra free label (e.g. `reason`) besides the bound ones.
 */
export function reasonCounter(
  registry: Registry,
  name: string,
  help: string,
  labels: Labels,
  extra: string,
): (value: string, n?: number) => void {
  let metric = registry.getSingleMetric(name);
  if (!metric) {
    metric = new Counter({ name, help, labelNames: [...Object.keys(labels), extra], registers: [registry] });
  }
  if (!(metric instanceof Counter)) return () => undefined;
  const c = metric;
  const names = labelNamesOf(c);
  return (value, n = 1) => c.inc(pick({ ...labels, [extra]: value }, names), n);
}
