import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../runtime/errors.ts';
import type { LogRecord } from '../../runtime/model.ts';
import { ATTR_DOCUMENT_ID, ATTR_NAMESPACE, nowHrTime } from '../../runtime/model.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { SinkConsumer, nopSettings } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import type { Config } from './config.ts';
import { factory } from './factory.ts';
import { needShared, sharedDir } from '../../test/kit/shared.ts';
import { FIXTURE_DATASETS, cityDb, fileRecord, fixtureLines, fixturesDir, repoRoot } from './fixtures.ts';
import { ATTR_RECORD_ORIGINAL } from './mapper.ts';
import { fingerprint, goJson } from './original.ts';
import { ERRORS_METRIC } from './processor.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- documents are walked freely in assertions
type Doc = Record<string, any>;

describeComponent(factory, { dir: import.meta.dirname });

const PIPE = (ds: string) => `logs-authentik.${ds}-1.10.0`;
const ERR = (ds: string, type: string, tag: string, msg: string) =>
  `Processor ${type} with tag ${tag} in pipeline ${PIPE(ds)} failed with message: ${msg}`;

interface Run {
  out: LogRecord[];
  docs: Doc[];
  settings: TestSettings;
}

async function run(cfg: Record<string, unknown>, records: LogRecord[]): Promise<Run> {
  const settings = nopSettings('authentik_ecs', 'processor', repoRoot);
  const sink = new SinkConsumer();
  const proc = await factory.create(settings, factory.configSchema.parse(cfg), sink);
  await proc.start({ getExtension: () => undefined });
  await proc.consume(records);
  await proc.shutdown();
  const out = sink.all();
  return { out, docs: out.map((r) => r.body as Doc), settings };
}

/** An event record as the file receiver would build it from `obj` serialised to one line. */
function eventLine(obj: unknown, ds = 'event'): LogRecord {
  return fileRecord(ds, JSON.stringify(obj));
}

const NEED = needShared('fixtures/elastic-authentik', 'geoip');
const base = (NEED ? {} : JSON.parse(fixtureLines('event')[1]!)) as Doc; // login_failed, London, Chrome
const CITY = { geoip: { city_database: cityDb } };

async function errorsCounted(settings: TestSettings, dataset: string): Promise<number> {
  const m = await settings.metrics.getSingleMetric(ERRORS_METRIC)?.get();
  return m?.values.find((v) => v.labels['dataset'] === dataset)?.value ?? 0;
}

