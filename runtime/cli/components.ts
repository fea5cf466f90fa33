/**
 * `authentik-collector components`: every available component type with its description and options.
 * Options come from the factory's zod schema (as JSON Schema, input side) with defaults taken from
 * `createDefaultConfig()`, i.e. as a user would write them.
 */
import * as z from 'zod';
import type { AnyFactory, ComponentKind } from '../component.ts';
import { sendingQueueDefaults, sendingQueueSchema } from '../exporterhelper/queue.ts';
import type { PluginInfo } from '../plugins/load.ts';
import { COMPONENT_KINDS, SECTION_OF } from '../plugins/registry.ts';
import type { ComponentRegistry, FactorySource } from '../plugins/registry.ts';

/** One option of a component. */
export interface OptionDoc {
  /** Dotted name: `retry.max_interval`. */
  name: string;
  /** `string`, `boolean`, `integer`, `"a" | "b"`, `list of string`, `map`... */
  type: string;
  required: boolean;
  default?: unknown;
  description?: string;
}

/** One component type. */
export interface ComponentDoc {
  kind: ComponentKind;
  type: string;
  description: string;
  source: 'builtin' | 'plugin';
  plugin?: string;
  options: OptionDoc[];
  defaultConfig: Record<string, unknown>;
}

/** Everything `components` prints. */
export interface ComponentsReport {
  components: ComponentDoc[];
  /** Options every exporter accepts besides its own (handled by the runtime). */
  commonExporterOptions: OptionDoc[];
  plugins: PluginInfo[];
}

/** Builds the report for a registry. */
export function describeComponents(
  registry: ComponentRegistry,
  plugins: PluginInfo[] = [],
): ComponentsReport {
  return {
    components: registry.all().map(({ factory, source }) => describeFactory(factory, source)),
    commonExporterOptions: describeSchema(sendingQueueSchema, sendingQueueDefaults).map((o) => ({
      ...o,
      name: `sending_queue.${o.name}`,
    })),
    plugins,
  };
}

function describeFactory(f: AnyFactory, source: FactorySource): ComponentDoc {
  let defaults: Record<string, unknown> = {};
  try {
    defaults = f.createDefaultConfig();
  } catch {
    // checked at load time; keep the listing going regardless
  }
  return {
    kind: f.kind,
    type: f.type,
    description: f.description,
    source: source.kind,
    ...(source.kind === 'plugin' ? { plugin: source.plugin } : {}),
    options: describeSchema(f.configSchema, defaults),
    defaultConfig: defaults,
  };
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  default?: unknown;
  description?: string;
  minimum?: number;
};

/** Options of a schema, flattened to dotted names. */
export function describeSchema(schema: z.ZodType, defaults: Record<string, unknown>): OptionDoc[] {
  let js: JsonSchema;
  try {
    js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    return Object.keys(defaults).map((name) => ({
      name,
      type: typeof defaults[name],
      required: false,
      default: defaults[name],
    }));
  }
  const out: OptionDoc[] = [];
  flatten(objectPart(js), '', defaults, out);
  return out;
}

function objectPart(js: JsonSchema): JsonSchema {
  if (js.properties) return js;
  for (const alt of [...(js.allOf ?? []), ...(js.anyOf ?? []), ...(js.oneOf ?? [])])
    if (alt.properties) return alt;
  return js;
}

function flatten(js: JsonSchema, prefix: string, defaults: Record<string, unknown>, out: OptionDoc[]): void {
  const required = new Set(js.required ?? []);
  for (const [key, sub] of Object.entries(js.properties ?? {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    const obj = objectPart(sub);
    if (obj.properties && Object.keys(obj.properties).length > 0) {
      flatten(obj, name, defaults, out);
      continue;
    }
    const dflt = lookup(defaults, name) ?? sub.default;
    out.push({
      name,
      type: typeOf(sub),
      required: required.has(key) && sub.default === undefined && lookup(defaults, name) === undefined,
      ...(dflt === undefined ? {} : { default: dflt }),
      ...(sub.description ? { description: sub.description } : {}),
    });
  }
}

function lookup(obj: Record<string, unknown>, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function typeOf(js: JsonSchema): string {
  if (js.enum) return js.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (js.const !== undefined) return JSON.stringify(js.const);
  const alts = js.anyOf ?? js.oneOf;
  if (alts) return [...new Set(alts.map(typeOf))].join(' | ');
  const t = Array.isArray(js.type) ? js.type.filter((x) => x !== 'null').join(' | ') : js.type;
  if (t === 'array') return `list of ${js.items ? typeOf(js.items) : 'any'}`;
  if (t === 'object') return 'map';
  return t ?? 'any';
}

/** The report as text. */
export function formatComponents(r: ComponentsReport): string {
  const lines: string[] = [];
  for (const kind of COMPONENT_KINDS) {
    const docs = r.components.filter((c) => c.kind === kind);
    lines.push(`${SECTION_OF[kind]}:`);
    if (docs.length === 0) lines.push('  (none available)');
    for (const d of docs) {
      lines.push(`  ${d.type}${d.source === 'plugin' ? ` [plugin ${d.plugin}]` : ''}: ${d.description}`);
      lines.push(...formatOptions(d.options, '      '));
    }
    if (kind === 'exporter' && r.commonExporterOptions.length > 0) {
      lines.push('  (every exporter) common options:');
      lines.push(...formatOptions(r.commonExporterOptions, '      '));
    }
    lines.push('');
  }
  if (r.plugins.length > 0) {
    lines.push('plugins:');
    for (const p of r.plugins) {
      lines.push(
        `  ${p.spec}: ${p.factories.map((f) => `${f.kind} ${f.type}`).join(', ') || '(no factories)'}`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

function formatOptions(options: OptionDoc[], indent: string): string[] {
  if (options.length === 0) return [`${indent}(no options)`];
  const width = Math.min(36, Math.max(...options.map((o) => o.name.length)));
  return options.map((o) => {
    const tail = o.required
      ? 'required'
      : o.default !== undefined
        ? `default ${JSON.stringify(o.default)}`
        : 'optional';
    const desc = o.description ? `  ${o.description}` : '';
    return `${indent}${o.name.padEnd(width)}  ${o.type}  (${tail})${desc}`;
  });
}
