import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPlugins } from './load.ts';
import { checkFactory, ComponentRegistry } from './registry.ts';

const factorySource = (type: string, kind = 'exporter') => `
export const factory = {
  kind: '${kind}',
  type: '${type}',
  description: 'plugin ${type}',
  configSchema: { safeParse: (v) => ({ success: true, data: v }) },
  createDefaultConfig: () => ({}),
  create: () => ({ capabilities: { mutatesData: false }, start: async () => {}, shutdown: async () => {}, consume: async () => {} }),
};
`;

describe('plugins', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'plugins-'));
    writeFileSync(join(dir, 'one.js'), factorySource('one'));
    writeFileSync(
      join(dir, 'many.mjs'),
      `import { factory as a } from './one.js';
export const factories = [{ ...a, type: 'two' }, { ...a, kind: 'receiver', type: 'two' }];`,
    );
    writeFileSync(join(dir, 'empty.js'), 'export const nothing = 1;\n');
    writeFileSync(join(dir, 'clash.js'), factorySource('file'));
    writeFileSync(
      join(dir, 'getter.js'),
      "export default { get factory() { throw new Error('lazy init failed'); } };\n",
    );
    // An ESM-only package (no "require" condition) in the config folder's node_modules.
    const pkg = join(dir, 'node_modules', '@acme', 'collector-plugin');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({
        name: '@acme/collector-plugin',
        type: 'module',
        exports: { '.': { import: './dist/index.js' } },
      }),
    );
    mkdirSync(join(pkg, 'dist'));
    writeFileSync(join(pkg, 'dist', 'index.js'), factorySource('acme'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const req = (spec: string, i = 0) => ({
    spec,
    baseDir: dir,
    path: `plugins[${i}]`,
    location: `c.yaml:${i + 2}:5`,
  });

  test('loads factories from relative paths and ESM-only packages', async () => {
    const registry = new ComponentRegistry();
    const r = await loadPlugins(
      [req('./one.js', 0), req('./many.mjs', 1), req('@acme/collector-plugin', 2)],
      registry,
    );
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      r.plugins.map((p) => [p.spec, p.factories.map((f) => `${f.kind}:${f.type}`)]),
      [
        ['./one.js', ['exporter:one']],
        ['./many.mjs', ['exporter:two', 'receiver:two']],
        ['@acme/collector-plugin', ['exporter:acme']],
      ],
    );
    assert.equal(registry.get('exporter', 'acme')?.description, 'plugin acme');
    assert.deepEqual(registry.entry('receiver', 'two')?.source.kind, 'plugin');
  });

  test('every failure is a problem naming the plugin and where it is listed', async () => {
    const registry = new ComponentRegistry();
    registry.addAvailable('exporter', 'file'); // a built-in that exists but was not imported
    const r = await loadPlugins(
      [
        req('./missing.js', 0),
        req('./empty.js', 1),
        req('./clash.js', 2),
        req('no-such-package-r1', 3),
        req(join(import.meta.dirname, '..', 'cli', 'testdata', 'malformed-plugin.js'), 4),
        req('./getter.js', 5),
      ],
      registry,
    );
    const byPath = Object.fromEntries(r.problems.map((p) => [p.path, p]));
    assert.match(byPath['plugins[0]']!.message, /^plugin "\.\/missing\.js": module not found at /);
    assert.equal(byPath['plugins[0]']!.location, 'c.yaml:2:5');
    assert.match(byPath['plugins[1]']!.message, /exports neither "factories" \(an array\) nor "factory"/);
    assert.match(
      byPath['plugins[2]']!.message,
      /exporter type "file" is already provided by a built-in component/,
    );
    assert.match(
      byPath['plugins[3]']!.message,
      /plugin "no-such-package-r1": import failed: Cannot find package/,
    );
    assert.match(
      byPath['plugins[4]']!.message,
      /factory type must be a lower_snake_case string; create must be a function$/,
    );
    assert.match(byPath['plugins[5]']!.message, /reading its factories failed: lazy init failed/);
    assert.equal(r.problems.length, 6);
    assert.deepEqual(registry.all(), [], 'nothing half-registered');
  });

  test('checkFactory explains what is wrong', () => {
    assert.deepEqual(checkFactory(null), ['is not an object']);
    assert.deepEqual(
      checkFactory({
        kind: 'exporter',
        type: 'Bad-Type',
        description: 'x',
        configSchema: {},
        createDefaultConfig: () => ({}),
      }),
      [
        'type must be a lower_snake_case string',
        'configSchema must be a zod schema',
        'create must be a function',
      ],
    );
    assert.deepEqual(
      checkFactory(
        {
          kind: 'receiver',
          type: 'x',
          description: 'x',
          configSchema: { safeParse: () => ({}) },
          createDefaultConfig: () => {
            throw new Error('boom');
          },
          create: () => ({}),
        },
        { kind: 'exporter', type: 'y' },
      ),
      ['kind is "receiver" but the folder holds exporters', 'type is "x" but the folder is named "y"'],
    );
  });
});
