/**
 * The V8 flags the CLI re-executes itself with (bin/node-flags.js): added only where the user did not
 * choose a value, and really in effect in the running collector.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
// @ts-expect-error -- plain JavaScript module without type declarations
import { missingRuntimeFlags, RUNTIME_FLAGS } from '../../bin/node-flags.js';

const ROOT = join(import.meta.dirname, '..', '..');
const missing = missingRuntimeFlags as (execArgv: string[], nodeOptions: string | undefined) => string[];
const flags = RUNTIME_FLAGS as string[];

test('every runtime flag is added when none is given', () => {
  assert.deepEqual(missing([], undefined), flags);
  assert.ok(flags.includes('--max-semi-space-size=2'));
  assert.ok(flags.includes('--heap-growing-percent=200'));
});

test("a flag the user set (argv or NODE_OPTIONS, '-' or '_') is left alone", () => {
  assert.deepEqual(missing(['--max-semi-space-size=8'], undefined), ['--heap-growing-percent=200']);
  assert.deepEqual(missing([], '--heap_growing_percent=50 --max-old-space-size=512'), [
    '--max-semi-space-size=2',
  ]);
  assert.deepEqual(missing(['--max_semi_space_size=4', '--heap-growing-percent=100'], ''), []);
});

test('the running CLI has the flags in effect (re-executed once, same PID)', (t) => {
  if (typeof (process as { execve?: unknown }).execve !== 'function') {
    t.skip('process.execve needs Node.js >= 23.11: the CLI runs without re-executing');
    return;
  }
  // --import runs in the re-executed process too (execArgv is kept): print what it runs with.
  const probe = 'data:text/javascript,console.error("ARGV "+JSON.stringify(process.execArgv))';
  const r = spawnSync(
    process.execPath,
    ['--import', probe, join(ROOT, 'bin', 'authentik-collector.js'), '--version'],
    {
      encoding: 'utf8',
      env: { ...process.env, AUTHENTIK_COLLECTOR_NO_REEXEC: '', NODE_OPTIONS: '' },
      timeout: 60_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('ARGV '));
  assert.equal(lines.length, 2, `expected the probe before and after the re-exec: ${r.stderr}`);
  const last = JSON.parse(lines[1]!.slice(5)) as string[];
  for (const f of flags) assert.ok(last.includes(f), `${f} missing from ${JSON.stringify(last)}`);
});
