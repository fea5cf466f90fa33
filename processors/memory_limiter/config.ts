/**
 * Configuration of the `memory_limiter` processor (OpenTelemetry Collector semantics).
 *
 * The hard limit is `limit_mib` MiB or `limit_percentage` % of the memory available to the process
 * (the cgroup limit when there is one, else total memory). The soft limit is hard − spike, where the
 * spike is `spike_limit_mib` / `spike_limit_percentage` (default 20 % of the hard limit). Memory is the
 * process RSS. Independently, the V8 heap is kept under `heap_limit_percentage` % of the heap limit
 * (`--max-old-space-size`), since Node aborts when that is exceeded whatever the RSS.
 */
import * as z from 'zod';
import { duration } from '../../runtime/config/types.ts';
import { documentOptions } from '../../runtime/config/docs.ts';

export const configSchema = z
  .strictObject({
    /** How often memory is measured. */
    check_interval: duration({ min: 1 }).default(1000),
    /** Hard limit on RSS, in MiB. */
    limit_mib: z.number({ error: 'expected a number of MiB' }).int().positive().optional(),
    /** Headroom below the hard limit where the soft limit sits, in MiB (default 20 % of limit_mib). */
    spike_limit_mib: z.number({ error: 'expected a number of MiB' }).int().nonnegative().optional(),
    /** Hard limit as a percentage of the memory available to the process. */
    limit_percentage: z.number({ error: 'expected a percentage' }).int().min(1).max(100).optional(),
    /** Spike headroom as a percentage of the available memory (default 20 % of the hard limit). */
    spike_limit_percentage: z.number({ error: 'expected a percentage' }).int().min(0).max(100).optional(),
    /** Refuse data when the V8 heap in use passes this percentage of its limit (0 disables the check). */
    heap_limit_percentage: z.number({ error: 'expected a percentage' }).int().min(0).max(100).default(90),
    /** Minimum time between forced garbage collections while above the soft limit. */
    min_gc_interval_when_soft_limited: duration().default(10_000),
    /** Minimum time between forced garbage collections while above the hard limit. */
    min_gc_interval_when_hard_limited: duration().default(0),
  })
  .superRefine((v, ctx) => {
    const mib = v.limit_mib !== undefined;
    const pct = v.limit_percentage !== undefined;
    if (mib && pct) {
      ctx.addIssue({
        code: 'custom',
        path: ['limit_percentage'],
        message: 'set either limit_mib or limit_percentage, not both',
      });
    }
    if (!mib && !pct) {
      ctx.addIssue({
        code: 'custom',
        path: ['limit_mib'],
        message: 'set limit_mib (MiB) or limit_percentage (of available memory)',
      });
    }
    if (v.spike_limit_mib !== undefined && !mib) {
      ctx.addIssue({
        code: 'custom',
        path: ['spike_limit_mib'],
        message: 'spike_limit_mib goes with limit_mib (use spike_limit_percentage with limit_percentage)',
      });
    }
    if (v.spike_limit_percentage !== undefined && !pct) {
      ctx.addIssue({
        code: 'custom',
        path: ['spike_limit_percentage'],
        message: 'spike_limit_percentage goes with limit_percentage (use spike_limit_mib with limit_mib)',
      });
    }
    if (mib && v.spike_limit_mib !== undefined && v.spike_limit_mib >= v.limit_mib!) {
      ctx.addIssue({
        code: 'custom',
        path: ['spike_limit_mib'],
        message: `must be below limit_mib (${v.limit_mib} MiB), got ${v.spike_limit_mib}`,
      });
    }
    if (pct && v.spike_limit_percentage !== undefined && v.spike_limit_percentage >= v.limit_percentage!) {
      ctx.addIssue({
        code: 'custom',
        path: ['spike_limit_percentage'],
        message: `must be below limit_percentage (${v.limit_percentage}), got ${v.spike_limit_percentage}`,
      });
    }
  });

export type Config = z.output<typeof configSchema>;

/**
 * The default configuration as a user would write it. There is no universally right limit, so like
 * OTel's, the processor needs one; the default below is a sane starting point (80 % of available
 * memory, soft limit 20 % lower).
 */
export function createDefaultConfig(): Record<string, unknown> {
  return { check_interval: '1s', limit_percentage: 80, spike_limit_percentage: 16 };
}

/** Limits in bytes derived from the config and the machine. */
export interface Limits {
  hardBytes: number;
  softBytes: number;
}

/** Computes RSS limits; `availableBytes` is the memory the process may use (cgroup or total). */
export function computeLimits(cfg: Config, availableBytes: number): Limits {
  const MIB = 1024 * 1024;
  if (cfg.limit_mib !== undefined) {
    const hard = cfg.limit_mib * MIB;
    const spike = cfg.spike_limit_mib !== undefined ? cfg.spike_limit_mib * MIB : Math.floor(hard / 5);
    return { hardBytes: hard, softBytes: hard - spike };
  }
  const hard = Math.floor((availableBytes * (cfg.limit_percentage ?? 80)) / 100);
  const spike =
    cfg.spike_limit_percentage !== undefined
      ? Math.floor((availableBytes * cfg.spike_limit_percentage) / 100)
      : Math.floor(hard / 5);
  return { hardBytes: hard, softBytes: hard - spike };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and processors/memory_limiter/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['check_interval'],
    type: 'duration',
    default: '`1s`',
    description: 'How often memory is measured. Also the `retryAfter` of a refusal.',
  },
  {
    names: ['limit_mib'],
    type: 'int',
    default: '—',
    description: 'Hard limit on RSS in MiB. Set this or `limit_percentage`.',
  },
  {
    names: ['spike_limit_mib'],
    type: 'int',
    default: '20 % of `limit_mib`',
    description:
      'Headroom below the hard limit; soft limit = `limit_mib − spike_limit_mib`. Must be below `limit_mib`. Only with `limit_mib`.',
  },
  {
    names: ['limit_percentage'],
    type: 'int 1–100',
    default: '—',
    description:
      'Hard limit as a percentage of the memory available to the process (cgroup limit or total memory). Set this or `limit_mib`.',
  },
  {
    names: ['spike_limit_percentage'],
    type: 'int 0–100',
    default: '20 % of the hard limit',
    description:
      'Headroom as a percentage of available memory. Must be below `limit_percentage`. Only with `limit_percentage`.',
  },
  {
    names: ['heap_limit_percentage'],
    type: 'int 0–100',
    default: '`90`',
    description:
      "Refuse data while the V8 heap in use is above this percentage of V8's heap limit. `0` disables the heap check.",
  },
  {
    names: ['min_gc_interval_when_soft_limited'],
    type: 'duration',
    default: '`10s`',
    description: 'Minimum time between forced garbage collections while above the soft limit.',
  },
  {
    names: ['min_gc_interval_when_hard_limited'],
    type: 'duration',
    default: '`0s`',
    description: 'Minimum time between forced garbage collections while above the hard limit.',
  },
]);
