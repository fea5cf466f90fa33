/** Factory of the `file` exporter. */
import type { ExporterFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { FileExporter } from './exporter.ts';

export const factory: ExporterFactory<Config> = {
  kind: 'exporter',
  type: 'file',
  description:
    'Appends one JSON line per record (body as NDJSON, or OTLP/JSON) to a file, with optional rotation',
  configSchema,
  createDefaultConfig,
  create: (settings, config) => new FileExporter(settings, config),
};