describe('config', () => {
  test('testdata/config.yaml parses to the expected typed config', () => {
    const raw = parseYaml(
      readFileSync(resolve(import.meta.dirname, 'testdata/config.yaml'), 'utf8'),
    ) as unknown;
    const expected: Config = {
      geoip: {
        city_database: '../../../../shared/geoip/GeoLite2-City-Test.mmdb',
        asn_database: '../../../../shared/geoip/GeoLite2-ASN-Test.mmdb',
      },
      tags: ['preserve_original_event', 'preserve_duplicate_custom_fields', 'forwarded'],
      namespace: 'production',
      user_agent: { cache_size: 5000 },
      categorize_all_actions: true,
    };
    assert.deepEqual(factory.configSchema.parse(raw), expected);
  });

  test('defaults', () => {
    assert.deepEqual(factory.configSchema.parse({}), {
      geoip: {},
      tags: [],
      namespace: 'default',
      user_agent: { cache_size: 1000 },
      categorize_all_actions: false,
    });
  });

  test('validation rules', () => {
    const bad = (v: unknown) =>
      assert.equal(factory.configSchema.safeParse(v).success, false, JSON.stringify(v));
    bad({ namespace: 'Prod' });
    bad({ namespace: 'a-b' });
    bad({ namespace: '' });
    bad({ user_agent: { cache_size: -1 } });
    bad({ user_agent: { cache_size: 1.5 } });
    bad({ tags: [''] });
    bad({ tags: 'x' });
    bad({ geoip: { cty_database: 'x' } });
    bad({ geoip: { city_database: '' } });
    bad({ categorize_all_actions: 'yes' });
  });

  test(
    'relative database paths resolve against the config directory; the testdata config works',
    { skip: NEED },
    async () => {
      const testdata = resolve(import.meta.dirname, 'testdata');
      // The file's paths assume ../shared beside the repository; with AC_SHARED_DIR elsewhere they are
      // rewritten, still relative to the config directory.
      const text = readFileSync(resolve(testdata, 'config.yaml'), 'utf8').replaceAll(
        '../../../../shared/',
        `${relative(testdata, sharedDir())}/`,
      );
      const raw = parseYaml(text) as unknown;
      const settings = nopSettings('authentik_ecs', 'processor', testdata);
      const sink = new SinkConsumer();
      const proc = await factory.create(settings, factory.configSchema.parse(raw), sink);
      await proc.consume([eventLine({ ...base, client_ip: '1.128.0.0' })]);
      const doc = sink.all()[0]!.body as Doc;
      assert.deepEqual(doc['source']['as'], { number: 1221, organization: { name: 'Telstra Pty Ltd' } });
      assert.equal(doc['data_stream']['namespace'], 'production');
    },
  );

  test('an unreadable database is a config error naming the option', { skip: NEED }, async () => {
    const settings = nopSettings('authentik_ecs/x', 'processor', repoRoot);
    const cfg = factory.configSchema.parse({ geoip: { city_database: 'nope.mmdb', asn_database: cityDb } });
    await assert.rejects(
      async () => factory.create(settings, cfg, new SinkConsumer()),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.deepEqual(
          e.problems.map((p) => p.path),
          ['processors.authentik_ecs/x.geoip.city_database', 'processors.authentik_ecs/x.geoip.asn_database'],
        );
        assert.match(e.message, /cannot read city database .*nope\.mmdb.*ENOENT/);
        assert.match(e.message, /expected an ASN database/);
        return true;
      },
    );
  });
});

