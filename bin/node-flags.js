// V8 flags the collector runs with, applied by re-executing the process (same PID, same stdio,
// signals and exit code unchanged), because V8 reads them only at start.
//
// - `--max-semi-space-size=2`: Node sizes V8's young generation from the machine's memory (tens of MB
//   per semi-space on a large host), which inflates the collector's RSS far beyond its live heap during
//   a backfill. A small semi-space keeps RSS near the live heap.
// - `--heap-growing-percent=200`: with small semi-spaces, pages and batches in flight are promoted to
//   the old generation; V8's default growing factor then lets promoted garbage pile up to several times
//   the live heap before a full collection (1M-event backfill at N=8: 264-276 MB peak RSS). A factor of
//   3 keeps it near 215 MB for ≈ 3 % more CPU (bench/README.md, "Backfill peak RSS").
//
// Each flag is skipped when the user set it already; nothing is re-executed on platforms without
// process.execve (Node < 23.11, Windows), or with AUTHENTIK_COLLECTOR_NO_REEXEC=1.
import process from 'node:process';

/** The flags, as `--name=value`. */
export const RUNTIME_FLAGS = ['--max-semi-space-size=2', '--heap-growing-percent=200'];

/**
 * The flags of RUNTIME_FLAGS not given already in `execArgv` or `nodeOptions` (V8 accepts `-` and `_`
 * in flag names).
 */
export function missingRuntimeFlags(execArgv, nodeOptions) {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)]
    .filter((a) => a.startsWith('--'))
    .map((a) => a.split('=')[0].replace(/_/g, '-'));
  return RUNTIME_FLAGS.filter((f) => !given.includes(f.split('=')[0]));
}

/** Re-executes the current script with the collector's V8 flags unless they are already in effect. */
export function reexecWithRuntimeFlags() {
  if (
    typeof process.execve !== 'function' ||
    process.platform === 'win32' ||
    process.env.AUTHENTIK_COLLECTOR_NO_REEXEC === '1'
  ) {
    return;
  }
  const missing = missingRuntimeFlags(process.execArgv, process.env.NODE_OPTIONS);
  if (missing.length === 0) return;
  process.execve(
    process.execPath,
    [process.execPath, ...missing, ...process.execArgv, process.argv[1], ...process.argv.slice(2)],
    { ...process.env, AUTHENTIK_COLLECTOR_NO_REEXEC: '1' },
  );
}
