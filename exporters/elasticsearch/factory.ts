/**
 * Factory of the `elasticsearch` exporter: reads secrets and TLS files, builds the Authorization header.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ComponentSettings, ExporterFactory } from '../../runtime/component.ts';
import { Secret } from '../../runtime/config/types.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { loadTlsMaterial } from '../../runtime/config/tls.ts';
import type { AuthConfig, Config } from './config.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import { ElasticsearchExporter } from './exporter.ts';

async function readConfigFile(settings: ComponentSettings, key: string, file: string): Promise<Buffer> {
  const path = resolve(settings.configDir, file);
  try {
    return await readFile(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError([
      { path: `exporters.${settings.id}.${key}`, message: `cannot read ${path}: ${reason}` },
    ]);
  }
}

async function secretFrom(
  settings: ComponentSettings,
  key: string,
  inline: Secret | undefined,
  file: string | undefined,
): Promise<Secret | undefined> {
  if (inline !== undefined) return inline;
  if (file === undefined) return undefined;
  const text = (await readConfigFile(settings, `auth.${key}_file`, file)).toString('utf8').trim();
  if (text === '') {
    throw new ConfigError([
      { path: `exporters.${settings.id}.auth.${key}_file`, message: `${file} is empty` },
    ]);
  }
  return new Secret(text);
}

/** The Authorization header value for the configured method (a Secret, so it is scrubbed from logs too). */
export async function authorizationHeader(
  settings: ComponentSettings,
  auth: AuthConfig | undefined,
): Promise<Secret | undefined> {
  if (!auth) return undefined;
  const apiKey = await secretFrom(settings, 'api_key', auth.api_key, auth.api_key_file);
  if (apiKey) {
    const v = apiKey.reveal();
    // `id:key` is encoded here; anything else is taken as the already encoded key.
    return new Secret(`ApiKey ${v.includes(':') ? Buffer.from(v).toString('base64') : v}`);
  }
  const bearer = await secretFrom(settings, 'bearer_token', auth.bearer_token, auth.bearer_token_file);
  if (bearer) return new Secret(`Bearer ${bearer.reveal()}`);
  const password = await secretFrom(settings, 'password', auth.password, auth.password_file);
  if (auth.username !== undefined && password) {
    return new Secret(`Basic ${Buffer.from(`${auth.username}:${password.reveal()}`).toString('base64')}`);
  }
  return undefined;
}

export const factory: ExporterFactory<Config> = {
  kind: 'exporter',
  type: 'elasticsearch',
  description:
    'Writes ECS documents into Elasticsearch / OpenSearch data streams with _bulk (create, idempotent _id), with index templates and a dead-letter file',
  configSchema,
  createDefaultConfig,
  async create(settings, config) {
    const tls = config.tls ? await loadTlsMaterial(settings, config.tls) : undefined;
    const auth = await authorizationHeader(settings, config.auth);
    if (auth && config.endpoints.some((e) => e.startsWith('http:'))) {
      settings.logger.warn('credentials are sent over plain http; use https endpoints', {
        endpoints: config.endpoints.filter((e) => e.startsWith('http:')),
      });
    }
    return new ElasticsearchExporter(settings, config, {
      tls,
      authorization: auth ? () => auth.reveal() : undefined,
      deadLetterPath: config.dead_letter ? resolve(settings.configDir, config.dead_letter.path) : undefined,
    });
  },
};
