/** Factory of the `memory_limiter` processor. */
import type { ProcessorFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { MemoryLimiter } from './memory_limiter.ts';

export const factory: ProcessorFactory<Config> = {
  kind: 'processor',
  type: 'memory_limiter',
  description:
    'Refuses data (retryable) while process memory is above a soft limit, so backends outages cannot grow memory',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new MemoryLimiter(settings, config, next),
};
