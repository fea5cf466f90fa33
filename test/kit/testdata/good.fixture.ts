// A well-behaved processor and receiver: every conformance test must pass.
import * as z from 'zod';
import { describeComponent } from '../conformance.ts';
import { once } from '../../../runtime/component.ts';
import { PermanentError, isPermanent } from '../../../runtime/errors.ts';
import { nowHrTime } from '../../../runtime/model.ts';

const configSchema = z.strictObject({ size: z.number().default(10) });

describeComponent(
  {
    kind: 'processor',
    type: 'passthrough',
    description: 'forwards batches',
    configSchema,
    createDefaultConfig: () => ({ size: 10 }),
    create: (_s, _c, next) => {
      let stopped = false;
      return {
        capabilities: { mutatesData: false },
        start: async () => {},
        shutdown: once(async () => {
          stopped = true;
        }),
        consume: (b) => (stopped ? Promise.reject(new Error('stopped')) : next.consume(b)),
      };
    },
  },
  { dir: '/x/processors/passthrough' },
);

describeComponent(
  {
    kind: 'receiver',
    type: 'ticker',
    description: 'emits one record until delivered or dropped',
    configSchema: z.strictObject({}),
    createDefaultConfig: () => ({}),
    create: (settings, _c, next) => {
      const abort = new AbortController();
      let run: Promise<void> | undefined;
      return {
        start: async () => {
          run = (async () => {
            while (!abort.signal.aborted) {
              try {
                await next.consume([{ observedTimestamp: nowHrTime(), body: 'x', attributes: {} }]);
                return;
              } catch (err) {
                if (isPermanent(err)) return settings.reportDropped(1, 'rejected_permanent');
                await new Promise((r) => setTimeout(r, 5));
              }
            }
          })();
        },
        shutdown: once(async () => {
          abort.abort();
          await run;
        }),
      };
    },
  },
  { dir: '/x/receivers/ticker', emitsData: true },
);
void PermanentError;
