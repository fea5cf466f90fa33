/**
 * Building blocks of the chaos scenarios: the collector config they run, and how they read what
 * arrived (in the bulk sink, by pk; in the `file` exporter's output, by pk).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { Emulator } from '../emulator/index.ts';
import type { BulkSink } from './bulk-sink.ts';
import { defaultPk } from './bulk-sink.ts';
import { Collector, freePort, writeConfig } from './harness.ts';

export const TOKEN_ENV = 'CHAOS_AUTHENTIK_TOKEN';
export const API_KEY_ENV = 'CHAOS_ES_API_KEY';
export const PASSWORD_ENV = 'CHAOS_ES_PASSWORD';
export const OTLP_SECRET_ENV = 'CHAOS_OTLP_SECRET';

export interface SinkTarget {
  /** Exporter id (`elasticsearch`, `elasticsearch/basic`). */
  id: string;
  sink: BulkSink;
  /** `memory` (default) or `persistent` (file_storage) sending queue. */
  queue?: 'memory' | 'persistent';
  maxSizeMiB?: number;
  queueSize?: number;
  auth?: Record<string, unknown>;
  deadLetter?: string;
  /** Extra exporter options. */
  extra?: Record<string, unknown>;
}

export interface ScenarioConfig {
  dir: string;
  emu: Emulator;
  sinks?: SinkTarget[];
  /** Add a `file` exporter writing `<dir>/out.ndjson`. */
  file?: boolean;
  otlp?: { endpoint: string; headers?: Record<string, string>; queue?: 'memory' | 'persistent' };
  memoryLimiter?: { limit_mib: number; spike_limit_mib: number };
  events?: Record<string, unknown>;
  users?: boolean;
  groups?: boolean;
  receiver?: Record<string, unknown>;
  shutdownTimeout?: string;
  /** Collector log level (default info). */
  logLevel?: 'debug' | 'info';
  name?: string;
}

export interface BuiltConfig {
  path: string;
  outFile: string;
  stateDir: string;
  metricsPort: number;
  healthPort: number;
}

const FAST_RETRY = { initial_interval: '100ms', max_interval: '1s', max_elapsed_time: '0s' };

export async function buildConfig(o: ScenarioConfig): Promise<BuiltConfig> {
  const stateDir = join(o.dir, 'state');
  const outFile = join(o.dir, 'out.ndjson');
  const metricsPort = await freePort();
  const healthPort = await freePort();
  const exporters: Record<string, unknown> = {};
  for (const s of o.sinks ?? []) {
    const queue =
      s.queue === 'persistent'
        ? {
            storage: 'file_storage',
            max_size_mib: s.maxSizeMiB ?? 64,
            queue_size: s.queueSize ?? 1000,
            retry_on_failure: FAST_RETRY,
          }
        : { queue_size: s.queueSize ?? 10, retry_on_failure: FAST_RETRY };
    exporters[s.id] = {
      endpoints: [s.sink.url],
      auth: s.auth ?? { api_key: `\${env:${API_KEY_ENV}}` },
      compression: 'none',
      timeout: '5s',
      endpoint_cooldown: '500ms',
      retry: FAST_RETRY,
      setup: { templates: false },
      ...(s.deadLetter ? { dead_letter: { path: s.deadLetter } } : {}),
      sending_queue: queue,
      ...s.extra,
    };
  }
  if (o.file) exporters['file'] = { path: outFile };
  if (o.otlp) {
    exporters['otlphttp'] = {
      endpoint: o.otlp.endpoint,
      encoding: 'json',
      timeout: '2s',
      retry: FAST_RETRY,
      ...(o.otlp.headers ? { headers: o.otlp.headers } : {}),
      ...(o.otlp.queue === 'persistent'
        ? { sending_queue: { storage: 'file_storage', max_size_mib: 16, retry_on_failure: FAST_RETRY } }
        : {}),
    };
  }
  const processors: Record<string, unknown> = { authentik_ecs: {} };
  const chain: string[] = [];
  if (o.memoryLimiter) {
    processors['memory_limiter'] = { check_interval: '250ms', ...o.memoryLimiter };
    chain.push('memory_limiter');
  }
  chain.push('authentik_ecs');
  const config = {
    extensions: { file_storage: { directory: stateDir } },
    receivers: {
      authentik: {
        endpoint: o.emu.url,
        token: `\${env:${TOKEN_ENV}}`,
        storage: 'file_storage',
        events: { enabled: true, interval: '1s', page_size: 100, backfill: 'all', ...o.events },
        users: { enabled: o.users ?? true, interval: '1h', page_size: 100 },
        groups: { enabled: o.groups ?? true, interval: '1h', page_size: 100 },
        timeout: '2s',
        max_concurrent_requests: 4,
        api_retry: FAST_RETRY,
        retry_on_failure: { initial_interval: '200ms', max_interval: '2s', max_elapsed_time: '0s' },
        ...o.receiver,
      },
    },
    processors,
    exporters,
    service: {
      extensions: ['file_storage'],
      shutdown_timeout: o.shutdownTimeout ?? '15s',
      telemetry: {
        metrics: { address: `127.0.0.1:${metricsPort}` },
        health: { address: `127.0.0.1:${healthPort}` },
      },
      pipelines: {
        logs: { receivers: ['authentik'], processors: chain, exporters: Object.keys(exporters) },
      },
    },
  };
  const path = await writeConfig(o.dir, `${o.name ?? 'collector'}.yaml`, YAML.stringify(config));
  return { path, outFile, stateDir, metricsPort, healthPort };
}

