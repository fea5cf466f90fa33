/**
 * `npm run demo`: the collector's main job with no external server. Starts the authentik API
 * emulator, runs the real CLI with the default collector.yaml against it, shows progress until every
 * event, user and group has arrived, stops the collector with SIGTERM and prints a summary.
 *
 * The demo writes into its own directory (default ./data/demo: documents in authentik.ndjson,
 * checkpoints in state/), never into ./data/authentik.ndjson and ./data/state where a real run writes:
 * it overrides the `file` exporter's path and the `file_storage` directory with `--set`.
 *
 * Options (`npm run demo -- --help`):
 *   --events N            events in the emulator (default 5000)
 *   --port P              emulator port (default 9080; 0 = any free port)
 *   --config F            collector configuration (default collector.yaml)
 *   --dir D               the demo's directory (default data/demo)
 *   --output F            where the documents are expected (default <dir>/authentik.ndjson)
 *   --keep                keep <dir> from a previous demo run (the collector resumes from its checkpoints)
 *   --timeout-seconds S   give up after S seconds (default 300)
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
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
    dir: { type: 'string', default: 'data/demo' },
    output: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'timeout-seconds': { type: 'string', default: '300' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  const doc = readFileSync(import.meta.filename, 'utf8');
  process.stdout.write(`${/Options[^\n]*\n((?: \* {3}.*\n)+)/.exec(doc)![1]!.replace(/^ \*/gm, '')}`);
  process.exit(0);
}
const events = Number(values.events);
const demoDir = path.resolve(root, values.dir);
const output = path.resolve(root, values.output ?? path.join(values.dir, 'authentik.ndjson'));
const stateDir = path.join(demoDir, 'state');
const configPath = path.resolve(root, values.config);

if (!values.keep) {
  for (const p of [output, stateDir]) {
    if (existsSync(p)) {
      console.log(
        `demo: removing ${path.relative(root, p)} from a previous demo run (pass --keep to keep it)`,
      );
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
  [
    path.join(root, 'bin/authentik-collector.js'),
    'run',
    '--config',
    configPath,
    // The demo's own directory, whatever the configuration says.
    '--set',
    `exporters::file::path=${JSON.stringify(output)}`,
    '--set',
    `extensions::file_storage::directory=${JSON.stringify(stateDir)}`,
  ],
  {
    cwd: root,
    env: { ...process.env, AUTHENTIK_URL: emulator.url, AUTHENTIK_TOKEN: emulator.token },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);

// One progress line at the bottom of a terminal; the collector's log lines are printed above it (the
// line is cleared, the log written, the line redrawn), so the two never mix. Without a terminal the
// progress is a plain line every 10 s.
const tty = process.stderr.isTTY === true;
let progress = '';
child.stderr.on('data', (chunk: Buffer) => {
  if (tty && progress) process.stderr.write('\r\x1b[2K');
  process.stderr.write(chunk);
  if (tty && progress) process.stderr.write(progress);
});
let lastPlain = 0;
function showProgress(line: string): void {
  if (tty) {
    progress = line;
    process.stderr.write(`\r\x1b[2K${line}`);
  } else if (Date.now() - lastPlain >= 10_000) {
    lastPlain = Date.now();
    process.stderr.write(`${line}\n`);
  }
}
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
  showProgress(
    `demo: ${secs}s  events ${t.events}/${expected.events}  users ${t.users}/${expected.users}  groups ${t.groups}/${expected.groups}`,
  );
  if (t.eventIds.size >= expected.events && t.users >= expected.users && t.groups >= expected.groups) break;
}
if (tty) process.stderr.write('\n');
progress = '';
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
