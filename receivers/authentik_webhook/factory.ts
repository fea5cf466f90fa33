/** Factory of the `authentik_webhook` receiver. */
import type { ReceiverFactory } from '../../runtime/component.ts';
import { configSchema, createDefaultConfig } from './config.ts';
import type { Config } from './config.ts';
import { WebhookReceiver } from './receiver.ts';

export const factory: ReceiverFactory<Config> = {
  kind: 'receiver',
  type: 'authentik_webhook',
  description:
    "Receives authentik's notification webhooks (push, sub-second), authenticated by a shared secret; provisions the rule in authentik",
  configSchema,
  createDefaultConfig,
  create: (settings, config, next) => new WebhookReceiver(settings, config, next),
};
