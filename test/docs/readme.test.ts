import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { COMPONENTS, render, root } from './readme.ts';

test('README.md configuration reference matches the component READMEs', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.equal(
    render(readme),
    readme,
    'README.md is stale: run `node test/docs/readme.ts --write` after changing a component README',
  );
});

test('every component folder with a factory is in the README reference', () => {
  const listed = new Set(COMPONENTS.map((c) => c.dir));
  for (const kind of ['receivers', 'processors', 'exporters', 'runtime/extensions']) {
    const dir = path.join(root, kind);
    for (const name of readdir(dir)) {
      if (existsSync(path.join(dir, name, 'factory.ts'))) {
        assert.ok(
          listed.has(`${kind}/${name}`),
          `${kind}/${name} is missing from test/docs/readme.ts COMPONENTS`,
        );
      }
    }
  }
});

function readdir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}
