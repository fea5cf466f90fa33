/**
 * Keeps the option reference in step with the components, from one source per component: the option
 * documentation attached to its config schema (`documentOptions` in its config.ts). Each component
 * README's option table (between `BEGIN GENERATED: option table` markers) is rendered from it, and
 * README.md's configuration reference (between the `BEGIN GENERATED: component options` markers) is
 * built from each component README's "## Options" section. `npm run docs` (`node test/docs/readme.ts
 * --write`) rewrites both; `readme.test.ts` fails when either is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as z from 'zod';
import { format, resolveConfig } from 'prettier';
import { loadBuiltins } from '../../runtime/builtins.ts';
import { configJsonSchema } from '../../runtime/cli/components.ts';
import { markdownTable, optionDocs } from '../../runtime/config/docs.ts';
import type { OptionDocRow } from '../../runtime/config/docs.ts';

export const root = path.resolve(import.meta.dirname, '../..');
const BEGIN = '<!-- BEGIN GENERATED: component options (node test/docs/readme.ts --write) -->';
const END = '<!-- END GENERATED: component options -->';

/** Component folders in the order the README lists them. */
export const COMPONENTS: { dir: string; kind: string }[] = [
  { dir: 'receivers/authentik', kind: 'receiver' },
  { dir: 'receivers/file', kind: 'receiver' },
  { dir: 'receivers/authentik_webhook', kind: 'receiver' },
  { dir: 'processors/authentik_ecs', kind: 'processor' },
  { dir: 'processors/authentik_dedupe', kind: 'processor' },
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

const TABLE_BEGIN = '<!-- BEGIN GENERATED: option table (npm run docs) -->';
const TABLE_END = '<!-- END GENERATED: option table -->';

/** Where a component's config schema lives. */
function schemaModule(dir: string): { file: string; name: string } {
  return dir === 'runtime/exporterhelper/queue'
    ? { file: 'runtime/exporterhelper/queue.ts', name: 'sendingQueueSchema' }
    : { file: `${dir}/config.ts`, name: 'configSchema' };
}

/** A component's config schema and its option documentation. */
export async function componentDocs(
  dir: string,
): Promise<{ schema: z.ZodType; rows: readonly OptionDocRow[] }> {
  const { file, name } = schemaModule(dir);
  const mod = (await import(path.join(root, file))) as Record<string, z.ZodType>;
  const schema = mod[name]!;
  const rows = optionDocs(schema);
  if (!rows) throw new Error(`${file}: ${name} has no documentOptions(...) rows`);
  return { schema, rows };
}

/** A component README with its option table rendered from the schema's documentation. */
export async function renderComponentReadme(dir: string, text: string): Promise<string> {
  const a = text.indexOf(TABLE_BEGIN);
  const b = text.indexOf(TABLE_END);
  if (a < 0 || b < a) throw new Error(`${dir}/README.md lacks the option-table markers`);
  const { rows } = await componentDocs(dir);
  return `${text.slice(0, a)}${TABLE_BEGIN}\n${markdownTable(rows)}\n${text.slice(b)}`;
}

/** The "## Options" section of a component README, headings demoted by two levels, markers dropped. */
function optionsSection(dir: string, readme?: string): string {
  const text = readme ?? readFileSync(path.join(root, dir, 'README.md'), 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^## Options\b/.test(l));
  if (start < 0) throw new Error(`${dir}/README.md has no "## Options" section`);
  let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  if (end < 0) end = lines.length;
  return lines
    .slice(start + 1, end)
    .filter((l) => l !== TABLE_BEGIN && l !== TABLE_END)
    .map((l) => (/^#{3,4} /.test(l) ? `##${l}` : l))
    .join('\n')
    .replace(/\]\((?!https?:|#)([^)]+)\)/g, (_m, target: string) => `](${path.posix.join(dir, target)})`)
    .replace(/\]\(#([^)]+)\)/g, (_m, anchor: string) => `](${dir}/README.md#${anchor})`)
    .trim();
}

/** The generated block (from the component READMEs as given, or as on disk). */
export function generated(readmes: ReadonlyMap<string, string> = new Map()): string {
  const parts = COMPONENTS.map(({ dir, kind }) => {
    const type = path.basename(dir);
    return `### \`${type}\` ${kind}\n\nFull reference: [${dir}/README.md](${dir}/README.md).\n\n${optionsSection(dir, readmes.get(dir))}\n`;
  });
  return `${BEGIN}\n\n${parts.join('\n')}\n${END}`;
}

/** README.md with the generated block replaced. */
export function render(readme: string, readmes: ReadonlyMap<string, string> = new Map()): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error('README.md lacks the generated-block markers');
  return readme.slice(0, a) + generated(readmes) + readme.slice(b + END.length);
}

/** Every generated file: path (relative to the root) → current text and text as it should be. */
export async function renderAll(): Promise<{ file: string; current: string; wanted: string }[]> {
  const out: { file: string; current: string; wanted: string }[] = [];
  const readmes = new Map<string, string>();
  for (const { dir } of COMPONENTS) {
    const file = `${dir}/README.md`;
    const current = readFileSync(path.join(root, file), 'utf8');
    const wanted = await renderComponentReadme(dir, current);
    readmes.set(dir, wanted);
    out.push({ file, current, wanted });
  }
  const current = readFileSync(path.join(root, 'README.md'), 'utf8');
  out.push({ file: 'README.md', current, wanted: render(current, readmes) });
  // The JSON Schema for editors (`components --schema` of the built-in components).
  const schemaFile = 'collector.schema.json';
  let schemaText = '';
  try {
    schemaText = readFileSync(path.join(root, schemaFile), 'utf8');
  } catch {
    // generated below
  }
  out.push({
    file: schemaFile,
    current: schemaText,
    // Formatted as the repository's Prettier does, so `prettier --check .` agrees.
    wanted: await format(JSON.stringify(configJsonSchema(await loadBuiltins())), {
      ...(await resolveConfig(path.join(root, schemaFile))),
      parser: 'json',
    }),
  });
  return out;
}

if (process.argv.includes('--write')) {
  for (const f of await renderAll()) {
    if (f.current === f.wanted) continue;
    writeFileSync(path.join(root, f.file), f.wanted);
    console.log(`${f.file}: option tables regenerated`);
  }
  console.log('option tables are current');
}
