/**
 * The collector as the user runs it: `node bin/authentik-collector.js run --config <file>` in a child
 * process, so its memory and CPU are its own (read from /proc by {@link ProcSampler}).
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ProcSampler } from './proc.ts';
import { freePort } from '../../test/kit/index.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'authentik-collector.js');

/** Files a benchmark part needs, relative to the repository root. */
export const COMPONENT_FILES: Record<string, string> = {
  cli: 'bin/authentik-collector.js',
  'cli-main': 'runtime/cli/main.ts',
  emulator: 'test/emulator/index.ts',
  authentik: 'receivers/authentik/factory.ts',
  authentik_ecs: 'processors/authentik_ecs/factory.ts',
  elasticsearch: 'exporters/elasticsearch/factory.ts',
  otlphttp: 'exporters/otlphttp/factory.ts',
  file_storage: 'runtime/extensions/file_storage/factory.ts',
};

/** Why a part cannot run (a component it needs is not in the tree yet), or undefined. */
export function missingComponents(needs: string[]): string | undefined {
  const absent = needs.map((n) => COMPONENT_FILES[n] ?? n).filter((p) => !existsSync(join(ROOT, p)));
  return absent.length ? `not available yet: ${absent.join(', ')}` : undefined;
}

/** The compiled tree (see {@link buildCollector}), or undefined: run from the TypeScript sources. */
let compiled: string | undefined;
export const BUILD_DIR = join(ROOT, 'bench', 'out', 'dist');
const COMPILED_CLI = join(ROOT, 'bench', 'lib', 'compiled-cli.js');

/**
 * Compiles the collector (tsconfig.build.json) into bench/out/dist, which later collector processes
 * run: that is the JavaScript an installed package runs (its `prepare` script builds dist/), so memory
 * and start-up are not inflated by type stripping. Not into dist/ itself: bin/ would prefer it over the
 * sources for everyone else working in the tree. Type errors do not stop the emit. Resolves with why it
 * failed (then the sources are used), or undefined.
 */
export async function buildCollector(): Promise<string | undefined> {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await promisify(execFile)(
      process.execPath,
      [
        tsc,
        '-p',
        join(ROOT, 'tsconfig.build.json'),
        '--outDir',
        BUILD_DIR,
        '--noEmitOnError',
        'false',
        '--sourceMap',
        'false',
      ],
      { cwd: ROOT, timeout: 180_000, maxBuffer: 16 * 2 ** 20 },
    );
  } catch (e) {
    // tsc exits 2 when it found type errors but still emitted.
    if (!existsSync(join(BUILD_DIR, 'runtime', 'cli', 'main.js'))) {
      compiled = undefined;
      return `tsc failed: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
    }
  }
  compiled = BUILD_DIR;
  return undefined;
}

/** How the collector processes run: `compiled` (bench/out/dist) or `sources` (type stripping). */
export function collectorForm(): 'compiled' | 'sources' {
  return compiled ? 'compiled' : 'sources';
}

export { freePort };

export interface CollectorOptions {
  /** Extra node flags (e.g. `--cpu-prof`, `--cpu-prof-dir=...`). */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Expose the Prometheus endpoint on a free port (default false: disabled). */
  metrics?: boolean;
  /** /proc sampling period (ms). */
  sampleMs?: number;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export interface RunningCollector {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly sampler: ProcSampler;
  /** Working directory (config, state); removed by stop(). */
  readonly dir: string;
  readonly metricsUrl: string | undefined;
  /** Set once the process exited: a description for error messages. */
  exitReason(): string | undefined;
  /** Last lines of its stderr (logs). */
  logTail(n?: number): string;
  /** The retained log lines (the last 200) that match `re`. */
  grep(re: RegExp): string[];
  /** SIGTERM, wait (SIGKILL after `graceMs`), remove the directory. Returns the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Writes `config` (an object; `service.telemetry` is filled in) as YAML into a fresh directory and starts
 * the CLI on it. `config` may be a function of the directory (for `file_storage` paths).
 */
export async function startCollector(
  config: Record<string, unknown> | ((dir: string) => Record<string, unknown>),
  opts: CollectorOptions = {},
): Promise<RunningCollector> {
  const dir = await mkdtemp(join(tmpdir(), 'ac-bench-'));
  const cfg = typeof config === 'function' ? config(dir) : config;
  const metricsPort = opts.metrics ? await freePort() : undefined;
  const service = (cfg['service'] ?? {}) as Record<string, unknown>;
  service['telemetry'] = {
    metrics: { address: metricsPort === undefined ? 'none' : `127.0.0.1:${metricsPort}` },
    health: { address: 'none' },
  };
  cfg['service'] = service;
  const path = join(dir, 'collector.yaml');
  await writeFile(path, YAML.stringify(cfg));
  const prof = process.env['AC_BENCH_CPU_PROF_DIR'];
  const child = spawn(
    process.execPath,
    [
      ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
      ...(opts.nodeArgs ?? []),
      compiled ? COMPILED_CLI : BIN,
      'run',
      '--config',
      path,
      '--log-format',
      'json',
      '--log-level',
      opts.logLevel ?? 'info',
    ],
    {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', AUTHENTIK_COLLECTOR_FROM_SOURCE: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  if (child.pid === undefined) throw new Error('could not start the collector process');
  const pid = child.pid;
  const sampler = new ProcSampler(pid, opts.sampleMs ?? 100);
  const tail: string[] = [];
  let partial = '';
  const onData = (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (l === '') continue;
      tail.push(l);
      if (tail.length > 200) tail.shift();
    }
  };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  let exit: string | undefined;
  const exited = new Promise<number | null>((r) => {
    child.on('exit', (code, signal) => {
      exit = `the collector exited (code ${code}, signal ${signal}); last log lines:\n${tail.slice(-15).join('\n')}`;
      sampler.stop();
      r(code);
    });
  });
  return {
    child,
    pid,
    sampler,
    dir,
    metricsUrl: metricsPort === undefined ? undefined : `http://127.0.0.1:${metricsPort}/metrics`,
    exitReason: () => exit,
    logTail: (n = 20) => tail.slice(-n).join('\n'),
    grep: (re) => tail.filter((l) => re.test(l)),
    async stop(graceMs = 15_000) {
      sampler.stop();
      if (exit === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(t);
        await rm(dir, { recursive: true, force: true });
        return code;
      }
      await rm(dir, { recursive: true, force: true });
      return exited;
    },
  };
}

/**
 * Sum of the samples of Prometheus metric `name` whose labels include every pair in `labels`
 * (undefined when the endpoint does not answer).
 */
export async function scrapeMetric(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    text = await res.text();
  } catch {
    return undefined;
  }
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const lab = rest[0] === '{' ? rest.slice(1, rest.indexOf('}')) : '';
    if (!Object.entries(labels).every(([k, v]) => lab.includes(`${k}="${v}"`))) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) {
      sum += v;
      found = true;
    }
  }
  return found ? sum : 0;
}
