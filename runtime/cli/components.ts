/**
 * `authentik-collector components`: every available component type with its description and options.
 * Options come from the factory's zod schema (as JSON Schema, input side) with defaults taken from
 * `createDefaultConfig()`, i.e. as a user would write them.
 */
import * as z from 'zod';
import type { AnyFactory, ComponentKind } from '../component.ts';
import { docOf, optionDocs, plain } from '../config/docs.ts';
import { serviceSchema } from '../config/service.ts';
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
  /** The schema's default (what an absent key becomes). */
  default?: unknown;
  description?: string;
  /** Type and default as the option documentation words them (`duration ≥ 1s`, `20 % of limit_mib`). */
  typeText?: string;
  defaultText?: string;
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
    commonExporterOptions: documented(
      sendingQueueSchema,
      describeSchema(sendingQueueSchema, sendingQueueDefaults),
    ).map((o) => ({
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
    options: documented(f.configSchema, describeSchema(f.configSchema, defaults)),
    defaultConfig: defaults,
  };
}

const NO_DEFAULT = /^(—|-|\(none\)|—\s*\(required\)|\(required.*\))$/;

/** Adds the wording of the schema's option documentation (runtime/config/docs.ts) to each option. */
function documented(schema: z.ZodType, options: OptionDoc[]): OptionDoc[] {
  if (!optionDocs(schema)) return options;
  return options.map((o) => {
    const row = docOf(schema, o.name) ?? docOf(schema, o.name.replace(/\.(\d+)\./g, '[].'));
    if (!row) return o;
    // The documentation says when there is no default (createDefaultConfig() may still fill in an
    // example, such as memory_limiter's limit_percentage, which the validator requires you to choose).
    const { default: dflt, ...rest } = o;
    const none = NO_DEFAULT.test(row.default.trim());
    return {
      ...rest,
      ...(none || dflt === undefined ? {} : { default: dflt }),
      required: o.required || /required/.test(row.default),
      description: plain(row.description),
      typeText: plain(row.type),
      defaultText: plain(row.default),
    };
  });
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
    // A required key has no default, whatever createDefaultConfig() fills in as an example.
    const isRequired = required.has(key) && sub.default === undefined;
    const dflt = sub.default ?? (isRequired ? undefined : lookup(defaults, name));
    out.push({
      name,
      type: typeOf(sub),
      required: isRequired,
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
      : o.defaultText !== undefined
        ? NO_DEFAULT.test(o.defaultText.trim())
          ? 'optional'
          : `default ${o.defaultText}`
        : o.default !== undefined
          ? `default ${JSON.stringify(o.default)}`
          : 'optional';
    const desc = o.description ? `  ${o.description}` : '';
    return `${indent}${o.name.padEnd(width)}  ${o.typeText ?? o.type}  (${tail})${desc}`;
  });
}

/**
 * A JSON Schema (draft 2020-12) of a whole configuration file, for editors (e.g. the YAML language
 * server: `# yaml-language-server: $schema=./collector.schema.json`): every component type's options
 * with their descriptions, under `type` / `type/name` keys. `${env:...}` references are strings to an
 * editor, so a reference in place of a number or boolean is flagged there (the collector accepts it).
 */
export function configJsonSchema(registry: ComponentRegistry): Record<string, unknown> {
  const section = (kind: ComponentKind) => {
    const patternProperties: Record<string, unknown> = {};
    for (const { factory } of registry.all().filter((e) => e.factory.kind === kind)) {
      let js = toJson(factory.configSchema);
      if (kind === 'exporter' && isObj(js) && isObj(js['properties'])) {
        js = { ...js, properties: { ...js['properties'], sending_queue: toJson(sendingQueueSchema) } };
      }
      const type = factory.type.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      patternProperties[`^${type}(/[^/]+)?$`] = {
        description: factory.description,
        anyOf: [js, { type: 'null' }],
      };
    }
    return { type: 'object', patternProperties, additionalProperties: false };
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'authentik-collector configuration',
    type: 'object',
    additionalProperties: false,
    properties: {
      receivers: section('receiver'),
      processors: section('processor'),
      exporters: section('exporter'),
      extensions: section('extension'),
      service: toJson(serviceSchema),
      plugins: {
        type: 'array',
        items: { type: 'string' },
        description: 'Third-party component packages or module paths',
      },
    },
  };
}

function toJson(schema: z.ZodType): Record<string, unknown> {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete js['$schema'];
  return js;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
