/** Factory of the `authentik` receiver. */
import type { ReceiverFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { AuthentikReceiver } from './receiver.ts';

export const factory: ReceiverFactory<Config> = {
  kind: 'receiver',
  type: 'authentik',
  description:
    'Reads authentik audit events (incremental, resumable backfill, exactly once), users and groups from the REST API',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new AuthentikReceiver(settings, config, next),
};