/** Starts the collector on a config built by {@link buildConfig}. */
export function startCollector(
  cfg: BuiltConfig,
  env: Record<string, string>,
  opts: { logLevel?: 'debug' | 'info'; nodeArgs?: string[] } = {},
): Collector {
  return new Collector(
    ['run', '--config', cfg.path, '--log-format', 'json', '--log-level', opts.logLevel ?? 'info'],
    { env, ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}) },
  );
}

/** pk → number of lines in the `file` exporter's output carrying it. */
export function fileCounts(path: string): Map<string, number> {
  const counts = new Map<string, number>();
  if (!existsSync(path)) return counts;
  const text = readFileSync(path, 'utf8');
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    let pk: string | undefined;
    try {
      pk = defaultPk(JSON.parse(line));
    } catch {
      pk = 'unparsable';
    }
    if (pk !== undefined) counts.set(pk, (counts.get(pk) ?? 0) + 1);
  }
  return counts;
}

/** Summary of a `file` exporter output against the expected pks. */
export function fileSummary(
  path: string,
  expected: Set<string>,
): { distinct: number; duplicates: number; lost: number; unexpected: number } {
  const counts = fileCounts(path);
  let duplicates = 0;
  let distinct = 0;
  let unexpected = 0;
  for (const [pk, n] of counts) {
    if (!expected.has(pk)) {
      unexpected += n;
      continue;
    }
    distinct++;
    duplicates += n - 1;
  }
  return { distinct, duplicates, lost: expected.size - distinct, unexpected };
}

/** Every pk the emulator holds, as `<kind>:<pk>` (see defaultPk). */
export function expectedPks(
  emu: Emulator,
  kinds: ('event' | 'user' | 'group')[] = ['event', 'user', 'group'],
): Set<string> {
  const out = new Set<string>();
  if (kinds.includes('event')) for (const pk of emu.events.allPks()) out.add(`event:${pk}`);
  if (kinds.includes('user')) for (const u of emu.users.all()) out.add(`user:${u.pk}`);
  if (kinds.includes('group')) for (const g of emu.groups.all()) out.add(`group:${g.pk}`);
  return out;
}

/** How many of `expected` the sink holds. */
export function sinkHas(sink: BulkSink, expected: Set<string>): number {
  let n = 0;
  const kinds = new Set([...expected].map((k) => k.slice(0, k.indexOf(':'))));
  const have = new Set<string>();
  for (const k of kinds) for (const pk of sink.pksOf(k)) have.add(pk);
  for (const pk of expected) if (have.has(pk)) n++;
  return n;
}

/** A deterministic PRNG (mulberry32) for kill moments; the seed is printed so a run can be repeated. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fetches the collector's Prometheus text. */
export async function metricsText(port: number): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    return await r.text();
  } catch {
    return '';
  }
}

/** Sum of a metric's samples whose label set contains `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}
