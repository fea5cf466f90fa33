/**
 * The detection rules of detections/ against the real search servers, end to end: the scenario
 * generator (test/scenarios/attacks.ts) writes every attack into one authentik emulator and a benign
 * baseline of the same size into another; one collector (two pipelines, namespaces `attack` and
 * `baseline`, identity change records included) ships both into every available server; then every
 * converted query runs where the server runs its language:
 *
 * | language | OpenSearch 2.19 | Elasticsearch 8.19 |
 * | --- | --- | --- |
 * | Lucene `query_string` (single-event rules, pySigma) | yes | yes |
 * | query DSL with aggregations (count correlations) | yes | yes |
 * | ES|QL (pySigma and hand-written) | no | yes |
 * | EQL (pySigma and hand-written sequences) | no | yes |
 *
 * Each alerting rule must fire on its own scenario in every language that runs on the server, and no
 * alerting rule may fire on the baseline. A table rule × scenario is printed per server.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startEmulator } from '../emulator/index.ts';
import type { Emulator } from '../emulator/index.ts';
import { buildWorld } from '../scenarios/attacks.ts';
import type { World } from '../scenarios/attacks.ts';
import { Cli, GEOIP, ROOT, telemetryYaml, tempDir, waitUntil, writeText } from './helpers.ts';

interface Server {
  name: string;
  url: string;
  flavor: 'opensearch' | 'elasticsearch';
  /** Modules and plugins of the node (ES|QL and EQL are the x-pack-esql / x-pack-eql modules). */
  modules: Set<string>;
}
const servers: Server[] = [];
const os = (process.env['OPENSEARCH_URL'] ?? '').split(',')[0]?.trim();
const es = (process.env['ES_TEST_URLS'] ?? '').split(',')[0]?.trim();
if (os) servers.push({ name: 'OpenSearch', url: os, flavor: 'opensearch', modules: new Set() });
if (es) servers.push({ name: 'Elasticsearch', url: es, flavor: 'elasticsearch', modules: new Set() });
const SKIP =
  servers.length === 0
    ? 'ES_TEST_URLS / OPENSEARCH_URL not set: start a server with `eval "$(test/peers/opensearch.sh start)"` (npm test does this)'
    : !existsSync(GEOIP)
      ? `${GEOIP} is missing (the GeoIP test databases of ../shared): the new-country rule needs source.geo`
      : false;

/* eslint-disable @typescript-eslint/no-explicit-any -- walking search-server response JSON */

const DETECTIONS = join(ROOT, 'detections');
interface ManifestRule {
  file: string;
  name: string | null;
  title: string;
  level: string;
  tags: string[];
  index?: string;
  correlation?: { type: string; rules: string[] };
  queries: Record<string, string>;
  handwritten?: Record<string, string>;
}
const manifest = (): ManifestRule[] =>
  (JSON.parse(readFileSync(join(DETECTIONS, 'converted', 'rules.json'), 'utf8')) as { rules: ManifestRule[] })
    .rules;
