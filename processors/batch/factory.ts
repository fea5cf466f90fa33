/** Factory of the `batch` processor. */
import type { ProcessorFactory } from '../../runtime/component.ts';
import { BatchProcessor } from './batch.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';

export const factory: ProcessorFactory<Config> = {
  kind: 'processor',
  type: 'batch',
  description:
    'Merges and splits batches by size and time; acknowledges upstream only after downstream delivery',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new BatchProcessor(settings, config, next),
};
