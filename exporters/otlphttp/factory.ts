/**
 * Factory of the `otlphttp` exporter.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ExporterFactory } from '../../runtime/component.ts';
import { ConfigError } from '../../runtime/errors.ts';
import type { Config } from './config.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import { OtlpHttpExporter } from './exporter.ts';
import type { TlsMaterial } from './exporter.ts';

export const factory: ExporterFactory<Config> = {
  kind: 'exporter',
  type: 'otlphttp',
  description:
    'Sends records as OTLP logs over HTTP (protobuf or JSON) to an OTel Collector, Elastic APM Server or any OTLP backend',
  configSchema,
  createDefaultConfig,
  async create(settings, config) {
    let tls: TlsMaterial | undefined;
    if (config.tls) {
      const t = config.tls;
      const read = async (key: 'ca_file' | 'cert_file' | 'key_file'): Promise<Buffer | undefined> => {
        const file = t[key];
        if (file === undefined) return undefined;
        const path = resolve(settings.configDir, file);
        try {
          return await readFile(path);
        } catch (err) {
          const reason = (err as NodeJS.ErrnoException).code ?? String(err);
          throw new ConfigError([
            { path: `exporters.${settings.id}.tls.${key}`, message: `cannot read ${path}: ${reason}` },
          ]);
        }
      };
      tls = { rejectUnauthorized: !t.insecure_skip_verify };
      const [ca, cert, key] = await Promise.all([read('ca_file'), read('cert_file'), read('key_file')]);
      if (ca) tls.ca = ca;
      if (cert) tls.cert = cert;
      if (key) tls.key = key;
      if (t.server_name !== undefined) tls.servername = t.server_name;
    }
    return new OtlpHttpExporter(settings, config, tls);
  },
};