describe('records and routing', { skip: NEED }, () => {
  test('records of other datasets pass untouched', async () => {
    const rec: LogRecord = {
      observedTimestamp: nowHrTime(),
      body: { a: null },
      attributes: { 'data_stream.dataset': 'nginx.access', x: 1 },
    };
    const noDs: LogRecord = { observedTimestamp: nowHrTime(), body: 'text', attributes: {} };
    const { out } = await run({}, [rec, noDs]);
    assert.deepEqual(out[0], {
      observedTimestamp: rec.observedTimestamp,
      body: { a: null },
      attributes: { 'data_stream.dataset': 'nginx.access', x: 1 },
    });
    assert.equal(out[1]!.body, 'text');
  });

  test('record attributes, timestamps and event name', async () => {
    const line = JSON.stringify({ ...base, created: '2024-08-07T08:29:02.402447+02:00' });
    const rec = fileRecord('event', line);
    const { out, docs } = await run({ namespace: 'team_a' }, [rec]);
    const r = out[0]!;
    assert.equal(r.attributes[ATTR_RECORD_ORIGINAL], undefined);
    assert.equal(r.attributes[ATTR_NAMESPACE], 'team_a');
    assert.equal(r.attributes['data_stream.dataset'], 'authentik.event');
    assert.equal(r.attributes[ATTR_DOCUMENT_ID], fingerprint(line));
    assert.deepEqual(r.timestamp, [Date.UTC(2024, 7, 7, 6, 29, 2) / 1000, 402_447_000]);
    assert.equal(r.eventName, 'login-failed');
    assert.equal(docs[0]!['@timestamp'], '2024-08-07T06:29:02.402Z');
    assert.equal(docs[0]!['event']['created'], '2024-08-07T06:29:02.402Z');
    assert.equal(docs[0]!['event']['original'], line);
    assert.deepEqual(docs[0]!['data_stream'], {
      type: 'logs',
      dataset: 'authentik.event',
      namespace: 'team_a',
    });
  });

  test('users and groups: @timestamp and timestamp are the collection time', async () => {
    const rec = fileRecord('user', fixtureLines('user')[0]!);
    rec.observedTimestamp = [1_700_000_000, 123_456_789];
    const { out, docs } = await run({}, [rec]);
    assert.equal(docs[0]!['@timestamp'], '2023-11-14T22:13:20.123Z');
    assert.deepEqual(out[0]!.timestamp, [1_700_000_000, 123_456_789]);
    assert.equal(out[0]!.eventName, undefined);
  });

  test('API records (object body, no raw line): Go-encoded event.original and its fingerprint', async () => {
    const body = JSON.parse(fixtureLines('group')[1]!) as Doc;
    const rec: LogRecord = {
      observedTimestamp: nowHrTime(),
      body,
      attributes: { 'data_stream.dataset': 'authentik.group' },
    };
    const { out, docs } = await run({}, [rec]);
    const original = goJson(JSON.parse(fixtureLines('group')[1]!));
    assert.equal(docs[0]!['event']['original'], original);
    assert.equal(out[0]!.attributes[ATTR_DOCUMENT_ID], fingerprint(original));
    assert.equal(docs[0]!['group']['name'], 'Guest Admins');
  });

  test('a string body without raw attribute is kept verbatim as event.original', async () => {
    const line = fixtureLines('user')[3]!;
    const { docs } = await run({}, [
      { observedTimestamp: nowHrTime(), body: line, attributes: { 'data_stream.dataset': 'authentik.user' } },
    ]);
    assert.equal(docs[0]!['event']['original'], line);
    assert.equal(docs[0]!['user']['id'], String(JSON.parse(line).pk));
  });

  test('Elastic Agent sample documents are reproduced (system-test settings)', async () => {
    for (const ds of FIXTURE_DATASETS) {
      const sample = JSON.parse(readFileSync(resolve(fixturesDir, `${ds}/sample_event.json`), 'utf8')) as Doc;
      const rec: LogRecord = {
        observedTimestamp: nowHrTime(),
        body: JSON.parse(sample['event']['original'] as string) as Doc,
        attributes: { 'data_stream.dataset': `authentik.${ds}` },
      };
      const { docs } = await run(
        {
          ...CITY,
          namespace: sample['data_stream']['namespace'],
          tags: [
            'preserve_original_event',
            'preserve_duplicate_custom_fields',
            'forwarded',
            `authentik-${ds}`,
          ],
        },
        [rec],
      );
      const doc = docs[0]!;
      const skip = new Set(['agent', 'elastic_agent', 'input', 'event.agent_id_status', 'event.ingested']);
      if (ds !== 'event') skip.add('@timestamp');
      const walk = (exp: Doc, act: Doc, path: string) => {
        for (const [k, v] of Object.entries(exp)) {
          const p = path ? `${path}.${k}` : k;
          if (skip.has(p)) continue;
          if (v && typeof v === 'object' && !Array.isArray(v)) walk(v as Doc, (act?.[k] ?? {}) as Doc, p);
          else assert.deepEqual(act?.[k], v, `${ds}: ${p}`);
        }
      };
      walk(sample, doc, '');
    }
  });
});

