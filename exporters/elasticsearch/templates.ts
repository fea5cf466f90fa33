/**
 * Server detection (`GET /`) and the index templates of the authentik data streams: building them for the
 * server at hand (degrading field types it lacks) and installing them idempotently, versioned.
 */
import type { EsClient, HttpResponse } from './client.ts';
import { describeEsError, parseEsError } from './client.ts';
import type { Degradation, ServerTypes } from './mappings.ts';
import { AUTHENTIK_DATASETS, ECS_FIELDS, buildProperties } from './mappings.ts';

/** Bumped whenever a template body changes; installed templates with this or a newer version are kept. */
export const TEMPLATE_VERSION = 2;
export const TEMPLATE_PREFIX = 'authentik-collector';

export interface ServerInfo {
  flavor: 'elasticsearch' | 'opensearch';
  /** Version number as reported (`8.19.2`), or `unknown`. */
  version: string;
  major: number;
  minor: number;
  /** Modules and plugins installed on the answering node, when the node info could be read. */
  modules?: string[];
  /** How the server was identified. */
  source: 'root' | 'nodes' | 'assumed';
}

/** Why setup could not proceed. `retryable` failures are retried in the background. */
export class SetupError extends Error {
  readonly kind: 'auth' | 'privilege' | 'conflict' | 'invalid' | 'retryable';
  readonly status: number | undefined;
  constructor(
    kind: SetupError['kind'],
    message: string,
    options?: { cause?: unknown; status?: number | undefined },
  ) {
    super(message, options);
    this.name = 'SetupError';
    this.kind = kind;
    this.status = options?.status;
  }
}

