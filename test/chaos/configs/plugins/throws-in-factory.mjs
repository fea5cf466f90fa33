// A broken plugin for the chaos config corpus: a well-formed exporter factory whose create() throws.
import * as z from 'zod';

export const factory = {
  kind: 'exporter',
  type: 'chaos_throwing',
  description: 'chaos corpus: an exporter whose factory throws',
  configSchema: z.strictObject({ anything: z.number().default(0) }),
  createDefaultConfig: () => ({ anything: 0 }),
  create() {
    throw new Error('chaos plugin: create() failed on purpose');
  },
};
