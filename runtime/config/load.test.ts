import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';
import type {
  Exporter,
  ExporterFactory,
  Processor,
  ProcessorFactory,
  Receiver,
  ReceiverFactory,
} from '../component.ts';
import { ConfigError } from '../errors.ts';
import type { ConfigProblem } from '../errors.ts';
import { ComponentRegistry } from '../plugins/registry.ts';
import { loadConfig } from './load.ts';
import { duration, secret, Secret } from './types.ts';

const receiver: ReceiverFactory<{ path: string; follow: boolean; interval: number }> = {
  kind: 'receiver',
  type: 'file',
  description: 'test receiver',
  configSchema: z.strictObject({
    path: z.string(),
    follow: z.boolean().default(false),
    interval: duration().default(1000),
  }),
  createDefaultConfig: () => ({ follow: false, interval: '1s' }),
  create: (): Receiver => ({ start: async () => {}, shutdown: async () => {} }),
};
const processor: ProcessorFactory<{ tag: string }> = {
  kind: 'processor',
  type: 'tagger',
  description: 'test processor',
  configSchema: z.strictObject({ tag: z.string().default('x') }),
  createDefaultConfig: () => ({ tag: 'x' }),
  create: (_s, _c, next): Processor => ({
    capabilities: { mutatesData: false },
    start: async () => {},
    shutdown: async () => {},
    consume: (b) => next.consume(b),
  }),
};
const exporterSchema = z.strictObject({
  endpoint: z.string(),
  token: secret().optional(),
  port: z.number().int().default(9200),
  timeout: duration().default(5000),
  retry: z
    .strictObject({ max_interval: duration().default(30_000), enabled: z.boolean().default(true) })
    .default({
      max_interval: 30_000,
      enabled: true,
    }),
});
const exporter: ExporterFactory<z.output<typeof exporterSchema>> = {
  kind: 'exporter',
  type: 'elasticsearch',
  description: 'test exporter',
  configSchema: exporterSchema,
  createDefaultConfig: () => ({ port: 9200 }),
  create: (): Exporter => ({
    capabilities: { mutatesData: false },
    start: async () => {},
    shutdown: async () => {},
    consume: async () => {},
  }),
};

function registry(): ComponentRegistry {
  const r = new ComponentRegistry();
  for (const f of [receiver, processor, exporter]) r.add(f, { kind: 'builtin', file: 'test' });
  r.add({ ...exporter, type: 'file' }, { kind: 'builtin', file: 'test' });
  r.add(
    {
      kind: 'extension',
      type: 'file_storage',
      description: 'test extension',
      configSchema: z.strictObject({ directory: z.string().default('.') }),
      createDefaultConfig: () => ({}),
      create: () => ({ start: async () => {}, shutdown: async () => {} }),
    },
    { kind: 'builtin', file: 'test' },
  );
  return r;
}

