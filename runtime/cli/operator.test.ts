/**
 * Operator experience of the real command (`node bin/authentik-collector.js`, child processes): help on
 * a bare invocation, did-you-mean, `--set`, `env:` / `yaml:` config providers, and `validate` finding
 * what `run` would only find at start.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'authentik-collector.js');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real command to completion. */
export function cli(args: string[], cwd: string, env: Record<string, string> = {}, timeout = 30_000): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', AUTHENTIK_COLLECTOR_NO_REEXEC: '1', ...env },
    encoding: 'utf8',
    timeout,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const FILE_TO_FILE = `receivers:
  file: { path: in.ndjson }
processors:
  batch: { timeout: 5s }
exporters:
  file: { path: out.ndjson }
service:
  telemetry: { metrics: { address: "" }, health: { address: "" } }
  pipelines:
    logs: { receivers: [file], processors: [batch], exporters: [file] }
`;

describe('command line: help, did-you-mean, --set, config providers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-cli-op-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.ndjson'), '{"a":1}\n{"a":2}\n');
  writeFileSync(join(dir, 'collector.yaml'), FILE_TO_FILE);

  test('a bare invocation prints help and starts nothing (even with a collector.yaml present)', () => {
    const r = cli([], dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout, /^Usage: authentik-collector <command> \[options\]/);
    assert.match(r.stdout, /--set <key=value>/);
    assert.match(r.stdout, /env:VAR/);
    assert.equal(r.stderr, '');
  });

  test('a mistyped command or option gets a did-you-mean', () => {
    const r = cli(['valdiate', '--config', 'collector.yaml'], dir);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "valdiate" \(did you mean "validate"\?\)/);
    const d = cli(['doctr'], dir);
    assert.match(d.stderr, /\(did you mean "doctor"\?\)/);
    const o = cli(['validate', '--conifg', 'collector.yaml'], dir);
    assert.equal(o.code, 2);
    assert.match(o.stderr, /Unknown option '--conifg'.*\(did you mean "--config"\?\)/);
  });

  test('--set overrides one option (otelcol syntax, :: or .), is validated like the file, and applies last', () => {
    const ok = cli(
      ['validate', '--config', 'collector.yaml', '--set', 'processors::batch::timeout=250ms'],
      dir,
    );
    assert.equal(ok.code, 0, ok.stderr);
    const bad = cli(
      ['validate', '--config', 'collector.yaml', '--set', 'processors::batch::timeout=soon'],
      dir,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--set processors::batch::timeout:1:1: processors\.batch\.timeout: /);
    const dotted = cli(
      ['validate', '-c', 'collector.yaml', '--set', 'processors.batch.send_batch_size=0'],
      dir,
    );
    assert.equal(dotted.code, 2);
    assert.match(dotted.stderr, /processors\.batch\.send_batch_size/);
    const malformed = cli(['validate', '-c', 'collector.yaml', '--set', 'novalue'], dir);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--set "novalue": expected key=value/);
    // It changes what runs: the exporter writes where --set says.
    const run = cli(['run', '-c', 'collector.yaml', '--set', 'exporters::file::path=set.ndjson'], dir);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(readFileSync(join(dir, 'set.ndjson'), 'utf8'), '{"a":1}\n{"a":2}\n');
  });

  test('--config env:VAR and yaml:... providers merge like files', () => {
    const env = cli(['validate', '--config', 'env:AC_CONFIG'], dir, { AC_CONFIG: FILE_TO_FILE });
    assert.equal(env.code, 0, env.stderr);
    const unset = cli(['validate', '--config', 'env:AC_NOPE'], dir);
    assert.equal(unset.code, 2);
    assert.match(unset.stderr, /env:AC_NOPE: environment variable AC_NOPE is not set/);
    const inline = cli(
      ['validate', '--config', 'collector.yaml', '--config', 'yaml:processors::batch::send_batch_size: -1'],
      dir,
    );
    assert.equal(inline.code, 2);
    assert.match(
      inline.stderr,
      /yaml:processors::batch::send_batch_size: -1:1:1: processors\.batch\.send_batch_size/,
    );
    const file = cli(['validate', '--config', 'file:collector.yaml'], dir);
    assert.equal(file.code, 0, file.stderr);
  });
});

