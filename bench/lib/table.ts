/**
 * Rendering of result rows: a plain-text table for the terminal and a markdown table for results.md and
 * the README, with machine information (these machines are shared: the load average is recorded too).
 */
import { cpus, loadavg, totalmem } from 'node:os';
import type { BenchRow } from './rows.ts';

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  date: string;
  loadStart: number[];
  loadEnd?: number[];
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    date: new Date().toISOString(),
    loadStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** How each goal reads (the JSON keeps only the number); by exact name or by name pattern. */
const GOAL_TEXT: [RegExp, (g: number) => string][] = [
  [/^polling_requests_per_hour$/, (g) => `ratio ≥ ${g} (x fewer)`],
  [/^polling_response_bytes_per_hour$/, (g) => `ratio ≥ ${g} (x fewer)`],
  [/^polling_polls_per_hour$/, (g) => `ratio ≥ ${g} (x more often)`],
  [/^polling_delay_/, (g) => `value < ${g} s`],
  [/^backfill_n\d+_events_per_s$/, (g) => `ratio ≥ ${g} (speed-up)`],
  [/^backfill_n\d+_ceiling$/, (g) => `value ≥ ${g} (the speed-up goal is reachable)`],
  [/^backfill_n\d+_with_batch_events_per_s$/, (g) => `ratio ≤ ${g} (x slower than without batch)`],
  [/_peak_rss$/, (g) => `value < ${g} MB`],
  [/^scaling_.*_time_per_event_/, (g) => `ratio ≤ ${g} (growth)`],
  [/^ecs_/, (g) => `ratio ≤ ${g} (x slower)`],
  [/^otlphttp_collector_/, (g) => `value ≥ ${g}`],
  [/^elasticsearch exporter → /, (g) => `value ≥ ${g}`],
];

export function goalText(r: BenchRow): string {
  if (r.goal === null) return '';
  for (const [re, f] of GOAL_TEXT) if (re.test(r.name)) return f(r.goal);
  return String(r.goal);
}

function num(x: number | null): string {
  if (x === null) return '';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e9 ? x.toExponential(3).replace('e+', 'e') : String(x);
}

function cells(r: BenchRow): string[] {
  return [
    r.name,
    num(r.value),
    r.unit,
    num(r.baseline),
    num(r.ratio),
    goalText(r),
    r.met === null ? '' : r.met ? 'yes' : 'NO',
  ];
}

const HEAD = ['name', 'value', 'unit', 'baseline', 'ratio', 'goal', 'met'];

export function textTable(rows: BenchRow[]): string {
  const body = rows.map(cells);
  const w = HEAD.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === 1 || i === 3 || i === 4 ? x.padStart(w[i]!) : x.padEnd(w[i]!)))
      .join('  ')
      .trimEnd();
  return [line(HEAD), line(w.map((x) => '-'.repeat(x))), ...body.map(line)].join('\n');
}

export function markdownTable(rows: BenchRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${HEAD.join(' | ')} |`,
    `| --- | ---: | --- | ---: | ---: | --- | --- |`,
    ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
  ].join('\n');
}

export function machineLine(m: MachineInfo): string {
  const load = (l: number[] | undefined) => (l ? l.join(' / ') : '?');
  return (
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.platform}, Node.js ${m.node}, ${m.date}; ` +
    `load average (1/5/15 min) ${load(m.loadStart)} at the start, ${load(m.loadEnd)} at the end`
  );
}
