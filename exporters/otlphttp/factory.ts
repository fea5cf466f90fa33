/**
 * Factory of the `otlphttp` exporter.
 */
import type { ExporterFactory } from '../../runtime/component.ts';
import { loadTlsMaterial } from '../../runtime/config/tls.ts';
import type { Config } from './config.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import { OtlpHttpExporter } from './exporter.ts';

export const factory: ExporterFactory<Config> = {
  kind: 'exporter',
  type: 'otlphttp',
  description:
    'Sends records as OTLP logs over HTTP (protobuf or JSON) to an OTel Collector, Elastic APM Server or any OTLP backend',
  configSchema,
  createDefaultConfig,
  async create(settings, config) {
    const tls = config.tls ? await loadTlsMaterial(settings, config.tls) : undefined;
    return new OtlpHttpExporter(settings, config, tls);
  },
};
