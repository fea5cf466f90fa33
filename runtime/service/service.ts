/**
 * The service drives a built graph through its lifecycle:
 *
 * - `start()`: extensions, exporters, processors, receivers (reverse topological order), each under
 *   the start timeout. If one fails, everything already started is shut down and `start()` rejects
 *   with `COMPONENT_START_FAILED`.
 * - `shutdown()`: receivers first, then processors in pipeline order, exporters, extensions, within
 *   one overall deadline (`service.shutdown_timeout`). After each stage the runtime waits for the
 *   batches that stage already handed downstream, so in-flight data drains before the components
 *   below are stopped. Every failure is collected; shutdown never stops at the first one.
 * - `finished`: for finite sources, resolves when every receiver has finished.
 */
import type { Extension, Host, Logger, Receiver } from '../component.ts';
import { CollectorError, ErrorCode, errorMessage, withTimeout } from '../errors.ts';
import { allNodes, shutdownStages, startOrder } from '../graph/graph.ts';
import type { Graph, GraphNode } from '../graph/graph.ts';
import { runAs } from '../telemetry/context.ts';
import type { StatusBoard } from '../telemetry/status.ts';

/** Options of {@link Service}. */
export interface ServiceOptions {
  logger: Logger;
  status: StatusBoard;
  /** Bound of each component's start. */
  startTimeoutMs: number;
  /** Bound of the whole shutdown. */
  shutdownTimeoutMs: number;
}

/** One failure during shutdown. */
export interface ShutdownFailure {
  /** Status key of the component (`exporter:file`), or `drain:<key>` for an edge that did not drain. */
  key: string;
  /** `COMPONENT_SHUTDOWN_FAILED` (the component's own error as `cause`), or a `TimeoutError` for a drain. */
  error: unknown;
}

/** Minimum time each component gets to shut down, even when the overall budget is spent. */
const MIN_SHUTDOWN_GRACE_MS = 100;

/** Runs a graph. */
export class Service {
  readonly graph: Graph;
  readonly #o: ServiceOptions;
  readonly #extensions = new Map<string, Extension>();
  readonly #host: Host;
  #shutdown: Promise<ShutdownFailure[]> | undefined;

  constructor(graph: Graph, opts: ServiceOptions) {
    this.graph = graph;
    this.#o = opts;
    this.#host = { getExtension: (id) => this.#extensions.get(id) };
    for (const n of allNodes(graph)) this.#status(n, 'starting');
  }

  /**
   * Starts every component. On failure shuts down what was started and rejects with a
   * {@link CollectorError} (`COMPONENT_START_FAILED`) naming the component.
   */
  async start(): Promise<void> {
    for (const n of startOrder(this.graph)) {
      if (this.#shutdown)
        throw new CollectorError(ErrorCode.SHUTTING_DOWN, 'shutdown requested during start');
      this.#o.logger.debug(`starting ${describe(n)}`);
      try {
        await withTimeout(`start of ${describe(n)}`, this.#o.startTimeoutMs, () =>
          runAs(n, () => n.component.start(this.#host)),
        );
      } catch (err) {
        const msg = errorMessage(err);
        this.#status(n, 'permanent_error', `start failed: ${msg}`);
        this.#o.logger.error(`${describe(n)} failed to start`, { error: err });
        const failures = await this.shutdown();
        for (const f of failures)
          this.#o.logger.error('shutdown after failed start', { component: f.key, error: f.error });
        throw new CollectorError(ErrorCode.COMPONENT_START_FAILED, `${describe(n)} failed to start: ${msg}`, {
          cause: err,
        });
      }
      if (n.kind === 'extension') this.#extensions.set(n.id, n.component);
      if (this.#o.status.get(n.key)?.status === 'starting') this.#status(n, 'ok');
    }
  }

  /**
   * Resolves when every receiver has finished (finite sources), or undefined when some receiver is
   * not finite. Rejects when a receiver's `finished` rejects.
   */
  get finished(): Promise<void> | undefined {
    const rs: Promise<void>[] = [];
    for (const n of this.graph.receivers) {
      const f = (n.component as Receiver).finished;
      if (typeof f?.then !== 'function') return undefined;
      rs.push(f);
    }
    return rs.length === 0 ? undefined : Promise.all(rs).then(() => undefined);
  }

  /** Shuts everything down (idempotent: later calls return the first call's result). */
  shutdown(): Promise<ShutdownFailure[]> {
    return (this.#shutdown ??= this.#shutdownAll());
  }

  async #shutdownAll(): Promise<ShutdownFailure[]> {
    const deadline = Date.now() + this.#o.shutdownTimeoutMs;
    const remaining = () => Math.max(MIN_SHUTDOWN_GRACE_MS, deadline - Date.now());
    const failures: ShutdownFailure[] = [];
    for (const stage of shutdownStages(this.graph)) {
      // The exporters are about to stop: fan-outs stop retrying failed branches (the batch then stays
      // unacknowledged upstream and is read again after the restart).
      if (stage.some((n) => n.kind === 'exporter')) this.graph.stopping?.abort();
      await Promise.all(
        stage.map(async (n) => {
          this.#status(n, 'stopping');
          try {
            await withTimeout(`shutdown of ${describe(n)}`, remaining(), () =>
              runAs(n, () => n.component.shutdown()),
            );
            this.#status(n, 'stopped');
          } catch (err) {
            const msg = errorMessage(err);
            failures.push({
              key: n.key,
              error: new CollectorError(
                ErrorCode.COMPONENT_SHUTDOWN_FAILED,
                `${describe(n)} failed to shut down: ${msg}`,
                {
                  cause: err,
                },
              ),
            });
            this.#status(n, 'permanent_error', `shutdown failed: ${msg}`);
          } finally {
            n.closed = true;
          }
        }),
      );
      // Batches this stage already handed downstream must land before the next stage stops.
      await Promise.all(
        stage.map(async (n) => {
          if (!n.output || n.output.count === 0) return;
          this.#o.logger.debug(`waiting for ${n.output.count} in-flight batch(es) of ${describe(n)}`);
          try {
            await withTimeout(`draining ${describe(n)}`, remaining(), () => n.output!.idle());
          } catch (err) {
            failures.push({ key: `drain:${n.key}`, error: err });
          }
        }),
      );
    }
    return failures;
  }

  #status(n: GraphNode, s: Parameters<StatusBoard['set']>[3], message?: string): void {
    this.#o.status.set(n.kind, n.id, n.pipeline, s, message);
  }
}

/** `exporter "file"`, `processor "batch" of pipeline "logs"`. */
export function describe(n: Pick<GraphNode, 'kind' | 'id' | 'pipeline'>): string {
  return `${n.kind} "${n.id}"${n.pipeline === undefined ? '' : ` of pipeline "${n.pipeline}"`}`;
}
