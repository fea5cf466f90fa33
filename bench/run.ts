/**
 * The benchmark suite: `npm run bench` (≈ 12-15 minutes on the 2-core machine) or
 * `node bench/run.ts --quick` (≈ 1 minute, CI smoke test).
 *
 *   node bench/run.ts [--quick] [--only polling,backfill,...] [--with-peers | --no-peers] [--cpu-prof]
 *
 * Runs every part, prints the table, writes results.json (the rows) and results.md (the table with the
 * machine it ran on, skipped parts, and each part's log): into bench/ for a full run (no --quick, no
 * --only), which also refreshes the table in bench/README.md (listing parts that were skipped or
 * crashed); into bench/out/ (git-ignored) otherwise, so a smoke test never replaces committed results. A part whose component or peer is not there yet
 * is skipped with the reason; goals that are not met never fail the run. Exit code: 0, or 1 when a part
 * crashed, 2 for bad arguments.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { BackfillRun } from './backfill.ts';
import { buildCollector, collectorForm } from './lib/collector.ts';
import { otelCollector, searchServer } from './lib/peers.ts';
import type { Peer } from './lib/peers.ts';
import type { BenchRow } from './lib/rows.ts';
import { machineInfo, machineLine, markdownTable, textTable } from './lib/table.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

function usage(): string {
  return `Usage: node bench/run.ts [options]   (npm run bench -- [options])

  --quick              ~1 minute version (CI smoke test): smaller sizes, fewer runs
  --only a,b           run only these parts: ${PARTS.map((p) => p.name).join(', ')}
  --with-peers         start the real search server / OpenTelemetry Collector if they are not running
                       (default in a full run; --quick uses only peers that are already up)
  --no-peers           never start peers
  --cpu-prof           write V8 CPU profiles of every collector process to bench/out/profiles/
                       (summarise one with: node bench/lib/profile-summary.ts <file>)
  --from-source        run the collector from the TypeScript sources (default in --quick); a full run
                       first compiles it into bench/out/dist, the JavaScript an installed package runs
  -h, --help           this text
`;
}

interface Ctx {
  quick: boolean;
  /** Seconds left of the suite's time budget. */
  remainingS: () => number;
  log: (line: string) => void;
  /** Backfill runs, reused by the scaling part. */
  runs: BackfillRun[];
  peers: () => Promise<void>;
  onSkip: (part: string, reason: string) => void;
}

interface Part {
  name: string;
  /** Module under bench/ and the function it must export. */
  module: string;
  fn: string;
  /** Needs the real peers (started before it when allowed). */
  peers?: boolean;
  options(ctx: Ctx): Record<string, unknown>;
}

const PARTS: Part[] = [
  {
    name: 'polling',
    module: 'polling.ts',
    fn: 'runPollingBench',
    options: (c) => ({ quick: c.quick, log: c.log }),
  },
  {
    name: 'push',
    module: 'push.ts',
    fn: 'runPushBench',
    options: (c) => ({ quick: c.quick, log: c.log }),
  },
  {
    name: 'backfill',
    module: 'backfill.ts',
    fn: 'runBackfillBench',
    options: (c) => ({ quick: c.quick, log: c.log, onRun: (r: BackfillRun) => c.runs.push(r) }),
  },
  {
    name: 'batch',
    module: 'backfill.ts',
    fn: 'runBatchBench',
    options: (c) => ({ quick: c.quick, log: c.log }),
  },
  {
    name: 'scaling',
    module: 'scaling.ts',
    fn: 'runScalingBench',
    options: (c) => ({ quick: c.quick, log: c.log, known: c.runs }),
  },
  { name: 'ecs', module: 'ecs.ts', fn: 'runEcsBench', options: (c) => ({ quick: c.quick, log: c.log }) },
  {
    name: 'otlp',
    module: 'otlp.ts',
    fn: 'runOtlpBench',
    peers: true,
    options: (c) => ({ quick: c.quick, log: c.log }),
  },
  {
    name: 'elasticsearch',
    module: 'elasticsearch.ts',
    fn: 'runElasticsearchBench',
    peers: true,
    options: (c) => ({ quick: c.quick, log: c.log }),
  },
  {
    name: 'e2e',
    module: 'e2e.ts',
    fn: 'runE2eBench',
    peers: true,
    options: (c) => ({
      quick: c.quick,
      log: c.log,
      startPeers: false,
      onSkip: c.onSkip,
      // Two exporters; leave a minute for start-up and the rest.
      maxSeconds: Math.max(10, Math.min(c.quick ? 10 : 60, (c.remainingS() - 60) / 2)),
    }),
  },
];

interface Outcome {
  part: string;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  seconds: number;
  rows: number;
  log: string[];
}

