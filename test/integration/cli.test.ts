/**
 * Issue 2 acceptance through the real command line: `node bin/authentik-collector.js ...` as a child
 * process in a temporary directory, as an external checker runs it. Needs no peer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  Cli,
  ROOT,
  STACK_LINE,
  completeLines,
  freePort,
  metricSum,
  readNdjson,
  scrape,
  sleep,
  runCli,
  tail,
  telemetryYaml,
  tempDir,
  waitUntil,
  writeText,
} from './helpers.ts';

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const FILE_TO_FILE = `receivers:
  file:
    path: in.ndjson
    attributes: { data_stream.dataset: authentik.event }
exporters:
  file:
    path: out.ndjson
service:
  pipelines:
    logs: { receivers: [file], exporters: [file] }
`;

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('cli'));
});
after(() => cleanup());

/** Asserts a config error report: exit 2, the dotted path and file:line:column, no stack trace. */
function assertConfigError(
  r: { code: number | null; stdout: string; stderr: string },
  file: string,
  expect: { path: string; line: number; column: number; says: RegExp },
) {
  const detail = `stderr:\n${r.stderr}\nstdout:\n${r.stdout}`;
  assert.equal(r.code, 2, `exit code 2 expected; ${detail}`);
  assert.doesNotMatch(r.stderr, STACK_LINE, `no stack trace; ${detail}`);
  assert.doesNotMatch(r.stdout, /configuration OK/, detail);
  const lines = r.stderr.split('\n').filter((l) => l.includes(expect.path));
  assert.ok(lines.length > 0, `a line names the dotted path ${expect.path}; ${detail}`);
  const loc = `${basename(file)}:${expect.line}:${expect.column}`;
  const line = lines.find((l) => l.includes(loc));
  assert.ok(line, `the line naming ${expect.path} carries ${loc}; ${detail}`);
  assert.match(line, expect.says, detail);
}

describe(
  'validate: invalid configurations exit 2 with path and file:line:column',
  { timeout: 60_000 },
  () => {
    const base = (recv: string, exporters = '[file]') => `receivers:
  file:
${recv}exporters:
  file:
    path: out.ndjson
service:
  pipelines:
    logs: { receivers: [file], exporters: ${exporters} }
`;

    test('a typo in a key', async () => {
      const file = await writeText(
        dir,
        'typo.yaml',
        base('    path: in.ndjson\n    atributes: { data_stream.dataset: authentik.event }\n'),
      );
      const r = await runCli(['validate', '--config', file], { cwd: dir });
      assertConfigError(r, file, {
        path: 'receivers.file.atributes',
        line: 4,
        column: 5,
        says: /unknown|not allowed|unrecognized/i,
      });
    });

    test('a reference to an exporter that is not configured', async () => {
      const file = await writeText(dir, 'missing-ref.yaml', base('    path: in.ndjson\n', '[file, debug]'));
      const r = await runCli(['validate', '--config', file], { cwd: dir });
      assertConfigError(r, file, {
        path: 'service.pipelines.logs.exporters',
        line: 9,
        column: 50,
        says: /debug/,
      });
    });

    test('a wrong type', async () => {
      const file = await writeText(
        dir,
        'wrong-type.yaml',
        base('    path: in.ndjson\n    batch_size: lots\n'),
      );
      const r = await runCli(['validate', '--config', file], { cwd: dir });
      assertConfigError(r, file, {
        path: 'receivers.file.batch_size',
        line: 4,
        column: 17,
        says: /integer|number/i,
      });
    });

    test('an unset environment variable', async () => {
      const file = await writeText(dir, 'unset-env.yaml', base('    path: ${env:AC_IT_SURELY_UNSET}\n'));
      const r = await runCli(['validate', '--config', file], {
        cwd: dir,
        env: { AC_IT_SURELY_UNSET: undefined },
      });
      assertConfigError(r, file, {
        path: 'receivers.file.path',
        line: 3,
        column: 11,
        says: /AC_IT_SURELY_UNSET/,
      });
    });

    test('every problem is reported at once', async () => {
      const file = await writeText(
        dir,
        'all-problems.yaml',
        base(
          '    path: ${env:AC_IT_SURELY_UNSET}\n    atributes: {}\n    batch_size: lots\n',
          '[file, debug]',
        ),
      );
      const r = await runCli(['validate', '--config', file], {
        cwd: dir,
        env: { AC_IT_SURELY_UNSET: undefined },
      });
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, STACK_LINE, r.stderr);
      for (const [path, loc] of [
        ['receivers.file.path', '3:11'],
        ['receivers.file.atributes', '4:5'],
        ['receivers.file.batch_size', '5:17'],
        ['service.pipelines.logs.exporters', '11:50'],
      ] as const) {
        assert.ok(
          r.stderr.split('\n').some((l) => l.includes(path) && l.includes(`all-problems.yaml:${loc}`)),
          `${path} at ${loc} reported; stderr:\n${r.stderr}`,
        );
      }
    });

    test('`run` rejects the same configuration with exit 2 before starting anything', async () => {
      const file = await writeText(
        dir,
        'run-typo.yaml',
        base('    path: in.ndjson\n    atributes: { data_stream.dataset: authentik.event }\n'),
      );
      const r = await runCli(['run', '--config', file], { cwd: dir });
      assertConfigError(r, file, { path: 'receivers.file.atributes', line: 4, column: 5, says: /./ });
    });

    test('a YAML syntax error is a config error with a location, not a crash', async () => {
      const file = await writeText(dir, 'syntax.yaml', 'receivers:\n  file:\n    path: [in.ndjson\n');
      const r = await runCli(['validate', '--config', file], { cwd: dir });
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stderr, STACK_LINE, r.stderr);
      assert.match(r.stderr, /syntax\.yaml:\d+:\d+/, r.stderr);
    });

    test('a valid configuration validates with exit 0', async () => {
      const file = await writeText(dir, 'valid.yaml', FILE_TO_FILE);
      const r = await runCli(['validate', '--config', file], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /OK/);
    });
  },
);