describe('loadConfig', () => {
  let dir: string;
  const write = (name: string, text: string) => {
    writeFileSync(join(dir, name), text);
    return name;
  };
  const load = (files: string[], env: Record<string, string> = {}) =>
    loadConfig(files, { cwd: dir, env, registry: registry() });
  const problemsOf = async (files: string[], env: Record<string, string> = {}): Promise<ConfigProblem[]> => {
    try {
      await load(files, env);
    } catch (err) {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      return err.problems;
    }
    assert.fail('expected the configuration to be invalid');
  };
  const find = (ps: ConfigProblem[], path: string) => {
    const p = ps.find((x) => x.path === path);
    assert.ok(
      p,
      `no problem at ${path}; got:\n${ps.map((x) => `${x.location} ${x.path}: ${x.message}`).join('\n')}`,
    );
    return p;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'load-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a valid config resolves components, defaults, sending_queue and pipelines', async () => {
    const f = write(
      'ok.yaml',
      `receivers:
  file:
    path: in.ndjson
processors:
  tagger/a:
exporters:
  elasticsearch:
    endpoint: http://\${env:ES_HOST}:9200
    port: \${env:ES_PORT}
    token: \${env:ES_TOKEN}
    sending_queue: { num_consumers: 4 }
service:
  pipelines:
    logs:
      receivers: [file]
      processors: [tagger/a]
      exporters: [elasticsearch]
`,
    );
    const c = await load([f], { ES_HOST: 'es', ES_PORT: '9300', ES_TOKEN: '123456' });
    assert.deepEqual(c.receivers.get('file')?.config, { path: 'in.ndjson', follow: false, interval: 1000 });
    assert.equal(c.processors.get('tagger/a')?.name, 'a');
    assert.deepEqual(c.processors.get('tagger/a')?.config, { tag: 'x' });
    const es = c.exporters.get('elasticsearch')!;
    const cfg = es.config as z.output<typeof exporterSchema>;
    assert.equal(cfg.endpoint, 'http://es:9200');
    assert.equal(cfg.port, 9300, 'a whole-value reference is typed');
    // A numeric-looking token still lands in a string (secret) field.
    assert.ok(cfg.token instanceof Secret);
    assert.equal(cfg.token.reveal(), '123456');
    assert.equal(es.sendingQueue?.num_consumers, 4);
    assert.equal(es.sendingQueue?.queue_size, 100);
    assert.equal('sending_queue' in cfg, false, 'the factory never sees sending_queue');
    assert.deepEqual(c.pipelines.get('logs'), {
      id: 'logs',
      receivers: ['file'],
      processors: ['tagger/a'],
      exporters: ['elasticsearch'],
      path: 'service.pipelines.logs',
      location: 'ok.yaml:14:5',
    });
    assert.equal(c.configDir, dir);
    assert.equal(c.shutdownTimeoutMs, 30_000);
    assert.equal(c.telemetry.metrics.address, '127.0.0.1:8888');
    assert.deepEqual(c.warnings, []);
  });

  test('a typo in a key: dotted path, file:line:column of the key and a suggestion', async () => {
    const f = write(
      'typo.yaml',
      `receivers:
  file:
    path: x
    folow: true
exporters:
  elasticsearch:
    endpoint: http://es
    retry:
      max_intervall: 10s
service:
  pipelines:
    logs: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const ps = await problemsOf([f]);
    const a = find(ps, 'receivers.file.folow');
    assert.equal(a.location, 'typo.yaml:4:5');
    assert.match(a.message, /unknown key "folow" \(did you mean "follow"\?\)/);
    const b = find(ps, 'exporters.elasticsearch.retry.max_intervall');
    assert.equal(b.location, 'typo.yaml:9:7');
    assert.match(b.message, /did you mean "max_interval"/);
  });

  test('a reference to an exporter that is not configured', async () => {
    const f = write(
      'ref.yaml',
      `receivers:
  file: { path: x }
exporters:
  elasticsearch: { endpoint: http://es }
service:
  pipelines:
    logs:
      receivers: [file]
      exporters: [elasticsearch, elasticsearh/b]
`,
    );
    const p = find(await problemsOf([f]), 'service.pipelines.logs.exporters[1]');
    assert.equal(
      p.message,
      'references exporter "elasticsearh/b" which is not configured (did you mean "elasticsearch"?)',
    );
    assert.equal(p.location, 'ref.yaml:9:34');
  });

  test('a wrong type names the expected type, not the value', async () => {
    const f = write(
      'type.yaml',
      `receivers:
  file: { path: x, follow: "yes please" }
exporters:
  elasticsearch: { endpoint: http://es, port: not-a-port, timeout: 10 }
service:
  pipelines:
    logs: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const ps = await problemsOf([f]);
    const a = find(ps, 'receivers.file.follow');
    assert.equal(a.message, 'expected a boolean (true or false), got a string');
    assert.equal(a.location, 'type.yaml:2:28');
    assert.equal(find(ps, 'exporters.elasticsearch.port').message, 'expected a number, got a string');
    assert.match(find(ps, 'exporters.elasticsearch.timeout').message, /duration/);
  });

  test('an unset env var is reported where it is used, without follow-up problems', async () => {
    const f = write(
      'env.yaml',
      `receivers:
  file: { path: x }
exporters:
  elasticsearch:
    endpoint: \${env:ES_URL}
service:
  pipelines:
    logs: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const ps = await problemsOf([f]);
    assert.equal(ps.length, 1, JSON.stringify(ps));
    assert.equal(ps[0]!.path, 'exporters.elasticsearch.endpoint');
    assert.equal(ps[0]!.location, 'env.yaml:5:15');
    assert.match(ps[0]!.message, /environment variable ES_URL is not set/);
  });

  test('every problem is reported at once, in file order', async () => {
    const f = write(
      'many.yaml',
      `recievers:
  file: {}
receivers:
  fil: { path: x }
  file: { path: 3 }
  "bad id/": {}
processors:
  tagger:
exporters:
  elasticsearch: { endpoint: http://es, sending_queue: { queue_size: 0 } }
extensions:
  file_storage:
service:
  extensions: [file_storage, nope]
  shutdown_timeout: soon
  pipelines:
    logs:
      receivers: [file]
      processors: [tagger, tagger]
      exporters: [elasticsearch]
    logs/empty:
      processors: [tagger]
    traces: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const ps = await problemsOf([f]);
    const expect: [string, RegExp][] = [
      ['recievers', /unknown top-level key "recievers" \(did you mean "receivers"\?\)/],
      ['receivers.fil', /unknown receiver type "fil" \(did you mean "file"\?\)/],
      ['receivers.file.path', /expected a string, got an integer/],
      ['receivers.bad id/', /empty name|must start with a letter/],
      ['exporters.elasticsearch.sending_queue.queue_size', /positive integer/],
      ['service.extensions[1]', /references extension "nope" which is not configured/],
      ['service.shutdown_timeout', /not a duration/],
    ];
    for (const [path, re] of expect) assert.match(find(ps, path).message, re);
    // Service-level problems stop the pipeline checks of the same section only when the section is unparseable.
    assert.ok(ps.length >= expect.length);
    const lines = ps.map((p) => Number(/:(\d+):\d+$/.exec(p.location ?? '')?.[1] ?? Infinity));
    assert.deepEqual(
      lines,
      [...lines].sort((a, b) => a - b),
      'sorted by position',
    );
  });

  test('pipeline rules: signal, at least one receiver and exporter, duplicates, unused components', async () => {
    const f = write(
      'pipes.yaml',
      `receivers:
  file: { path: x }
  file/unused: { path: y }
processors:
  tagger:
exporters:
  elasticsearch: { endpoint: http://es }
service:
  pipelines:
    logs:
      receivers: [file]
      processors: [tagger, tagger]
      exporters: [elasticsearch]
    logs/empty:
      processors: [tagger]
    metrics: { receivers: [file], exporters: [elasticsearch] }
    "logs/": { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const ps = await problemsOf([f]);
    assert.match(
      find(ps, 'service.pipelines.logs.processors[1]').message,
      /processor "tagger" is listed twice/,
    );
    assert.match(find(ps, 'service.pipelines.logs/empty.receivers').message, /needs at least one receiver/);
    assert.match(find(ps, 'service.pipelines.logs/empty.exporters').message, /needs at least one exporter/);
    assert.match(find(ps, 'service.pipelines.metrics').message, /signal "metrics" is not supported/);
    assert.match(find(ps, 'service.pipelines.logs/').message, /empty name/);
    assert.equal(
      ps.some((p) => p.path.startsWith('receivers.file/unused')),
      false,
      'unused is not an error',
    );
  });

  test('unused components are warnings', async () => {
    const f = write(
      'unused.yaml',
      `receivers:
  file: { path: x }
  file/spare: { path: y }
exporters:
  elasticsearch: { endpoint: http://es }
extensions:
  file_storage:
service:
  pipelines:
    logs: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const c = await load([f]);
    assert.deepEqual(
      c.warnings.map((w) => [w.path, w.location]),
      [
        ['receivers.file/spare', 'unused.yaml:3:3'],
        ['extensions.file_storage', 'unused.yaml:7:3'],
      ],
    );
    assert.equal(c.receivers.has('file/spare'), true);
  });

  test('YAML syntax errors and missing files carry file:line:column', async () => {
    const f = write('syntax.yaml', 'receivers:\n  file: { path: x\nservice: {}\n');
    const ps = await problemsOf([f]);
    assert.equal(ps.length, 1, 'cascading syntax errors are summarised');
    assert.match(ps[0]!.message, /YAML syntax error/);
    assert.match(ps[0]!.location ?? '', /^syntax\.yaml:\d+:\d+$/);
    const flow = write('flow.yaml', 'receivers:\n  file: { path: ${env:X} }\n');
    const fp = await problemsOf([flow]);
    assert.equal(fp[0]!.location, 'flow.yaml:2:18');
    assert.match(fp[0]!.message, /write references quoted/);
    const dup = write('dup.yaml', 'receivers: {}\nreceivers: {}\n');
    const d = await problemsOf([dup]);
    assert.equal(d[0]!.location, 'dup.yaml:2:1');
    assert.equal(d[0]!.path, 'receivers');
    assert.match(d[0]!.message, /duplicate key "receivers" \(first defined at line 1\)/);
    const nested = write('nested-dup.yaml', 'service:\n  pipelines:\n    logs: {}\n    logs: {}\n');
    const n = await problemsOf([nested]);
    assert.deepEqual(
      n.map((p) => [p.path, p.location]),
      [['service.pipelines.logs', 'nested-dup.yaml:4:5']],
    );
    const missing = await problemsOf(['nope.yaml']);
    assert.deepEqual(missing, [{ path: '', message: 'file not found', location: 'nope.yaml' }]);
  });

  test('several files deep-merge: maps merge, the last file wins, lists are replaced', async () => {
    const a = write(
      'a.yaml',
      `receivers:
  file: { path: a.ndjson, follow: true }
exporters:
  elasticsearch: { endpoint: http://a, retry: { max_interval: 5s } }
service:
  pipelines:
    logs: { receivers: [file], processors: [tagger], exporters: [elasticsearch] }
`,
    );
    const b = write(
      'b.yaml',
      `processors:
  tagger: { tag: b }
exporters:
  elasticsearch:
    endpoint: http://b
    retry: { enabled: false, max_interval: oops }
service:
  pipelines:
    logs: { processors: [] }
`,
    );
    const ps = await problemsOf([a, b]);
    const p = find(ps, 'exporters.elasticsearch.retry.max_interval');
    assert.equal(p.location, 'b.yaml:6:44', 'the location follows the file that set the value');
    const fixed = write('c.yaml', 'exporters:\n  elasticsearch:\n    retry: { max_interval: 7s }\n');
    const c = await load([a, b, fixed]);
    const cfg = c.exporters.get('elasticsearch')!.config as z.output<typeof exporterSchema>;
    assert.equal(cfg.endpoint, 'http://b');
    assert.deepEqual(cfg.retry, { enabled: false, max_interval: 7000 });
    assert.deepEqual(c.receivers.get('file')!.config, { path: 'a.ndjson', follow: true, interval: 1000 });
    assert.deepEqual(c.pipelines.get('logs')!.processors, [], 'lists are replaced, not appended');
    assert.equal(c.warnings.length, 1, 'tagger is now unused');
  });

  test('expanded values never appear in problems (secrets)', async () => {
    const f = write(
      'secret.yaml',
      `receivers:
  file:
    path: x
    interval: \${env:INTERVAL}
exporters:
  elasticsearch:
    endpoint: http://es
    token: \${env:EMPTY_TOKEN}
    timeout: "\${env:SECRET_TIMEOUT}"
service:
  pipelines:
    logs: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const ps = await problemsOf([f], {
      INTERVAL: 'hunter2-secret',
      EMPTY_TOKEN: '',
      SECRET_TIMEOUT: 'tok-abc',
    });
    const text = JSON.stringify(ps);
    assert.doesNotMatch(text, /hunter2-secret/);
    assert.doesNotMatch(text, /tok-abc/);
    assert.match(find(ps, 'receivers.file.interval').message, /\$\{env:INTERVAL\}/);
    assert.match(find(ps, 'exporters.elasticsearch.timeout').message, /\$\{env:SECRET_TIMEOUT\}/);
    assert.equal(find(ps, 'exporters.elasticsearch.token').message, 'must not be empty');
  });

  test('service options: telemetry addresses, timeouts, unknown keys', async () => {
    const f = write(
      'svc.yaml',
      `receivers:
  file: { path: x }
exporters:
  elasticsearch: { endpoint: http://es }
service:
  shutdown_timeout: 5s
  telemetry:
    metrics: { address: "" }
    health: { address: "[::1]:0" }
    logs: { level: debug }
  pipelines:
    logs: { receivers: [file], exporters: [elasticsearch] }
`,
    );
    const c = await load([f]);
    assert.equal(c.shutdownTimeoutMs, 5000);
    assert.equal(c.telemetry.metrics.address, '');
    assert.equal(c.telemetry.health.address, '[::1]:0');
    assert.equal(c.telemetry.logs.level, 'debug');
    const g = write('svc2.yaml', 'service:\n  telemetry: { metrics: { adress: x, address: "nohost" } }\n');
    const ps = await problemsOf([g]);
    assert.match(find(ps, 'service.telemetry.metrics.adress').message, /did you mean "address"/);
    assert.match(find(ps, 'service.telemetry.metrics.address').message, /host:port/);
  });
});