describe('mapping beyond the fixtures (payload varieties)', { skip: NEED }, () => {
  test('tenant instead of brand, unknown extra keys, custom_* action, IPv6 client_ip', async () => {
    const ev = {
      ...base,
      action: 'custom_my_thing',
      client_ip: '2001:218::1',
      new_field: { x: 1, y: null },
    } as Doc;
    ev['tenant'] = ev['brand'];
    delete ev['brand'];
    const { docs } = await run({ ...CITY, categorize_all_actions: true }, [eventLine(ev)]);
    const d = docs[0]!;
    assert.deepEqual(d['authentik']['event']['tenant'], base['brand']);
    assert.deepEqual(d['authentik']['event']['new_field'], { x: 1 });
    assert.equal(d['event']['action'], 'custom-my-thing');
    assert.equal(d['event']['category'], undefined);
    assert.equal(d['source']['ip'], '2001:218::1');
    assert.equal(d['source']['geo']['country_iso_code'], 'JP');
    assert.deepEqual(d['related']['ip'], ['2001:218::1']);
  });

  test('numeric and string pks, *_obj null, parent vs parents', async () => {
    const groups = [
      {
        pk: 'g1',
        num_pk: 1,
        name: 'a',
        parent: null,
        parents: ['p1', 'p2'],
        users: [1, '2', 3],
        users_obj: null,
        roles_obj: null,
      },
      { pk: 'g2', num_pk: '42', name: 'b', parent: 'p1', parent_name: 'P', users: [], attributes: {} },
    ];
    const { docs } = await run(
      {},
      groups.map((g) => eventLine(g, 'group')),
    );
    assert.deepEqual(docs[0]!['authentik']['group']['parents'], ['p1', 'p2']);
    assert.equal(docs[0]!['authentik']['group']['parent'], undefined);
    assert.equal(docs[0]!['authentik']['group']['users_obj'], undefined);
    assert.deepEqual(docs[0]!['user']['id'], ['1', '2', '3']);
    assert.equal(docs[1]!['authentik']['group']['num_pk'], 42);
    assert.equal(docs[1]!['authentik']['group']['parent'], 'p1');
    assert.equal(docs[1]!['user'], undefined);
    assert.equal(docs[1]!['related'], undefined);
  });

  test('without preserve_duplicate_custom_fields the duplicated authentik.* fields are removed', async () => {
    const { docs } = await run({}, [
      eventLine(base),
      fileRecord('user', fixtureLines('user')[0]!),
      fileRecord('group', fixtureLines('group')[2]!),
    ]);
    const ev = docs[0]!['authentik']['event'];
    // Absent, not present with an undefined value (the removal leaves them to DROP-EMPTY).
    for (const k of ['client_ip', 'created', 'pk', 'user']) assert.equal(Object.hasOwn(ev, k), false, k);
    assert.deepEqual(ev['context']['http_request'], { args: { next: '/' } });
    assert.equal(docs[0]!['user']['name'], 'akadmin');
    const u = docs[1]!['authentik']['user'];
    for (const k of ['pk', 'username', 'name', 'groups', 'email'])
      assert.equal(Object.hasOwn(u, k), false, k);
    assert.ok(u['uid']);
    const g = docs[2]!['authentik']['group'];
    for (const k of ['pk', 'name', 'users']) assert.equal(Object.hasOwn(g, k), false, k);
    assert.equal(docs[0]!['tags'], undefined);
    for (const d of docs) assert.equal(Object.hasOwn(d, '_temp'), false);
  });

  test('tags are appended in order; preserve_original_event only shows in tags', async () => {
    const { docs } = await run({ tags: ['preserve_original_event', 'forwarded'] }, [eventLine(base)]);
    assert.deepEqual(docs[0]!['tags'], ['preserve_original_event', 'forwarded']);
    assert.equal(typeof docs[0]!['event']['original'], 'string');
  });

  test('categorize_all_actions', async () => {
    const actions = ['impersonation_started', 'flow_execution', 'update_available', 'login'];
    const recs = () => actions.map((action) => eventLine({ ...base, action }));
    const off = (await run({}, recs())).docs;
    assert.equal(off[0]!['event']['category'], undefined);
    assert.equal(off[1]!['event']['category'], undefined);
    assert.deepEqual(off[3]!['event']['category'], ['authentication']);
    const on = (await run({ categorize_all_actions: true }, recs())).docs;
    assert.deepEqual(
      [on[0]!['event']['category'], on[0]!['event']['type'], on[0]!['event']['outcome']],
      [['session'], ['start'], 'success'],
    );
    assert.deepEqual([on[1]!['event']['category'], on[1]!['event']['type']], [['web'], ['access']]);
    assert.deepEqual(on[2]!['event']['category'], ['package']);
    assert.deepEqual(on[3]!['event']['outcome'], 'success');
  });

  test('without GeoIP databases there is no source.geo', async () => {
    const { docs } = await run({}, [eventLine(base)]);
    assert.deepEqual(docs[0]!['source'], { ip: '81.2.69.144' });
  });
});

