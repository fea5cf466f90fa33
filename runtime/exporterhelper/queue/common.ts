/** Metrics shared by both queue kinds (OTel exporterhelper names). */
import type { ComponentSettings } from '../../component.ts';
import { boundCounter, boundGauge } from './metrics.ts';
import type { BoundCounter, BoundGauge } from './metrics.ts';

export interface QueueMetrics {
  /** Batches in the queue (in-memory: waiting; persistent: stored, including those being delivered). */
  size: BoundGauge;
  capacity: BoundGauge;
  /** Log records refused by a full queue (or a failed write to the persistent queue). */
  enqueueFailed: BoundCounter;
}

export function queueMetrics(settings: ComponentSettings, capacity: number): QueueMetrics {
  const labels = { exporter: settings.id };
  const gaugeLabels = { exporter: settings.id, data_type: 'logs' }; // as OTel's exporterhelper
  const m: QueueMetrics = {
    size: boundGauge(
      settings.metrics,
      'otelcol_exporter_queue_size',
      'Batches currently in the sending queue.',
      gaugeLabels,
    ),
    capacity: boundGauge(
      settings.metrics,
      'otelcol_exporter_queue_capacity',
      'Capacity of the sending queue, in batches.',
      gaugeLabels,
    ),
    enqueueFailed: boundCounter(
      settings.metrics,
      'otelcol_exporter_enqueue_failed_log_records',
      'Log records the sending queue refused (queue full or storage write failed).',
      labels,
    ),
  };
  m.capacity.set(capacity);
  m.size.set(0);
  return m;
}
