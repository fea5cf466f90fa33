/**
 * Small helpers of the integration tests that read what a real search server (OpenSearch or
 * Elasticsearch) holds, and the rule for tests that need a peer: in CI (CI=true) a peer that is not there
 * fails the test; elsewhere the test is skipped with the reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, sleep } from './helpers.ts';

const run = promisify(execFile);

export const IN_CI = process.env['CI'] === 'true';

/** The first search server the peer scripts announced (OPENSEARCH_URL, else the first of ES_TEST_URLS). */
export const SINGLE_SEARCH_URL =
  process.env['OPENSEARCH_URL']?.trim() ||
  (process.env['ES_TEST_URLS'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .find((s) => s !== '');

export interface Json {
  [k: string]: unknown;
}

export class Search {
  readonly base: string;
  constructor(base: string) {
    this.base = base.replace(/\/+$/, '');
  }

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    let json: Json;
    try {
      json = text ? (JSON.parse(text) as Json) : {};
    } catch {
      json = { text };
    }
    return { status: res.status, json };
  }

  /** Whether the server answers at all. */
  async reachable(): Promise<boolean> {
    try {
      await this.call('GET', '/_cluster/health');
      return true;
    } catch {
      return false;
    }
  }

  /** Documents in `target` after a refresh; 0 while it does not exist (404) or is not ready (503). */
  async count(target: string): Promise<number> {
    await this.call('POST', `/${target}/_refresh`);
    const r = await this.call('GET', `/${target}/_count`);
    return r.status === 200 ? Number(r.json['count']) : 0;
  }

  /** `event.id` of every document in `target` (at most 10,000), after a refresh. */
  async eventIds(target: string): Promise<string[]> {
    let r = { status: 0, json: {} as Json };
    for (let attempt = 0; attempt < 20; attempt++) {
      await this.call('POST', `/${target}/_refresh`);
      r = await this.call('POST', `/${target}/_search`, {
        size: 10_000,
        _source: ['event.id'],
        query: { match_all: {} },
      });
      if (r.status !== 503) break;
      await sleep(500); // a fresh shard may answer 503 for a moment
    }
    if (r.status === 404) return [];
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const hits = (r.json['hits'] as { hits: { _source: { event?: { id?: string } } }[] }).hits;
    assert.ok(hits.length < 10_000, 'eventIds reads at most 10,000 documents');
    return hits.map((h) => String(h._source.event?.id));
  }

  /** Backing indices of a data stream (from `GET <stream>/_settings`, which both flavours have). */
  async backingIndices(stream: string): Promise<string[]> {
    const r = await this.call('GET', `/${stream}/_settings?filter_path=*.settings.index.provided_name`);
    return r.status === 200 ? Object.keys(r.json).sort() : [];
  }

  async deleteDataStreams(pattern: string): Promise<void> {
    await this.call('DELETE', `/_data_stream/${pattern}`).catch(() => undefined);
  }
}

/** Counts per value; the values seen more than once. */
export function countBy(values: Iterable<string>): { counts: Map<string, number>; dups: string[] } {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return { counts, dups: [...counts].filter(([, n]) => n > 1).map(([k]) => k) };
}

/** `opensearch-cluster.sh` with arguments; its KEY=VALUE lines (start / start-node) as an object. */
export async function clusterScript(...args: string[]): Promise<Record<string, string>> {
  const { stdout } = await run('bash', [join(ROOT, 'test', 'peers', 'opensearch-cluster.sh'), ...args], {
    timeout: 300_000,
    maxBuffer: 4 * 1024 * 1024,
  });
  return Object.fromEntries(
    stdout
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}