const stem = (r: ManifestRule) => r.file.replace(/^rules\//, '').replace(/\.yml$/, '');

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: any }> {
  const res = await request(`${base}${path}`, {
    method: method as 'GET',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { raw: text };
  }
  return { status: res.statusCode, json };
}

/** Strings of a document or result that can name a scenario's entity. */
function values(x: unknown, out: Set<string>): Set<string> {
  if (typeof x === 'string' || typeof x === 'number') out.add(String(x));
  else if (Array.isArray(x)) for (const v of x) values(v, out);
  else if (x && typeof x === 'object') for (const v of Object.values(x)) values(v, out);
  return out;
}
function docValues(src: any): Set<string> {
  const out = new Set<string>();
  values(src?.user?.name, out);
  values(src?.user?.target?.name, out);
  values(src?.source?.ip, out);
  values(src?.related?.user, out);
  values(src?.group?.name, out);
  return out;
}

const stripComments = (q: string) =>
  q
    .split('\n')
    .filter((l) => !l.trim().startsWith('//'))
    .join('\n')
    .trim();

/** `logs-authentik.event-*` → the namespace's stream. */
const ns = (q: string, namespace: string) =>
  q.replace(/logs-authentik\.(event|change)-\*/g, `logs-authentik.$1-${namespace}`);

const letter = (lang: string) => ({ lucene: 'L', dsl: 'D', json: 'D', esql: 'Q', eql: 'E' })[lang] ?? '?';

interface Trigger {
  parent_bucket_path: string;
  buckets_path: Record<string, string>;
  script: string;
}

/** A bucket's value at a buckets_path (`_count`, `a._count`, `a.b`, `a`), as a monitor resolves it. */
function bucketValue(b: any, path: string): number | null {
  if (path === '_count') return b.doc_count as number;
  const parts = path.split('.');
  let v: any = b;
  for (const p of parts) {
    if (p === '_count') v = v?.doc_count;
    else if (p === '_bucket_count') v = Array.isArray(v?.buckets) ? v.buckets.length : null;
    else v = v?.[p];
  }
  if (v && typeof v === 'object') v = v.value;
  return typeof v === 'number' ? v : null;
}

/**
 * Evaluates a bucket-level trigger script of the shipped queries on one bucket. The scripts use only
 * `params.x`, numbers, `null`, comparisons, `&&` and `||` (&& binds tighter), which is also valid Painless.
 */
function bucketTrigger(t: Trigger, b: any): boolean {
  const params: Record<string, number | null> = {};
  for (const [k, p] of Object.entries(t.buckets_path)) params[k] = bucketValue(b, p);
  const term = (x: string): number | null => {
    x = x.trim();
    if (x === 'null') return null;
    if (x.startsWith('params.')) return params[x.slice(7)] ?? null;
    const n = Number(x);
    if (!Number.isFinite(n)) throw new Error(`unexpected term ${x} in ${t.script}`);
    return n;
  };
  const cmp = (c: string): boolean => {
    const m = /^(.+?)\s*(>=|<=|==|!=|>|<)\s*(.+)$/.exec(c.trim());
    if (!m) throw new Error(`unexpected comparison ${c} in ${t.script}`);
    const l = term(m[1]!);
    const r = term(m[3]!);
    if (m[2] === '==') return l === r;
    if (m[2] === '!=') return l !== r;
    if (l === null || r === null) return false;
    return { '>=': l >= r, '<=': l <= r, '>': l > r, '<': l < r }[m[2] as '>='];
  };
  return t.script.split('||').some((conj) => conj.split('&&').every(cmp));
}

interface Outcome {
  lang: string;
  hits: number;
  values: Set<string>;
  error?: string;
}

async function evaluate(
  server: Server,
  rule: ManifestRule,
  namespace: string,
  byName: Map<string, ManifestRule>,
): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const read = (p: string) => readFileSync(join(DETECTIONS, p), 'utf8');
  const es = server.flavor === 'elasticsearch';
  const esql = es && server.modules.has('x-pack-esql');
  const eql = es && server.modules.has('x-pack-eql');
  const sources: [string, string][] = rule.handwritten
    ? Object.entries(rule.handwritten).map(([k, p]) => [k, p])
    : Object.entries(rule.queries).map(([k, p]) => [k, `converted/${p.replace(/^converted\//, '')}`]);
  for (const [lang, path] of sources) {
    const text = read(path);
    if (lang === 'lucene') {
      const index = ns(rule.index!, namespace);
      const r = await http(server.url, 'POST', `/${index}/_search?ignore_unavailable=true`, {
        size: 500,
        query: { query_string: { query: text.trim() } },
      });
      if (r.status !== 200)
        out.push({ lang, hits: 0, values: new Set(), error: JSON.stringify(r.json).slice(0, 300) });
      else {
        const hits = r.json.hits.hits as { _source: unknown }[];
        const v = new Set<string>();
        for (const h of hits) for (const x of docValues(h._source)) v.add(x);
        out.push({ lang, hits: hits.length, values: v });
      }
    } else if (lang === 'dsl' || lang === 'json') {
      const m = /(?:index|indices) (logs-[^\s);]+)/.exec(text);
      const index = ns(m ? m[1]! : byName.get(rule.correlation!.rules[0]!)!.index!, namespace);
      const {
        _trigger: trigger,
        _comment: _c,
        ...body
      } = JSON.parse(text) as { _trigger: Trigger; _comment?: string };
      const r = await http(server.url, 'POST', `/${index}/_search?ignore_unavailable=true`, body);
      if (r.status !== 200)
        out.push({ lang, hits: 0, values: new Set(), error: JSON.stringify(r.json).slice(0, 300) });
      else {
        const buckets = (r.json.aggregations?.[trigger.parent_bucket_path]?.buckets ?? []) as {
          key: unknown;
        }[];
        const fired = buckets.filter((b) => bucketTrigger(trigger, b));
        out.push({ lang, hits: fired.length, values: new Set(fired.map((b) => String(b.key))) });
      }
    } else if (lang === 'esql' && esql) {
      const r = await http(server.url, 'POST', '/_query', { query: ns(stripComments(text), namespace) });
      if (r.status !== 200)
        out.push({ lang, hits: 0, values: new Set(), error: JSON.stringify(r.json).slice(0, 400) });
      else {
        const rows = (r.json.values ?? []) as unknown[][];
        out.push({ lang, hits: rows.length, values: values(rows, new Set()) });
      }
    } else if (lang === 'eql' && eql) {
      const m = /(?:index|indices) (logs-[^\s);]+)/.exec(text);
      const indices = m ? m[1]! : rule.index!;
      const query = stripComments(text);
      const r = await http(
        server.url,
        'POST',
        `/${ns(indices, namespace)}/_eql/search?ignore_unavailable=true`,
        {
          query,
          size: 100,
        },
      );
      if (r.status !== 200)
        out.push({ lang, hits: 0, values: new Set(), error: JSON.stringify(r.json).slice(0, 400) });
      else {
        const events = ((r.json.hits?.events ?? []) as { _source: unknown }[]).concat(
          ((r.json.hits?.sequences ?? []) as { events: { _source: unknown }[] }[]).flatMap((s) => s.events),
        );
        const n = (r.json.hits?.sequences ?? r.json.hits?.events ?? []).length as number;
        const v = new Set<string>();
        for (const e of events) for (const x of docValues(e._source)) v.add(x);
        out.push({ lang, hits: n, values: v });
      }
    }
  }
  return out;
}

