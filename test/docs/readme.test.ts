import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describeSchema } from '../../runtime/cli/components.ts';
import { COMPONENTS, componentDocs, render, renderAll, root } from './readme.ts';

test('README.md configuration reference matches the component READMEs', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.equal(
    render(readme),
    readme,
    'README.md is stale: run `npm run docs` after changing a component README',
  );
});

test('every option table is rendered from its config schema documentation (npm run docs)', async () => {
  for (const f of await renderAll()) {
    assert.equal(f.current, f.wanted, `${f.file} is stale: run \`npm run docs\` after changing a config.ts`);
  }
});

test('every option of every schema is documented, and every documented option exists', async () => {
  for (const { dir } of COMPONENTS) {
    const { schema, rows } = await componentDocs(dir);
    const documented = new Set(rows.flatMap((r) => r.names.map((n) => n.replace(/\[\]/g, ''))));
    for (const o of describeSchema(schema, {})) {
      const covered = documented.has(o.name) || [...documented].some((d) => o.name.startsWith(`${d}.`));
      assert.ok(covered, `${dir}: option ${o.name} has no row in its documentOptions(...)`);
    }
  }
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