function json(res: HttpResponse): unknown {
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function parseVersion(v: string): { major: number; minor: number } {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : { major: 0, minor: 0 };
}

function classify(res: HttpResponse, what: string): SetupError {
  const detail = describeEsError(res.body);
  if (res.status === 401) {
    return new SetupError('auth', `${what}: ${res.endpoint} rejected the credentials (401 ${detail})`, {
      status: 401,
    });
  }
  if (res.status === 403) {
    return new SetupError('privilege', `${what}: not permitted (403 ${detail})`, { status: 403 });
  }
  if (res.status === 429 || res.status >= 500 || res.status === 408) {
    return new SetupError('retryable', `${what}: ${res.status} ${detail}`, { status: res.status });
  }
  return new SetupError('invalid', `${what}: ${res.status} ${detail}`, { status: res.status });
}

/**
 * Identifies the server: `GET /` (flavour from `version.distribution`), falling back to the node info
 * (the Elasticsearch integ-test distribution has no `GET /` handler), then the modules installed.
 */
export async function detectServer(client: EsClient, signal?: AbortSignal): Promise<ServerInfo> {
  const root = await client.request('GET', '/', { signal });
  let info: ServerInfo | undefined;
  if (root.status === 200) {
    const j = json(root) as { version?: { number?: unknown; distribution?: unknown } } | undefined;
    const number = typeof j?.version?.number === 'string' ? j.version.number : 'unknown';
    const flavor = j?.version?.distribution === 'opensearch' ? 'opensearch' : 'elasticsearch';
    info = { flavor, version: number, ...parseVersion(number), source: 'root' };
  } else if (root.status === 401) {
    throw classify(root, 'GET /');
  } else if (root.status === 429 || root.status >= 500) {
    throw classify(root, 'GET /');
  }
  // Node info: version (when GET / is missing or forbidden) and the modules that provide optional types.
  const nodes = await client.request(
    'GET',
    '/_nodes/_local?filter_path=nodes.*.version,nodes.*.modules.name,nodes.*.plugins.name',
    { signal },
  );
  let modules: string[] | undefined;
  if (nodes.status === 200) {
    const j = json(nodes) as
      | {
          nodes?: Record<
            string,
            { version?: unknown; modules?: { name?: unknown }[]; plugins?: { name?: unknown }[] }
          >;
        }
      | undefined;
    const node = j?.nodes ? Object.values(j.nodes)[0] : undefined;
    if (node) {
      modules = [...(node.modules ?? []), ...(node.plugins ?? [])]
        .map((m) => m.name)
        .filter((n): n is string => typeof n === 'string');
      if (!info && typeof node.version === 'string') {
        const product = nodes.headers['x-elastic-product'] ?? root.headers['x-elastic-product'];
        info = {
          flavor: product === undefined && /^[12]\./.test(node.version) ? 'opensearch' : 'elasticsearch',
          version: node.version,
          ...parseVersion(node.version),
          source: 'nodes',
        };
      }
    }
  } else if (nodes.status === 401) {
    throw classify(nodes, 'GET /_nodes/_local');
  }
  // Neither answered usefully (e.g. 403 without the monitor privilege): assume Elasticsearch, find out
  // the missing field types when a template is refused.
  info ??= {
    flavor: 'elasticsearch',
    version: 'unknown',
    major: 0,
    minor: 0,
    source: 'assumed',
  };
  if (modules !== undefined) info.modules = modules;
  return info;
}

/** Field types the server is known to lack, from its flavour, version and modules. */
export function initialServerTypes(info: ServerInfo): ServerTypes {
  const unsupported = new Set<string>();
  const at = (maj: number, min: number) =>
    info.major > maj || (info.major === maj && info.minor >= min) || info.version === 'unknown';
  if (info.flavor === 'opensearch') {
    unsupported.add('flattened');
    if (!at(2, 7)) unsupported.add('flat_object');
    if (!at(2, 12)) unsupported.add('match_only_text');
    if (!at(2, 14)) unsupported.add('constant_keyword');
    if (!at(2, 15)) unsupported.add('wildcard');
  } else {
    unsupported.add('flat_object');
    if (info.modules !== undefined) {
      // These types come from modules of the default distribution; core-only builds lack them.
      const mods = new Set(info.modules);
      if (!mods.has('constant-keyword')) unsupported.add('constant_keyword');
      if (!mods.has('wildcard')) unsupported.add('wildcard');
      if (!mods.has('mapper-extras')) unsupported.add('match_only_text');
      if (info.major > 0 && info.major < 8 && !mods.has('flattened')) unsupported.add('flattened');
    }
  }
  return { flavor: info.flavor, unsupported };
}

export interface Template {
  kind: 'component' | 'index';
  name: string;
  body: Record<string, unknown>;
}

export interface TemplateSet {
  templates: Template[];
  degraded: Degradation[];
}

const META = { managed_by: TEMPLATE_PREFIX, version: TEMPLATE_VERSION };

/** Component templates first (index templates refer to them), then one index template per data stream. */
export function buildTemplates(server: ServerTypes, priority: number): TemplateSet {
  const degraded: Degradation[] = [];
  const ecsName = `${TEMPLATE_PREFIX}-ecs@mappings`;
  const settingsName = `${TEMPLATE_PREFIX}@settings`;
  const templates: Template[] = [
    {
      kind: 'component',
      name: settingsName,
      body: {
        version: TEMPLATE_VERSION,
        _meta: { ...META, description: 'Index settings of the authentik data streams' },
        template: { settings: { 'index.mapping.total_fields.limit': 2000 } },
      },
    },
    {
      kind: 'component',
      name: ecsName,
      body: {
        version: TEMPLATE_VERSION,
        _meta: { ...META, description: 'ECS fields of the authentik data streams' },
        template: {
          mappings: {
            // A string that looks like a date in one document and not in the next must not flip the type.
            date_detection: false,
            dynamic_templates: [
              {
                strings_as_keyword: {
                  match_mapping_type: 'string',
                  mapping: { type: 'keyword', ignore_above: 1024 },
                },
              },
            ],
            properties: buildProperties(ECS_FIELDS, server, degraded),
          },
        },
      },
    },
  ];
  const indexTemplates: Template[] = [];
  for (const { dataset, fields } of AUTHENTIK_DATASETS) {
    const componentName = `${TEMPLATE_PREFIX}-logs-${dataset}@mappings`;
    templates.push({
      kind: 'component',
      name: componentName,
      body: {
        version: TEMPLATE_VERSION,
        _meta: { ...META, description: `Fields of the logs-${dataset}-* data streams` },
        template: { mappings: { properties: buildProperties(fields, server, degraded) } },
      },
    });
    indexTemplates.push({
      kind: 'index',
      name: `${TEMPLATE_PREFIX}-logs-${dataset}`,
      body: {
        index_patterns: [`logs-${dataset}-*`],
        data_stream: {},
        priority,
        composed_of: [settingsName, ecsName, componentName],
        version: TEMPLATE_VERSION,
        _meta: {
          ...META,
          description: `authentik ${dataset.split('.')[1] ?? dataset} documents written by authentik-collector`,
          flavor: server.flavor,
          degraded_types: [...new Set(degraded.map((d) => `${d.wanted}->${d.used}`))].sort(),
        },
      },
    });
  }
  return { templates: [...templates, ...indexTemplates], degraded };
}

function templatePath(t: Pick<Template, 'kind' | 'name'>): string {
  return `/${t.kind === 'component' ? '_component_template' : '_index_template'}/${encodeURIComponent(t.name)}`;
}

/** Version of an installed template, undefined when absent. */
async function installedVersion(
  client: EsClient,
  t: Template,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const res = await client.request('GET', templatePath(t), { signal });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw classify(res, `GET ${templatePath(t)}`);
  const j = json(res) as
    | {
        component_templates?: { component_template?: { version?: unknown; _meta?: { version?: unknown } } }[];
        index_templates?: { index_template?: { version?: unknown; _meta?: { version?: unknown } } }[];
      }
    | undefined;
  const body =
    t.kind === 'component'
      ? j?.component_templates?.[0]?.component_template
      : j?.index_templates?.[0]?.index_template;
  if (!body) return undefined;
  const v = body.version ?? body._meta?.version;
  return typeof v === 'number' ? v : 0;
}

/** Types named as unknown in a mapper_parsing_exception ("No handler for type [x]", "mapper type [x]"). */
export function unknownTypesIn(body: Buffer | string): string[] {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:No handler for type|mapper type) \[([a-z_]+)\]/g)) out.add(m[1]!);
  if (/constant_keyword/.test(text) && /required parameter \[value\]/.test(text)) out.add('constant_keyword');
  return [...out];
}

