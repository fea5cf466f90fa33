/**
 * The component registry: every factory the collector knows, built-in or from a plugin, by kind and
 * type. Factories are checked on the way in ({@link checkFactory}).
 */
import type {
  AnyFactory,
  ComponentKind,
  ExporterFactory,
  ExtensionFactory,
  ProcessorFactory,
  ReceiverFactory,
} from '../component.ts';

/** Where a factory came from. */
export type FactorySource =
  { kind: 'builtin'; file: string } | { kind: 'plugin'; plugin: string; file: string };

/** A registered factory. */
export interface RegisteredFactory {
  factory: AnyFactory;
  source: FactorySource;
}

/** Factory type per kind. */
export interface FactoryByKind {
  receiver: ReceiverFactory;
  processor: ProcessorFactory;
  exporter: ExporterFactory;
  extension: ExtensionFactory;
}

export const COMPONENT_KINDS: readonly ComponentKind[] = ['receiver', 'processor', 'exporter', 'extension'];

/** Config section (plural) of each kind. */
export const SECTION_OF: Record<ComponentKind, 'receivers' | 'processors' | 'exporters' | 'extensions'> = {
  receiver: 'receivers',
  processor: 'processors',
  exporter: 'exporters',
  extension: 'extensions',
};

const TYPE_RE = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * Checks that `value` looks like a factory (of `expected.kind` and `expected.type` when given).
 * Returns what is wrong, or an empty list.
 */
export function checkFactory(
  value: unknown,
  expected: { kind?: ComponentKind; type?: string } = {},
): string[] {
  if (typeof value !== 'object' || value === null) return ['is not an object'];
  const f = value as Record<string, unknown>;
  const out: string[] = [];
  if (typeof f.kind !== 'string' || !COMPONENT_KINDS.includes(f.kind as ComponentKind)) {
    out.push(`kind must be one of ${COMPONENT_KINDS.join(', ')}`);
  } else if (expected.kind && f.kind !== expected.kind) {
    out.push(`kind is "${f.kind}" but the folder holds ${expected.kind}s`);
  }
  if (typeof f.type !== 'string' || !TYPE_RE.test(f.type)) {
    out.push('type must be a lower_snake_case string');
  } else if (expected.type !== undefined && f.type !== expected.type) {
    out.push(`type is "${f.type}" but the folder is named "${expected.type}"`);
  }
  if (typeof f.description !== 'string') out.push('description must be a string');
  const schema = f.configSchema as { safeParse?: unknown } | undefined;
  if (typeof schema !== 'object' || schema === null || typeof schema.safeParse !== 'function') {
    out.push('configSchema must be a zod schema');
  }
  if (typeof f.createDefaultConfig !== 'function') out.push('createDefaultConfig must be a function');
  if (typeof f.create !== 'function') out.push('create must be a function');
  if (out.length === 0) {
    try {
      const d: unknown = (f.createDefaultConfig as () => unknown)();
      if (typeof d !== 'object' || d === null || Array.isArray(d))
        out.push('createDefaultConfig() must return a map');
    } catch (err) {
      out.push(`createDefaultConfig() threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return out;
}

/** Every factory known to the collector. */
export class ComponentRegistry {
  readonly #byKind = new Map<ComponentKind, Map<string, RegisteredFactory>>(
    COMPONENT_KINDS.map((k) => [k, new Map()]),
  );

  /**
   * Adds a factory (already checked). Returns a problem message when the kind/type is taken by
   * another factory.
   */
  add(factory: AnyFactory, source: FactorySource): string | undefined {
    const m = this.#byKind.get(factory.kind)!;
    const prev = m.get(factory.type);
    if (prev)
      return `${factory.kind} type "${factory.type}" is already provided by ${describeSource(prev.source)}`;
    if (this.#available.get(factory.kind)!.has(factory.type)) {
      return `${factory.kind} type "${factory.type}" is already provided by a built-in component`;
    }
    m.set(factory.type, { factory, source });
    return undefined;
  }

  readonly #available = new Map<ComponentKind, Set<string>>(COMPONENT_KINDS.map((k) => [k, new Set()]));

  /**
   * Records a type that exists but was not loaded (built-ins are imported only when a config uses
   * them); it is listed by {@link types} for suggestions.
   */
  addAvailable(kind: ComponentKind, type: string): void {
    this.#available.get(kind)!.add(type);
  }

  get<K extends ComponentKind>(kind: K, type: string): FactoryByKind[K] | undefined {
    return this.#byKind.get(kind)!.get(type)?.factory as FactoryByKind[K] | undefined;
  }

  entry(kind: ComponentKind, type: string): RegisteredFactory | undefined {
    return this.#byKind.get(kind)!.get(type);
  }

  /** Types of a kind (loaded or merely available), sorted. */
  types(kind: ComponentKind): string[] {
    return [...new Set([...this.#byKind.get(kind)!.keys(), ...this.#available.get(kind)!])].sort();
  }

  /** Every registered factory, by kind then type. */
  all(): RegisteredFactory[] {
    return COMPONENT_KINDS.flatMap((k) =>
      [...this.#byKind.get(k)!.values()].sort((a, b) => a.factory.type.localeCompare(b.factory.type)),
    );
  }

  /** A copy (plugins are added to a copy so built-ins stay pristine). */
  clone(): ComponentRegistry {
    const c = new ComponentRegistry();
    for (const e of this.all()) c.add(e.factory, e.source);
    for (const [kind, types] of this.#available) for (const t of types) c.addAvailable(kind, t);
    return c;
  }
}

/** Human form of a factory's source. */
export function describeSource(s: FactorySource): string {
  return s.kind === 'builtin' ? `the built-in ${s.file}` : `plugin "${s.plugin}"`;
}
