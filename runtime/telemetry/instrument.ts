/**
 * Wrappers the graph puts around components to count records in the OTel Collector's naming and to
 * run component code under its identity (see context.ts). Every wrapper turns a synchronous throw of
 * the wrapped code into a rejection, so a misbehaving component cannot crash its caller.
 */
import type { Exporter, LogsConsumer, Processor } from '../component.ts';
import { CollectorError, ErrorCode } from '../errors.ts';
import type { LogsBatch } from '../model.ts';
import type { Inflight } from '../graph/inflight.ts';
import { sendFailedLabels } from '../exporterhelper/failure.ts';
import { runAs } from './context.ts';
import type { CollectorMetrics } from './metrics.ts';

/**
 * The `transport` label of a receiver type's counters, as the OTel Collector sets it (`http` for
 * receivers that talk HTTP); types without one get no label, as OTel's file-based receivers.
 */
const TRANSPORT_OF_TYPE: Readonly<Record<string, string>> = { authentik: 'http' };

/**
 * The consumer a receiver pushes to: counts `otelcol_receiver_accepted_log_records` when the pipeline
 * accepted the batch and `otelcol_receiver_refused_log_records` when it rejected.
 */
export function instrumentReceiverOutput(
  id: string,
  next: LogsConsumer,
  m: CollectorMetrics,
  inflight: Inflight,
): LogsConsumer {
  const transport = TRANSPORT_OF_TYPE[id.split('/')[0]!];
  const labels = transport === undefined ? { receiver: id } : { receiver: id, transport };
  return {
    capabilities: { mutatesData: next.capabilities.mutatesData },
    consume: (batch: LogsBatch) =>
      inflight.track(async () => {
        const n = batch.length;
        try {
          await next.consume(batch);
        } catch (err) {
          m.receiverRefused.inc(labels, n);
          throw err;
        }
        m.receiverAccepted.inc(labels, n);
      }),
  };
}

/** A processor whose input is counted in `otelcol_processor_incoming_log_records`. */
export function instrumentProcessor(
  id: string,
  pipeline: string,
  p: Processor,
  m: CollectorMetrics,
): Processor {
  const labels = { processor: id, pipeline };
  const ref = { kind: 'processor' as const, id, pipeline };
  return {
    capabilities: p.capabilities,
    start: (host) => p.start(host),
    shutdown: () => p.shutdown(),
    consume: (batch) => {
      m.processorIncoming.inc(labels, batch.length);
      return runAs(ref, async () => p.consume(batch));
    },
  };
}

/** The consumer a processor forwards to: counts `otelcol_processor_outgoing_log_records`. */
export function instrumentProcessorOutput(
  id: string,
  pipeline: string,
  next: LogsConsumer,
  m: CollectorMetrics,
  inflight: Inflight,
): LogsConsumer {
  const labels = { processor: id, pipeline };
  return {
    capabilities: next.capabilities,
    consume: (batch) => {
      m.processorOutgoing.inc(labels, batch.length);
      return inflight.track(async () => next.consume(batch));
    },
  };
}

/**
 * An exporter whose deliveries are counted: `otelcol_exporter_sent_log_records` when `consume`
 * resolves, `otelcol_exporter_send_failed_log_records` when it rejects. Sits inside the sending
 * queue, so it counts real sends, not enqueues.
 */
export function instrumentExporter(id: string, e: Exporter, m: CollectorMetrics): Exporter {
  const labels = { exporter: id };
  const flight = { exporter: id, data_type: 'logs' };
  m.exporterInFlight.set(flight, 0);
  const ref = { kind: 'exporter' as const, id };
  return {
    capabilities: e.capabilities,
    start: (host) => e.start(host),
    shutdown: () => e.shutdown(),
    consume: (batch) =>
      runAs(ref, async () => {
        const n = batch.length;
        m.exporterInFlight.inc(flight);
        try {
          await e.consume(batch);
        } catch (err) {
          m.exporterSendFailed.inc({ ...labels, ...sendFailedLabels(err) }, n);
          throw err;
        } finally {
          m.exporterInFlight.dec(flight);
        }
        m.exporterSent.inc(labels, n);
      }),
  };
}

/**
 * A consumer that rejects with `SHUTTING_DOWN` (retryable) once `closed()` is true: put in front of a
 * component that has been shut down so late calls fail cleanly instead of reaching it.
 */
export function guardClosed(next: LogsConsumer, closed: () => boolean, what: string): LogsConsumer {
  return {
    capabilities: next.capabilities,
    consume: async (batch) => {
      if (closed()) throw new CollectorError(ErrorCode.SHUTTING_DOWN, `${what} is shut down`);
      return next.consume(batch);
    },
  };
}
