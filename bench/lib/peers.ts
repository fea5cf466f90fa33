/**
 * The real peers of the end-to-end benchmark, through the project's scripts in test/peers:
 * - a search server (OpenSearch by default): `OPENSEARCH_URL` or the first of `ES_TEST_URLS` when set,
 *   else the instance `test/peers/opensearch.sh` already runs, else (when allowed) one it starts, which is
 *   stopped again afterwards;
 * - an OpenTelemetry Collector: `OTELCOL_OTLP_URL` when set, else (when allowed) an instance of our own
 *   from `test/peers/otelcol.sh start` with only the `debug` exporter (basic verbosity), so that the
 *   figure is the collector's OTLP intake and no output file grows; stopped afterwards.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './collector.ts';

const run = promisify(execFile);

export interface Peer {
  url: string;
  /** How it was found: env, running, started. */
  origin: string;
  stop(): Promise<void>;
}

export type PeerResult = { peer: Peer } | { skip: string };

function vars(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

const nop = () => Promise.resolve();

function short(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  const text = (err.stderr ?? err.message ?? String(e)).trim().split('\n');
  return text.slice(-3).join(' / ');
}

export async function searchServer(allowStart: boolean): Promise<PeerResult> {
  const env = process.env['OPENSEARCH_URL'] ?? process.env['ES_TEST_URLS']?.split(',')[0];
  if (env) return { peer: { url: env.trim().replace(/\/+$/, ''), origin: 'env', stop: nop } };
  const script = join(ROOT, 'test', 'peers', 'opensearch.sh');
  try {
    const { stdout } = await run('bash', [script, 'status'], { timeout: 20_000 });
    const m = /^running (\S+)/.exec(stdout.trim());
    if (m) return { peer: { url: m[1]!, origin: 'running (test/peers/opensearch.sh)', stop: nop } };
  } catch {
    // not running
  }
  if (!allowStart)
    return {
      skip: 'no search server: set OPENSEARCH_URL or ES_TEST_URLS, start test/peers/opensearch.sh, or pass --with-peers',
    };
  try {
    const { stdout } = await run('bash', [script, 'start'], { timeout: 600_000 });
    const v = vars(stdout);
    const url = v['OPENSEARCH_URL'];
    if (!url) return { skip: 'test/peers/opensearch.sh start printed no OPENSEARCH_URL' };
    return {
      peer: {
        url,
        origin: 'started (test/peers/opensearch.sh)',
        stop: async () => {
          await run('bash', [script, 'stop'], { timeout: 60_000 }).catch(() => undefined);
        },
      },
    };
  } catch (e) {
    return { skip: `could not start the search server: ${short(e)}` };
  }
}

export async function otelCollector(allowStart: boolean): Promise<PeerResult> {
  const env = process.env['OTELCOL_OTLP_URL'];
  if (env) return { peer: { url: env.replace(/\/+$/, ''), origin: 'env', stop: nop } };
  if (!allowStart) return { skip: 'no OpenTelemetry Collector: set OTELCOL_OTLP_URL or pass --with-peers' };
  const script = join(ROOT, 'test', 'peers', 'otelcol.sh');
  const env2: NodeJS.ProcessEnv = { ...process.env, OTELCOL_EXPORTERS: 'debug' };
  delete env2['OTELCOL_DIR'];
  delete env2['OTELCOL_PORT'];
  try {
    const { stdout } = await run('bash', [script, 'start'], { env: env2, timeout: 900_000 });
    const v = vars(stdout);
    const url = v['OTELCOL_OTLP_URL'];
    const dir = v['OTELCOL_DIR'];
    if (!url || !dir) return { skip: 'test/peers/otelcol.sh start printed no OTELCOL_OTLP_URL' };
    return {
      peer: {
        url,
        origin: 'started (test/peers/otelcol.sh, debug exporter only)',
        stop: async () => {
          await run('bash', [script, 'stop', dir], { timeout: 30_000 }).catch(() => undefined);
        },
      },
    };
  } catch (e) {
    return { skip: `could not start the OpenTelemetry Collector: ${short(e)}` };
  }
}
