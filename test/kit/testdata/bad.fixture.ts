// Components that each break one rule: the named conformance test must fail.
import * as z from 'zod';
import { describeComponent } from '../conformance.ts';
import { once } from '../../../runtime/component.ts';
import type { LogsBatch } from '../../../runtime/model.ts';

// Emits a batch on a timer even after shutdown.
describeComponent(
  {
    kind: 'processor',
    type: 'late_emitter',
    description: 'acks early and emits late',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create: (_s, _c, next) => ({
      capabilities: { mutatesData: false },
      start: async () => {},
      shutdown: once(async () => {}),
      consume: (b: LogsBatch) => {
        setTimeout(() => void next.consume(b).catch(() => {}), 20);
        return Promise.resolve();
      },
    }),
  },
  { dir: '/x/processors/late_emitter', forwardsAll: false },
);

// Shutdown is not idempotent; defaults disagree with the schema; schema accepts unknown keys.
describeComponent(
  {
    kind: 'exporter',
    type: 'sloppy',
    description: 'breaks several rules',
    configSchema: z.object({ size: z.number().default(10) }),
    createDefaultConfig: () => ({ size: 5 }),
    create: () => {
      let down = false;
      return {
        capabilities: { mutatesData: false },
        start: async () => {},
        shutdown: async () => {
          if (down) throw new Error('already shut down');
          down = true;
        },
        consume: async () => {},
      };
    },
  },
  { dir: '/x/exporters/sloppy' },
);

// Folder name differs from the type.
describeComponent(
  {
    kind: 'extension',
    type: 'misplaced',
    description: 'lives in the wrong folder',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create: () => ({ start: async () => {}, shutdown: once(async () => {}) }),
  },
  { dir: '/x/receivers/elsewhere' },
);

// Swallows permanent errors without counting them as dropped.
describeComponent(
  {
    kind: 'receiver',
    type: 'swallower',
    description: 'loses data silently',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create: (_s, _c, next) => ({
      start: async () => {
        await next.consume([{ observedTimestamp: [0, 0], attributes: {} }]).catch(() => {});
      },
      shutdown: once(async () => {}),
    }),
  },
  { dir: '/x/receivers/swallower', emitsData: true, emitTimeoutMs: 300 },
);
