/**
 * Builds the {@link ComponentSettings} the runtime hands each component: a logger tagged with the
 * component, the shared metrics registry, status reporting to the health board and drop reporting.
 */
import type { Registry } from 'prom-client';
import type { ComponentKind, ComponentSettings, ComponentStatus, Logger } from '../component.ts';
import { scrubSecrets } from '../logger/logger.ts';
import type { CollectorMetrics } from './metrics.ts';
import type { StatusBoard } from './status.ts';

/** What every component's settings share. */
export interface SettingsDeps {
  logger: Logger;
  registry: Registry;
  metrics: CollectorMetrics;
  status: StatusBoard;
  buildInfo: { name: string; version: string };
  configDir: string;
}

/** Settings for one component instance. */
export function componentSettings(
  deps: SettingsDeps,
  kind: ComponentKind,
  id: string,
  pipeline?: string,
): ComponentSettings {
  const logger = deps.logger.child(pipeline === undefined ? { kind, id } : { kind, id, pipeline });
  const dropped = droppedCounter(deps.metrics, kind, id, pipeline);
  const settings: ComponentSettings = {
    id,
    kind,
    logger,
    metrics: deps.registry,
    buildInfo: deps.buildInfo,
    configDir: deps.configDir,
    reportStatus(status: ComponentStatus, message?: string) {
      deps.status.set(kind, id, pipeline, status, message === undefined ? undefined : scrubSecrets(message));
    },
    reportDropped(count: number, reason: string, fields?: Record<string, unknown>) {
      if (!Number.isFinite(count) || count <= 0) return;
      const r = scrubSecrets(reason);
      dropped(r, count);
      logger.warn(`dropped ${count} log record${count === 1 ? '' : 's'}: ${r}`, {
        ...fields,
        dropped: count,
        reason: r,
      });
    },
  };
  if (pipeline !== undefined) settings.pipeline = pipeline;
  return settings;
}

function droppedCounter(
  m: CollectorMetrics,
  kind: ComponentKind,
  id: string,
  pipeline: string | undefined,
): (reason: string, n: number) => void {
  switch (kind) {
    case 'receiver':
      return (reason, n) => m.receiverDropped.inc({ receiver: id, reason }, n);
    case 'processor':
      return (reason, n) => m.processorDropped.inc({ processor: id, pipeline: pipeline ?? '', reason }, n);
    case 'exporter':
      return (reason, n) => m.exporterDropped.inc({ exporter: id, reason }, n);
    case 'extension':
      return (reason, n) => m.extensionDropped.inc({ extension: id, reason }, n);
  }
}
