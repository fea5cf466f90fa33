/** Factory of the `authentik_dedupe` processor. */
import type { ProcessorFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { DedupeProcessor } from './processor.ts';

export const factory: ProcessorFactory<Config> = {
  kind: 'processor',
  type: 'authentik_dedupe',
  description:
    'Forwards each authentik event once (by pk) when push and polling both deliver it; remembered durably, duplicates acknowledged',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new DedupeProcessor(settings, config, next),
};
