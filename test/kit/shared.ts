/**
 * Where the tests find the data the project cannot ship (Elastic's pipeline-test fixtures, MaxMind's
 * test databases, authentik's OpenAPI schema and captures): `../shared` beside the repository, or the
 * directory named by `AC_SHARED_DIR`.
 *
 * A test that needs such data asks `needShared('geoip/GeoLite2-City-Test.mmdb')` for its `skip`
 * option: on a bare clone it is skipped with a one-line reason naming what is missing and how to
 * provide it. In CI (`CI=true`) nothing is skipped, so a missing file fails the run instead of
 * silently shrinking it (`.ci/run` also checks up front with `node test/kit/shared.ts --check`).
 */
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The shared-data directory: `$AC_SHARED_DIR`, else `../shared` beside the repository. */
export function sharedDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const fromEnv = env.AC_SHARED_DIR;
  return fromEnv ? resolve(fromEnv) : resolve(repoRoot, '../shared');
}

/** Absolute path of a file or folder inside the shared-data directory. */
export function sharedPath(...parts: string[]): string {
  return resolve(sharedDir(), ...parts);
}

/** What every test of the suite may need from the shared directory (checked by `--check`). */
export const SHARED_ITEMS: readonly { path: string; what: string }[] = [
  { path: 'fixtures/elastic-authentik', what: "Elastic's authentik integration pipeline tests" },
  { path: 'geoip/GeoLite2-City-Test.mmdb', what: "MaxMind's test databases" },
  { path: 'geoip/GeoLite2-ASN-Test.mmdb', what: "MaxMind's test databases" },
  { path: 'geoip/GeoLite2-Country-Test.mmdb', what: "MaxMind's test databases" },
  { path: 'authentik/schema.yml', what: "authentik's OpenAPI schema" },
  { path: 'authentik/captures', what: 'responses captured from real authentik servers' },
];

/**
 * The one-line reason why shared data is missing (`undefined` when every path exists). `paths` are
 * relative to the shared directory.
 */
export function missingShared(
  paths: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  const dir = sharedDir(env);
  const missing = paths.filter((p) => !existsSync(resolve(dir, p)));
  if (missing.length === 0) return undefined;
  const shown = env.AC_SHARED_DIR ? dir : relative(process.cwd(), dir) || dir;
  return (
    `needs ${missing.map((p) => `${shown}/${p}`).join(', ')} (test data not shipped with the project): ` +
    `put the shared data directory at ${resolve(repoRoot, '../shared')} or set AC_SHARED_DIR to it`
  );
}

/**
 * The `skip` option of a test that needs `paths` from the shared directory: `false` when present or
 * in CI (where a missing file must fail), the reason otherwise.
 */
export function needShared(...paths: string[]): string | false {
  if (process.env.CI === 'true') return false;
  return missingShared(paths) ?? false;
}

/** `node test/kit/shared.ts --check`: exit 1 with the reason when anything the suite needs is missing. */
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const reason = missingShared(SHARED_ITEMS.map((i) => i.path));
    if (reason) {
      process.stderr.write(`shared test data missing; tests would be skipped: ${reason}\n`);
      process.exitCode = 1;
    } else {
      process.stdout.write(`shared test data: ${sharedDir()}\n`);
    }
  }
}
