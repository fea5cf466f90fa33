/**
 * Configuration of the `authentik_ecs` processor.
 */
import * as z from 'zod';
import { documentOptions } from '../../runtime/config/docs.ts';

/** Elastic's data stream namespace rules: lower case, at most 100 bytes, none of `\/*?"<>|,#:-` or spaces. */
const namespaceSchema = z
  .string({ error: 'expected a string' })
  .min(1, { error: 'must not be empty' })
  .max(100, { error: 'must be at most 100 characters' })
  .refine((v) => !/[A-Z\\/*?"<>|,#:\s-]/.test(v), {
    error: 'must be lower case and must not contain \\ / * ? " < > | , # : - or whitespace',
  });

const path = z.string({ error: 'expected a file path' }).min(1, { error: 'must not be empty' });

/** Schema of `processors.authentik_ecs[/name]`. */
export const configSchema = z.strictObject({
  /** MaxMind databases (paths relative to the config file). Absent: no GeoIP enrichment. */
  geoip: z
    .strictObject({
      /** City (or Country) database → `source.geo.*`. */
      city_database: path.optional(),
      /** ASN database → `source.as.number`, `source.as.organization.name`. */
      asn_database: path.optional(),
    })
    .prefault({}),
  /** Appended to every document's `tags` (`preserve_duplicate_custom_fields` keeps the authentik.* copies). */
  tags: z.array(z.string().min(1, { error: 'tags must not be empty strings' })).default([]),
  /** `data_stream.namespace` of every document and record. */
  namespace: namespaceSchema.default('default'),
  user_agent: z
    .strictObject({
      /** Parsed user-agent strings kept in an LRU cache (0 disables the cache). */
      cache_size: z.number().int({ error: 'expected an integer' }).min(0).default(1000),
    })
    .prefault({}),
  /** Also categorise the actions Elastic leaves uncategorised (see README). */
  categorize_all_actions: z.boolean().default(false),
});

export type Config = z.output<typeof configSchema>;

export function createDefaultConfig(): Record<string, unknown> {
  return {
    geoip: {},
    tags: [],
    namespace: 'default',
    user_agent: { cache_size: 1000 },
    categorize_all_actions: false,
  };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and processors/authentik_ecs/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['geoip.city_database'],
    type: 'path',
    default: '(none)',
    description:
      'MaxMind City (or Country) database for `source.geo.*`. Relative to the config file. Absent: no GeoIP enrichment. An unreadable or invalid file, or a database of another type, is a config error (exit 2).',
  },
  {
    names: ['geoip.asn_database'],
    type: 'path',
    default: '(none)',
    description:
      "MaxMind ASN database for `source.as.number` and `source.as.organization.name` (an addition; Elastic's authentik pipelines do no ASN lookup). Same rules as above.",
  },
  {
    names: ['tags'],
    type: 'list of strings',
    default: '`[]`',
    description:
      "Appended to every document's `tags`, in order (like the integration's `tags`, `preserve_original_event` and `preserve_duplicate_custom_fields` variables). `preserve_duplicate_custom_fields` keeps the `authentik.*` copies of fields mapped to ECS; `preserve_original_event` only shows in `tags` (Elastic never removes `event.original`).",
  },
  {
    names: ['namespace'],
    type: 'string',
    default: '`default`',
    description:
      '`data_stream.namespace` of every document and record (Elastic\'s rules: lower case, at most 100 characters, none of `\\ / * ? " < > \\| , # : -` or whitespace).',
  },
  {
    names: ['user_agent.cache_size'],
    type: 'int ≥ 0',
    default: '`1000`',
    description: 'Parsed user-agent strings kept in an LRU cache. `0` disables the cache.',
  },
  {
    names: ['categorize_all_actions'],
    type: 'bool',
    default: '`false`',
    description:
      "Also categorise the authentik actions Elastic leaves uncategorised (table below). `false` keeps the output identical to Elastic's.",
  },
]);
