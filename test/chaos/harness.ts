/**
 * Harness of the chaos suite: runs the real CLI (`node bin/authentik-collector.js ...`) as a child
 * process, samples its memory, and keeps the result table.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../kit/index.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'authentik-collector.js');

/** Why a scenario cannot run yet (a component it needs is missing), or undefined when it can. */
export function missing(needs: string[]): string | undefined {
  const paths: Record<string, string> = {
    cli: 'bin/authentik-collector.js',
    'cli-main': 'runtime/cli/main.ts',
    emulator: 'test/emulator/index.ts',
    authentik: 'receivers/authentik/factory.ts',
    authentik_ecs: 'processors/authentik_ecs/factory.ts',
    elasticsearch: 'exporters/elasticsearch/factory.ts',
    otlphttp: 'exporters/otlphttp/factory.ts',
    file_exporter: 'exporters/file/factory.ts',
    file_receiver: 'receivers/file/factory.ts',
    file_storage: 'runtime/extensions/file_storage/factory.ts',
    memory_limiter: 'processors/memory_limiter/factory.ts',
    batch: 'processors/batch/factory.ts',
  };
  const absent = needs.filter((n) => !existsSync(join(ROOT, paths[n] ?? n)));
  return absent.length ? `not available yet: ${absent.map((n) => paths[n] ?? n).join(', ')}` : undefined;
}

export async function tempDir(prefix = 'chaos-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const base = join(ROOT, 'test', '.tmp');
  const dir = await mkdtemp(join(existsSync(base) ? base : tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeConfig(dir: string, name: string, yaml: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return path;
}

export { freePort };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Reads VmRSS of a process in KiB (Linux), or undefined. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Total size of the files under `dir` (bytes). */
export function dirBytes(dir: string): number {
  let n = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e);
    try {
      const s = statSync(p);
      n += s.isDirectory() ? dirBytes(p) : s.size;
    } catch {
      // removed meanwhile
    }
  }
  return n;
}

const MAX_OUTPUT = 64 * 1024 * 1024;

/** The collector as a child process. */
export class Collector {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  peakRssKiB = 0;
  readonly startedAt = Date.now();
  readonly exited: Promise<Exit>;
  #sampler: NodeJS.Timeout;
  #exit: Exit | undefined;

  constructor(
    args: string[],
    opts: { env?: Record<string, string>; cwd?: string; nodeArgs?: string[] } = {},
  ) {
    this.child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => {
      if (this.stdout.length < MAX_OUTPUT) this.stdout += d;
    });
    this.child.stderr!.on('data', (d: string) => {
      if (this.stderr.length < MAX_OUTPUT) this.stderr += d;
    });
    this.#sampler = setInterval(() => this.#sample(), 100);
    this.exited = new Promise<Exit>((resolve) => {
      this.child.on('exit', (code, signal) => {
        clearInterval(this.#sampler);
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  #sample(): void {
    if (this.child.pid === undefined) return;
    const kb = rssKiB(this.child.pid);
    if (kb !== undefined && kb > this.peakRssKiB) this.peakRssKiB = kb;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Current RSS in MiB (0 when the process is gone). */
  rssMiB(): number {
    return Math.round((rssKiB(this.pid) ?? 0) / 102.4) / 10;
  }

  get peakRssMiB(): number {
    return Math.round(this.peakRssKiB / 102.4) / 10;
  }

  /** Both streams, for assertions. */
  get output(): string {
    return `${this.stdout}\n${this.stderr}`;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Waits for exit; kills with SIGKILL after `ms` and throws. */
  async wait(ms: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill('SIGKILL');
        reject(new Error(`collector did not exit within ${ms} ms; stderr tail:\n${tail(this.stderr)}`));
      }, ms);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Last lines of the output, for failure messages. */
  tail(lines = 30): string {
    return tail(this.stderr + this.stdout, lines);
  }
}

export function tail(s: string, lines = 30): string {
  return s.split('\n').slice(-lines).join('\n');
}

/** Runs the CLI to completion (for validate / broken configs). */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Exit & { stdout: string; stderr: string; ms: number }> {
  const c = new Collector(args, opts);
  const exit = await c.wait(opts.timeoutMs ?? 60_000);
  // Let the pipes drain.
  await new Promise((r) => setImmediate(r));
  return { ...exit, stdout: c.stdout, stderr: c.stderr, ms: Date.now() - c.startedAt };
}

/** Polls `cond` until true; throws with `what` after `timeoutMs`. Aborts early if `alive()` turns false. */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  opts: { every?: number; alive?: () => boolean; onTimeout?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (opts.alive && !opts.alive())
      throw new Error(`${what}: the collector exited early. ${opts.onTimeout?.() ?? ''}`);
    if (Date.now() > deadline)
      throw new Error(`${what}: not reached within ${timeoutMs} ms. ${opts.onTimeout?.() ?? ''}`);
    await new Promise((r) => setTimeout(r, opts.every ?? 100));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Lines of an NDJSON file (missing file = none). */
export function readNdjson(path: string): unknown[] {
  if (!existsSync(path)) return [];
  const out: unknown[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      out.push({ unparsable: line });
    }
  }
  return out;
}

/** One row of the chaos table. */
export interface ResultRow {
  scenario: string;
  expected: number | string;
  delivered: number | string;
  duplicates: number | string;
  lost: number | string;
  peakRssMiB: number | string;
  note?: string;
}

export const results: ResultRow[] = [];

export function record(row: ResultRow): void {
  results.push(row);
}

/** The table printed at the end of the suite. */
export function formatTable(rows: ResultRow[]): string {
  const head = ['scenario', 'events expected', 'delivered', 'duplicates', 'lost', 'peak RSS (MiB)', 'note'];
  const body = rows.map((r) => [
    r.scenario,
    String(r.expected),
    String(r.delivered),
    String(r.duplicates),
    String(r.lost),
    String(r.peakRssMiB),
    r.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}