describe('error behaviour (documents flagged, counted, never thrown)', { skip: NEED }, () => {
  test('a line that is not JSON', async () => {
    const rec = fileRecord('event', 'hello world');
    const { docs, out, settings } = await run({}, [rec]);
    const d = docs[0]!;
    assert.deepEqual(d['error']['message'], [
      ERR(
        'event',
        'json',
        'json_event_original',
        "Unrecognized token 'hello': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')",
      ),
    ]);
    assert.equal(d['event']['original'], 'hello world');
    assert.equal(d['event']['kind'], 'pipeline_error');
    assert.deepEqual(d['tags'], ['preserve_original_event']);
    assert.equal(d['authentik'], undefined);
    assert.equal(out[0]!.attributes[ATTR_DOCUMENT_ID], fingerprint('hello world'));
    assert.equal(await errorsCounted(settings, 'authentik.event'), 1);
  });

  test('JSON that is not an object, and non-object bodies', async () => {
    const recs: LogRecord[] = [
      fileRecord('user', '[1,2]'),
      fileRecord('group', 'null'),
      { observedTimestamp: nowHrTime(), body: 42, attributes: { 'data_stream.dataset': 'authentik.user' } },
      { observedTimestamp: nowHrTime(), attributes: { 'data_stream.dataset': 'authentik.event' } },
      fileRecord('event', '{"a":'),
    ];
    const { docs, settings } = await run({}, recs);
    assert.deepEqual(docs[0]!['error']['message'], [
      ERR('user', 'json', 'json_event_original', 'expected a JSON object, got an array'),
    ]);
    assert.deepEqual(docs[1]!['error']['message'], [
      ERR('group', 'json', 'json_event_original', 'expected a JSON object, got null'),
    ]);
    assert.equal(docs[2]!['event']['original'], '42');
    assert.match(docs[2]!['error']['message'][0], /expected a JSON object, got a number/);
    assert.equal(docs[3]!['event']['original'], 'null');
    assert.match(
      docs[4]!['error']['message'][0],
      /^Processor json with tag json_event_original in pipeline logs-authentik\.event-1\.10\.0 failed with message: /,
    );
    for (const d of docs) assert.equal(d['event']['kind'], 'pipeline_error');
    assert.equal(await errorsCounted(settings, 'authentik.user'), 2);
  });

  test('an invalid client_ip: removed, recorded, the rest still mapped', async () => {
    const { docs } = await run(CITY, [
      eventLine({ ...base, client_ip: 'not-an-ip' }),
      eventLine({ ...base, client_ip: 7 }),
    ]);
    const d = docs[0]!;
    assert.deepEqual(d['error']['message'], [
      ERR('event', 'convert', 'convert_client_ip_to_ip', "'not-an-ip' is not an IP string literal."),
    ]);
    assert.equal(d['authentik']['event']['client_ip'], undefined);
    assert.equal(d['source'], undefined);
    assert.equal(d['related']['ip'], undefined);
    assert.equal(d['user']['name'], 'akadmin');
    assert.equal(d['event']['kind'], 'pipeline_error');
    assert.deepEqual(d['tags'], ['preserve_original_event']);
    assert.match(
      docs[1]!['error']['message'][0],
      /class java\.lang\.Integer cannot be cast to class java\.lang\.String/,
    );
  });

  test('wrong types handled by local on_failure: booleans, dates, long, pks', async () => {
    const ev = { ...base, created: 'yesterday', context: { ...base['context'], created: 'maybe' } };
    const { docs } = await run({}, [
      eventLine(ev),
      eventLine({ pk: 'g', num_pk: 'abc', users: [] }, 'group'),
      eventLine({ pk: 1, is_active: 'y', last_login: 5 }, 'user'),
    ]);
    assert.deepEqual(docs[0]!['error']['message'], [
      ERR(
        'event',
        'convert',
        'convert_context_created_to_boolean',
        '[maybe] is not a boolean value, cannot convert to boolean',
      ),
      ERR('event', 'date', 'date_created', "Text 'yesterday' could not be parsed at index 0"),
    ]);
    // @timestamp stays the collection time when created is unusable.
    assert.notEqual(docs[0]!['@timestamp'], undefined);
    assert.equal(docs[0]!['event']['created'], undefined);
    assert.deepEqual(docs[1]!['error']['message'], [
      ERR('group', 'convert', 'convert_num_pk_to_long', 'For input string: "abc"'),
    ]);
    assert.deepEqual(docs[2]!['error']['message'], [
      ERR(
        'user',
        'convert',
        'convert_is_active_to_boolean',
        '[y] is not a boolean value, cannot convert to boolean',
      ),
      ERR('user', 'date', 'date_user_last_login', "Text '5' could not be parsed at index 0"),
    ]);
    assert.equal(docs[2]!['user']['id'], '1');
  });

  test('painless failures stop the pipeline (type conditional), like Elastic', async () => {
    const { docs } = await run({}, [
      eventLine({ ...base, user: 'bob' }),
      eventLine({ ...base, user: { ...base['user'], on_behalf_of: [1] } }),
    ]);
    const d = docs[0]!;
    assert.deepEqual(d['error']['message'], [
      ERR(
        'event',
        'conditional',
        'append_user_email_into_related_user',
        'dynamic getter [java.lang.String, email] not found',
      ),
    ]);
    assert.equal(d['event']['kind'], 'pipeline_error');
    assert.deepEqual(d['tags'], ['preserve_original_event']);
    // The pipeline stopped: no DROP-EMPTY, later steps did not run.
    assert.equal(d['authentik']['event']['user'], 'bob');
    assert.equal(d['user'], undefined);
    assert.deepEqual(docs[1]!['error']['message'], [
      ERR(
        'event',
        'conditional',
        'append_user_on_behalf_of_email_into_related_user',
        'Illegal list shortcut value [email].',
      ),
    ]);
    // The dissect before the failing step ran and the final removal of `_temp` did not.
    assert.equal(docs[1]!['_temp'], 'root');
    // At its place: after the keys the root had when the dissect ran, before those added later.
    const keys = Object.keys(docs[1]!);
    assert.deepEqual(keys.slice(keys.indexOf('user'), keys.indexOf('user') + 3), ['user', '_temp', 'error']);
    assert.equal(docs[1]!['user']['domain'], 'example.com');
    assert.equal('_temp' in d, false);
  });

  test('lowercase, user_agent and dissect failures', async () => {
    const ua = {
      ...base,
      context: { ...base['context'], http_request: { ...base['context']['http_request'], user_agent: 5 } },
    };
    const { docs } = await run({}, [
      eventLine({ ...base, action: 5 }),
      eventLine(ua),
      eventLine({ ...base, user: { ...base['user'], email: 12 } }),
      eventLine({ pk: 3, email: { a: 1 } }, 'user'),
    ]);
    assert.deepEqual(docs[0]!['error']['message'], [
      ERR(
        'event',
        'lowercase',
        'lowercase_event_action',
        'field [event.action] of type [java.lang.Integer] cannot be cast to [java.lang.String]',
      ),
    ]);
    assert.deepEqual(docs[1]!['error']['message'], [
      'Processor user_agent with tag  in pipeline logs-authentik.event-1.10.0 failed with message: field [authentik.event.context.http_request.user_agent] of type [java.lang.Integer] cannot be cast to [java.lang.String]',
    ]);
    assert.deepEqual(docs[2]!['error']['message'], [
      ERR(
        'event',
        'conditional',
        'dissect_user_email',
        'dynamic method [java.lang.Integer, contains/1] not found',
      ),
    ]);
    assert.deepEqual(docs[3]!['error']['message'], [
      ERR(
        'user',
        'conditional',
        'dissect_user_email',
        'dynamic method [org.elasticsearch.ingest.ConditionalProcessor.UnmodifiableIngestData, contains/1] not found',
      ),
    ]);
  });

  test('Elastic rendering classes: lists through mustache, whole doubles in exponent form', async () => {
    const apiUser: LogRecord = {
      observedTimestamp: [1_700_000_000, 0],
      body: { pk: 1e21, username: ['n'], name: [], email: 'a@b', uid: [['x', 'y']], groups: [['g']] },
      attributes: { 'data_stream.dataset': 'authentik.user' },
    };
    const { docs } = await run({}, [
      eventLine({ ...base, client_ip: ['81.2.69.142'] }),
      eventLine({ ...base, context: { ...base['context'], model: { pk: 2.5e-7 } } }),
      apiUser,
      eventLine({ pk: 'g', name: 'G', users: [[1, 2], 3] }, 'group'),
    ]);
    assert.deepEqual(docs[0]!['related']['ip'], ['{0=81.2.69.142}']);
    assert.equal(docs[1]!['authentik']['event']['context']['model']['pk'], '2.5E-7');
    const u = docs[2]!;
    assert.match(u['event']['original'], /"pk":1e\+21/);
    assert.equal(u['user']['id'], '1.0E21');
    assert.deepEqual(u['related']['user'], ['1.0E21', '{0=n}', '{}', 'a@b', '{0=[x, y]}']);
    assert.deepEqual(u['user']['group']['id'], ['{0=g}']);
    const g = docs[3]!;
    assert.deepEqual(g['user']['id'], ['{0=1, 1=2}', '3']);
  });

  test('a user pk list with a null fails the pipeline (no local on_failure there)', async () => {
    const { docs } = await run({}, [eventLine({ pk: [1, null], username: 'x' }, 'user')]);
    assert.deepEqual(docs[0]!['error']['message'], [
      ERR(
        'user',
        'convert',
        'convert_user_pk_to_string',
        'Cannot invoke "Object.toString()" because "value" is null',
      ),
    ]);
  });

  test('CEL error documents are indexed as they are (terminate)', async () => {
    const body = {
      error: { code: '403', id: '403 Forbidden', message: 'GET:{"detail":"Token invalid/expired"}' },
    };
    const rec: LogRecord = {
      observedTimestamp: [1_700_000_000, 0],
      body,
      attributes: { 'data_stream.dataset': 'authentik.event' },
    };
    const { docs, out, settings } = await run({ tags: ['forwarded'] }, [rec]);
    assert.deepEqual(docs[0], {
      '@timestamp': '2023-11-14T22:13:20.000Z',
      error: body.error,
      tags: ['forwarded'],
      data_stream: { type: 'logs', dataset: 'authentik.event', namespace: 'default' },
      event: { dataset: 'authentik.event', module: 'authentik' },
      ecs: { version: '8.11.0' },
    });
    assert.equal(out[0]!.attributes[ATTR_DOCUMENT_ID], undefined);
    assert.equal(await errorsCounted(settings, 'authentik.event'), 1);
  });

  test('the fixtures produce no error documents', async () => {
    const recs = FIXTURE_DATASETS.flatMap((ds) => fixtureLines(ds).map((l) => fileRecord(ds, l)));
    const { docs, settings } = await run({ ...CITY, tags: ['preserve_duplicate_custom_fields'] }, recs);
    assert.equal(docs.filter((d) => d['error'] !== undefined).length, 0);
    assert.equal(await errorsCounted(settings, 'authentik.event'), 0);
  });

  test('consume after shutdown is refused', async () => {
    const settings = nopSettings('authentik_ecs', 'processor', repoRoot);
    const sink = new SinkConsumer();
    const proc = await factory.create(settings, factory.configSchema.parse({}), sink);
    await proc.shutdown();
    await assert.rejects(proc.consume([eventLine(base)]), /shut down/);
    assert.equal(sink.count(), 0);
  });
});
