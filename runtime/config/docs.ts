/**
 * Option documentation attached to a component's config schema: the one source of
 * `authentik-collector components`, the option tables of the READMEs (`npm run docs` regenerates them,
 * `test/docs/readme.test.ts` fails when they are stale) and the JSON Schema for editors
 * (`components --schema`, descriptions on every documented option).
 *
 * A component's config.ts calls {@link documentOptions} once with one row per option (or per group of
 * options documented together, such as `tls.cert_file` / `tls.key_file`).
 */
import * as z from 'zod';

/** One row of a component's option table. */
export interface OptionDocRow {
  /** Dotted option path(s) the row documents: `events.interval`, or several (`tls.cert_file`, `tls.key_file`). */
  names: readonly string[];
  /** Type as a reader wants it: `duration ≥ 1s`, `int 10..1000`, `` `all` \| duration \| `none` ``. */
  type: string;
  /** Default as shown: `` `10s` ``, `(required)`, `—` (none). */
  default: string;
  /** What the option does (Markdown). */
  description: string;
}

const DOCS = new WeakMap<z.ZodType, readonly OptionDocRow[]>();

/**
 * Attaches `rows` to `schema` and registers each row's description (Markdown stripped of backticks)
 * on the schema node of every option it names, so `z.toJSONSchema` carries it. Returns `schema`.
 * Throws when a row names an option the schema does not have (the documentation cannot drift).
 */
export function documentOptions<T extends z.ZodType>(schema: T, rows: readonly OptionDocRow[]): T {
  for (const row of rows) {
    for (const name of row.names) {
      const node = nodeAt(schema, name.replace(/\[\]/g, '').split('.'));
      if (!node) throw new Error(`option documentation names "${name}", which the schema does not have`);
      const existing = z.globalRegistry.get(node) ?? {};
      z.globalRegistry.add(node, { ...existing, description: plain(row.description) });
    }
  }
  DOCS.set(schema, rows);
  return schema;
}

/** The rows attached to `schema` (undefined when it is undocumented). */
export function optionDocs(schema: z.ZodType): readonly OptionDocRow[] | undefined {
  return DOCS.get(schema);
}

/** The row documenting option `name` (dotted), if any. */
export function docOf(schema: z.ZodType, name: string): OptionDocRow | undefined {
  return DOCS.get(schema)?.find((r) => r.names.includes(name));
}

/** The option table in Markdown (the README format). */
export function markdownTable(rows: readonly OptionDocRow[]): string {
  const lines = ['| Option | Type | Default | Meaning |', '| --- | --- | --- | --- |'];
  for (const r of rows) {
    lines.push(
      `| ${r.names.map((n) => `\`${n}\``).join(' / ')} | ${r.type} | ${r.default} | ${r.description} |`,
    );
  }
  return lines.join('\n');
}

/** Markdown → plain text for JSON Schema descriptions and the terminal. */
export function plain(md: string): string {
  return md
    .replace(/\\\|/g, '|')
    .replace(/\[([^\]]+)\]\([^)]+\)/g, '$1')
    .replace(/\*\*([^*]+)\*\*/g, '$1')
    .replace(/`([^`]*)`/g, '$1');
}

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
};

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The schema node of the property at `path` (through optional/default/nullable/pipe/array/union). */
export function nodeAt(schema: z.ZodType, path: readonly string[]): z.ZodType | undefined {
  if (path.length === 0) return schema;
  const [head, ...rest] = path as [string, ...string[]];
  for (const obj of objectsOf(schema)) {
    const child = defOf(obj).shape?.[head];
    if (child) {
      const found = nodeAt(child, rest);
      if (found) return found;
    }
  }
  return undefined;
}

/** The object schemas a schema can be (unwrapping wrappers, arrays' elements and unions). */
function objectsOf(s: z.ZodType, depth = 0): z.ZodType[] {
  if (depth > 12) return [];
  const d = defOf(s);
  if (d.type === 'object') return [s];
  const inner = d.innerType ?? d.in ?? d.element;
  if (inner) return objectsOf(inner, depth + 1);
  const alts = [...(d.options ?? []), ...(d.left ? [d.left] : []), ...(d.right ? [d.right] : [])];
  return alts.flatMap((a) => objectsOf(a, depth + 1));
}
