// V8 flags the collector runs with, applied by re-executing the process (same PID, same stdio,
// signals and exit code unchanged), because V8 reads them only at start.
//
// Node sizes V8's young generation from the machine's memory (tens of MB per semi-space on a large
// host), which inflates the collector's RSS far beyond its live heap during a backfill. A small
// semi-space keeps RSS near the live heap at no measurable throughput cost (bench/README.md, "Where
// goals are not met"). Skipped when the user set the flag already, on platforms without
// process.execve (Node < 23.11, Windows), or with AUTHENTIK_COLLECTOR_NO_REEXEC=1.
import process from 'node:process';

const SEMI_SPACE_FLAG = '--max-semi-space-size';

/** Re-executes the current script with the collector's V8 flags unless they are already in effect. */
export function reexecWithRuntimeFlags() {
  if (
    typeof process.execve !== 'function' ||
    process.platform === 'win32' ||
    process.env.AUTHENTIK_COLLECTOR_NO_REEXEC === '1' ||
    process.execArgv.some((a) => a.startsWith(SEMI_SPACE_FLAG)) ||
    (process.env.NODE_OPTIONS ?? '').includes(SEMI_SPACE_FLAG)
  ) {
    return;
  }
  process.execve(
    process.execPath,
    [
      process.execPath,
      `${SEMI_SPACE_FLAG}=2`,
      ...process.execArgv,
      process.argv[1],
      ...process.argv.slice(2),
    ],
    { ...process.env, AUTHENTIK_COLLECTOR_NO_REEXEC: '1' },
  );
}
