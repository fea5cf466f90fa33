/**
 * Runs the authentik API emulator in a worker thread (see emulator.ts), so that on a 2-core machine
 * its page rendering does not share one event loop with the benchmark's bulk sink.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startEmulator } from '../../test/emulator/index.ts';
import type { EmulatorOptions } from '../../test/emulator/index.ts';

// process.cpuUsage counts every thread here: the emulator's own CPU figure is not used (see emulator.ts).
const emu = await startEmulator({ ...(workerData as EmulatorOptions), measureCpu: false });
const port = parentPort!;
port.postMessage({ type: 'ready', url: emu.url, token: emu.token, count: emu.events.count() });
port.on('message', (m: { type: string; id: number }) => {
  switch (m.type) {
    case 'stats':
      port.postMessage({ type: 'reply', id: m.id, value: { ...emu.stats, count: emu.events.count() } });
      break;
    case 'reset':
      emu.resetStats();
      port.postMessage({ type: 'reply', id: m.id, value: null });
      break;
    case 'close':
      void emu.close().then(() => {
        port.postMessage({ type: 'reply', id: m.id, value: null });
        port.close();
      });
      break;
    default:
      port.postMessage({ type: 'reply', id: m.id, value: null });
  }
});
