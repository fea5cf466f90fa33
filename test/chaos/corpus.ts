/**
 * Scenario 6: the broken-config corpus. Every `configs/*.yaml` must make `validate` and `run` exit 2
 * with one paragraph on stderr that names the offending path and line, and no stack trace.
 *
 * Each file's header says what to expect:
 *   # needs: <components>        skip while a component it uses is not available
 *   # expect-path: a.b.c         the dotted path the error must name
 *   # expect-line: N|M           the line(s) the error may name; default: the line marked `# <- here`
 *   # known-bug: <what>          a bug of a component, reported separately instead of failing the suite
 *                                (remove the line once fixed; the case then must pass)
 *
 * `run` gets a second config, overlay/no-telemetry.yaml, that turns the metrics and health endpoints
 * off, so parallel runs never compete for their default ports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missing, runCli } from './harness.ts';

export const CONFIG_DIR = join(import.meta.dirname, 'configs');
const OVERLAY = join(import.meta.dirname, 'overlay', 'no-telemetry.yaml');

export interface CorpusCase {
  file: string;
  path: string;
  description: string;
  needs: string[];
  expectPath: string | undefined;
  expectLines: number[];
  knownBug: string | undefined;
}

export function loadCorpus(): CorpusCase[] {
  return readdirSync(CONFIG_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => {
      const path = join(CONFIG_DIR, file);
      const text = readFileSync(path, 'utf8');
      const header = (key: string) => new RegExp(`^# ${key}: (.*)$`, 'm').exec(text)?.[1]?.trim();
      const marker = text.split('\n').findIndex((l) => l.includes('# <- here')) + 1;
      const lines = header('expect-line');
      return {
        file,
        path,
        description: header('chaos corpus') ?? file,
        needs: (header('needs') ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        expectPath: header('expect-path'),
        expectLines: lines ? lines.split('|').map(Number) : marker > 0 ? [marker] : [],
        knownBug: header('known-bug'),
      };
    });
}

/** What went wrong with one case (empty = it behaved). */
export async function checkCase(
  c: CorpusCase,
  command: 'validate' | 'run',
  env: Record<string, string>,
): Promise<string[]> {
  const args = [command, '--config', c.path, ...(command === 'run' ? ['--config', OVERLAY] : [])];
  const r = await runCli(args, { env, cwd: CONFIG_DIR, timeoutMs: 60_000 });
  const problems: string[] = [];
  const err = r.stderr.trim();
  const all = `${r.stdout}\n${r.stderr}`;
  if (r.code !== 2) problems.push(`exit ${r.code ?? r.signal} (want 2)`);
  if (err === '') problems.push('nothing on stderr');
  if (/^\s+at .+(:\d+:\d+\)?|\(native\)|<anonymous>)\s*$/m.test(all)) problems.push('prints a stack trace');
  if (/\n\s*\n/.test(err)) problems.push('error is more than one paragraph');
  if (c.expectPath !== undefined && !err.includes(c.expectPath))
    problems.push(`does not name the path ${c.expectPath}`);
  if (c.expectLines.length > 0) {
    const named = c.expectLines.some((n) => new RegExp(`(:${n}:\\d+|line ${n}\\b)`).test(err));
    if (!named) problems.push(`does not name line ${c.expectLines.join(' or ')}`);
  }
  if (!err.includes(c.file)) problems.push('does not name the file');
  return problems.length
    ? [
        `${c.file} (${command}): ${problems.join('; ')}\n      stderr: ${err.split('\n').slice(0, 6).join('\n              ')}`,
      ]
    : [];
}

/** Runs the corpus with a small worker pool. */
export async function runCorpus(
  concurrency = 3,
): Promise<{ ran: number; skipped: string[]; failures: string[]; knownBugs: string[]; fixed: string[] }> {
  const cases = loadCorpus();
  const env: Record<string, string> = {};
  const failures: string[] = [];
  const knownBugs: string[] = [];
  const fixed: string[] = [];
  const skipped: string[] = [];
  const runnable = cases.filter((c) => {
    const why = missing(c.needs);
    if (why) skipped.push(`${c.file}: ${why}`);
    return !why;
  });
  const queue = runnable.flatMap((c) => [
    { c, cmd: 'validate' as const },
    { c, cmd: 'run' as const },
  ]);
  const workers = Array.from({ length: concurrency }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const found = await checkCase(job.c, job.cmd, env);
      if (found.length && job.c.knownBug)
        knownBugs.push(`${job.c.file} (${job.cmd}): known bug: ${job.c.knownBug}`);
      else if (job.c.knownBug) fixed.push(`${job.c.file} (${job.cmd})`);
      else failures.push(...found);
    }
  });
  await Promise.all(workers);
  return {
    ran: runnable.length,
    skipped,
    failures: failures.sort(),
    knownBugs: knownBugs.sort(),
    fixed: fixed.sort(),
  };
}