describe('Sigma rules', () => {
  test('pass the pySigma validators and detections/converted/ is what pySigma makes of them', () => {
    // detections/convert.sh installs the pinned pySigma into a cached virtualenv (PyPI) on first use.
    const r = spawnSync('bash', [join(DETECTIONS, 'convert.sh'), '--check'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    console.log(`${r.stdout}${r.stderr}`.trim());
    assert.equal(r.status, 0, `detections/convert.sh --check failed:\n${r.stdout}\n${r.stderr}`);
  });
});

describe('detection rules against the real search servers', { skip: SKIP }, () => {
  test('each rule fires on its scenario and not on the baseline', async () => {
    const t = await tempDir('detections');
    cleanups.push(t.cleanup);
    const emus: Record<'attack' | 'baseline', Emulator> = {
      attack: await startEmulator({ events: 0, users: 30, groups: 8, seed: 21 }),
      baseline: await startEmulator({ events: 0, users: 30, groups: 8, seed: 21 }),
    };
    cleanups.push(
      () => emus.attack.close(),
      () => emus.baseline.close(),
    );
    const worlds: Record<'attack' | 'baseline', World> = {
      attack: buildWorld(emus.attack, false),
      baseline: buildWorld(emus.baseline, true),
    };
    for (const s of servers) {
      const r = await http(
        s.url,
        'GET',
        '/_nodes/_local?filter_path=nodes.*.modules.name,nodes.*.plugins.name',
      );
      for (const node of Object.values((r.json.nodes ?? {}) as Record<string, any>)) {
        for (const m of [...(node.modules ?? []), ...(node.plugins ?? [])]) s.modules.add(String(m.name));
      }
    }
    // Namespaces of this run: data streams of earlier runs stay (a core-only Elasticsearch has no data
    // stream API to delete them), so every run writes to streams of its own.
    const run = Date.now().toString(36);
    const NS = { attack: `attack${run}`, baseline: `baseline${run}` };
    const tel = await telemetryYaml();
    const exporters = servers
      .map((s, i) => `  elasticsearch/s${i}: { endpoints: [${s.url}], retry: { initial_interval: 200ms } }`)
      .join('\n');
    const exporterIds = servers.map((_, i) => `elasticsearch/s${i}`).join(', ');
    const world = (n: string) => `  authentik/${n}:
    endpoint: ${emus[n as 'attack'].url}
    token: emulator-token
    storage: file_storage
    events: { interval: 1s, backfill: all }
    users: { interval: 2s, changes_interval: 1s }
    groups: { interval: 2s }
    api_retry: { initial_interval: 200ms, max_interval: 1s }`;
    const cfg = await writeText(
      t.dir,
      'collector.yaml',
      `extensions:
  file_storage: { directory: ./state }
receivers:
${world('attack')}
${world('baseline')}
processors:
  authentik_changes/attack: { storage: file_storage, storage_key: changes-attack, namespace: ${NS.attack} }
  authentik_changes/baseline: { storage: file_storage, storage_key: changes-baseline, namespace: ${NS.baseline} }
  authentik_ecs/attack: { namespace: ${NS.attack}, geoip: { city_database: ${GEOIP}/GeoLite2-City-Test.mmdb } }
  authentik_ecs/baseline: { namespace: ${NS.baseline}, geoip: { city_database: ${GEOIP}/GeoLite2-City-Test.mmdb } }
exporters:
${exporters}
service:
  extensions: [file_storage]
${tel.yaml}  pipelines:
    logs/attack: { receivers: [authentik/attack], processors: [authentik_changes/attack, authentik_ecs/attack], exporters: [${exporterIds}] }
    logs/baseline: { receivers: [authentik/baseline], processors: [authentik_changes/baseline, authentik_ecs/baseline], exporters: [${exporterIds}] }
`,
    );
    const cli = new Cli(['run', '--config', cfg, '--log-format', 'json'], { cwd: t.dir });
    cleanups.push(() => cli.kill());
    const listings = (what: string, id: string) =>
      cli.logLines().filter((l) => l['msg'] === `${what}: full listing delivered` && l['id'] === id).length;
    // Two complete listings of each receiver: the changes processors have their baseline.
    await waitUntil(
      () =>
        ['authentik/attack', 'authentik/baseline'].every(
          (id) => listings('users', id) >= 2 && listings('groups', id) >= 2,
        ),
      60_000,
      'baseline listings',
      () => cli.stderr.slice(-3000),
    );

    const count = async (s: Server, index: string, q?: string) => {
      await http(s.url, 'POST', `/${index}/_refresh?ignore_unavailable=true`);
      const r = await http(
        s.url,
        'POST',
        `/${index}/_count?ignore_unavailable=true`,
        q ? { query: { query_string: { query: q } } } : undefined,
      );
      return r.status === 200 ? (r.json.count as number) : 0;
    };
    worlds.attack.directory();
    worlds.baseline.directory();
    for (const s of servers) {
      await waitUntil(
        async () =>
          (await count(
            s,
            `logs-authentik.change-${NS.attack}`,
            'event.action:(user\\-deactivated OR group\\-superuser\\-granted OR user\\-added\\-to\\-group)',
          )) >= 3 &&
          (await count(s, `logs-authentik.change-${NS.baseline}`, 'event.action:user\\-deactivated')) >= 1,
        60_000,
        `change records in ${s.name}`,
        () => cli.stderr.slice(-2000),
        500,
      );
    }
    // The deactivated user's login happens after the deactivation.
    await new Promise((r) => setTimeout(r, 50));
    worlds.attack.afterDirectory();
    worlds.baseline.afterDirectory();
    for (const s of servers) {
      for (const n of ['attack', 'baseline'] as const) {
        await waitUntil(
          async () => (await count(s, `logs-authentik.event-${NS[n]}`)) === worlds[n].events,
          60_000,
          `${worlds[n].events} ${n} events in ${s.name}`,
          () => cli.stderr.slice(-2000),
          500,
        );
      }
    }
    assert.equal((await cli.stop()).code, 0);

    const rules = manifest();
    const byName = new Map(rules.filter((r) => r.name).map((r) => [r.name!, r]));
    const alerting = rules.filter((r) => r.level !== 'informational');
    const scenarios = worlds.attack.scenarios;
    const failures: string[] = [];
    for (const s of servers) {
      const rows: string[][] = [];
      for (const rule of alerting) {
        const attack = await evaluate(s, rule, NS.attack, byName);
        const base = await evaluate(s, rule, NS.baseline, byName);
        const row = [stem(rule).replace(/^authentik_/, '')];
        const ran = attack.map((o) => o.lang);
        for (const sc of scenarios) {
          const fired = attack
            .filter((o) => [...sc.markers].some((m) => o.values.has(m)) && o.hits > 0)
            .map((o) => o.lang);
          row.push(ran.length === 0 ? 'n/a' : fired.length === 0 ? '.' : fired.map(letter).join(''));
          if (sc.rule === stem(rule)) {
            for (const o of attack) {
              if (o.error) failures.push(`${s.name} ${stem(rule)} ${o.lang}: ${o.error}`);
              else if (!fired.includes(o.lang))
                failures.push(`${s.name} ${stem(rule)} ${o.lang}: did not fire on scenario ${sc.id}`);
            }
          }
        }
        const bfired = base.filter((o) => o.hits > 0);
        row.push(
          ran.length === 0
            ? 'n/a'
            : bfired.length === 0
              ? '.'
              : bfired.map((o) => `${letter(o.lang)}${o.hits}`).join(''),
        );
        for (const o of base) {
          if (o.error) failures.push(`${s.name} ${stem(rule)} ${o.lang} (baseline): ${o.error}`);
          else if (o.hits > 0)
            failures.push(`${s.name} ${stem(rule)} ${o.lang}: fired ${o.hits}× on the baseline`);
        }
        rows.push(row);
      }
      const head = ['rule \\ scenario', ...scenarios.map((x) => x.id), 'BASELINE'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
      console.log(
        `\n${s.name} (${s.url}; runs Lucene, query DSL${s.modules.has('x-pack-esql') ? ', ES|QL' : ''}${s.modules.has('x-pack-eql') ? ', EQL' : ''}${s.flavor === 'elasticsearch' && !s.modules.has('x-pack-esql') ? '; no ES|QL/EQL: core-only distribution without the x-pack-esql/x-pack-eql modules' : ''}): L = Lucene query_string, D = query DSL + aggregations, Q = ES|QL, E = EQL, . = no hit, n/a = no language of this rule runs here\n` +
          [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n'),
      );
    }
    assert.deepEqual(failures, []);
  });
});
