/**
 * Runs the collector from a validated configuration until it is told to stop or its sources are
 * exhausted, and returns the process exit code:
 *
 * - 0: stopped by SIGINT/SIGTERM and shut down cleanly, or every (finite) receiver finished and the
 *   pipelines drained.
 * - 1: a component failed to start, a finite receiver failed, or shutdown reported failures.
 * - 75: stopped cleanly while some data was not delivered yet (a sink down): nothing lost, one summary
 *   line says what is read again or replayed at the next start.
 * - 130: a second signal arrived during shutdown (abort without waiting).
 *
 * Configuration problems found while creating components are thrown as `ConfigError` (exit 2, decided
 * by the CLI). After start-up nothing a component does may crash the process: unhandled rejections and
 * uncaught exceptions are logged and the component they came from is marked as failed.
 */
import type { EventEmitter } from 'node:events';
import type { Receiver } from '../component.ts';
import { Registry } from 'prom-client';
import { errorMessage } from '../errors.ts';
import type { ResolvedConfig } from '../config/resolved.ts';
import { enabledAddress, readinessOptions } from '../config/service.ts';
import type { CreateSendingQueue } from '../exporterhelper/queue.ts';
import { buildGraph } from '../graph/graph.ts';
import type { RuntimeLogger } from '../logger/logger.ts';
import { currentComponent } from '../telemetry/context.ts';
import { collectorMetrics, registerBuildInfo, registerProcessMetrics } from '../telemetry/metrics.ts';
import { startTelemetryServers } from '../telemetry/server.ts';
import type { TelemetryServers } from '../telemetry/server.ts';
import { StatusBoard } from '../telemetry/status.ts';
import { describeUndelivered, Service } from './service.ts';

/** Exit codes of the collector. */
export const ExitCode = {
  OK: 0,
  RUNTIME_FAILURE: 1,
  CONFIG_INVALID: 2,
  /**
   * Stopped cleanly by a signal while some data was not delivered yet (a sink was down): nothing is
   * lost (it is read again from the source, or replayed from a persistent queue, at the next start);
   * one log line says what. EX_TEMPFAIL of sysexits.h.
   */
  UNDELIVERED: 75,
  ABORTED: 130,
} as const;