describe('validate checks everything run checks before starting', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-cli-validate-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.ndjson'), '{"a":1}\n');

  test('a storage extension that is configured but not in service.extensions: validate and run exit 2 with the same message', () => {
    writeFileSync(
      join(dir, 'c.yaml'),
      `extensions:
  file_storage: { directory: ./state }
receivers:
  file: { path: in.ndjson, storage: file_storage }
exporters:
  file: { path: out.ndjson, sending_queue: { storage: file_storage/q } }
service:
  extensions: []
  telemetry: { metrics: { address: "" }, health: { address: "" } }
  pipelines:
    logs: { receivers: [file], exporters: [file] }
`,
    );
    const v = cli(['validate', '--config', 'c.yaml'], dir);
    assert.equal(v.code, 2, v.stdout);
    assert.match(
      v.stderr,
      /c\.yaml:4:\d+: receivers\.file\.storage: extension "file_storage" is configured but not listed in service\.extensions/,
    );
    assert.match(
      v.stderr,
      /exporters\.file\.sending_queue\.storage: references extension "file_storage\/q" which is not configured \(did you mean "file_storage"\?\)/,
    );
    const r = cli(['run', '--config', 'c.yaml'], dir);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, v.stderr);
  });
});

describe('telemetry ports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-cli-ports-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'in.ndjson'), '{"a":1}\n');
  writeFileSync(join(dir, 'collector.yaml'), FILE_TO_FILE);

  test('a metrics port in use fails the start with exit 1 and a clear message, unless on_bind_error: warn', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const set = ['--set', `service::telemetry::metrics::address=127.0.0.1:${port}`];
      const r = cli(['run', '-c', 'collector.yaml', ...set], dir);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `authentik-collector: cannot listen on 127\\.0\\.0\\.1:${port} for the metrics endpoint: the port is in use`,
        ),
      );
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      assert.equal(existsSync(join(dir, 'out.ndjson')), false, 'nothing ran');
      const warn = cli(
        ['run', '-c', 'collector.yaml', ...set, '--set', 'service::telemetry::on_bind_error=warn'],
        dir,
      );
      assert.equal(warn.code, 0, warn.stderr);
      assert.match(warn.stderr, /metrics endpoint not started/);
    } finally {
      blocker.close();
    }
  });

  test('the shipped collector.yaml takes both addresses from the environment, with the defaults', () => {
    const text = readFileSync(join(ROOT, 'collector.yaml'), 'utf8');
    assert.match(text, /address: \$\{env:AC_METRICS_ADDRESS:-127\.0\.0\.1:8888\}/);
    assert.match(text, /address: \$\{env:AC_HEALTH_ADDRESS:-127\.0\.0\.1:13133\}/);
    const bad = cli(['validate', '-c', join(ROOT, 'collector.yaml')], dir, { AC_METRICS_ADDRESS: 'nowhere' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /service\.telemetry\.metrics\.address: must be "host:port"/);
  });
});

describe('SIGHUP reloads the configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-cli-hup-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const config = (out: string, extra = '') => `receivers:
  file: { path: in.ndjson, follow: true, poll_interval: 50ms${extra} }
exporters:
  file: { path: ${out} }
service:
  telemetry: { metrics: { address: "" }, health: { address: "" } }
  pipelines:
    logs: { receivers: [file], exporters: [file] }
`;

  test('a valid new configuration replaces the running one; an invalid one is logged and the old one keeps running', async () => {
    writeFileSync(join(dir, 'in.ndjson'), '{"n":1}\n');
    writeFileSync(join(dir, 'c.yaml'), config('one.ndjson'));
    const child = spawn(process.execPath, [BIN, 'run', '--config', 'c.yaml'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', AUTHENTIK_COLLECTOR_NO_REEXEC: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const read = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
    const until = async (cond: () => boolean, what: string) => {
      const end = Date.now() + 20_000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`${what}; stderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(() => read('one.ndjson') === '{"n":1}\n', 'the first configuration runs');
      // Invalid: logged, nothing restarts, the old pipeline still delivers.
      writeFileSync(join(dir, 'c.yaml'), config('two.ndjson', ', poll_intervall: 1s'));
      child.kill('SIGHUP');
      await until(
        () => /configuration reload failed; still running the previous configuration/.test(stderr),
        'reload failure logged',
      );
      assert.match(stderr, /poll_intervall/);
      writeFileSync(join(dir, 'in.ndjson'), '{"n":1}\n{"n":2}\n');
      await until(() => read('one.ndjson') === '{"n":1}\n{"n":2}\n', 'the old configuration keeps running');
      // Valid: the pipelines restart with it (the exporter now writes elsewhere).
      writeFileSync(join(dir, 'c.yaml'), config('two.ndjson'));
      child.kill('SIGHUP');
      await until(() => /configuration reloaded/.test(stderr), 'reloaded');
      writeFileSync(join(dir, 'in.ndjson'), '{"n":1}\n{"n":2}\n{"n":3}\n');
      await until(() => read('two.ndjson').includes('{"n":3}'), 'the new configuration runs');
      assert.equal(child.exitCode, null, 'still running');
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('npm run demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-demo-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('writes only into its own directory; progress and log lines never share a line', () => {
    const real = join(ROOT, 'data', 'authentik.ndjson');
    const before = existsSync(real) ? statSync(real).mtimeMs : undefined;
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'test/demo.ts'), '--events', '200', '--port', '0', '--dir', dir, '--timeout-seconds', '60'],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', AC_METRICS_ADDRESS: '', AC_HEALTH_ADDRESS: '' },
        encoding: 'utf8',
        timeout: 90_000,
      },
    );
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /result {13}OK: everything arrived/);
    assert.equal(readFileSync(join(dir, 'authentik.ndjson'), 'utf8').trim().split('\n').length >= 200, true);
    assert.ok(existsSync(join(dir, 'state')), 'checkpoints in <dir>/state');
    assert.equal(
      existsSync(real) ? statSync(real).mtimeMs : undefined,
      before,
      './data/authentik.ndjson untouched',
    );
    for (const line of r.stderr.split('\n').filter((l) => l !== '')) {
      assert.ok(line.startsWith('{') || line.startsWith('demo: '), `a line that mixes output: ${line}`);
    }
    const help = spawnSync(process.execPath, [join(ROOT, 'test/demo.ts'), '--help'], { encoding: 'utf8' });
    for (const opt of [
      '--events',
      '--port',
      '--config',
      '--dir',
      '--output',
      '--keep',
      '--timeout-seconds',
    ]) {
      assert.ok(help.stdout.includes(opt), `--help documents ${opt}`);
    }
  });
});

