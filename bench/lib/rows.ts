/**
 * The result row every benchmark returns (the shape of `bench/results.json`), and helpers to build one.
 */

/** One figure. `baseline`/`ratio` compare it with a baseline measured in the same run; `met` is the goal check. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
  goal: number | null;
  met: boolean | null;
}

/** How a row's goal reads (for the printed table and the README); the JSON keeps only the number. */
export interface GoalText {
  /** e.g. `ratio >= 300`, `value < 15`. */
  text: string;
  /** What the baseline is, in a few words. */
  baseline?: string;
}

/** Rounds to `digits` significant-ish decimals: integers stay integers, small values keep precision. */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const a = Math.abs(x);
  if (a >= 100) return Math.round(x);
  if (a >= 10) return Math.round(x * 10) / 10;
  if (a >= 1) return Math.round(x * 100) / 100;
  if (a === 0) return 0;
  const p = Math.pow(10, digits - Math.floor(Math.log10(a)) - 1);
  return Math.round(x * p) / p;
}

export function row(
  name: string,
  value: number,
  unit: string,
  extra: { baseline?: number | null; ratio?: number | null; goal?: number | null; met?: boolean | null } = {},
): BenchRow {
  return {
    name,
    value: round(value),
    unit,
    baseline: extra.baseline === undefined || extra.baseline === null ? null : round(extra.baseline),
    ratio: extra.ratio === undefined || extra.ratio === null ? null : round(extra.ratio),
    goal: extra.goal ?? null,
    met: extra.met ?? null,
  };
}

/** Options every benchmark module of this suite accepts. */
export interface SuiteOptions {
  quick?: boolean;
  log?: (line: string) => void;
}

/** A benchmark part that cannot run here (a component or peer is missing): reported, not a failure. */
export class SkipError extends Error {
  override name = 'SkipError';
}
