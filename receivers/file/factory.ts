/** Factory of the `file` receiver. */
import type { ReceiverFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { FileReceiver } from './receiver.ts';

export const factory: ReceiverFactory<Config> = {
  kind: 'receiver',
  type: 'file',
  description:
    'Reads newline-delimited JSON from a file (replay to the end, or tail it), one record per line',
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new FileReceiver(settings, config, next),
};
