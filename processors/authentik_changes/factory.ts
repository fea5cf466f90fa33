/** Factory of the `authentik_changes` processor. */
import type { ProcessorFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { AuthentikChangesProcessor } from './processor.ts';

export const factory: ProcessorFactory<Config> = {
  kind: 'processor',
  type: 'authentik_changes',
  description:
    'Turns consecutive authentik user and group listings into identity change records (dataset authentik.change: created, deleted, superuser granted, group membership, ...)',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new AuthentikChangesProcessor(settings, config, next),
};