describe('run: file → file replay', { timeout: 60_000 }, () => {
  test('the issue-2 config writes every input line, in order, and exits 0', async () => {
    const { dir: work, cleanup: done } = await tempDir('replay');
    try {
      const lines: string[] = [];
      const N = 4000;
      const BAD = 1234;
      for (let i = 0; i < N; i++) {
        if (i === BAD) {
          lines.push('{"this is": not json at line 1234');
          continue;
        }
        lines.push(
          JSON.stringify({
            seq: i,
            pk: `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`,
            action: i % 3 ? 'login' : 'model_updated',
            nested: { n: i * 7, list: [i, 'x', true, null], s: 'ünïcödé ✓ "q"' },
          }),
        );
      }
      // One line with insignificant whitespace: compared by value (JSON text is re-encoded).
      lines.push('{ "seq" : 4000 ,  "spaced": [ 1, 2 ] }');
      await writeText(work, 'in.ndjson', lines.join('\n') + '\n');
      const cfg = await writeText(work, 'collector.yaml', FILE_TO_FILE);

      const r = await runCli(['run', '--config', cfg], { cwd: work, timeoutMs: 60_000 });
      assert.equal(r.code, 0, `exit 0 expected; stderr:\n${tail(r.stderr)}`);
      assert.doesNotMatch(r.stderr, STACK_LINE, tail(r.stderr));

      const out = await completeLines(join(work, 'out.ndjson'));
      assert.equal(out.length, lines.length, 'one output line per input line');
      for (let i = 0; i < lines.length; i++) {
        const input = lines[i]!;
        const output = out[i]!;
        if (i === BAD) {
          // Not JSON: forwarded as a string body, written as a JSON string.
          assert.equal(JSON.parse(output), input, `line ${i}: the raw text as a string`);
        } else if (i === lines.length - 1) {
          assert.deepEqual(JSON.parse(output), JSON.parse(input), `line ${i}`);
        } else {
          assert.equal(output, input, `line ${i} written byte for byte, in order`);
        }
      }
      // The invalid line is counted/logged somewhere, not silently swallowed: at least the run says so
      // in its metrics or logs is a component concern; here it must simply not crash the run.
    } finally {
      await done();
    }
  });

  test('the same config, run from another working directory, resolves paths against the config file', async () => {
    const { dir: work, cleanup: done } = await tempDir('replay-cwd');
    try {
      const lines = Array.from({ length: 250 }, (_, i) => JSON.stringify({ i }));
      await writeText(work, 'in.ndjson', lines.join('\n'));
      const cfg = await writeText(work, 'collector.yaml', FILE_TO_FILE);
      const r = await runCli(['run', '--config', cfg], { cwd: ROOT, timeoutMs: 60_000 });
      assert.equal(r.code, 0, tail(r.stderr));
      assert.deepEqual(await completeLines(join(work, 'out.ndjson')), lines);
    } finally {
      await done();
    }
  });

  test('`run` with no --config uses ./collector.yaml', async () => {
    const { dir: work, cleanup: done } = await tempDir('default-config');
    try {
      await writeText(work, 'in.ndjson', '{"a":1}\n{"a":2}\n');
      await writeText(work, 'collector.yaml', FILE_TO_FILE);
      const r = await runCli(['run'], { cwd: work, timeoutMs: 60_000 });
      assert.equal(r.code, 0, tail(r.stderr));
      assert.deepEqual(await completeLines(join(work, 'out.ndjson')), ['{"a":1}', '{"a":2}']);
    } finally {
      await done();
    }
  });

  test('no --config and no collector.yaml exits 2 with a message', async () => {
    const { dir: work, cleanup: done } = await tempDir('no-config');
    try {
      const r = await runCli(['run'], { cwd: work });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /collector\.yaml/);
      assert.doesNotMatch(r.stderr, STACK_LINE);
    } finally {
      await done();
    }
  });

  test('several --config files deep-merge, later files win; ${env:VAR:-default} applies when unset', async () => {
    const { dir: work, cleanup: done } = await tempDir('merge');
    try {
      await writeText(work, 'a.ndjson', '{"from":"a"}\n');
      await writeText(work, 'b.ndjson', '{"from":"b"}\n');
      const one = await writeText(work, 'one.yaml', FILE_TO_FILE.replace('in.ndjson', 'a.ndjson'));
      const two = await writeText(
        work,
        'two.yaml',
        'receivers:\n  file:\n    path: ${env:AC_IT_MERGE_INPUT:-b.ndjson}\n',
      );
      const r = await runCli(['run', '--config', one, '--config', two], {
        cwd: work,
        env: { AC_IT_MERGE_INPUT: undefined },
        timeoutMs: 60_000,
      });
      assert.equal(r.code, 0, tail(r.stderr));
      assert.deepEqual(await completeLines(join(work, 'out.ndjson')), ['{"from":"b"}']);
    } finally {
      await done();
    }
  });
});

