// Test plugin: a never-ending receiver and a file-writing exporter, loaded through `plugins:`.
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as z from 'zod';

const record = (n) => ({ observedTimestamp: [0, 0], attributes: {}, body: { n } });

export const factories = [
  {
    kind: 'receiver',
    type: 'ticker',
    description: 'Emits one record every interval_ms, forever (test plugin)',
    configSchema: z.strictObject({
      interval_ms: z.number().int().positive().default(20),
      reject_after_ms: z.number().optional(),
      throw_after_ms: z.number().optional(),
    }),
    createDefaultConfig: () => ({ interval_ms: 20 }),
    create(settings, config, next) {
      let timer;
      let n = 0;
      return {
        async start() {
          timer = setInterval(() => {
            next.consume([record(n++)]).catch((err) => settings.logger.warn('refused', { error: err }));
          }, config.interval_ms);
          if (config.reject_after_ms !== undefined) {
            setTimeout(() => {
              Promise.reject(new Error('background task exploded'));
            }, config.reject_after_ms);
          }
          if (config.throw_after_ms !== undefined) {
            setTimeout(() => {
              throw new Error('timer callback exploded');
            }, config.throw_after_ms);
          }
        },
        async shutdown() {
          clearInterval(timer);
        },
      };
    },
  },
  {
    kind: 'exporter',
    type: 'lines',
    description: 'Appends each record body as a JSON line (test plugin)',
    configSchema: z.strictObject({
      path: z.string(),
      shutdown_delay_ms: z.number().default(0),
      fail_start: z.boolean().default(false),
    }),
    createDefaultConfig: () => ({ shutdown_delay_ms: 0, fail_start: false }),
    create(settings, config) {
      const file = resolve(settings.configDir, config.path);
      return {
        capabilities: { mutatesData: false },
        async start() {
          if (config.fail_start) throw new Error(`cannot open ${config.path}: permission denied`);
        },
        shutdown: () => new Promise((r) => setTimeout(r, config.shutdown_delay_ms)),
        async consume(batch) {
          appendFileSync(file, batch.map((r) => `${JSON.stringify(r.body)}\n`).join(''));
        },
      };
    },
  },
];