function isSkip(e: unknown): boolean {
  return e instanceof Error && e.name === 'SkipError';
}

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        'with-peers': { type: 'boolean', default: false },
        'no-peers': { type: 'boolean', default: false },
        'cpu-prof': { type: 'boolean', default: false },
        'from-source': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n\n${usage()}`);
    return 2;
  }
  const o = args.values;
  if (o.help) {
    process.stdout.write(usage());
    return 0;
  }
  let selected = PARTS;
  if (o.only !== undefined) {
    const names = o.only
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = names.filter((n) => !PARTS.some((p) => p.name === n));
    if (unknown.length > 0 || names.length === 0) {
      process.stderr.write(`--only: unknown part(s) ${unknown.join(', ') || '(none given)'}\n\n${usage()}`);
      return 2;
    }
    selected = PARTS.filter((p) => names.includes(p.name));
  }
  if (o['with-peers'] && o['no-peers']) {
    process.stderr.write(`--with-peers and --no-peers exclude each other\n\n${usage()}`);
    return 2;
  }
  const quick = o.quick ?? false;
  const allowPeers = o['no-peers'] ? false : o['with-peers'] ? true : !quick;
  if (o['cpu-prof']) {
    const dir = join(HERE, 'out', 'profiles');
    mkdirSync(dir, { recursive: true });
    process.env['AC_BENCH_CPU_PROF_DIR'] = dir;
  }

  const machine = machineInfo();
  const started = performance.now();
  // `npm run bench` must finish within 15 minutes: a part that has not started by the budget is skipped.
  const budgetS = quick ? 240 : 14 * 60;
  const deadline = started + budgetS * 1000;
  const say = (s: string) => process.stderr.write(`${s}\n`);
  say(`authentik-collector benchmarks (${quick ? 'quick' : 'full'}): ${machineLine(machine)}`);
  if (!quick && !o['from-source']) {
    say('compiling the collector into bench/out/dist (tsconfig.build.json)');
    const why = await buildCollector();
    if (why) say(`compiling failed (${why}); collector processes run from the sources`);
  }
  say(
    `collector processes run from the ${collectorForm() === 'compiled' ? 'compiled tree (bench/out/dist)' : 'TypeScript sources'}`,
  );

  // Peers are shared by the parts that need them; started once (when allowed), stopped at the end.
  const peers: Peer[] = [];
  let peersReady = false;
  const outcomes: Outcome[] = [];
  const rows: BenchRow[] = [];
  const ctxFor = (part: string, lines: string[]): Ctx => {
    const log = (l: string) => {
      lines.push(l);
      say(`  [${part}] ${l}`);
    };
    return {
      quick,
      remainingS: () => (deadline - performance.now()) / 1000,
      log,
      runs: sharedRuns,
      onSkip: (p, reason) => log(`${p} skipped: ${reason}`),
      peers: async () => {
        if (peersReady) return;
        peersReady = true;
        const s = await searchServer(allowPeers);
        if ('peer' in s) {
          peers.push(s.peer);
          process.env['OPENSEARCH_URL'] ??= s.peer.url;
          log(`search server at ${s.peer.url} (${s.peer.origin})`);
        } else log(`search server unavailable: ${s.skip}`);
        const c = await otelCollector(allowPeers);
        if ('peer' in c) {
          peers.push(c.peer);
          process.env['OTELCOL_OTLP_URL'] ??= c.peer.url;
          log(`OpenTelemetry Collector at ${c.peer.url} (${c.peer.origin})`);
        } else log(`OpenTelemetry Collector unavailable: ${c.skip}`);
      },
    };
  };
  const sharedRuns: BackfillRun[] = [];

  try {
    for (const part of selected) {
      const lines: string[] = [];
      const ctx = ctxFor(part.name, lines);
      const t0 = performance.now();
      const done = (status: Outcome['status'], n: number, reason?: string) => {
        const seconds = Math.round((performance.now() - t0) / 100) / 10;
        outcomes.push({
          part: part.name,
          status,
          seconds,
          rows: n,
          log: lines,
          ...(reason ? { reason } : {}),
        });
        say(
          `[${part.name}] ${status}${reason ? `: ${reason.split('\n')[0]}` : ''} (${seconds} s, ${n} rows)`,
        );
      };
      const file = join(HERE, part.module);
      if (!existsSync(file)) {
        done('skipped', 0, `bench/${part.module} is not there yet`);
        continue;
      }
      if (performance.now() > deadline) {
        done('skipped', 0, `time budget of ${budgetS} s used up before it could start`);
        continue;
      }
      say(`[${part.name}] running`);
      try {
        const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
        const fn = mod[part.fn];
        if (typeof fn !== 'function') {
          done('skipped', 0, `bench/${part.module} does not export ${part.fn}() yet`);
          continue;
        }
        if (part.peers) await ctx.peers();
        const out =
          (await (fn as (o: Record<string, unknown>) => Promise<BenchRow[]>)(part.options(ctx))) ?? [];
        for (const r of out) rows.push(normalize(r));
        done('ok', out.length);
      } catch (e) {
        if (isSkip(e)) done('skipped', 0, (e as Error).message);
        else {
          const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
          lines.push(`crashed: ${msg}`);
          done('failed', 0, msg);
        }
      }
    }
  } finally {
    for (const p of peers) await p.stop();
  }

  machine.loadEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  const total = Math.round((performance.now() - started) / 1000);
  process.stdout.write(`\n${textTable(rows)}\n\n`);
  for (const oc of outcomes.filter((x) => x.status !== 'ok'))
    process.stdout.write(`${oc.part}: ${oc.status}: ${oc.reason?.split('\n')[0] ?? ''}\n`);
  process.stdout.write(`total ${total} s\n`);

  const form =
    collectorForm() === 'compiled'
      ? 'compiled JavaScript (bench/out/dist)'
      : 'TypeScript sources (type stripping)';
  const md = resultsMarkdown(rows, outcomes, machine, quick, total, o.only, form);
  // Only a full run replaces the committed results; --quick and --only runs write into bench/out/.
  const outDir = !quick && o.only === undefined ? HERE : join(HERE, 'out');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(rows, null, 2)}\n`);
  writeFileSync(join(outDir, 'results.md'), md);
  process.stdout.write(`results: ${join(outDir, 'results.json')}, ${join(outDir, 'results.md')}\n`);
  const failed = outcomes.some((x) => x.status === 'failed');
  // A full run refreshes the README's table even when a part crashed (it is listed there with its reason).
  if (!quick && o.only === undefined) updateReadme(rows, outcomes, machine, total, form);
  return failed ? 1 : 0;
}