describe('command line', { timeout: 60_000 }, () => {
  test('--version prints the package version', async () => {
    for (const flag of ['--version', '-v']) {
      const r = await runCli([flag], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.includes(PKG.version), `${flag}: ${r.stdout}`);
    }
  });

  test('--help prints usage naming every command', async () => {
    const r = await runCli(['--help'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    for (const word of ['run', 'validate', 'components', '--config', '--log-level', '--log-format']) {
      assert.ok(r.stdout.includes(word), `help mentions ${word}:\n${r.stdout}`);
    }
  });

  test('an unknown command or option is a usage error (exit 2), no stack trace', async () => {
    for (const args of [['frobnicate'], ['run', '--no-such-flag'], ['run', '--log-level', 'loud']]) {
      const r = await runCli(args, { cwd: dir });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, STACK_LINE);
      assert.ok(r.stderr.trim().length > 0, 'says what is wrong');
    }
  });

  test('components lists every component type with its options', async () => {
    const r = await runCli(['components'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    for (const type of [
      'authentik',
      'authentik_ecs',
      'elasticsearch',
      'otlphttp',
      'file',
      'debug',
      'batch',
      'attributes',
      'file_storage',
    ]) {
      assert.match(r.stdout, new RegExp(`^\\s+${type}\\b`, 'm'), `lists ${type}`);
    }
    // Options are listed, e.g. the authentik receiver's contract names and the ES exporter's endpoints.
    for (const opt of ['endpoint', 'token', 'events.backfill', 'geoip.city_database', 'endpoints']) {
      assert.ok(r.stdout.includes(opt), `lists option ${opt}`);
    }
  });

  test('components --json is machine-readable and lists the same types', async () => {
    const r = await runCli(['components', '--json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const text = JSON.stringify(JSON.parse(r.stdout));
    for (const type of ['authentik', 'authentik_ecs', 'elasticsearch', 'otlphttp', 'file', 'file_storage']) {
      assert.ok(text.includes(`"${type}"`), `json lists ${type}`);
    }
  });
});

describe('signals', { timeout: 90_000 }, () => {
  test('SIGTERM during a run shuts down gracefully with exit 0 and no data lost', async () => {
    const { dir: work, cleanup: done } = await tempDir('sigterm');
    const tel = await telemetryYaml();
    try {
      const lines = Array.from({ length: 500 }, (_, i) => JSON.stringify({ i }));
      await writeText(work, 'in.ndjson', lines.join('\n') + '\n');
      const cfg = await writeText(
        work,
        'collector.yaml',
        `receivers:
  file:
    path: in.ndjson
    follow: true
exporters:
  file:
    path: out.ndjson
service:
${tel.yaml}  pipelines:
    logs: { receivers: [file], exporters: [file] }
`,
      );
      const cli = new Cli(['run', '--config', cfg], { cwd: work });
      try {
        const out = join(work, 'out.ndjson');
        await waitUntil(
          async () => (await completeLines(out)).length === lines.length,
          20_000,
          'the first lines to be written',
          () => tail(cli.stderr),
        );
        assert.ok(cli.running, 'follow: true keeps the collector running');
        const exit = await cli.stop(20_000);
        assert.equal(exit.code, 0, `exit 0 after SIGTERM; stderr:\n${tail(cli.stderr)}`);
        assert.doesNotMatch(cli.stderr, STACK_LINE, tail(cli.stderr));
        assert.match(cli.stderr, /SIGTERM/, 'logs the signal');
        assert.deepEqual(await completeLines(out), lines);
      } finally {
        await cli.kill();
      }
    } finally {
      await done();
    }
  });

  /** A file → otlphttp pipeline whose endpoint refuses connections: nothing can be delivered. */
  async function undeliverable(work: string, shutdownTimeout: string): Promise<string> {
    const tel = await telemetryYaml();
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ i }));
    await writeText(work, 'in.ndjson', lines.join('\n') + '\n');
    const dead = await freePort(); // nothing listens there
    return writeText(
      work,
      'collector.yaml',
      `receivers:
  file: { path: in.ndjson }
exporters:
  otlphttp: { endpoint: "http://127.0.0.1:${dead}", retry: { initial_interval: 200ms, max_interval: 500ms } }
service:
  shutdown_timeout: ${shutdownTimeout}
${tel.yaml}  pipelines:
    logs: { receivers: [file], exporters: [otlphttp] }
`,
    );
  }

  test('shutdown is bounded by service.shutdown_timeout when a backend never answers; undelivered records are reported', async (t) => {
    const { dir: work, cleanup: done } = await tempDir('bounded');
    try {
      const cfg = await undeliverable(work, '2s');
      const cli = new Cli(['run', '--config', cfg], { cwd: work });
      try {
        await cli.waitForStderr(/retry/i, 20_000);
        const t0 = Date.now();
        const exit = await cli.stop(20_000);
        const took = Date.now() - t0;
        assert.ok(took < 2_000 + 4_000, `exited ${took} ms after SIGTERM (shutdown_timeout 2s)`);
        // Issue 16: stopping while a sink is down is exit 75 with one summary line (runtime/README.md).
        assert.equal(exit.code, 75, `a stop with a sink down exits 75; stderr:\n${tail(cli.stderr)}`);
        assert.match(cli.stderr, /stopped with undelivered data, nothing lost/);
        assert.doesNotMatch(cli.stderr, STACK_LINE, tail(cli.stderr));
        await t.test(
          'the records that were read but never delivered are counted and logged as dropped',
          {
            todo:
              'runtime/file receiver/sending queue: when shutdown times out, the in-flight records are ' +
              'abandoned without a "dropped N log records" line (see the final report of the integration tests)',
          },
          () => {
            const dropped = cli
              .logLines()
              .filter((l) => typeof l['msg'] === 'string' && /dropped \d+ log record/.test(l['msg']))
              .reduce((n, l) => n + Number(l['dropped'] ?? 0), 0);
            assert.ok(dropped > 0, `no dropped records reported; stderr:\n${tail(cli.stderr)}`);
          },
        );
      } finally {
        await cli.kill();
      }
    } finally {
      await done();
    }
  });

  test('a second SIGTERM aborts the shutdown at once with exit 130', async () => {
    const { dir: work, cleanup: done } = await tempDir('abort');
    try {
      const cfg = await undeliverable(work, '60s');
      const cli = new Cli(['run', '--config', cfg], { cwd: work });
      try {
        await cli.waitForStderr(/retry/i, 20_000);
        cli.signal('SIGTERM');
        await cli.waitForStderr(/SIGTERM/, 5_000);
        await sleep(300);
        assert.ok(cli.running, 'the first signal waits for the (impossible) drain');
        const t0 = Date.now();
        cli.signal('SIGTERM');
        const exit = await cli.wait(10_000);
        assert.equal(exit.code, 130, tail(cli.stderr));
        assert.ok(Date.now() - t0 < 5_000, 'aborts without waiting');
      } finally {
        await cli.kill();
      }
    } finally {
      await done();
    }
  });

  test('metrics and health endpoints: accepted/sent counters match the records, the invalid JSON line is counted', async () => {
    const { dir: work, cleanup: done } = await tempDir('metrics');
    const tel = await telemetryYaml();
    try {
      const lines = Array.from({ length: 120 }, (_, i) => JSON.stringify({ i }));
      lines.splice(60, 0, 'not json at all');
      await writeText(work, 'in.ndjson', lines.join('\n') + '\n');
      const cfg = await writeText(
        work,
        'collector.yaml',
        `receivers:
  file: { path: in.ndjson, follow: true }
processors:
  batch: { send_batch_size: 50, timeout: 100ms }
exporters:
  file: { path: out.ndjson }
service:
${tel.yaml}  pipelines:
    logs: { receivers: [file], processors: [batch], exporters: [file] }
`,
      );
      const cli = new Cli(['run', '--config', cfg], { cwd: work });
      try {
        await waitUntil(
          async () => (await completeLines(join(work, 'out.ndjson'))).length === lines.length,
          20_000,
          'every line written',
          () => tail(cli.stderr),
        );
        let text = '';
        await waitUntil(
          async () => {
            text = await scrape(tel.metricsUrl);
            return metricSum(text, 'otelcol_exporter_sent_log_records') === lines.length;
          },
          10_000,
          'the exporter counter to reach the number of lines',
          () =>
            text
              .split('\n')
              .filter((l) => l.startsWith('otelcol_'))
              .join('\n'),
        );
        assert.equal(metricSum(text, 'otelcol_receiver_accepted_log_records'), lines.length, text);
        assert.equal(metricSum(text, 'otelcol_receiver_refused_log_records'), 0);
        assert.equal(metricSum(text, 'otelcol_exporter_send_failed_log_records'), 0);
        assert.equal(
          metricSum(text, 'otelcol_receiver_file_invalid_json_lines'),
          1,
          'the invalid line is counted',
        );
        const health = await fetch(tel.healthUrl, { signal: AbortSignal.timeout(2_000) });
        const body = (await health.json()) as { status: string; components: Record<string, unknown> };
        assert.equal(health.status, 200, JSON.stringify(body));
        assert.equal(body.status, 'ok');
        assert.ok(Object.keys(body.components).length >= 3, `per-component status: ${JSON.stringify(body)}`);
        const exit = await cli.stop();
        assert.equal(exit.code, 0, tail(cli.stderr));
      } finally {
        await cli.kill();
      }
    } finally {
      await done();
    }
  });

  test('logs are JSON lines when stderr is not a terminal', async () => {
    const { dir: work, cleanup: done } = await tempDir('jsonlogs');
    try {
      await writeText(work, 'in.ndjson', '{"a":1}\n');
      const cfg = await writeText(work, 'collector.yaml', FILE_TO_FILE);
      const r = await runCli(['run', '--config', cfg], { cwd: work, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const logLines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      assert.ok(logLines.length > 0, 'logs something');
      for (const l of logLines) {
        assert.doesNotThrow(() => JSON.parse(l), `a JSON line: ${l}`);
      }
      assert.deepEqual(await readNdjson(join(work, 'out.ndjson')), [{ a: 1 }]);
      // the file exporter left nothing else around
      assert.equal((await readFile(join(work, 'out.ndjson'), 'utf8')).split('\n').length, 2);
    } finally {
      await done();
    }
  });
});
