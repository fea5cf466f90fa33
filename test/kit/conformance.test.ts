// The conformance helper must pass well-behaved components and fail each broken one on the right test.
// Fixtures run in a child `node --test`, so their failures do not fail this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

interface Result {
  name: string;
  ok: boolean;
}

function runFixture(file: string): Promise<{ code: number; results: Result[]; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--test', '--test-reporter=tap', join(import.meta.dirname, 'testdata', file)],
      // Without NODE_TEST_CONTEXT the child reports TAP instead of talking to this test runner.
      {
        timeout: 60_000,
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')),
      },
      (err, stdout, stderr) => {
        const results: Result[] = [];
        for (const m of stdout.matchAll(/^\s*(not ok|ok) \d+ - (.+?)(?: # .*)?$/gm)) {
          results.push({ ok: m[1] === 'ok', name: m[2]! });
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, results, output: stdout + stderr });
      },
    );
  });
}

function outcome(results: Result[], name: string): boolean {
  const hits = results.filter((r) => r.name === name);
  assert.ok(hits.length > 0, `no test named "${name}" in ${results.map((r) => r.name).join(' | ')}`);
  return hits.every((r) => r.ok);
}

test('well-behaved components pass every conformance test', async () => {
  const { code, results, output } = await runFixture('good.fixture.ts');
  assert.equal(code, 0, output);
  for (const name of [
    'type matches its folder and kind',
    'default config validates and agrees with createDefaultConfig()',
    'unknown keys are rejected',
    'create then shutdown without start',
    'shutdown is idempotent (sequential and concurrent calls)',
    'start, consume, shutdown',
    'nothing is emitted after shutdown',
    'a permanent downstream error is counted as dropped, not retried forever',
    'a retryable downstream error is retried until delivered',
  ]) {
    assert.equal(outcome(results, name), true, name);
  }
});

test('each broken component fails the test for the rule it breaks', async () => {
  const { code, results } = await runFixture('bad.fixture.ts');
  assert.notEqual(code, 0);
  const failed = (suite: string, name: string) => {
    // TAP lists subtests before their suite; find the named test that follows the previous suite line.
    const idx = results.findIndex((r) => r.name === suite);
    assert.ok(idx > 0, `suite ${suite} missing`);
    let start = idx - 1;
    while (start >= 0 && !/: conformance$/.test(results[start]!.name)) start--;
    const inSuite = results.slice(start + 1, idx);
    const hit = inSuite.find((r) => r.name === name);
    assert.ok(hit, `${suite} has no test "${name}"`);
    return !hit.ok;
  };
  assert.ok(failed('processor late_emitter: conformance', 'nothing is emitted after shutdown'));
  assert.ok(
    failed('exporter sloppy: conformance', 'shutdown is idempotent (sequential and concurrent calls)'),
  );
  assert.ok(
    failed('exporter sloppy: conformance', 'default config validates and agrees with createDefaultConfig()'),
  );
  assert.ok(failed('exporter sloppy: conformance', 'unknown keys are rejected'));
  assert.ok(failed('extension misplaced: conformance', 'type matches its folder and kind'));
  assert.ok(
    failed(
      'receiver swallower: conformance',
      'a permanent downstream error is counted as dropped, not retried forever',
    ),
  );
  assert.ok(
    failed('receiver swallower: conformance', 'a retryable downstream error is retried until delivered'),
  );
  // Rules a component does not break still pass.
  assert.ok(!failed('exporter sloppy: conformance', 'create then shutdown without start'));
  assert.ok(
    !failed('extension misplaced: conformance', 'shutdown is idempotent (sequential and concurrent calls)'),
  );
});