describe('unreachable authentik', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-cli-unreach-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the first message about authentik says "cannot connect", not the token', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as AddressInfo).port;
    await new Promise<void>((r) => blocker.close(() => r())); // a port nobody listens on
    writeFileSync(
      join(dir, 'c.yaml'),
      `receivers:
  authentik: { endpoint: "http://127.0.0.1:${port}", token: not-the-problem-123 }
exporters:
  file: { path: out.ndjson }
service:
  telemetry: { metrics: { address: "" }, health: { address: "" } }
  pipelines:
    logs: { receivers: [authentik], exporters: [file] }
`,
    );
    const child = spawn(process.execPath, [BIN, 'run', '--config', 'c.yaml'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', AUTHENTIK_COLLECTOR_NO_REEXEC: '1' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const problems = () =>
        stderr
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { level: string; msg: string })
          .filter((l) => l.level !== 'info' && !/no storage configured/.test(l.msg));
      const end = Date.now() + 30_000;
      while (problems().length === 0) {
        if (Date.now() > end) throw new Error(`no warning within 30 s:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const first = problems()[0]!.msg;
      assert.match(
        first,
        new RegExp(`^cannot connect to authentik at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
      );
      assert.doesNotMatch(first, /token/i);
      assert.doesNotMatch(stderr, /not readable with this token/);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('components, README tables and the JSON Schema come from one source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ac-cli-components-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('components agrees with the validator: required keys have no default, durations are durations, every option is described', () => {
    const r = cli(['components', '--json'], dir);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      components: {
        type: string;
        kind: string;
        options: {
          name: string;
          required: boolean;
          default?: unknown;
          typeText?: string;
          description?: string;
        }[];
      }[];
    };
    const opt = (type: string, name: string) =>
      report.components
        .find((c) => c.type === type && (c.kind === 'receiver' || type === 'memory_limiter'))!
        .options.find((o) => o.name === name)!;
    assert.equal(opt('authentik', 'endpoint').required, true);
    assert.equal(opt('authentik', 'endpoint').default, undefined);
    assert.match(opt('authentik', 'events.interval').typeText ?? '', /^duration/);
    // memory_limiter: {} is rejected (a limit must be chosen), so no limit is shown as a default.
    assert.equal(opt('memory_limiter', 'limit_percentage').default, undefined);
    const v = cli(['validate', '-c', 'yaml:processors::memory_limiter: {}'], dir);
    assert.equal(v.code, 2);
    for (const c of report.components) {
      for (const o of c.options) assert.ok(o.description, `${c.kind} ${c.type}: ${o.name} has a description`);
    }
  });

  test('components --schema is a JSON Schema the shipped collector.yaml validates against', async () => {
    const r = cli(['components', '--schema'], dir);
    assert.equal(r.code, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    const { Ajv2020 } = (await import('ajv/dist/2020.js')) as unknown as {
      Ajv2020: new (o: object) => AjvLike;
    };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const { parse } = await import('yaml');
    const config: unknown = parse(readFileSync(join(ROOT, 'collector.yaml'), 'utf8'));
    assert.equal(validate(config), true, JSON.stringify(validate.errors?.slice(0, 5)));
    assert.equal(validate({ receivers: { authentik: { endpont: 'x' } } }), false, 'a typo is flagged');
    const text = r.stdout;
    assert.match(text, /Time between incremental polls/);
  });
});

interface AjvLike {
  compile(s: object): ((v: unknown) => boolean) & { errors?: unknown[] | null };
}
