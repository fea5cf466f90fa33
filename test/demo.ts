/**
 * `npm run demo`: the collector's main job with no external server. Starts the authentik API
 * emulator, runs the real CLI with the default collector.yaml against it (writing ECS documents to
 * ./data/), shows progress until every event, user and group has arrived, stops the collector with
 * SIGTERM and prints a summary.
 *
 * Options: --events N (default 5000), --port P (default 9080), --config F (default collector.yaml),
 * --keep (do not clear ./data/authentik.ndjson and ./data/state from a previous demo run).
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startEmulator } from './emulator/index.ts';

const root = path.resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '5000' },
    port: { type: 'string', default: '9080' },
    config: { type: 'string', default: 'collector.yaml' },
    output: { type: 'string', default: 'data/authentik.ndjson' },
    keep: { type: 'boolean', default: false },
    'timeout-seconds': { type: 'string', default: '300' },
  },
});
const events = Number(values.events);
const output = path.resolve(root, values.output);
const configPath = path.resolve(root, values.config);

if (!values.keep) {
  for (const p of [output, path.resolve(root, 'data/state')]) {
    if (existsSync(p)) {
      console.log(`demo: removing ${path.relative(root, p)} from a previous run (pass --keep to keep it)`);
      rmSync(p, { recursive: true, force: true });
    }
  }
}

const emulator = await startEmulator({ events, port: Number(values.port) });
const expected = { events, users: emulator.users.count(), groups: emulator.groups.count() };
console.log(
  `demo: authentik emulator at ${emulator.url} with ${expected.events} events, ${expected.users} users, ${expected.groups} groups`,
);

const started = Date.now();
const child = spawn(
  process.execPath,
  [path.join(root, 'bin/authentik-collector.js'), 'run', '--config', configPath],
  {
    cwd: root,
    env: { ...process.env, AUTHENTIK_URL: emulator.url, AUTHENTIK_TOKEN: emulator.token },
    stdio: ['ignore', 'inherit', 'inherit'],
  },
);
let exited: number | null | undefined;
const exitPromise = new Promise<number | null>((resolve) =>
  child.on('exit', (code) => resolve((exited = code))),
);

interface Tally {
  events: number;
  users: number;
  groups: number;
  other: number;
  errors: number;
  eventIds: Set<string>;
}

/** Counts documents per dataset in the output file. */
async function tally(): Promise<Tally> {
  const t: Tally = { events: 0, users: 0, groups: 0, other: 0, errors: 0, eventIds: new Set() };
  if (!existsSync(output)) return t;
  const rl = createInterface({ input: createReadStream(output), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let doc: { data_stream?: { dataset?: string }; event?: { id?: string }; error?: unknown };
    try {
      doc = JSON.parse(line) as typeof doc;
    } catch {
      t.other++;
      continue;
    }
    if (doc.error) t.errors++;
    switch (doc.data_stream?.dataset) {
      case 'authentik.event':
        t.events++;
        if (doc.event?.id) t.eventIds.add(doc.event.id);
        break;
      case 'authentik.user':
        t.users++;
        break;
      case 'authentik.group':
        t.groups++;
        break;
      default:
        t.other++;
    }
  }
  return t;
}

const deadline = started + Number(values['timeout-seconds']) * 1000;
let t: Tally;
while (exited === undefined && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 1000));
  t = await tally();
  const secs = ((Date.now() - started) / 1000).toFixed(0);
  process.stderr.write(
    `\rdemo: ${secs}s  events ${t.events}/${expected.events}  users ${t.users}/${expected.users}  groups ${t.groups}/${expected.groups}   `,
  );
  if (t.eventIds.size >= expected.events && t.users >= expected.users && t.groups >= expected.groups) break;
}
process.stderr.write('\n');
if (exited === undefined) child.kill('SIGTERM');
const code = await exitPromise;
t = await tally();
const elapsed = (Date.now() - started) / 1000;
await emulator.close();

const ok = t.eventIds.size === expected.events && t.users >= expected.users && t.groups >= expected.groups;
console.log(`
demo summary (${elapsed.toFixed(1)} s, collector exit code ${code})
  output             ${path.relative(root, output)} (${existsSync(output) ? statSync(output).size : 0} bytes)
  events             ${t.events} documents, ${t.eventIds.size} distinct of ${expected.events} (${t.events - t.eventIds.size} duplicates)
  users              ${t.users} documents (${expected.users} in the directory)
  groups             ${t.groups} documents (${expected.groups} in the directory)
  flagged documents  ${t.errors} with error.message
  API requests       ${emulator.stats.requests} (${(emulator.stats.bytes / 1e6).toFixed(1)} MB served)
  result             ${ok ? 'OK: everything arrived' : 'INCOMPLETE: see the collector log above'}`);
process.exitCode = ok && code === 0 ? 0 : 1;
