/**
 * Field types of the authentik data streams, as documented by Elastic's authentik integration (fields
 * files) and ECS 8.11, and their translation into a mapping for a given server (Elasticsearch or OpenSearch,
 * with or without the field types that live outside the core).
 */

/** Logical field types. Non-core ones are degraded per server (see {@link resolveField}). */
export type FieldType =
  | 'keyword'
  | 'keyword_not_indexed'
  | 'ip'
  | 'date'
  | 'boolean'
  | 'long'
  | 'float'
  | 'geo_point'
  | 'text'
  | 'match_only_text'
  | 'wildcard'
  | 'flattened'
  | 'constant_keyword'
  /** Kept in `_source` only, whatever its shape (string or object): `object` with `enabled: false`. */
  | 'unindexed';

export interface FieldDef {
  type: FieldType;
  /** For constant_keyword: the value every document of the stream has. */
  value?: string;
}

type FieldTable = Record<string, FieldType | FieldDef>;

/** ECS fields the authentik pipelines write (spec §d.4) plus the common ones a log document may carry. */
export const ECS_FIELDS: FieldTable = {
  '@timestamp': 'date',
  'ecs.version': 'keyword',
  message: 'match_only_text',
  tags: 'keyword',
  'data_stream.type': { type: 'constant_keyword', value: 'logs' },
  'data_stream.namespace': 'constant_keyword',
  'event.module': { type: 'constant_keyword', value: 'authentik' },
  'event.kind': 'keyword',
  'event.action': 'keyword',
  'event.category': 'keyword',
  'event.type': 'keyword',
  'event.outcome': 'keyword',
  'event.id': 'keyword',
  'event.code': 'keyword',
  'event.provider': 'keyword',
  'event.reason': 'keyword',
  'event.created': 'date',
  'event.ingested': 'date',
  'event.start': 'date',
  'event.end': 'date',
  'event.duration': 'long',
  'event.sequence': 'long',
  'event.severity': 'long',
  'event.original': 'keyword_not_indexed',
  'event.agent_id_status': 'keyword',
  'observer.vendor': 'keyword',
  'observer.product': 'keyword',
  'observer.version': 'keyword',
  'observer.hostname': 'keyword',
  'source.ip': 'ip',
  'source.address': 'keyword',
  'source.port': 'long',
  'source.domain': 'keyword',
  'source.geo.location': 'geo_point',
  'source.geo.city_name': 'keyword',
  'source.geo.continent_code': 'keyword',
  'source.geo.continent_name': 'keyword',
  'source.geo.country_iso_code': 'keyword',
  'source.geo.country_name': 'keyword',
  'source.geo.region_iso_code': 'keyword',
  'source.geo.region_name': 'keyword',
  'source.geo.postal_code': 'keyword',
  'source.geo.timezone': 'keyword',
  'source.as.number': 'long',
  'source.as.organization.name': 'keyword',
  'client.ip': 'ip',
  'related.ip': 'ip',
  'related.user': 'keyword',
  'related.hosts': 'keyword',
  'http.request.method': 'keyword',
  'http.request.id': 'keyword',
  'http.response.status_code': 'long',
  'url.path': 'wildcard',
  'url.original': 'wildcard',
  'url.domain': 'keyword',
  'url.query': 'keyword',
  'url.scheme': 'keyword',
  'user_agent.original': 'keyword',
  'user_agent.name': 'keyword',
  'user_agent.version': 'keyword',
  'user_agent.os.name': 'keyword',
  'user_agent.os.version': 'keyword',
  'user_agent.os.full': 'keyword',
  'user_agent.device.name': 'keyword',
  'user.id': 'keyword',
  'user.name': 'keyword',
  'user.full_name': 'keyword',
  'user.email': 'keyword',
  'user.domain': 'keyword',
  'user.roles': 'keyword',
  'user.group.id': 'keyword',
  'user.group.name': 'keyword',
  'user.target.id': 'keyword',
  'user.target.name': 'keyword',
  'user.effective.id': 'keyword',
  'user.effective.name': 'keyword',
  'group.id': 'keyword',
  'group.name': 'keyword',
  'group.domain': 'keyword',
  'error.message': 'match_only_text',
  'error.code': 'keyword',
  'error.id': 'keyword',
  'error.type': 'keyword',
  'error.stack_trace': 'wildcard',
  'log.level': 'keyword',
  'log.logger': 'keyword',
  'log.offset': 'long',
  'input.type': 'keyword',
  'agent.id': 'keyword',
  'agent.name': 'keyword',
  'agent.type': 'keyword',
  'agent.version': 'keyword',
  'agent.ephemeral_id': 'keyword',
  'host.name': 'keyword',
  'host.hostname': 'keyword',
  'service.name': 'keyword',
  'service.version': 'keyword',
  'service.environment': 'keyword',
  'trace.id': 'keyword',
  'span.id': 'keyword',
};

