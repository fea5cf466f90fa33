/** Factory of the `debug` exporter. */
import type { ExporterFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { DebugExporter } from './debug.ts';

export const factory: ExporterFactory<Config> = {
  kind: 'exporter',
  type: 'debug',
  description: 'Prints records to stderr (summary, one line per record, or every field), with sampling',
  configSchema,
  createDefaultConfig,
  create: (settings, config) => new DebugExporter(settings, config),
};
