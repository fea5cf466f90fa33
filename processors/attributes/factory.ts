/** Factory of the `attributes` processor. */
import type { ProcessorFactory } from '../../runtime/component.ts';
import { AttributesProcessor } from './attributes.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';

export const factory: ProcessorFactory<Config> = {
  kind: 'processor',
  type: 'attributes',
  description:
    'Inserts, updates, upserts or deletes record attributes (static values or copied from another attribute)',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new AttributesProcessor(settings, config, next),
};
