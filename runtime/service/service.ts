/**
 * The service drives a built graph through its lifecycle:
 *
 * - `start()`: extensions, exporters, processors, receivers (reverse topological order), each under
 *   the start timeout. If one fails, everything already started is shut down and `start()` rejects
 *   with `COMPONENT_START_FAILED`.
 * - `shutdown()`: first the receivers' intake closes (the pipeline refuses new batches, retryably)
 *   and the batches they already handed over drain *while the receivers still run*, so every batch
 *   delivered before the exit is also checkpointed (a receiver closes its checkpoint store in its own
 *   shutdown). The drain gets the shutdown budget minus a reserve (a third of it, at most 5 s); when
 *   it runs out (a sink is down), the exporters' queues give the remaining batches back unacknowledged
 *   (they are read again, or replayed from a persistent queue, at the next start) and
 *   {@link Service.undelivered} describes them. Then receivers, processors in pipeline order,
 *   exporters, extensions are shut down, within one overall deadline (`service.shutdown_timeout`);
 *   after each stage the runtime waits for the batches that stage already handed downstream. Every
 *   failure is collected; shutdown never stops at the first one.
 * - `finished`: for finite sources, resolves when every receiver has finished.
 */
import type { Extension, Host, Logger, Receiver } from '../component.ts';
import { CollectorError, ErrorCode, errorMessage, withTimeout } from '../errors.ts';
import { allNodes, shutdownStages, startOrder } from '../graph/graph.ts';
import type { Graph, GraphNode } from '../graph/graph.ts';
import { runAs } from '../telemetry/context.ts';
import type { StatusBoard } from '../telemetry/status.ts';
import { PersistentQueue } from '../exporterhelper/queue/persistent.ts';

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

/** What a shutdown left undelivered (nothing is lost: it is read again or replayed at the next start). */
export interface Undelivered {
  /** Batches receivers had handed to the pipeline that were not acknowledged (not checkpointed). */
  inFlight: { receiver: string; batches: number }[];
  /** Exporters that were not delivering when the drain gave up, with their status. */
  blocking: { exporter: string; status: string; message?: string }[];
  /** Batches left in persistent sending queues (delivered after the next start). */
  queued: { exporter: string; batches: number; records: number }[];
}

/** One line saying what a shutdown left undelivered and what happens to it. */
export function describeUndelivered(u: Undelivered): string {
  const parts: string[] = [];
  if (u.blocking.length > 0) {
    parts.push(
      `not delivering: ${u.blocking.map((b) => `exporter "${b.exporter}" (${b.status}${b.message ? `: ${b.message}` : ''})`).join(', ')}`,
    );
  }
  for (const r of u.inFlight) {
    parts.push(
      `${r.batches} batch(es) from receiver "${r.receiver}" not acknowledged: not checkpointed, read again from the source at the next start`,
    );
  }
  for (const q of u.queued) {
    parts.push(
      `${q.batches} batch(es) (${q.records} records) kept in the persistent queue of exporter "${q.exporter}": delivered after the next start`,
    );
  }
  return `stopped with undelivered data, nothing lost: ${parts.join('; ')}`;
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
  #inFlightLeft: Undelivered['inFlight'] = [];
  #blocking: Undelivered['blocking'] = [];
  #queued: Undelivered['queued'] = [];

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

  /** After `shutdown()`: what was left undelivered, or undefined when everything was delivered. */
  get undelivered(): Undelivered | undefined {
    if (this.#inFlightLeft.length === 0 && this.#queued.length === 0) return undefined;
    return { inFlight: this.#inFlightLeft, blocking: this.#blocking, queued: this.#queued };
  }

  /**
   * Closes the receivers' intake and waits (at most until `deadline` minus a reserve) for what they
   * already handed over. When the wait runs out, records what is left and makes the queues give it
   * back, so the receivers stop at once without checkpointing it.
   */
  async #drainIntake(deadline: number): Promise<void> {
    const receivers = this.graph.receivers.filter((n) => n.intake);
    for (const n of receivers) n.intake!.closed = true;
    const busy = receivers.filter((n) => n.output && n.output.count > 0);
    if (busy.length === 0) return;
    const reserve = Math.min(5000, Math.floor(this.#o.shutdownTimeoutMs / 3));
    const budget = Math.max(MIN_SHUTDOWN_GRACE_MS, deadline - reserve - Date.now());
    this.#o.logger.info('stopping: waiting for the batches already in the pipeline to be delivered', {
      batches: busy.reduce((n, r) => n + r.output!.count, 0),
      wait_ms: budget,
    });
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.all(busy.map((n) => n.output!.idle())).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), budget))),
    ]);
    clearTimeout(timer);
    if (drained) return;
    this.#inFlightLeft = busy
      .map((n) => ({ receiver: n.id, batches: n.output!.count }))
      .filter((r) => r.batches > 0);
    this.#blocking = this.graph.exporters.flatMap((n) => {
      const e = this.#o.status.get(n.key);
      if (!e || e.status === 'ok' || e.status === 'starting') return [];
      return [
        { exporter: n.id, status: e.status, ...(e.message === undefined ? {} : { message: e.message }) },
      ];
    });
    this.graph.stopping?.abort();
    for (const n of this.graph.exporters) (n.component as { abandon?: () => void }).abandon?.();
  }

  async #shutdownAll(): Promise<ShutdownFailure[]> {
    const deadline = Date.now() + this.#o.shutdownTimeoutMs;
    const remaining = () => Math.max(MIN_SHUTDOWN_GRACE_MS, deadline - Date.now());
    const failures: ShutdownFailure[] = [];
    await this.#drainIntake(deadline);
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
    this.#queued = this.graph.exporters.flatMap((n) => {
      if (!(n.component instanceof PersistentQueue)) return [];
      const b = n.component.backlog;
      return b.batches > 0 ? [{ exporter: n.id, ...b }] : [];
    });
    if (this.#queued.length > 0 && this.#blocking.length === 0) {
      this.#blocking = this.#queued.flatMap((q) => {
        const e = this.#o.status.get(`exporter:${q.exporter}`);
        return e && e.status !== 'stopped' && e.status !== 'ok'
          ? [
              {
                exporter: q.exporter,
                status: e.status,
                ...(e.message === undefined ? {} : { message: e.message }),
              },
            ]
          : [];
      });
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
