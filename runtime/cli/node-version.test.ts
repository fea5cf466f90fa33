/**
 * The Node.js version trap: every entry point (the bin shim, the npm scripts) refuses an old Node.js
 * with one clear line, and `engines` / `.npmrc` make `npm ci` refuse it too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
// @ts-expect-error -- plain JavaScript module without type declarations
import { MIN_NODE, nodeMessage, nodeSupported } from '../../bin/node-check.js';

const ROOT = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  scripts: Record<string, string>;
};
const isSupported = nodeSupported as (v: string) => boolean;

/** The lowest version a `>=X` / `^X || >=Y` engines range admits at or above 22 (enough for our deps). */
function floorAt22(range: string): string | undefined {
  for (const alt of range.split('||').map((s) => s.trim())) {
    const m = /^(?:>=\s*|\^)?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(alt.replace(/^>=\s+/, '>='));
    if (!m) continue;
    const [maj, min, pat] = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
    if (alt.startsWith('^') && maj !== 22) continue;
    if (maj <= 22) return `${maj}.${min}.${pat}`;
  }
  return undefined;
}

describe('Node.js version check', () => {
  test('versions are compared numerically', () => {
    assert.equal(MIN_NODE, '22.19.0');
    assert.equal(isSupported('22.19.0'), true);
    assert.equal(isSupported('v24.1.0'), true);
    assert.equal(isSupported('22.18.9'), false);
    assert.equal(isSupported('20.20.2'), false);
    assert.equal(isSupported('22.100.0'), true);
    const msg = (nodeMessage as (v: string) => string)('20.1.0');
    assert.match(msg, /needs Node\.js >= 22\.19\.0 \(found 20\.1\.0\)\. Install Node\.js 24/);
    assert.equal(msg.trim().split('\n').length, 1);
  });

  test('engines match the dependencies; engine-strict makes npm ci refuse an old Node.js', () => {
    assert.equal(pkg.engines.node, `>=${MIN_NODE}`);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { engines?: { node?: string }; dev?: boolean }>;
    };
    assert.equal(lock.packages['']?.engines?.node, `>=${MIN_NODE}`);
    for (const [name, p] of Object.entries(lock.packages)) {
      const range = p.engines?.node;
      if (!name || !range) continue;
      const floor = floorAt22(range);
      if (floor) assert.ok(compare(MIN_NODE, floor) >= 0, `${name} needs ${range}`);
    }
    assert.match(readFileSync(join(ROOT, '.npmrc'), 'utf8'), /^engine-strict=true$/m);
  });

  test('every npm script that runs node goes through the check', () => {
    for (const [name, cmd] of Object.entries(pkg.scripts)) {
      if (/\bnode\b|\btsc\b|run-all\.sh/.test(cmd)) {
        assert.ok(cmd.startsWith('node bin/node-check.js && '), `script "${name}" skips the check: ${cmd}`);
      }
    }
  });

  // The machine's own Node.js, when it is older (CI images and dev machines often have one).
  const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
    if (!existsSync(p)) return false;
    const v = spawnSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    return v !== '' && !isSupported(v);
  });
  test(
    'an old Node.js gets one clear line and exit 1 from the command and the npm scripts',
    {
      skip: old ? false : 'no Node.js older than 22.19 on this machine (/usr/bin/node, /usr/local/bin/node)',
    },
    () => {
      for (const args of [
        [join(ROOT, 'bin/authentik-collector.js'), '--version'],
        [join(ROOT, 'bin/node-check.js')],
      ]) {
        const r = spawnSync(old!, args, { encoding: 'utf8', cwd: ROOT });
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stdout, '');
        assert.match(
          r.stderr,
          /^authentik-collector needs Node\.js >= 22\.19\.0 \(found \d+\.\d+\.\d+\)\. .*\n$/,
        );
        assert.doesNotMatch(r.stderr, /\n./);
      }
    },
  );
});

function compare(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}