const MODEL_REF = ['app', 'model_name', 'name', 'pk'];

function ref(prefix: string): FieldTable {
  return Object.fromEntries(MODEL_REF.map((k) => [`${prefix}.${k}`, 'keyword' as const]));
}

/** `authentik.event.*` (spec §d.1). */
export const AUTHENTIK_EVENT_FIELDS: FieldTable = {
  'authentik.event.action': 'keyword',
  'authentik.event.app': 'keyword',
  ...ref('authentik.event.brand'),
  'authentik.event.client_ip': 'ip',
  'authentik.event.context.auth_method': 'keyword',
  ...ref('authentik.event.context.authorized_application'),
  ...ref('authentik.event.context.binding'),
  'authentik.event.context.created': 'boolean',
  'authentik.event.context.diff': 'flattened',
  'authentik.event.context.email': 'keyword',
  'authentik.event.context.expression': 'keyword',
  // Elastic's package declares `context.flow` a keyword, and authentik sends it as a string (the flow's
  // pk) in `authorize_application` events, but as a model reference object ({app, model_name, name, pk})
  // in `flow_execution` events. No indexed type takes both; keep it in _source unindexed so neither
  // shape is refused.
  'authentik.event.context.flow': 'unindexed',
  ...Object.fromEntries(
    [
      'client_id',
      'format_result',
      'include_groups',
      'next',
      'page_size',
      'query',
      'redirect_uri',
      'response_type',
      'scope',
      'state',
    ].map((k) => [`authentik.event.context.http_request.args.${k}`, 'keyword' as const]),
  ),
  'authentik.event.context.http_request.method': 'keyword',
  'authentik.event.context.http_request.path': 'keyword',
  'authentik.event.context.http_request.user_agent': 'keyword',
  'authentik.event.context.message': 'keyword',
  ...ref('authentik.event.context.model'),
  'authentik.event.context.name': 'keyword',
  'authentik.event.context.new_version': 'keyword',
  'authentik.event.context.password': 'keyword',
  'authentik.event.context.policy_uuid': 'keyword',
  ...ref('authentik.event.context.request.context.event'),
  ...ref('authentik.event.context.request.obj'),
  'authentik.event.context.request.user.email': 'keyword',
  'authentik.event.context.request.user.pk': 'keyword',
  'authentik.event.context.request.user.username': 'keyword',
  'authentik.event.context.result.passing': 'boolean',
  'authentik.event.context.scopes': 'keyword',
  ...ref('authentik.event.context.secret'),
  ...ref('authentik.event.context.stage'),
  ...ref('authentik.event.context.token'),
  'authentik.event.context.username': 'keyword',
  'authentik.event.created': 'date',
  'authentik.event.expires': 'date',
  'authentik.event.pk': 'keyword',
  'authentik.event.user.email': 'keyword',
  'authentik.event.user.is_anonymous': 'boolean',
  'authentik.event.user.on_behalf_of.email': 'keyword',
  'authentik.event.user.on_behalf_of.pk': 'keyword',
  'authentik.event.user.on_behalf_of.username': 'keyword',
  'authentik.event.user.pk': 'keyword',
  'authentik.event.user.username': 'keyword',
};