/** Keeps exactly the row keys of results.json, in order. */
function normalize(r: BenchRow): BenchRow {
  return {
    name: r.name,
    value: r.value,
    unit: r.unit,
    baseline: r.baseline ?? null,
    ratio: r.ratio ?? null,
    goal: r.goal ?? null,
    met: r.met ?? null,
  };
}

function resultsMarkdown(
  rows: BenchRow[],
  outcomes: Outcome[],
  machine: ReturnType<typeof machineInfo>,
  quick: boolean,
  total: number,
  only: string | undefined,
  form: string,
): string {
  const cmd = `node bench/run.ts${quick ? ' --quick' : ''}${only ? ` --only ${only}` : ''}`;
  const out: string[] = [
    `# Benchmark results`,
    '',
    `Command: \`${cmd}\` (${quick ? 'quick smoke-test sizes' : 'full sizes'}), ${total} s in total.`,
    '',
    `Machine: ${machineLine(machine)}.`,
    '',
    `Collector processes ran from the ${form}.`,
    '',
    markdownTable(rows),
    '',
    '## Parts',
    '',
    '| part | status | seconds | rows | reason |',
    '| --- | --- | ---: | ---: | --- |',
    ...outcomes.map(
      (o) =>
        `| ${o.part} | ${o.status} | ${o.seconds} | ${o.rows} | ${(o.reason ?? '').split('\n')[0]!.replace(/\|/g, '\\|')} |`,
    ),
    '',
    '## Logs',
    '',
  ];
  for (const o of outcomes) {
    if (o.log.length === 0) continue;
    out.push(`### ${o.part}`, '', '```', ...o.log, '```', '');
  }
  return `${out.join('\n')}\n`;
}

const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

function updateReadme(
  rows: BenchRow[],
  outcomes: Outcome[],
  machine: ReturnType<typeof machineInfo>,
  total: number,
  form: string,
): void {
  const path = join(HERE, 'README.md');
  if (!existsSync(path)) return;
  const text = readFileSync(path, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) return;
  const skipped = outcomes.filter((o) => o.status !== 'ok');
  const block = [
    START,
    '',
    `Produced by \`npm run bench\` in ${total} s on: ${machineLine(machine)}. Collector processes ran from the ${form}.`,
    '',
    markdownTable(rows),
    '',
    ...(skipped.length
      ? [
          'Parts without rows:',
          '',
          ...skipped.map((o) => `- ${o.part} (${o.status}): ${(o.reason ?? '').split('\n')[0]}`),
          '',
        ]
      : []),
    END,
  ].join('\n');
  writeFileSync(path, text.slice(0, a) + block + text.slice(b + END.length));
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  // Lingering keep-alive sockets or timers of a part must not keep the suite alive.
  process.stdout.write('', () => process.exit(code));
}
