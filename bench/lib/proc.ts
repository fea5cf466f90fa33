/**
 * Resource use of a child process read from Linux /proc:
 * - peak RSS: `VmHWM` of /proc/<pid>/status (the kernel's high-water mark of resident memory), read
 *   periodically because the file disappears with the process; the last reading before the work ends is
 *   the peak up to then (VmHWM never decreases);
 * - CPU seconds: utime + stime of /proc/<pid>/stat (user + system time of every thread, including
 *   libuv's pool and the GC threads), in clock ticks.
 * Off Linux every reading is undefined and callers report the figure as unavailable.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;
/** Clock ticks per second (`getconf CLK_TCK`, 100 on every common Linux). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface MemReading {
  rssBytes: number;
  hwmBytes: number;
}

/** VmRSS and VmHWM of `pid`, or undefined (gone, or not Linux). */
export function readMem(pid: number): MemReading | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const rss = /VmRSS:\s+(\d+)\s+kB/.exec(text);
  const hwm = /VmHWM:\s+(\d+)\s+kB/.exec(text);
  if (!rss || !hwm) return undefined;
  return { rssBytes: Number(rss[1]) * 1024, hwmBytes: Number(hwm[1]) * 1024 };
}

/** User + system CPU seconds of `pid` so far, or undefined. */
export function readCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / clockTicks();
}

/** CPU seconds of this process (all threads). */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Samples a process every `everyMs`: keeps the highest VmHWM and the latest CPU reading, so both are
 * known after the process is gone.
 */
export class ProcSampler {
  readonly pid: number;
  peakBytes = 0;
  cpuSeconds = 0;
  samples = 0;
  #timer: NodeJS.Timeout;

  constructor(pid: number, everyMs = 100) {
    this.pid = pid;
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  /** Takes a reading now (call it right when the measured work ends). */
  sample(): void {
    const m = readMem(this.pid);
    if (m) {
      this.peakBytes = Math.max(this.peakBytes, m.hwmBytes, m.rssBytes);
      this.samples++;
    }
    const c = readCpuSeconds(this.pid);
    if (c !== undefined) this.cpuSeconds = c;
  }

  /** Whether /proc readings are available at all. */
  get available(): boolean {
    return this.samples > 0;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