/** `authentik.group.*` (spec §d.2). */
export const AUTHENTIK_GROUP_FIELDS: FieldTable = {
  'authentik.group.attributes.ldap_uniq': 'keyword',
  'authentik.group.attributes.notes': 'keyword',
  'authentik.group.is_superuser': 'boolean',
  'authentik.group.name': 'keyword',
  'authentik.group.num_pk': 'long',
  'authentik.group.parent': 'keyword',
  'authentik.group.parent_name': 'keyword',
  'authentik.group.pk': 'keyword',
  'authentik.group.roles_obj.name': 'keyword',
  'authentik.group.roles_obj.pk': 'keyword',
  'authentik.group.roles': 'keyword',
  'authentik.group.users': 'keyword',
};

/** `authentik.user.*` (spec §d.3). */
export const AUTHENTIK_USER_FIELDS: FieldTable = {
  'authentik.user.attributes.ldap_uniq': 'keyword',
  'authentik.user.attributes.sn': 'keyword',
  'authentik.user.attributes.upn': 'keyword',
  'authentik.user.avatar': 'keyword',
  'authentik.user.email': 'keyword',
  'authentik.user.groups': 'keyword',
  'authentik.user.is_active': 'boolean',
  'authentik.user.is_superuser': 'boolean',
  'authentik.user.last_login': 'date',
  'authentik.user.name': 'keyword',
  'authentik.user.path': 'keyword',
  'authentik.user.pk': 'keyword',
  'authentik.user.type': 'keyword',
  'authentik.user.uid': 'keyword',
  'authentik.user.username': 'keyword',
  'authentik.user.uuid': 'keyword',
};

/** `authentik.change.*`: identity change records of processors/authentik_changes (one type per field). */
export const AUTHENTIK_CHANGE_FIELDS: FieldTable = {
  'user.target.full_name': 'keyword',
  'user.target.email': 'keyword',
  'user.target.domain': 'keyword',
  'authentik.change.entity': 'keyword',
  'authentik.change.listing': 'keyword',
  'authentik.change.instance': 'keyword',
  'authentik.change.events_shipped': 'long',
  'authentik.change.group_is_superuser': 'boolean',
  'authentik.change.via_groups.id': 'keyword',
  'authentik.change.via_groups.name': 'keyword',
  ...Object.fromEntries(
    ['before', 'after'].flatMap((side) =>
      Object.entries({
        username: 'keyword',
        name: 'keyword',
        email: 'keyword',
        type: 'keyword',
        is_active: 'boolean',
        is_superuser: 'boolean',
        groups: 'keyword',
        group_names: 'keyword',
        parents: 'keyword',
        parent_names: 'keyword',
        password_change_date: 'date',
      } satisfies FieldTable).map(([k, t]) => [`authentik.change.${side}.${k}`, t]),
    ),
  ),
};

function withDataset(dataset: string, fields: FieldTable): FieldTable {
  return {
    'data_stream.dataset': { type: 'constant_keyword', value: dataset },
    'event.dataset': { type: 'constant_keyword', value: dataset },
    ...fields,
  };
}

/**
 * The three authentik data streams and their own fields (`data_stream.dataset` / `event.dataset` are
 * constant per stream, so they are declared here with their value rather than in the shared ECS part).
 */
