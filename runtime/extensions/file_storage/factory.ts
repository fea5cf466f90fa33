/** Factory of the `file_storage` extension. */
import type { ExtensionFactory } from '../../component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { FileStorage } from './storage.ts';

export const factory: ExtensionFactory<Config> = {
  kind: 'extension',
  type: 'file_storage',
  description: 'Directory-backed key/value storage for checkpoints and persistent queues (atomic, fsynced)',
  configSchema,
  createDefaultConfig,
  create: (settings, config) => new FileStorage(settings, config),
};
