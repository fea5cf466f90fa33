/**
 * Configuration of the `attributes` processor: an ordered list of insert/update/upsert/delete actions
 * on record attributes, with OTel's semantics.
 */
import * as z from 'zod';
import { documentOptions } from '../../runtime/config/docs.ts';

const scalar = z.union([z.string(), z.number(), z.boolean()]);
/** An attribute value: a scalar or a list of scalars (OTel attribute values). */
const attributeValue = z.union([scalar, z.array(scalar)], {
  error: 'expected a string, number, boolean or a list of them',
});

/** One action. */
export const actionSchema = z
  .strictObject({
    /** Attribute key (flat, dotted: `data_stream.namespace`). */
    key: z.string({ error: 'required: the attribute key' }).min(1, { error: 'must not be empty' }),
    /** insert: only if absent; update: only if present; upsert: either; delete: remove. */
    action: z.enum(['insert', 'update', 'upsert', 'delete'], {
      error: 'expected one of insert, update, upsert, delete',
    }),
    /** The value to set (insert/update/upsert). */
    value: attributeValue.optional(),
    /** Copy the value of this attribute instead of a static value; nothing happens when it is absent. */
    from_attribute: z.string().min(1, { error: 'must not be empty' }).optional(),
  })
  .superRefine((a, ctx) => {
    const hasValue = a.value !== undefined;
    const hasFrom = a.from_attribute !== undefined;
    if (a.action === 'delete') {
      if (hasValue || hasFrom) {
        ctx.addIssue({
          code: 'custom',
          path: [hasValue ? 'value' : 'from_attribute'],
          message: 'not allowed with action delete',
        });
      }
      return;
    }
    if (!hasValue && !hasFrom) {
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: `value or from_attribute is required for ${a.action}`,
      });
    } else if (hasValue && hasFrom) {
      ctx.addIssue({
        code: 'custom',
        path: ['from_attribute'],
        message: 'set either value or from_attribute, not both',
      });
    } else if (a.from_attribute === a.key) {
      ctx.addIssue({ code: 'custom', path: ['from_attribute'], message: 'must differ from key' });
    }
  });

/** A parsed action. */
export type Action = z.output<typeof actionSchema>;

/** Schema of `processors.attributes[/name]`. */
export const configSchema = z.strictObject({
  /** Actions, applied in order to every record. */
  actions: z
    .array(actionSchema, { error: 'required: a list of actions' })
    .min(1, { error: 'at least one action is required' }),
});

/** Parsed configuration. */
export type Config = z.output<typeof configSchema>;

/** The default configuration as a user would write it (it needs at least one action to be valid). */
export function createDefaultConfig(): Record<string, unknown> {
  return { actions: [] };
}

/**
 * Option reference: the one source of `authentik-collector components`, the option tables in
 * README.md and processors/attributes/README.md (`npm run docs`) and the JSON Schema (`components --schema`).
 */
documentOptions(configSchema, [
  {
    names: ['actions'],
    type: 'list',
    default: '(required, at least one)',
    description: 'The actions, applied in order.',
  },
  {
    names: ['actions[].key'],
    type: 'string',
    default: '(required)',
    description: 'Attribute key, flat and dotted (`data_stream.namespace`).',
  },
  {
    names: ['actions[].action'],
    type: '`insert` \\| `update` \\| `upsert` \\| `delete`',
    default: '(required)',
    description:
      '`insert`: set only when the key is absent. `update`: set only when it is present. `upsert`: set in both cases. `delete`: remove the key.',
  },
  {
    names: ['actions[].value'],
    type: 'string, number, bool or list of them',
    default: '(none)',
    description: 'Static value for `insert` / `update` / `upsert`.',
  },
  {
    names: ['actions[].from_attribute'],
    type: 'string',
    default: '(none)',
    description:
      "Copy this attribute's value instead; when it is absent, the action does nothing. Must differ from `key`.",
  },
]);
