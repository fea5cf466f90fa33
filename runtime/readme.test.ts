/**
 * Keeps the documentation in step with the code: the "Error codes" table lists exactly the codes of
 * `ErrorCode`, and the metrics table lists exactly the metrics the runtime registers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ErrorCode } from './errors.ts';
import { collectorMetrics, registerBuildInfo, registerProcessMetrics } from './telemetry/metrics.ts';

const HERE = import.meta.dirname;

/** First-column backticked names of the table that follows `heading`. */
function tableNames(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no "${heading}" section`);
  const rest = markdown.slice(start + heading.length + 2);
  const end = rest.search(/\n#{1,3} /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/^\| `([A-Za-z_]+)` \|/gm)].map((m) => m[1]!);
}

describe('runtime/README.md', () => {
  const readme = readFileSync(join(HERE, 'README.md'), 'utf8');

  test('the error codes table matches ErrorCode', () => {
    const documented = tableNames(readme, '## Error codes');
    assert.deepEqual([...documented].sort(), Object.values(ErrorCode).sort());
    assert.equal(new Set(documented).size, documented.length, 'no duplicates');
  });

  test('the root README, when it has an error codes table, matches too', (t) => {
    const root = join(HERE, '..', 'README.md');
    const text = existsSync(root) ? readFileSync(root, 'utf8') : '';
    const heading = /\n(#{2,3} Error codes)\n/.exec(text)?.[1];
    if (!heading) {
      t.skip('the root README has no "Error codes" section yet');
      return;
    }
    assert.deepEqual(tableNames(text, heading).sort(), Object.values(ErrorCode).sort());
  });

  test('the metrics table matches the metrics the runtime registers', async () => {
    const registry = new Registry();
    collectorMetrics(registry);
    registerProcessMetrics(registry);
    registerBuildInfo(registry, { name: 'x', version: '0' });
    const registered = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    assert.deepEqual(tableNames(readme, '### Metrics').sort(), registered);
  });
});
