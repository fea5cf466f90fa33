/**
 * Issue 16 acceptance, through the real command line: the shipped `collector.yaml` with an `otlphttp`
 * exporter added as its comments say (a second `--config` adds it to the pipeline), the OTLP endpoint
 * down (nothing listens on its port). The `file` exporter must receive every event within seconds of
 * the backfill, the health endpoint and the metrics must show the OTLP exporter failing, and once an
 * OTLP endpoint listens on that port it must receive every event too. Then a graceful stop exits 0.
 *
 * The OTLP endpoint is a minimal in-process OTLP/HTTP server (fault injection: it is absent, then
 * present); the authentik API is the emulator.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startEmulator } from '../emulator/index.ts';
import { decodeRequestBody } from '../../exporters/otlphttp/testing.ts';
import { Cli, ROOT, freePort, metricSum, tail, tempDir, waitUntil, writeText } from './helpers.ts';

const EVENTS = 2000;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** Counts OTLP log records by `event.action`-independent identity (the record's `event.id` body field). */
function otlpSink(port: number): Promise<{ ids: Set<string>; records: number; close: () => Promise<void> }> {
  const state = { ids: new Set<string>(), records: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      for (const r of decodeRequestBody(body, req.headers['content-type'])) {
        state.records++;
        const b = r.body as { event?: { id?: string } } | undefined;
        const id = b?.event?.id ?? JSON.stringify(r.attributes['elasticsearch.document_id'] ?? r.body);
        state.ids.add(String(id));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () =>
      resolve({
        get ids() {
          return state.ids;
        },
        get records() {
          return state.records;
        },
        close: () => new Promise<void>((r) => server.close(() => r())),
      }),
    ),
  );
}

function eventLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"authentik.event"'));
}

describe('exporter isolation with the shipped collector.yaml', () => {
  test(
    `OTLP endpoint down: file gets all ${EVENTS} events within seconds; OTLP gets them all once it is back`,
    { timeout: 240_000 },
    async () => {
      const t = await tempDir('isolation');
      cleanups.push(t.cleanup);
      const emu = await startEmulator({ events: EVENTS });
      cleanups.push(() => emu.close());
      copyFileSync(join(ROOT, 'collector.yaml'), join(t.dir, 'collector.yaml'));
      const otlpPort = await freePort();
      const metricsPort = await freePort();
      const healthPort = await freePort();
      // What the shipped file's comments say to do: configure otlphttp and add it to the exporters.
      await writeText(
        t.dir,
        'otlp.yaml',
        `exporters:
  otlphttp:
    endpoint: http://127.0.0.1:${otlpPort}
    encoding: json
    compression: none
service:
  pipelines:
    logs:
      exporters: [file, otlphttp]
  telemetry:
    metrics: { address: 127.0.0.1:${metricsPort} }
    health: { address: 127.0.0.1:${healthPort} }
`,
      );
      const validate = new Cli(['validate', '--config', 'collector.yaml', '--config', 'otlp.yaml'], {
        cwd: t.dir,
        env: { AUTHENTIK_URL: emu.url, AUTHENTIK_TOKEN: emu.token },
      });
      const v = await validate.wait(60_000);
      assert.equal(v.code, 0, validate.stderr);
      assert.ok(
        !/stalls/.test(validate.stderr),
        `the shipped config plus otlphttp must not be warned about: ${validate.stderr}`,
      );

      const cli = new Cli(
        ['run', '--config', 'collector.yaml', '--config', 'otlp.yaml', '--log-format', 'json'],
        { cwd: t.dir, env: { AUTHENTIK_URL: emu.url, AUTHENTIK_TOKEN: emu.token } },
      );
      cleanups.push(() => cli.kill());
      const out = join(t.dir, 'data', 'authentik.ndjson');
      await cli.waitForStderr(/collector started/, 60_000);
      const t0 = Date.now();
      await waitUntil(
        () => eventLines(out).length >= EVENTS,
        60_000,
        `${EVENTS} events in the file exporter's output`,
        () => `${eventLines(out).length} events; stderr:\n${tail(cli.stderr)}`,
      );
      const fileMs = Date.now() - t0;
      console.log(`file exporter: ${EVENTS} events ${fileMs} ms after start, OTLP endpoint down`);
      assert.ok(fileMs < 30_000, `file exporter took ${fileMs} ms with the OTLP endpoint down`);
      assert.match(cli.stderr, /persistent sending queue/, 'otlphttp got a persistent queue');

      // The failing exporter is visible: health and send_failed.
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.ok(
        metricSum(metrics, 'otelcol_exporter_send_failed_log_records', { exporter: 'otlphttp' }) > 0,
        'send_failed has samples for otlphttp',
      );
      const health = (await (await fetch(`http://127.0.0.1:${healthPort}/`)).json()) as {
        components: Record<string, { status: string }>;
      };
      assert.notEqual(health.components['exporter:otlphttp']?.status, 'ok');
      assert.equal(health.components['exporter:file']?.status, 'ok');

      // The endpoint comes back: every event arrives.
      const sink = await otlpSink(otlpPort);
      cleanups.push(() => sink.close());
      const t1 = Date.now();
      const expected = new Set(
        eventLines(out).map((l) => (JSON.parse(l) as { event: { id: string } }).event.id),
      );
      assert.equal(expected.size, EVENTS);
      await waitUntil(
        () => [...expected].every((id) => sink.ids.has(id)),
        120_000,
        `every event at the OTLP endpoint`,
        () =>
          `${[...expected].filter((id) => sink.ids.has(id)).length} of ${EVENTS}; stderr:\n${tail(cli.stderr)}`,
      );
      console.log(
        `OTLP endpoint: every event ${Date.now() - t1} ms after it came back (${sink.records} records)`,
      );
      const exit = await cli.stop(40_000);
      assert.equal(exit.code, 0, tail(cli.stderr));
      assert.equal(eventLines(out).length, EVENTS, 'no duplicate in the file after a graceful stop');
    },
  );
});
