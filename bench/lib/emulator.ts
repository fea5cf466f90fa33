/**
 * The authentik API emulator (test/emulator) for the benchmarks, either in this thread (the emulator's
 * own `stats.cpuMs` is then exact, it measures this process's CPU around its synchronous work) or in a
 * worker thread (its own core for heavy paging; CPU figures are then not used).
 */
import { Worker } from 'node:worker_threads';
import { startEmulator } from '../../test/emulator/index.ts';
import type { EmulatorOptions, EmulatorStats } from '../../test/emulator/index.ts';

export interface EmulatorHandle {
  url: string;
  token: string;
  stats(): Promise<EmulatorStats & { count: number }>;
  resetStats(): Promise<void>;
  close(): Promise<void>;
}

export async function startEmulatorWorker(opts: EmulatorOptions): Promise<EmulatorHandle> {
  const worker = new Worker(new URL('./emulator-worker.ts', import.meta.url), {
    workerData: { ...opts, logRequests: false },
  });
  let nextId = 1;
  const waiting = new Map<number, (v: unknown) => void>();
  let failure: Error | undefined;
  const ready = new Promise<{ url: string; token: string }>((resolve, reject) => {
    worker.on(
      'message',
      (m: { type: string; id?: number; value?: unknown; url?: string; token?: string }) => {
        if (m.type === 'ready') resolve({ url: m.url!, token: m.token! });
        else if (m.type === 'reply') {
          waiting.get(m.id!)?.(m.value);
          waiting.delete(m.id!);
        }
      },
    );
    worker.on('error', (e: Error) => {
      failure = e;
      reject(e);
      for (const w of waiting.values()) w(undefined);
    });
  });
  const { url, token } = await ready;
  const call = <T>(type: string): Promise<T> => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    return new Promise<T>((r) => {
      waiting.set(id, r as (v: unknown) => void);
      worker.postMessage({ type, id });
    });
  };
  return {
    url,
    token,
    stats: () => call('stats'),
    resetStats: () => call('reset'),
    async close() {
      await call('close').catch(() => undefined);
      await worker.terminate();
    },
  };
}

/** The emulator in this thread (plus the full handle for inserts and the request log). */
export async function startEmulatorHere(opts: EmulatorOptions) {
  const emu = await startEmulator(opts);
  const handle: EmulatorHandle = {
    url: emu.url,
    token: emu.token,
    stats: () => Promise.resolve({ ...emu.stats, count: emu.events.count() }),
    resetStats: () => {
      emu.resetStats();
      return Promise.resolve();
    },
    close: () => emu.close(),
  };
  return { emu, handle };
}
