/**
 * Shared helpers of the end-to-end CLI tests: they run the real command (`node bin/authentik-collector.js
 * ...`) as a child process in a temporary directory, exactly as an external checker would, and read
 * what it wrote.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../kit/index.ts';
import { sharedDir } from '../kit/shared.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'authentik-collector.js');
export const SHARED = sharedDir();
export const FIXTURES = join(SHARED, 'fixtures', 'elastic-authentik');
export const GEOIP = join(SHARED, 'geoip');

/** A stack trace line as Node prints it. */
export const STACK_LINE = /^\s+at\s/m;

/** A fresh temporary directory removed by `cleanup` (kept when AC_KEEP_TMP=1, for debugging). */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `ac-it-${prefix}-`));
  return {
    dir,
    cleanup: async () => {
      if (process.env['AC_KEEP_TMP'] === '1') {
        console.log(`kept ${dir}`);
        return;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function writeText(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

export { freePort };

/** `service.telemetry` lines with free ports, so concurrent runs never fight over 8888/13133. */
export async function telemetryYaml(
  indent = '  ',
): Promise<{ yaml: string; metricsUrl: string; healthUrl: string }> {
  const m = await freePort();
  const h = await freePort();
  return {
    yaml:
      `${indent}telemetry:\n` +
      `${indent}  metrics: { address: "127.0.0.1:${m}" }\n` +
      `${indent}  health: { address: "127.0.0.1:${h}" }\n`,
    metricsUrl: `http://127.0.0.1:${m}/metrics`,
    healthUrl: `http://127.0.0.1:${h}/`,
  };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
  /** wall time of the run and when it started (epoch ms) */
  ms: number;
  startedAt: number;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
}

function childEnv(extra: Record<string, string | undefined> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: '1', ...extra })) {
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** The collector CLI as a running child process. */
export class Cli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly startedAt = Date.now();
  readonly exited: Promise<Exit>;
  #exit: Exit | undefined;

  constructor(args: string[], opts: CliOptions) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: childEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stderr!.setEncoding('utf8');
    this.child.stdout!.on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.on('data', (d: string) => (this.stderr += d));
    const closed = new Promise<Exit>((res) => {
      // 'close' fires after the exit AND after stdio ended, so stdout/stderr are complete.
      this.child.on('close', (code, signal) => {
        this.#exit = { code, signal };
        res(this.#exit);
      });
      this.child.on('error', (err) => {
        this.stderr += `\n[spawn error] ${err.message}`;
        this.#exit = { code: -1, signal: null };
        res(this.#exit);
      });
    });
    this.exited = closed;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Waits for the exit; kills the process (SIGKILL) and throws when it takes longer than `ms`. */
  async wait(ms: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`collector did not exit within ${ms} ms; stderr tail:\n${tail(this.stderr)}`);
    }
    return r;
  }

  /** SIGTERM and wait for the exit (SIGKILL after `ms`). */
  async stop(ms = 30_000): Promise<Exit> {
    this.signal('SIGTERM');
    return this.wait(ms);
  }

  /** Kills the process if it still runs (test cleanup). */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Waits until stderr matches `re` (or throws with the stderr tail). */
  async waitForStderr(re: RegExp, ms: number): Promise<void> {
    await waitUntil(
      () => re.test(this.stderr) || !this.running,
      ms,
      `stderr to match ${re}`,
      () => tail(this.stderr),
    );
    if (!re.test(this.stderr)) {
      throw new Error(`collector exited before stderr matched ${re}; stderr tail:\n${tail(this.stderr)}`);
    }
  }

  /** Parsed JSON log lines (with --log-format json). */
  logLines(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by the process exit
      }
    }
    return out;
  }
}

/** Runs the CLI to completion. Kills it and throws after `timeoutMs`. */
export async function runCli(args: string[], opts: CliOptions & { timeoutMs?: number }): Promise<RunResult> {
  const cli = new Cli(args, opts);
  const exit = await cli.wait(opts.timeoutMs ?? 60_000);
  return {
    ...exit,
    stdout: cli.stdout,
    stderr: cli.stderr,
    ms: Date.now() - cli.startedAt,
    startedAt: cli.startedAt,
  };
}

export function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Polls `cond` until true; throws with `what` (and `detail()`) after `ms`. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
  detail?: () => string,
  everyMs = 100,
): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    }
    await sleep(everyMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Complete lines of a file (a line still being written, without its newline, is left out). */
export async function completeLines(path: string): Promise<string[]> {
  if (!existsSync(path)) return [];
  const text = await readFile(path, 'utf8');
  const end = text.lastIndexOf('\n');
  if (end < 0) return [];
  return text.slice(0, end).split('\n');
}

/** Parsed JSON values of the complete lines of an NDJSON file. */
export async function readNdjson(path: string): Promise<unknown[]> {
  return (await completeLines(path)).filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
}

/**
 * Incremental reader of an NDJSON file another process appends to: `poll()` parses only what was
 * appended since the previous call (complete lines), so watching a large output stays cheap.
 */
export class NdjsonTail {
  readonly path: string;
  #offset = 0;
  #partial = Buffer.alloc(0);
  constructor(path: string) {
    this.path = path;
  }
  /** Bytes consumed so far (complete lines). */
  get offset(): number {
    return this.#offset;
  }
  /** Raw complete lines appended since the last call. */
  async pollLines(): Promise<string[]> {
    if (!existsSync(this.path)) return [];
    const fh = await open(this.path, 'r');
    try {
      const size = (await fh.stat()).size;
      const from = this.#offset + this.#partial.length;
      if (size < from) throw new Error(`${this.path} shrank (${size} < ${from})`);
      if (size === from) return [];
      const buf = Buffer.alloc(size - from);
      const { bytesRead } = await fh.read(buf, 0, buf.length, from);
      const data = Buffer.concat([this.#partial, buf.subarray(0, bytesRead)]);
      const end = data.lastIndexOf(0x0a);
      if (end < 0) {
        this.#partial = data;
        return [];
      }
      this.#partial = Buffer.from(data.subarray(end + 1));
      this.#offset += end + 1;
      return data.subarray(0, end).toString('utf8').split('\n');
    } finally {
      await fh.close();
    }
  }
  /** Parsed values of the complete lines appended since the last call (blank lines skipped). */
  async poll(): Promise<unknown[]> {
    return (await this.pollLines()).filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown);
  }
}

/** Value of a file_storage entry (the 12-byte frame header stripped), or undefined when absent. */
export function readStorageValue(stateDir: string, key: string): string | undefined {
  const file = `v_${Buffer.from(key, 'utf8').toString('base64url')}`;
  if (!existsSync(stateDir)) return undefined;
  for (const d of readdirSync(stateDir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const p = join(stateDir, d.name, file);
    if (existsSync(p)) return readFileSync(p).subarray(12).toString('utf8');
  }
  return undefined;
}

/** Sum of the samples of a Prometheus metric (all label sets, or those matching `labels`). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const lbl = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** Fetches the collector's Prometheus text, or '' when it does not answer. */
export async function scrape(url: string): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return await res.text();
  } catch {
    return '';
  }
}

/** Counts of each value (for exactly-once assertions); returns the values seen more than once. */
export function duplicates(values: Iterable<string>): Map<string, number> {
  const seen = new Map<string, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  const dups = new Map<string, number>();
  for (const [k, n] of seen) if (n > 1) dups.set(k, n);
  return dups;
}

/** YAML double-quoted scalar for a path or any string. */
export function q(s: string): string {
  return JSON.stringify(s);
}
