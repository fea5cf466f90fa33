import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMPONENT_DIRS, findFactoryFiles, loadBuiltins } from './builtins.ts';
import { CollectorError, ErrorCode } from './errors.ts';

const factory = (kind: string, type: string) => `export const factory = {
  kind: '${kind}', type: '${type}', description: '${type}',
  configSchema: { safeParse: (v) => ({ success: true, data: v }) },
  createDefaultConfig: () => ({}),
  create: () => ({ start: async () => {}, shutdown: async () => {} }),
};
`;

describe('built-in component discovery', () => {
  let root: string;
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'builtins-'));
    put('receivers/good/factory.js', factory('receiver', 'good'));
    mkdirSync(join(root, 'receivers', 'work_in_progress'), { recursive: true }); // no factory yet: skipped
    put('processors/tidy/factory.js', factory('processor', 'tidy'));
    put('exporters/sink/factory.js', factory('exporter', 'sink'));
    put('runtime/extensions/store/factory.js', factory('extension', 'store'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('scans every component folder for factory files with the tree’s extension', () => {
    assert.deepEqual(
      findFactoryFiles(root, '.js').map((f) => `${f.kind}:${f.type}`),
      ['receiver:good', 'processor:tidy', 'exporter:sink', 'extension:store'],
    );
    assert.deepEqual(findFactoryFiles(root, '.ts'), []);
    assert.deepEqual(
      COMPONENT_DIRS.map((d) => d.dir),
      ['receivers', 'processors', 'exporters', 'runtime/extensions'],
    );
  });

  test('imports factories; `only` imports a subset and keeps the other names for suggestions', async () => {
    const all = await loadBuiltins({ root, ext: '.js' });
    assert.equal(all.get('exporter', 'sink')?.type, 'sink');
    const some = await loadBuiltins({ root, ext: '.js', only: (kind) => kind === 'receiver' });
    assert.equal(some.get('exporter', 'sink'), undefined);
    assert.deepEqual(some.types('exporter'), ['sink']);
    assert.equal(some.get('receiver', 'good')?.description, 'good');
  });

  test('a malformed or failing factory stops with a clear message naming the file', async () => {
    put('exporters/wrong/factory.js', factory('exporter', 'right'));
    put('processors/broken/factory.js', "throw new Error('syntax is fine, init is not');\n");
    put('receivers/noexport/factory.js', 'export const notFactory = 1;\n');
    try {
      const err = await loadBuiltins({ root, ext: '.js' }).catch((e: unknown) => e);
      assert.ok(err instanceof CollectorError);
      assert.equal(err.code, ErrorCode.PLUGIN_INVALID);
      assert.match(
        err.message,
        /exporters\/wrong\/factory\.js: factory type is "right" but the folder is named "wrong"/,
      );
      assert.match(
        err.message,
        /processors\/broken\/factory\.js: import failed: syntax is fine, init is not/,
      );
      assert.match(err.message, /receivers\/noexport\/factory\.js: does not export "factory"/);
      // Not imported, not a problem.
      const ok = await loadBuiltins({ root, ext: '.js', only: (_k, type) => type === 'good' });
      assert.equal(ok.get('receiver', 'good')?.type, 'good');
    } finally {
      for (const d of ['exporters/wrong', 'processors/broken', 'receivers/noexport']) {
        rmSync(join(root, d), { recursive: true, force: true });
      }
    }
  });

  test('the real tree: every built-in factory is well-formed and named after its folder', async () => {
    const registry = await loadBuiltins();
    for (const f of findFactoryFiles()) {
      assert.equal(registry.get(f.kind, f.type)?.type, f.type, `${f.kind} ${f.type}`);
    }
  });
});
