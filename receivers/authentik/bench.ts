/**
 * Measures the authentik receiver against the API emulator (not a test; nothing is asserted):
 * backfill throughput and request overhead, with and without network latency and concurrency,
 * and the cost of an idle poll at 1,000,000 retained events. The emulator runs in its own process
 * (`test/emulator/main.ts`) so its CPU does not count against the receiver.
 *
 *   node receivers/authentik/bench.ts [--events 100000] [--latency 20]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startEmulator } from '../../test/emulator/index.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import type { AuthentikReceiver } from './receiver.ts';
import { MemoryStorage } from './testing.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '100000' }, latency: { type: 'string', default: '20' } },
});
const N = Number(values.events);
const LATENCY = Number(values.latency);
const EVENTS_PATH = '/api/v3/events/events/';
const out = (line: string) => process.stdout.write(`${line}\n`);

/** Starts the emulator CLI in a child process; resolves with its URL and a stop function. */
async function emulatorProcess(
  args: string[],
): Promise<{ url: string; token: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['test/emulator/main.ts', '--port', '0', '--quiet', ...args], {
    cwd: new URL('../../', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  let url = '';
  for await (const line of lines) {
    const m = /listening on (http:\/\/\S+)/.exec(line);
    if (m) url = m[1]!;
    if (/ready in/.test(line)) break;
  }
  return {
    url,
    token: 'emulator-token',
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function backfill(label: string, latencyMs: number, concurrency: number): Promise<void> {
  const em = await emulatorProcess([
    '--events',
    String(N),
    '--users',
    '1',
    '--groups',
    '1',
    '--latency-ms',
    String(latencyMs),
  ]);
  const sink = new SinkConsumer();
  const settings = nopSettings('authentik');
  const cfg = configSchema.parse({
    endpoint: em.url,
    token: em.token,
    storage: 'file_storage',
    max_concurrent_requests: concurrency,
    users: { enabled: false },
    groups: { enabled: false },
  });
  const r = (await factory.create(settings, cfg, sink)) as AuthentikReceiver;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await r.start(nopHost({ file_storage: new MemoryStorage() }));
  await waitFor(() => r.events?.phase === 'incremental' && r.events.polls > 0, 3_600_000, 20);
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const metrics = await settings.metrics.getSingleMetric('otelcol_receiver_authentik_requests')!.get();
  const requests = metrics.values
    .filter((v) => v.labels.dataset === 'events')
    .reduce((a, v) => a + v.value, 0);
  out(
    `${label.padEnd(34)} ${String(sink.count()).padStart(8)} events  ${secs.toFixed(2).padStart(7)} s  ` +
      `${Math.round(sink.count() / secs)
        .toString()
        .padStart(
          6,
        )} events/s  ${requests} requests (${(requests / Math.ceil(N / 100)).toFixed(2)}x pages)  ` +
      `receiver CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (${((cpu.user + cpu.system) / sink.count()).toFixed(0)} µs/event)`,
  );
  await r.shutdown();
  await em.stop();
}

async function idle(): Promise<void> {
  for (const enterprise of [false, true]) {
    const em = await startEmulator({ events: 1_000_000, users: 1, groups: 1, enterprise });
    const cfg = configSchema.parse({
      endpoint: em.url,
      token: em.token,
      events: { interval: '1s', backfill: 'none', use_ql: enterprise },
      users: { enabled: false },
      groups: { enabled: false },
    });
    const r = (await factory.create(nopSettings('authentik'), cfg, new SinkConsumer())) as AuthentikReceiver;
    await r.start(nopHost());
    await waitFor(() => (r.events?.polls ?? 0) >= 2, 60_000, 10);
    const p0 = r.events!.polls;
    const q0 = em.stats.byPath[EVENTS_PATH] ?? 0;
    await waitFor(() => r.events!.polls >= p0 + 5, 60_000, 10);
    const q = (em.stats.byPath[EVENTS_PATH] ?? 0) - q0;
    out(
      `idle polls at 1,000,000 events (${enterprise ? 'QL' : '-created'}): ${q} requests / ${r.events!.polls - p0} polls`,
    );
    await r.shutdown();
    await em.close();
  }
}

await backfill('backfill, no latency, 4 concurrent', 0, 4);
await backfill('backfill, no latency, 1 concurrent', 0, 1);
await backfill(`backfill, ${LATENCY} ms latency, 4 concurrent`, LATENCY, 4);
await backfill(`backfill, ${LATENCY} ms latency, 1 concurrent`, LATENCY, 1);
await idle();
