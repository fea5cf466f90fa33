/**
 * Keeps README.md's configuration reference in step with the components: the block between the
 * `BEGIN GENERATED` / `END GENERATED` markers is built from each component README's "## Options"
 * section. `node test/docs/readme.ts --write` rewrites it; `readme.test.ts` fails when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '../..');
const BEGIN = '<!-- BEGIN GENERATED: component options (node test/docs/readme.ts --write) -->';
const END = '<!-- END GENERATED: component options -->';

/** Component folders in the order the README lists them. */
export const COMPONENTS: { dir: string; kind: string }[] = [
  { dir: 'receivers/authentik', kind: 'receiver' },
  { dir: 'receivers/file', kind: 'receiver' },
  { dir: 'processors/authentik_ecs', kind: 'processor' },
  { dir: 'processors/authentik_changes', kind: 'processor' },
  { dir: 'processors/batch', kind: 'processor' },
  { dir: 'processors/attributes', kind: 'processor' },
  { dir: 'processors/memory_limiter', kind: 'processor' },
  { dir: 'exporters/elasticsearch', kind: 'exporter' },
  { dir: 'exporters/otlphttp', kind: 'exporter' },
  { dir: 'exporters/file', kind: 'exporter' },
  { dir: 'exporters/debug', kind: 'exporter' },
  { dir: 'runtime/exporterhelper/queue', kind: 'exporter option `sending_queue`' },
  { dir: 'runtime/extensions/file_storage', kind: 'extension' },
];

/** The "## Options" section of a component README, headings demoted by two levels. */
function optionsSection(dir: string): string {
  const text = readFileSync(path.join(root, dir, 'README.md'), 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^## Options\b/.test(l));
  if (start < 0) throw new Error(`${dir}/README.md has no "## Options" section`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  return lines
    .slice(start + 1, end)
    .map((l) => (/^#{3,4} /.test(l) ? `##${l}` : l))
    .join('\n')
    .replace(/\]\((?!https?:|#)([^)]+)\)/g, (_m, target: string) => `](${path.posix.join(dir, target)})`)
    .replace(/\]\(#([^)]+)\)/g, (_m, anchor: string) => `](${dir}/README.md#${anchor})`)
    .trim();
}

/** The generated block. */
export function generated(): string {
  const parts = COMPONENTS.map(({ dir, kind }) => {
    const type = path.basename(dir);
    return `### \`${type}\` ${kind}\n\nFull reference: [${dir}/README.md](${dir}/README.md).\n\n${optionsSection(dir)}\n`;
  });
  return `${BEGIN}\n\n${parts.join('\n')}\n${END}`;
}

/** README.md with the generated block replaced. */
export function render(readme: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error('README.md lacks the generated-block markers');
  return readme.slice(0, a) + generated() + readme.slice(b + END.length);
}

if (process.argv.includes('--write')) {
  const file = path.join(root, 'README.md');
  writeFileSync(file, render(readFileSync(file, 'utf8')));
  console.log('README.md: component options regenerated');
}
