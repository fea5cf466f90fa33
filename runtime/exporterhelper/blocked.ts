/**
 * "This exporter is holding the pipeline up": a gauge and log lines for the time an exporter's sending
 * queue keeps its callers (the pipeline, and so the receiver and every other exporter of a fan-out)
 * waiting. An in-memory queue blocks while a delivery its caller waits for keeps failing, or while it
 * is full; a persistent queue blocks only while it is full (its log reached `queue_size` /
 * `max_size_mib`).
 *
 * - Gauge `otelcol_exporter_blocking_seconds{exporter}`: seconds the exporter has been blocking its
 *   callers (0 when it is not). `max by (exporter)` names the exporter that stalls a pipeline.
 * - Log: one warning when blocking starts, a reminder every `remindMs` (default 60 s) with the time so
 *   far, and one info line when it ends, with the total.
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { ComponentSettings } from '../component.ts';

const NAME = 'otelcol_exporter_blocking_seconds';
const sources = new WeakMap<Registry, Map<string, () => number>>();

function register(registry: Registry, id: string, read: () => number): void {
  let map = sources.get(registry);
  if (!map) {
    map = new Map();
    sources.set(registry, map);
    const existing = registry.getSingleMetric(NAME);
    if (!existing) {
      const m = map;
      new Gauge({
        name: NAME,
        help: 'Seconds the exporter has been blocking the pipeline (its callers wait on it); 0 when not blocking.',
        labelNames: ['exporter'],
        registers: [registry],
        collect(this: Gauge<'exporter'>) {
          for (const [exporter, f] of m) this.set({ exporter }, f());
        },
      });
    }
  }
  map.set(id, read);
}

export class BlockTracker {
  readonly #settings: ComponentSettings;
  readonly #remindMs: number;
  #since: number | undefined;
  #why = '';
  #timer: NodeJS.Timeout | undefined;

  constructor(settings: ComponentSettings, opts: { remindMs?: number } = {}) {
    this.#settings = settings;
    this.#remindMs = opts.remindMs ?? 60_000;
    register(settings.metrics, settings.id, () => this.blockedSeconds);
  }

  /** Seconds blocked so far (0 when not blocking). */
  get blockedSeconds(): number {
    return this.#since === undefined ? 0 : (Date.now() - this.#since) / 1000;
  }

  get blocking(): boolean {
    return this.#since !== undefined;
  }

  /** Starts (or continues) a blocking period. `why` is logged. */
  start(why: string, fields: Record<string, unknown> = {}): void {
    if (this.#since !== undefined) return;
    this.#since = Date.now();
    this.#why = why;
    this.#settings.logger.warn(`pipeline blocked by exporter "${this.#settings.id}": ${why}`, {
      ...fields,
      blocked_by: this.#settings.id,
    });
    this.#timer = setInterval(() => {
      this.#settings.logger.warn(
        `pipeline still blocked by exporter "${this.#settings.id}" for ${Math.round(this.blockedSeconds)} s: ${this.#why}`,
        { blocked_by: this.#settings.id, blocked_s: Math.round(this.blockedSeconds) },
      );
    }, this.#remindMs);
    this.#timer.unref();
  }

  /** Ends a blocking period. */
  stop(): void {
    if (this.#since === undefined) return;
    const s = this.blockedSeconds;
    this.#since = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#settings.logger.info(
      `pipeline no longer blocked by exporter "${this.#settings.id}" (blocked for ${s.toFixed(1)} s)`,
      { blocked_by: this.#settings.id, blocked_s: Math.round(s * 10) / 10 },
    );
  }

  /** Stops the reminder timer without logging (shutdown). */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