export interface FleetTemplate {
  /** The data set whose data streams the template covers (`authentik.event`, ...). */
  dataset: string;
  /** Name of the Fleet-managed index template (`logs-authentik.event` when Kibana installed it). */
  template: string;
  /** Why it counts as Fleet's: `managed_by: fleet` or `package: authentik`. */
  reason: 'managed_by' | 'package';
}

export interface InstallReport {
  installed: string[];
  upToDate: string[];
  degraded: Degradation[];
  /** Types that turned out missing only when a template was refused. */
  discoveredUnsupported: string[];
  /**
   * Data streams covered by Fleet-managed index templates (Elastic's authentik integration assets):
   * none of our templates is installed or replaced for them.
   */
  fleetManaged: FleetTemplate[];
  /**
   * Our own index templates still present for Fleet-managed data streams (installed before the
   * integration assets) with a higher priority than Fleet's: they take precedence for new data streams.
   */
  shadowing: string[];
}

/** `*`-glob match of an index pattern (the only wildcard index templates know). */
export function indexPatternMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === name;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!name.startsWith(first) || name.length < first.length + last.length || !name.endsWith(last))
    return false;
  let at = first.length;
  const end = name.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const idx = name.indexOf(parts[i]!, at);
    if (idx < 0 || idx + parts[i]!.length > end) return false;
    at = idx + parts[i]!.length;
  }
  return at <= end;
}

interface ListedTemplate {
  name?: unknown;
  index_template?: { index_patterns?: unknown; priority?: unknown; _meta?: Record<string, unknown> };
}

function priorityOf(t: ListedTemplate): number {
  const p = t.index_template?.priority;
  return typeof p === 'number' ? p : 0;
}

/** Why `meta` marks a Fleet-managed template, or undefined. */
function fleetReason(meta: Record<string, unknown> | undefined): FleetTemplate['reason'] | undefined {
  if (!meta) return undefined;
  if (meta['managed_by'] === 'fleet') return 'managed_by';
  const pkg = meta['package'];
  if (pkg && typeof pkg === 'object' && (pkg as Record<string, unknown>)['name'] === 'authentik')
    return 'package';
  return undefined;
}

/**
 * Fleet-managed index templates that cover our data streams, probed as `logs-<dataset>-<namespace>` for
 * each of `namespaces` (Fleet's own patterns, `logs-authentik.event-*`, cover every namespace), and our
 * own index templates that would take precedence over them (a higher priority). One
 * `GET /_index_template`, trimmed with filter_path. A server that does not let us list templates (403)
 * has none we could detect.
 */
export async function findFleetTemplates(
  client: EsClient,
  namespaces: readonly string[] = ['default'],
  signal?: AbortSignal,
): Promise<{ fleet: FleetTemplate[]; ours: Map<string, string> }> {
  const res = await client.request(
    'GET',
    '/_index_template?filter_path=index_templates.name,index_templates.index_template.index_patterns,' +
      'index_templates.index_template._meta,index_templates.index_template.priority',
    { signal },
  );
  const fleet: FleetTemplate[] = [];
  const ours = new Map<string, string>();
  if (res.status === 403 || res.status === 404) return { fleet, ours };
  if (res.status !== 200) throw classify(res, 'GET /_index_template');
  const list = (json(res) as { index_templates?: ListedTemplate[] } | undefined)?.index_templates ?? [];
  for (const { dataset } of AUTHENTIK_DATASETS) {
    const probes = namespaces.map((ns) => `logs-${dataset}-${ns}`);
    const covering = list.filter((t) => {
      const patterns = t.index_template?.index_patterns;
      const pats = Array.isArray(patterns) ? patterns : [patterns];
      return pats.some((p) => typeof p === 'string' && probes.some((n) => indexPatternMatches(p, n)));
    });
    let fleetPriority: number | undefined;
    for (const t of covering) {
      const name = typeof t.name === 'string' ? t.name : '';
      const reason = name.startsWith(`${TEMPLATE_PREFIX}-`)
        ? undefined
        : fleetReason(t.index_template?._meta);
      if (reason === undefined) continue;
      if (!fleet.some((f) => f.dataset === dataset)) fleet.push({ dataset, template: name, reason });
      fleetPriority = Math.max(fleetPriority ?? 0, priorityOf(t));
    }
    if (fleetPriority === undefined) continue;
    for (const t of covering) {
      const name = typeof t.name === 'string' ? t.name : '';
      if (name.startsWith(`${TEMPLATE_PREFIX}-`) && priorityOf(t) > fleetPriority) ours.set(dataset, name);
    }
  }
  return { fleet, ours };
}

