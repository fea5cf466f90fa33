import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { missingShared, repoRoot, sharedDir } from './shared.ts';

describe('shared test data (bare clones skip, CI fails)', () => {
  const empty = mkdtempSync(join(tmpdir(), 'ac-shared-'));
  after(() => rmSync(empty, { recursive: true, force: true }));

  test('AC_SHARED_DIR overrides ../shared', () => {
    assert.equal(sharedDir({ AC_SHARED_DIR: empty }), empty);
    assert.equal(sharedDir({}), join(repoRoot, '..', 'shared'));
  });

  test('the reason is one line naming the missing file and how to provide it', () => {
    const reason = missingShared(['geoip/GeoLite2-City-Test.mmdb'], { AC_SHARED_DIR: empty });
    assert.ok(reason);
    assert.doesNotMatch(reason, /\n/);
    assert.match(reason, /geoip\/GeoLite2-City-Test\.mmdb/);
    assert.match(reason, /AC_SHARED_DIR/);
    assert.equal(missingShared([], { AC_SHARED_DIR: empty }), undefined);
  });

  const script = join(repoRoot, 'test/kit/shared.ts');
  const probe = `import { needShared } from ${JSON.stringify(script)}; console.log(JSON.stringify(needShared('geoip')));`;
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', probe], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });

  test('a bare clone skips with the reason; CI=true does not skip (the test then fails)', () => {
    const bare = run({ AC_SHARED_DIR: empty, CI: '' });
    assert.match(JSON.parse(bare.stdout) as string, /needs .*geoip.*AC_SHARED_DIR/);
    const ci = run({ AC_SHARED_DIR: empty, CI: 'true' });
    assert.equal(JSON.parse(ci.stdout), false);
  });

  test('`node test/kit/shared.ts --check` (run by .ci/run in CI) exits 1 when data is missing', () => {
    const r = spawnSync(process.execPath, [script, '--check'], {
      env: { ...process.env, AC_SHARED_DIR: empty },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /tests would be skipped: needs .*fixtures\/elastic-authentik/);
  });
});
