/**
 * Per-component status (OTel component-status model), fed by the runtime's lifecycle and by each
 * component's `settings.reportStatus`, shown on the health endpoint and in `otelcol_component_status`.
 */
import type { ComponentKind, ComponentStatus } from '../component.ts';
import type { CollectorMetrics } from './metrics.ts';

export const STATUSES: readonly ComponentStatus[] = [
  'starting',
  'ok',
  'recoverable_error',
  'permanent_error',
  'fatal_error',
  'stopping',
  'stopped',
];

/** Worst first: the overall status is the first of these any component has. */
const SEVERITY: readonly ComponentStatus[] = [
  'fatal_error',
  'permanent_error',
  'recoverable_error',
  'stopping',
  'starting',
  'stopped',
  'ok',
];

/** One component's current status. */
export interface StatusEntry {
  status: ComponentStatus;
  message?: string;
  /** ISO time of the last change. */
  since: string;
}

/** What the health endpoint returns. */
export interface HealthSnapshot {
  status: ComponentStatus;
  components: Record<string, StatusEntry>;
}

/**
 * Key of a component on the board: `receiver:file`, `exporter:elasticsearch/a`, and for processors
 * (one instance per pipeline) `processor:batch@logs/audit`.
 */
export function statusKey(kind: ComponentKind, id: string, pipeline?: string): string {
  return pipeline === undefined ? `${kind}:${id}` : `${kind}:${id}@${pipeline}`;
}

/** Current status of every component. */
export class StatusBoard {
  readonly #entries = new Map<string, StatusEntry & { kind: ComponentKind; id: string; pipeline: string }>();
  readonly #metrics: CollectorMetrics | undefined;
  readonly #now: () => Date;

  constructor(metrics?: CollectorMetrics, now: () => Date = () => new Date()) {
    this.#metrics = metrics;
    this.#now = now;
  }

  /** Records a status change (a repeated identical status keeps its `since`). */
  set(
    kind: ComponentKind,
    id: string,
    pipeline: string | undefined,
    status: ComponentStatus,
    message?: string,
  ): void {
    const key = statusKey(kind, id, pipeline);
    const prev = this.#entries.get(key);
    if (prev && prev.status === status && prev.message === message) return;
    const entry = {
      kind,
      id,
      pipeline: pipeline ?? '',
      status,
      since: prev?.status === status ? prev.since : this.#now().toISOString(),
      ...(message === undefined ? {} : { message }),
    };
    this.#entries.set(key, entry);
    if (this.#metrics) {
      for (const s of STATUSES) {
        this.#metrics.componentStatus.set(
          { kind, id, pipeline: entry.pipeline, status: s },
          s === status ? 1 : 0,
        );
      }
    }
  }

  get(key: string): StatusEntry | undefined {
    const e = this.#entries.get(key);
    return e && toEntry(e);
  }

  /** Overall status and every component's. */
  snapshot(): HealthSnapshot {
    const components: Record<string, StatusEntry> = {};
    for (const [k, e] of this.#entries) components[k] = toEntry(e);
    const present = new Set([...this.#entries.values()].map((e) => e.status));
    const status = SEVERITY.find((s) => present.has(s)) ?? 'starting';
    return { status, components };
  }

  /** True when every component is `ok` (and there is at least one). */
  healthy(): boolean {
    return this.#entries.size > 0 && [...this.#entries.values()].every((e) => e.status === 'ok');
  }

  /**
   * Readiness (OTel `healthcheckv2` semantics): false before every component has started, while
   * stopping, on a fatal error, on a permanent error when `includePermanent` (default), and on a
   * recoverable error older than `recoveryMs` when `includeRecoverable` (default: ignored, since a
   * backend outage is retried and needs no action from the orchestrator).
   */
  ready(o: Partial<ReadinessOptions> = {}): boolean {
    const opts = { ...READINESS_DEFAULTS, ...o };
    if (this.#entries.size === 0) return false;
    const now = this.#now().getTime();
    for (const e of this.#entries.values()) {
      switch (e.status) {
        case 'ok':
          break;
        case 'recoverable_error':
          if (opts.includeRecoverable && now - Date.parse(e.since) >= opts.recoveryMs) return false;
          break;
        case 'permanent_error':
          if (opts.includePermanent) return false;
          break;
        default:
          return false; // starting, stopping, stopped, fatal_error
      }
    }
    return true;
  }

  /** Liveness: false only on a fatal error (the process cannot recover; a restart may help). */
  alive(): boolean {
    return ![...this.#entries.values()].some((e) => e.status === 'fatal_error');
  }
}

/** How errors count against readiness (`service.telemetry.health.*`). */
export interface ReadinessOptions {
  includePermanent: boolean;
  includeRecoverable: boolean;
  recoveryMs: number;
}

export const READINESS_DEFAULTS: ReadinessOptions = {
  includePermanent: true,
  includeRecoverable: false,
  recoveryMs: 60_000,
};

function toEntry(e: StatusEntry): StatusEntry {
  return { status: e.status, since: e.since, ...(e.message === undefined ? {} : { message: e.message }) };
}