export const AUTHENTIK_DATASETS: { dataset: string; fields: FieldTable }[] = [
  { dataset: 'authentik.event', fields: withDataset('authentik.event', AUTHENTIK_EVENT_FIELDS) },
  { dataset: 'authentik.user', fields: withDataset('authentik.user', AUTHENTIK_USER_FIELDS) },
  { dataset: 'authentik.group', fields: withDataset('authentik.group', AUTHENTIK_GROUP_FIELDS) },
  { dataset: 'authentik.change', fields: withDataset('authentik.change', AUTHENTIK_CHANGE_FIELDS) },
];

/** Server field types that may be missing (plugin/module/X-Pack types). */
export type OptionalServerType =
  'constant_keyword' | 'wildcard' | 'flattened' | 'flat_object' | 'match_only_text';

export interface ServerTypes {
  flavor: 'elasticsearch' | 'opensearch';
  /** Server types known or found to be missing. */
  unsupported: Set<string>;
}

/** One degradation: a field that got a weaker type than documented. */
export interface Degradation {
  field: string;
  wanted: string;
  used: string;
}

function normalize(d: FieldType | FieldDef): FieldDef {
  return typeof d === 'string' ? { type: d } : d;
}

/**
 * The mapping of one field on the given server. `wanted` is the type the documentation asks for (with the
 * server's name for it), `used` what the server gets.
 */
export function resolveField(
  def: FieldType | FieldDef,
  server: ServerTypes,
): { mapping: Record<string, unknown>; wanted: string; used: string } {
  const d = normalize(def);
  const has = (t: string) => !server.unsupported.has(t);
  const same = (mapping: Record<string, unknown>) => ({
    mapping,
    wanted: String(mapping['type']),
    used: String(mapping['type']),
  });
  switch (d.type) {
    case 'keyword':
      return same({ type: 'keyword', ignore_above: 1024 });
    case 'keyword_not_indexed':
      return same({ type: 'keyword', index: false, doc_values: false });
    case 'text':
    case 'ip':
    case 'date':
    case 'boolean':
    case 'long':
    case 'float':
    case 'geo_point':
      return same({ type: d.type });
    case 'match_only_text':
      return has('match_only_text')
        ? same({ type: 'match_only_text' })
        : { mapping: { type: 'text' }, wanted: 'match_only_text', used: 'text' };
    case 'wildcard':
      return has('wildcard')
        ? same({ type: 'wildcard' })
        : { mapping: { type: 'keyword', ignore_above: 8191 }, wanted: 'wildcard', used: 'keyword' };
    case 'unindexed':
      return same({ type: 'object', enabled: false });
    case 'flattened': {
      const native = server.flavor === 'opensearch' ? 'flat_object' : 'flattened';
      if (has(native)) return same({ type: native });
      return { mapping: { type: 'object', enabled: false }, wanted: native, used: 'object (enabled: false)' };
    }
    case 'constant_keyword': {
      // OpenSearch's constant_keyword requires its value up front; without one, keyword it is.
      const usable = has('constant_keyword') && (server.flavor === 'elasticsearch' || d.value !== undefined);
      if (usable) {
        return same(
          d.value === undefined ? { type: 'constant_keyword' } : { type: 'constant_keyword', value: d.value },
        );
      }
      return {
        mapping: { type: 'keyword', ignore_above: 1024 },
        wanted: 'constant_keyword',
        used: 'keyword',
      };
    }
  }
}

/**
 * `properties` for a table of dotted field names. Degradations are appended to `degraded`.
 */
export function buildProperties(
  fields: FieldTable,
  server: ServerTypes,
  degraded: Degradation[],
): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [path, def] of Object.entries(fields)) {
    const { mapping, wanted, used } = resolveField(def, server);
    if (wanted !== used) degraded.push({ field: path, wanted, used });
    const parts = path.split('.');
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const key = parts[i]!;
      let child = node[key] as { properties?: Record<string, unknown> } | undefined;
      if (child === undefined) {
        child = { properties: {} };
        node[key] = child;
      }
      child.properties ??= {};
      node = child.properties;
    }
    node[parts[parts.length - 1]!] = mapping;
  }
  return root;
}
