/**
 * The `memory_limiter` processor: measures the process's memory every `check_interval` and, while it
 * is above the soft limit, refuses batches with a RetryableError (retry after `check_interval`), so
 * receivers back off instead of the collector growing until it is killed. Above a limit it also
 * forces a full garbage collection (at most every `min_gc_interval_when_*_limited`), so memory that is
 * garbage but not yet collected does not keep the pipeline refusing.
 *
 * Put it first in every pipeline: data refused here has not been accepted by anything yet, and the
 * receiver keeps its checkpoint and retries.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { totalmem } from 'node:os';
import type { ComponentSettings, Host, LogsConsumer, Processor } from '../../runtime/component.ts';
import { RetryableError } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { boundCounter, boundGauge } from '../../runtime/exporterhelper/queue/metrics.ts';
import type { BoundCounter, BoundGauge } from '../../runtime/exporterhelper/queue/metrics.ts';
import { computeLimits } from './config.ts';
import type { Config, Limits } from './config.ts';

const MIB = 1024 * 1024;

/** A memory reading. */
export interface MemoryReading {
  rss: number;
  heapUsed: number;
  /** V8's heap limit (`--max-old-space-size` plus new space). */
  heapLimit: number;
}

/** Hooks for tests; the factory uses the process's own. */
export interface MemoryLimiterDeps {
  read?: () => MemoryReading;
  /** Memory available to the process (cgroup limit or total memory), for percentage limits. */
  availableBytes?: number;
  /** Forces a GC; undefined when none is available. Default: {@link obtainGc}, looked up on first need. */
  gc?: (() => void) | undefined;
  now?: () => number;
}

export function readProcessMemory(): MemoryReading {
  const h = getHeapStatistics();
  return { rss: process.memoryUsage.rss(), heapUsed: h.used_heap_size, heapLimit: h.heap_size_limit };
}

/** Memory the process may use: the cgroup (container) limit when set, else total memory. */
export function availableMemory(): number {
  const total = totalmem();
  const constrained = process.constrainedMemory();
  return constrained > 0 && constrained < total ? constrained : total;
}

/**
 * A function that forces a full garbage collection: `global.gc` when node runs with `--expose-gc`,
 * otherwise V8's `gc` obtained at run time (the `--expose-gc` flag set now only affects contexts
 * created afterwards, so a fresh context is asked for it). Undefined when neither works.
 */
export function obtainGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: unknown }).gc;
  if (typeof g === 'function') return () => void (g as () => unknown)();
  try {
    setFlagsFromString('--expose-gc');
    const fromContext: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    if (typeof fromContext === 'function') return () => void (fromContext as () => unknown)();
  } catch {
    // Not available in this runtime.
  }
  return undefined;
}

export type LimiterState = 'ok' | 'soft' | 'hard';

export class MemoryLimiter implements Processor {
  readonly capabilities = { mutatesData: false };
  readonly limits: Limits;
  readonly #settings: ComponentSettings;
  readonly #cfg: Config;
  readonly #next: LogsConsumer;
  readonly #read: () => MemoryReading;
  #gc: (() => void) | undefined;
  #gcResolved: boolean;
  readonly #now: () => number;
  readonly #refused: BoundCounter;
  readonly #limited: BoundGauge;
  #timer: NodeJS.Timeout | undefined;
  #state: LimiterState = 'ok';
  #reason = '';
  #lastGc = 0;
  #gcWarned = false;