/**
 * Installs the templates that are missing or older than {@link TEMPLATE_VERSION}. When the server refuses a
 * mapping for an unknown field type, that type is degraded and the templates are rebuilt and re-sent.
 * Data streams covered by a Fleet-managed index template (`_meta.managed_by: fleet` or
 * `_meta.package.name: authentik`, i.e. Elastic's authentik integration assets installed from Kibana) are
 * left alone: neither their index template nor their component template of ours is installed or
 * replaced (see {@link InstallReport.fleetManaged}). Throws {@link SetupError}.
 */
export async function installTemplates(
  client: EsClient,
  server: ServerTypes,
  priority: number,
  signal?: AbortSignal,
  /** Namespaces probed for Fleet-managed templates (`default` is always probed). */
  namespaces: readonly string[] = [],
): Promise<InstallReport> {
  const report: InstallReport = {
    installed: [],
    upToDate: [],
    degraded: [],
    discoveredUnsupported: [],
    fleetManaged: [],
    shadowing: [],
  };
  // Beside Elastic's integration: data streams whose templates Fleet manages are left to Fleet.
  const { fleet, ours } = await findFleetTemplates(client, [...new Set(['default', ...namespaces])], signal);
  report.fleetManaged = fleet;
  const fleetSets = new Set(fleet.map((f) => f.dataset));
  for (const f of fleet) {
    const own = ours.get(f.dataset);
    if (own !== undefined) report.shadowing.push(own);
  }
  const skipped = new Set<string>();
  for (const { dataset } of AUTHENTIK_DATASETS) {
    if (!fleetSets.has(dataset)) continue;
    skipped.add(`${TEMPLATE_PREFIX}-logs-${dataset}`);
    skipped.add(`${TEMPLATE_PREFIX}-logs-${dataset}@mappings`);
  }
  if (fleetSets.size === AUTHENTIK_DATASETS.length) {
    // Nothing of ours would use the shared components.
    skipped.add(`${TEMPLATE_PREFIX}@settings`);
    skipped.add(`${TEMPLATE_PREFIX}-ecs@mappings`);
  }
  for (let round = 0; round < 8; round++) {
    const set = buildTemplates(server, priority);
    report.degraded = set.degraded;
    let retryRound = false;
    for (const t of set.templates) {
      if (skipped.has(t.name)) continue;
      if (report.installed.includes(t.name) || report.upToDate.includes(t.name)) continue;
      const have = await installedVersion(client, t, signal);
      if (have !== undefined && have >= TEMPLATE_VERSION) {
        report.upToDate.push(t.name);
        continue;
      }
      const res = await client.request('PUT', templatePath(t), {
        body: JSON.stringify(t.body),
        headers: { 'content-type': 'application/json' },
        signal,
      });
      if (res.status === 200) {
        report.installed.push(t.name);
        continue;
      }
      if (res.status === 400) {
        const unknown = unknownTypesIn(res.body).filter((x) => !server.unsupported.has(x));
        if (unknown.length > 0) {
          for (const x of unknown) {
            server.unsupported.add(x);
            report.discoveredUnsupported.push(x);
          }
          retryRound = true;
          break;
        }
        const e = parseEsError(res.body);
        if (e.type === 'illegal_argument_exception' && /priority/.test(e.reason ?? '')) {
          throw new SetupError(
            'conflict',
            `index template ${t.name} overlaps an existing template with the same priority ` +
              `(${describeEsError(res.body)}); set setup.template_priority to another value`,
            { status: 400 },
          );
        }
      }
      throw classify(res, `PUT ${templatePath(t)}`);
    }
    if (!retryRound) return report;
  }
  throw new SetupError('invalid', 'templates still refused after degrading every optional field type');
}
