/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`, e.g. `node bench/run.ts --cpu-prof`, which writes bench/out/profiles/): self time
 * per function and per file, largest first.
 *
 *   node bench/lib/profile-summary.ts bench/out/profiles/CPU.<...>.cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './collector.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byFunction: { name: string; ms: number; share: number }[];
  byFile: { file: string; ms: number; share: number }[];
}

function where(url: string): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  return path.startsWith('/') ? relative(ROOT, path) : path;
}

export function summarize(p: Profile): ProfileSummary {
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i]!;
    // The delta before sample i+1 is the time attributed to sample i.
    const dt = (deltas[i + 1] ?? 0) / 1000;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  let total = 0;
  let idle = 0;
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  for (const n of p.nodes) {
    const ms = self.get(n.id) ?? 0;
    if (ms === 0) continue;
    total += ms;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    const file = where(n.callFrame.url);
    const key = `${name} ${file}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + ms);
    files.set(file, (files.get(file) ?? 0) + ms);
  }
  const busy = total - idle; // (idle) is not in the lists
  const sorted = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, ms]) => ({ k, ms, share: busy > 0 ? ms / busy : 0 }));
  return {
    totalMs: total,
    idleMs: idle,
    byFunction: sorted(fns).map((x) => ({ name: x.k, ms: x.ms, share: x.share })),
    byFile: sorted(files).map((x) => ({ file: x.k, ms: x.ms, share: x.share })),
  };
}

if (import.meta.main) {
  const [file, topArg] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/lib/profile-summary.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const top = Number(topArg ?? 25);
  const s = summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile);
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)} %`;
  console.log(
    `main thread: sampled ${(s.totalMs / 1000).toFixed(1)} s, idle ${(s.idleMs / 1000).toFixed(1)} s, busy ${((s.totalMs - s.idleMs) / 1000).toFixed(1)} s (shares below are of busy time)`,
  );
  console.log('\nby file:');
  for (const f of s.byFile.slice(0, top))
    console.log(`${pct(f.share)}  ${(f.ms / 1000).toFixed(2).padStart(7)} s  ${f.file}`);
  console.log('\nby function:');
  for (const f of s.byFunction.slice(0, top))
    console.log(`${pct(f.share)}  ${(f.ms / 1000).toFixed(2).padStart(7)} s  ${f.name}`);
}
