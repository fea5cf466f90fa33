/**
 * Standalone authentik API emulator.
 *
 *   npm run emulator -- --events 1000 --port 9080
 *
 * Prints the URL and the token, serves until SIGINT/SIGTERM. See README.md for every flag.
 */
import { parseArgs } from 'node:util';
import { FAULT_KINDS, PROFILES, startEmulator } from './index.ts';
import type { Dataset, EmulatorOptions, FaultConfig, FaultKind, VersionProfile } from './index.ts';

const USAGE = `Usage: npm run emulator -- [flags]

  --events N              initial events (default 1000)
  --users N               users (default 50)
  --groups N              groups (default 12)
  --port P                listen port (default 9080; 0 = random)
  --host H                listen host (default 127.0.0.1)
  --version V             authentik profile: ${PROFILES.join(' | ')} (default 2026.2)
  --seed S                seed for data and faults (default 1)
  --token T               API token (default emulator-token)
  --enterprise            honour enterprise QL search (2025.8+)
  --page-size-default N   override the profile's default page size
  --page-size-max N       override the profile's max page size
  --spacing-ms N          mean time between generated events (default 30000)
  --insert-per-second R   insert R events per second while running
  --delete-per-second R   delete the R oldest events per second (retention)
  --deny D,D              datasets the token may not view: events,users,groups
  --fault-rate X          share of requests that fault (0..1)
  --fault-kinds a,b       ${FAULT_KINDS.join(',')} (default: all but timeout)
  --retry-after S         Retry-After seconds for 429 (default 1)
  --latency-ms N          fixed latency per request
  --jitter-ms N           extra random latency in [0, N)
  --quiet                 do not print a line per request
  --help                  this text
`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      users: { type: 'string' },
      groups: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      version: { type: 'string' },
      seed: { type: 'string' },
      token: { type: 'string' },
      enterprise: { type: 'boolean' },
      'page-size-default': { type: 'string' },
      'page-size-max': { type: 'string' },
      'spacing-ms': { type: 'string' },
      'insert-per-second': { type: 'string' },
      'delete-per-second': { type: 'string' },
      deny: { type: 'string' },
      'fault-rate': { type: 'string' },
      'fault-kinds': { type: 'string' },
      'retry-after': { type: 'string' },
      'latency-ms': { type: 'string' },
      'jitter-ms': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const version = values.version ?? '2026.2';
  if (!(PROFILES as readonly string[]).includes(version)) {
    throw new Error(`--version must be one of ${PROFILES.join(', ')}, got ${JSON.stringify(version)}`);
  }
  const kinds = values['fault-kinds']
    ?.split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  for (const k of kinds ?? []) {
    if (!(FAULT_KINDS as readonly string[]).includes(k)) {
      throw new Error(`--fault-kinds: unknown kind ${JSON.stringify(k)} (known: ${FAULT_KINDS.join(', ')})`);
    }
  }
  const deny = values.deny
    ?.split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  for (const d of deny ?? []) {
    if (!['events', 'users', 'groups'].includes(d))
      throw new Error(`--deny: unknown dataset ${JSON.stringify(d)}`);
  }
  const faults: FaultConfig = {};
  const rate = num('fault-rate', values['fault-rate']);
  if (rate !== undefined) {
    if (rate > 1) throw new Error('--fault-rate must be between 0 and 1');
    faults.rate = rate;
  }
  if (kinds) faults.kinds = kinds as FaultKind[];
  const ra = num('retry-after', values['retry-after']);
  if (ra !== undefined) faults.retryAfterSeconds = ra;
  const lat = num('latency-ms', values['latency-ms']);
  if (lat !== undefined) faults.latencyMs = lat;
  const jit = num('jitter-ms', values['jitter-ms']);
  if (jit !== undefined) faults.jitterMs = jit;

  const opts: EmulatorOptions = {
    port: num('port', values.port) ?? 9080,
    host: values.host ?? '127.0.0.1',
    version: version as VersionProfile,
    token: values.token ?? 'emulator-token',
    enterprise: values.enterprise ?? false,
    faults,
    logRequests: false,
  };
  const set = <K extends keyof EmulatorOptions>(k: K, v: EmulatorOptions[K] | undefined) => {
    if (v !== undefined) opts[k] = v;
  };
  set('events', num('events', values.events));
  set('users', num('users', values.users));
  set('groups', num('groups', values.groups));
  set('seed', num('seed', values.seed));
  set('defaultPageSize', num('page-size-default', values['page-size-default']));
  set('maxPageSize', num('page-size-max', values['page-size-max']));
  set('spacingMs', num('spacing-ms', values['spacing-ms']));
  set('insertPerSecond', num('insert-per-second', values['insert-per-second']));
  set('deletePerSecond', num('delete-per-second', values['delete-per-second']));
  if (deny) opts.denyDatasets = deny as Dataset[];

  const t0 = performance.now();
  const emu = await startEmulator(opts);
  const ms = Math.round(performance.now() - t0);
  process.stdout.write(
    `authentik emulator ${opts.version} listening on ${emu.url}\n` +
      `token: ${emu.token}\n` +
      `events: ${emu.events.count()}  users: ${emu.users.count()}  groups: ${emu.groups.count()}  ` +
      `enterprise: ${opts.enterprise ? 'yes' : 'no'}  (ready in ${ms} ms)\n` +
      `try: curl -H 'Authorization: Bearer ${emu.token}' '${emu.url}/api/v3/events/events/?page_size=2'\n`,
  );
  let last = 0;
  const progress = values.quiet
    ? undefined
    : setInterval(() => {
        if (emu.stats.requests !== last) {
          last = emu.stats.requests;
          process.stdout.write(
            `requests=${emu.stats.requests} bytes=${emu.stats.bytes} cpu_ms=${Math.round(emu.stats.cpuMs)} ` +
              `events=${emu.events.count()} status=${JSON.stringify(emu.stats.byStatus)}\n`,
          );
        }
      }, 5000);
  const stop = (sig: string) => {
    process.stdout.write(`${sig}: shutting down\n`);
    if (progress) clearInterval(progress);
    emu.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`emulator: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
});