  constructor(settings: ComponentSettings, cfg: Config, next: LogsConsumer, deps: MemoryLimiterDeps = {}) {
    this.#settings = settings;
    this.#cfg = cfg;
    this.#next = next;
    this.#read = deps.read ?? readProcessMemory;
    this.#gc = deps.gc;
    this.#gcResolved = 'gc' in deps;
    this.#now = deps.now ?? Date.now;
    this.limits = computeLimits(cfg, deps.availableBytes ?? availableMemory());
    const labels = { processor: settings.id, pipeline: settings.pipeline ?? '' };
    this.#refused = boundCounter(
      settings.metrics,
      'otelcol_processor_refused_log_records',
      'Log records a processor refused (memory_limiter: memory above the soft limit).',
      labels,
    );
    this.#limited = boundGauge(
      settings.metrics,
      'otelcol_processor_memory_limiter_limited',
      'memory_limiter state: 0 below the soft limit, 1 above it, 2 above the hard limit.',
      labels,
    );
  }

  /** Current state (after the last check). */
  get state(): LimiterState {
    return this.#state;
  }

  start(_host: Host): Promise<void> {
    this.#settings.logger.info('memory_limiter started', {
      soft_limit_mib: Math.round(this.limits.softBytes / MIB),
      hard_limit_mib: Math.round(this.limits.hardBytes / MIB),
      heap_limit_percentage: this.#cfg.heap_limit_percentage,
      check_interval_ms: this.#cfg.check_interval,
    });
    this.check();
    this.#timer = setInterval(() => this.check(), this.#cfg.check_interval);
    this.#timer.unref();
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return Promise.resolve();
  }

  consume(batch: LogsBatch): Promise<void> {
    if (this.#state !== 'ok') {
      this.#refused.inc(batch.length);
      return Promise.reject(
        new RetryableError(`memory_limiter: refusing data, ${this.#reason}`, {
          retryAfterMs: this.#cfg.check_interval,
        }),
      );
    }
    return this.#next.consume(batch);
  }

  /** Measures memory and updates the state (called every check_interval). */
  check(): LimiterState {
    let m = this.#read();
    let state = this.#classify(m);
    if (state !== 'ok') {
      const minInterval =
        state === 'hard'
          ? this.#cfg.min_gc_interval_when_hard_limited
          : this.#cfg.min_gc_interval_when_soft_limited;
      if (this.#now() - this.#lastGc >= minInterval) {
        if (!this.#gcResolved) {
          this.#gcResolved = true;
          this.#gc = obtainGc();
        }
        if (this.#gc) {
          this.#lastGc = this.#now();
          this.#gc();
          m = this.#read();
          state = this.#classify(m);
        } else if (state === 'hard' && !this.#gcWarned) {
          this.#gcWarned = true;
          this.#settings.logger.warn(
            'memory_limiter: above the hard limit and garbage collection cannot be forced in this runtime',
          );
        }
      }
    }
    this.#transition(state, m);
    return state;
  }

  #classify(m: MemoryReading): LimiterState {
    const heapSoft = (m.heapLimit * this.#cfg.heap_limit_percentage) / 100;
    const heapOver = this.#cfg.heap_limit_percentage > 0 && m.heapUsed >= heapSoft;
    if (m.rss >= this.limits.hardBytes) {
      this.#reason = `RSS ${mib(m.rss)} MiB is above the hard limit of ${mib(this.limits.hardBytes)} MiB`;
      return 'hard';
    }
    if (m.rss >= this.limits.softBytes) {
      this.#reason = `RSS ${mib(m.rss)} MiB is above the soft limit of ${mib(this.limits.softBytes)} MiB`;
      return 'soft';
    }
    if (heapOver) {
      this.#reason = `V8 heap ${mib(m.heapUsed)} MiB is above ${this.#cfg.heap_limit_percentage}% of its limit of ${mib(m.heapLimit)} MiB`;
      return 'soft';
    }
    return 'ok';
  }

  #transition(state: LimiterState, m: MemoryReading): void {
    const prev = this.#state;
    this.#state = state;
    this.#limited.set(state === 'ok' ? 0 : state === 'soft' ? 1 : 2);
    if (prev === state) return;
    const fields = { rss_mib: mib(m.rss), heap_used_mib: mib(m.heapUsed) };
    if (state === 'ok') {
      this.#settings.logger.info('memory_limiter: memory back below the soft limit, accepting data', fields);
      this.#settings.reportStatus('ok');
    } else {
      this.#settings.logger.warn(`memory_limiter: refusing data, ${this.#reason}`, fields);
      this.#settings.reportStatus('recoverable_error', `memory_limiter: ${this.#reason}`);
    }
  }
}

function mib(n: number): number {
  return Math.round((n / MIB) * 10) / 10;
}