/** Options of {@link runCollector}. */
export interface RunOptions {
  config: ResolvedConfig;
  logger: RuntimeLogger;
  buildInfo: { name: string; version: string };
  /** Source of SIGINT/SIGTERM (default `process`). */
  signals?: EventEmitter;
  /** Install process-wide handlers for unhandled rejections/exceptions (default true). */
  handleProcessErrors?: boolean;
  /** Called once everything is started (tests read the endpoint URLs here). */
  onStarted?: (info: {
    service: Service;
    servers: TelemetryServers;
    registry: Registry;
    status: StatusBoard;
  }) => void;
  /** Sending queue implementation (tests). */
  createSendingQueue?: CreateSendingQueue;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Runs the collector; resolves with the exit code. Throws `ConfigError` when components cannot be created. */
export async function runCollector(o: RunOptions): Promise<number> {
  const { config, logger } = o;
  const signals = o.signals ?? process;
  const registry = new Registry();
  registerProcessMetrics(registry);
  registerBuildInfo(registry, o.buildInfo);
  const metrics = collectorMetrics(registry);
  const status = new StatusBoard(metrics);

  for (const w of config.warnings)
    logger.warn(`${w.path}: ${w.message}`, w.location ? { location: w.location } : {});
  // First, before any handler is installed: a port in use fails the start (TelemetryBindError).
  const servers = await startTelemetryServers({
    metricsAddress: enabledAddress(config.telemetry.metrics.address),
    healthAddress: enabledAddress(config.telemetry.health.address),
    registry,
    status,
    logger,
    readiness: readinessOptions(config.telemetry),
    onBindError: config.telemetry.on_bind_error,
  });

  let aborted!: () => void;
  const abort = new Promise<'abort'>((resolve) => (aborted = () => resolve('abort')));
  let stopRequested!: (sig: string) => void;
  const stop = new Promise<string>((resolve) => (stopRequested = resolve));
  let signalCount = 0;
  const onSignal = (sig: string) => {
    signalCount++;
    if (signalCount === 1) {
      logger.info(`received ${sig}: shutting down (send it again to abort immediately)`, {
        timeout_ms: config.shutdownTimeoutMs,
      });
      stopRequested(sig);
    } else {
      logger.error(`received ${sig} again: aborting without waiting for the shutdown to finish`);
      aborted();
    }
  };
  const listeners = SIGNALS.map((sig) => {
    const l = () => onSignal(sig);
    signals.on(sig, l);
    return [sig, l] as const;
  });

  const onUnhandled = (kind: string) => (err: unknown) => {
    const ref = currentComponent();
    logger.error(`${kind} in ${ref ? `${ref.kind} "${ref.id}"` : 'the collector'}; continuing`, {
      error: err instanceof Error ? err : String(err),
      ...(ref ? { component_kind: ref.kind, component_id: ref.id } : {}),
    });
    if (ref) status.set(ref.kind, ref.id, ref.pipeline, 'permanent_error', `${kind}: ${errorMessage(err)}`);
  };
  const onRejection = onUnhandled('unhandled rejection');
  const onException = onUnhandled('uncaught exception');
  if (o.handleProcessErrors !== false) {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
  }
  // Signal handlers and pending promises do not keep Node alive; this does until we return.
  const keepAlive = setInterval(() => undefined, 1 << 30);

  try {
    const graph = await buildGraph(config, {
      logger,
      registry,
      metrics,
      status,
      buildInfo: o.buildInfo,
      configDir: config.configDir,
      ...(o.createSendingQueue ? { createSendingQueue: o.createSendingQueue } : {}),
    });
    const service = new Service(graph, {
      logger,
      status,
      startTimeoutMs: config.startTimeoutMs,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    });

    const started = await Promise.race([
      service.start().then(
        () => 'started' as const,
        (err: unknown) => err,
      ),
      abort,
    ]);
    if (started === 'abort') return ExitCode.ABORTED;
    if (started !== 'started') {
      logger.error(`collector failed to start: ${errorMessage(started)}`);
      return ExitCode.RUNTIME_FAILURE;
    }
    logger.info('collector started', {
      version: o.buildInfo.version,
      pipelines: [...config.pipelines.keys()],
      ...(servers.metricsUrl ? { metrics: servers.metricsUrl } : {}),
      ...(servers.healthUrl ? { health: servers.healthUrl } : {}),
    });
    o.onStarted?.({ service, servers, registry, status });

    let code: number = ExitCode.OK;
    const finished = service.finished;
    if (!finished) {
      // Some receivers are endless, so the collector runs on; still report a finite one that fails.
      for (const n of service.graph.receivers) {
        (n.component as Receiver).finished?.catch((err: unknown) =>
          logger.error(`receiver "${n.id}" failed before finishing`, { error: err }),
        );
      }
    }
    const waited = await Promise.race([
      stop.then((sig) => ({ why: 'signal' as const, sig })),
      abort.then(() => ({ why: 'abort' as const })),
      ...(finished
        ? [
            finished.then(
              () => ({ why: 'finished' as const }),
              (err: unknown) => ({ why: 'failed' as const, err }),
            ),
          ]
        : []),
    ]);
    if (waited.why === 'abort') return ExitCode.ABORTED;
    if (waited.why === 'finished') logger.info('every receiver finished; draining and stopping');
    if (waited.why === 'failed') {
      logger.error('a receiver failed before finishing; stopping', { error: waited.err });
      code = ExitCode.RUNTIME_FAILURE;
    }

    const shut = await Promise.race([service.shutdown(), abort]);
    if (shut === 'abort') return ExitCode.ABORTED;
    for (const f of shut) logger.error(errorMessage(f.error), { component: f.key });
    if (shut.length > 0) code = ExitCode.RUNTIME_FAILURE;
    const undelivered = service.undelivered;
    if (undelivered) {
      logger.warn(describeUndelivered(undelivered), { exit_code: ExitCode.UNDELIVERED });
      if (code === ExitCode.OK) code = ExitCode.UNDELIVERED;
    }
    logger.info(
      code === ExitCode.OK
        ? 'collector stopped'
        : code === ExitCode.UNDELIVERED
          ? 'collector stopped; undelivered data is kept for the next start'
          : 'collector stopped with errors',
      {
        exit_code: code,
      },
    );
    return code;
  } finally {
    clearInterval(keepAlive);
    for (const [sig, l] of listeners) signals.off(sig, l);
    if (o.handleProcessErrors !== false) {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    }
    await servers.close();
  }
}
