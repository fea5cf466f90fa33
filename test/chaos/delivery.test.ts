/**
 * Chaos scenarios of the delivery contract (issue 16), numbered after those of chaos.test.ts:
 *
 *  8. The sink unusable for a while (class 2 of runtime/exporterhelper/failure.ts): 401 for 5 s, 403
 *     for 5 s, a proxy's HTML 404 for 5 s, then a 413 limit that only small requests pass — in-memory
 *     queue, during collection. Nothing lost, nothing dead-lettered or dropped, health
 *     `permanent_error` during an episode, one error line per episode.
 *  9. Two exporters, one (bulk sink B) down for 60 s; sink A keeps receiving at full speed; B gets
 *     everything afterwards (exporter isolation: automatic persistent queues). Then a fan-out partial
 *     failure (B answers 503 for 5 s): A sees no re-sent batch (0 conflicts).
 * 10. SIGTERM while the sink is down (in-memory queue): exit 75 within the shutdown timeout, one
 *     summary line; after a restart with the sink back, everything once.
 * 11. The persistent queue's directory on a 1 MiB tmpfs (out of space) while the sink is down, then a
 *     kill -9, a damaged record in the middle of a segment (CRC mismatch), a damaged (torn + garbage)
 *     segment tail, and a restart with the sink back: only the damaged record's batch is lost, counted
 *     as dropped (`queue_corrupted`); every batch after it is replayed.
 * 12. TLS handshake failure for 5 s (the exporter's https endpoint presents an untrusted certificate),
 *     then the right one.
 *
 * Each prints its line of the result table (expected, delivered, duplicates, lost).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { connect } from 'node:net';
import { basename, join } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import type { Emulator } from '../emulator/index.ts';
import { startBulkSink } from './bulk-sink.ts';
import type { BulkSink } from './bulk-sink.ts';
import { formatTable, missing, record, results, sleep, tempDir, until } from './harness.ts';
import type { Collector } from './harness.ts';
import {
  API_KEY_ENV,
  buildConfig,
  expectedPks,
  fileSummary,
  metricSum,
  metricsText,
  sinkHas,
  startCollector,
  TOKEN_ENV,
} from './scenario.ts';

const KEEP = process.env['CHAOS_KEEP'] === '1';
const ONLY = (process.env['CHAOS_ONLY'] ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const PIPELINE = ['cli', 'emulator', 'authentik', 'authentik_ecs', 'elasticsearch', 'file_storage'];

function skipReason(n: number, needs: string[] = PIPELINE): string | false {
  if (ONLY.length && !ONLY.includes(String(n))) return `CHAOS_ONLY=${ONLY.join(',')}`;
  return missing(needs) ?? false;
}

const token = `ak-token-${Math.random().toString(36).slice(2)}`;
const apiKey = Buffer.from(`chaosid:key-${Math.random().toString(36).slice(2)}`).toString('base64');
const ENV = { [TOKEN_ENV]: token, [API_KEY_ENV]: apiKey };

class Scope {
  readonly collectors: Collector[] = [];
  readonly closers: (() => Promise<unknown>)[] = [];
  async emulator(opts: Parameters<typeof startEmulator>[0]): Promise<Emulator> {
    const emu = await startEmulator({ token, logRequests: false, ...opts });
    this.closers.push(() => emu.close());
    return emu;
  }
  async sink(): Promise<BulkSink> {
    const s = await startBulkSink({ auth: `ApiKey ${apiKey}` });
    this.closers.push(() => s.close());
    return s;
  }
  async dir(): Promise<string> {
    const t = await tempDir();
    if (!KEEP) this.closers.push(t.cleanup);
    return t.dir;
  }
  start(cfg: Awaited<ReturnType<typeof buildConfig>>): Collector {
    const c = startCollector(cfg, ENV);
    this.collectors.push(c);
    return c;
  }
  async close(): Promise<void> {
    for (const c of this.collectors) c.kill('SIGKILL');
    await Promise.allSettled(this.collectors.map((c) => c.exited));
    for (const f of this.closers.reverse()) await f().catch(() => undefined);
  }
}

after(() => {
  if (results.length === 0) return;
  console.log(`\ndelivery chaos results\n${formatTable(results)}\n`);
});

/** Records dropped anywhere (any reason), from the metrics text. */
function dropped(text: string): number {
  return (
    metricSum(text, 'otelcol_exporter_dropped_log_records') +
    metricSum(text, 'otelcol_receiver_dropped_log_records') +
    metricSum(text, 'otelcol_processor_dropped_log_records')
  );
}

async function health(port: number): Promise<Record<string, { status: string; message?: string }>> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`);
    return ((await r.json()) as { components: Record<string, { status: string }> }).components;
  } catch {
    return {};
  }
}

void describe('delivery chaos', { concurrency: 1 }, () => {
  void test(
    '8. sink unusable for a while: 401, 403, HTML 404 (5 s each), then a 413 limit',
    { skip: skipReason(8), timeout: 240_000 },
    async () => {
      const scope = new Scope();
      try {
        const emu = await scope.emulator({ events: 1500, users: 5, groups: 2, seed: 8 });
        const inserter = setInterval(() => emu.events.insert(3), 100);
        scope.closers.push(() => Promise.resolve(clearInterval(inserter)));
        const sink = await scope.sink();
        const dir = await scope.dir();
        const deadLetter = join(dir, 'dead.ndjson');
        const cfg = await buildConfig({ dir, emu, sinks: [{ id: 'elasticsearch', sink, deadLetter }] });
        const c = scope.start(cfg);
        await until('first documents', () => sink.pksOf('event').size > 100, 60_000, {
          alive: () => c.running,
          onTimeout: () => c.tail(),
        });
        const statuses = new Set<string>();
        const phase = async (mode: Parameters<BulkSink['setMode']>[0], ms: number) => {
          await sink.setMode(mode);
          const end = Date.now() + ms;
          while (Date.now() < end) {
            const h = await health(cfg.healthPort);
            if (h['exporter:elasticsearch']) statuses.add(h['exporter:elasticsearch'].status);
            await sleep(250);
          }
          await sink.setMode({ kind: 'ok' });
          await sleep(2500);
        };
        await phase({ kind: 'status', status: 401 }, 5000);
        await phase({ kind: 'status', status: 403 }, 5000);
        await phase(
          { kind: 'status', status: 404, body: '<html><body><h1>404 Not Found</h1>nginx</body></html>' },
          5000,
        );
        // Only requests of at most ~20 documents pass: the exporter splits.
        await sink.setMode({ kind: 'max_body', bytes: 40_000 });
        emu.events.insert(400);
        await sleep(4000);
        await sink.setMode({ kind: 'ok' });
        clearInterval(inserter);
        const expected = expectedPks(emu);
        await until('every record indexed', () => sinkHas(sink, expected) === expected.size, 90_000, {
          every: 500,
          alive: () => c.running,
          onTimeout: () => `${sinkHas(sink, expected)}/${expected.size}\n${c.tail()}`,
        });
        const text = await metricsText(cfg.metricsPort);
        const have = sinkHas(sink, expected);
        const lines = c.stderr.split('\n');
        const episodes = lines.filter((l) => l.includes('sink cannot accept data until it is fixed')).length;
        const recoveries = lines.filter((l) => l.includes('sink accepts data again')).length;
        console.log(
          `scenario 8: ${have}/${expected.size} indexed, sink saw ${JSON.stringify(sink.stats.byStatus)}, ` +
            `health statuses seen ${[...statuses].join(',')}, ${episodes} episode lines, ${recoveries} recovery lines, dropped ${dropped(text)}`,
        );
        record({
          scenario: '8 401/403/HTML 404 5 s each, 413 limit',
          expected: expected.size,
          delivered: have,
          duplicates: sink.duplicatePks(),
          lost: expected.size - have,
          peakRssMiB: c.peakRssMiB,
        });
        c.kill('SIGTERM');
        const exit = await c.wait(30_000);
        assert.equal(have, expected.size, 'nothing lost');
        assert.equal(sink.duplicatePks(), 0);
        assert.equal(dropped(text), 0, 'nothing dropped');
        assert.ok(
          !existsSync(deadLetter) || readFileSync(deadLetter, 'utf8') === '',
          'nothing dead-lettered',
        );
        assert.ok(statuses.has('permanent_error'), 'health showed permanent_error');
        assert.ok(episodes >= 3 && episodes <= 8, `one error line per episode (${episodes})`);
        assert.ok(recoveries >= 3, `one line per recovery (${recoveries})`);
        assert.ok((sink.stats.byStatus['413'] ?? 0) > 0, '413 was exercised');
        assert.equal(exit.code, 0, c.tail());
      } finally {
        await scope.close();
      }
    },
  );

  void test(
    '9. one of two exporters down 60 s; then a fan-out partial failure',
    { skip: skipReason(9), timeout: 300_000 },
    async () => {
      const scope = new Scope();
      try {
        const emu = await scope.emulator({ events: 3000, users: 5, groups: 2, seed: 9 });
        const a = await scope.sink();
        const b = await scope.sink();
        const dir = await scope.dir();
        const cfg = await buildConfig({
          dir,
          emu,
          // queue_size counts stored batches once the queue is persistent (automatic here): room for
          // the backfill and a minute of new events.
          sinks: [
            { id: 'elasticsearch/a', sink: a, queueSize: 1000 },
            { id: 'elasticsearch/b', sink: b, queueSize: 1000 },
          ],
          file: true,
        });
        await b.setMode({ kind: 'refuse' });
        const c = scope.start(cfg);
        const expected0 = expectedPks(emu);
        const t0 = Date.now();
        await until(
          'sink A has the backfill while B is down',
          () => sinkHas(a, expected0) === expected0.size,
          60_000,
          {
            alive: () => c.running,
            onTimeout: () => c.tail(),
          },
        );
        const aMs = Date.now() - t0;
        const inserter = setInterval(() => emu.events.insert(5), 100);
        scope.closers.push(() => Promise.resolve(clearInterval(inserter)));
        // While B stays down, A keeps up with new events within seconds.
        let maxLagMs = 0;
        const downUntil = t0 + 60_000;
        while (Date.now() < downUntil) {
          await sleep(2000);
          const want = expectedPks(emu, ['event']);
          const since = Date.now();
          await until('sink A keeps up', () => sinkHas(a, want) === want.size, 30_000, {
            alive: () => c.running,
            onTimeout: () => c.tail(),
          });
          maxLagMs = Math.max(maxLagMs, Date.now() - since);
        }
        const text = await metricsText(cfg.metricsPort);
        const blocked = metricSum(text, 'otelcol_exporter_blocking_seconds', { exporter: 'elasticsearch/b' });
        await b.setMode({ kind: 'ok' });
        // Fan-out partial failure: B answers 503 for 5 s while A is fine.
        await sleep(3000);
        const conflictsBefore = a.stats.conflicts;
        await b.setMode({ kind: 'status', status: 503 });
        await sleep(5000);
        await b.setMode({ kind: 'ok' });
        clearInterval(inserter);
        const expected = expectedPks(emu);
        await until(
          'both sinks and the file have everything',
          () =>
            sinkHas(a, expected) === expected.size &&
            sinkHas(b, expected) === expected.size &&
            fileSummary(cfg.outFile, expected).lost === 0,
          120_000,
          { every: 500, alive: () => c.running, onTimeout: () => c.tail() },
        );
        const file = fileSummary(cfg.outFile, expected);
        console.log(
          `scenario 9: sink A had the ${expected0.size}-record backfill ${aMs} ms after start with B down, ` +
            `max lag behind new events ${maxLagMs} ms; B blocking gauge ${blocked}; A conflicts during B's 503s: ` +
            `${a.stats.conflicts - conflictsBefore}; file duplicates ${file.duplicates}`,
        );
        for (const [name, s] of [
          ['A', a],
          ['B', b],
        ] as const) {
          record({
            scenario: `9 sink ${name} (${name === 'B' ? 'down 60 s, then 503 5 s' : 'healthy'})`,
            expected: expected.size,
            delivered: sinkHas(s, expected),
            duplicates: s.duplicatePks(),
            lost: expected.size - sinkHas(s, expected),
            peakRssMiB: c.peakRssMiB,
          });
        }
        record({
          scenario: '9 file exporter (healthy)',
          expected: expected.size,
          delivered: file.distinct,
          duplicates: file.duplicates,
          lost: file.lost,
          peakRssMiB: c.peakRssMiB,
        });
        c.kill('SIGTERM');
        const exit = await c.wait(30_000);
        assert.ok(aMs < 30_000, `A got the backfill in ${aMs} ms with B down`);
        assert.ok(maxLagMs < 15_000, `A kept up (max lag ${maxLagMs} ms)`);
        assert.equal(blocked, 0, 'B (persistent queue) never blocked the pipeline');
        assert.equal(a.stats.conflicts - conflictsBefore, 0, 'fan-out retried only B');
        assert.equal(a.duplicatePks() + b.duplicatePks(), 0);
        assert.equal(file.duplicates, 0);
        assert.equal(exit.code, 0, c.tail());
      } finally {
        await scope.close();
      }
    },
  );

  void test(
    '10. SIGTERM while the sink is down: exit 75, one summary line, nothing lost after the restart',
    { skip: skipReason(10), timeout: 180_000 },
    async () => {
      const scope = new Scope();
      try {
        const emu = await scope.emulator({ events: 2000, users: 5, groups: 2, seed: 10 });
        const sink = await scope.sink();
        const dir = await scope.dir();
        const cfg = await buildConfig({
          dir,
          emu,
          sinks: [{ id: 'elasticsearch', sink }],
          shutdownTimeout: '6s',
        });
        const c = scope.start(cfg);
        await until('some documents', () => sink.pksOf('event').size > 300, 60_000, {
          alive: () => c.running,
          onTimeout: () => c.tail(),
        });
        await sink.setMode({ kind: 'refuse' });
        await sleep(2000);
        const t0 = Date.now();
        c.kill('SIGTERM');
        const exit = await c.wait(20_000);
        const stopMs = Date.now() - t0;
        const summary = c.stderr.split('\n').filter((l) => l.includes('stopped with undelivered data'));
        await sink.setMode({ kind: 'ok' });
        const c2 = scope.start(cfg);
        const expected = expectedPks(emu);
        await until('everything after the restart', () => sinkHas(sink, expected) === expected.size, 90_000, {
          every: 500,
          alive: () => c2.running,
          onTimeout: () => c2.tail(),
        });
        c2.kill('SIGTERM');
        const exit2 = await c2.wait(30_000);
        const have = sinkHas(sink, expected);
        console.log(
          `scenario 10: stop took ${stopMs} ms, exit ${exit.code}; summary: ${summary[0] ?? '(none)'}`,
        );
        record({
          scenario: '10 SIGTERM while the sink is down',
          expected: expected.size,
          delivered: have,
          duplicates: sink.duplicatePks(),
          lost: expected.size - have,
          peakRssMiB: Math.max(c.peakRssMiB, c2.peakRssMiB),
        });
        assert.equal(exit.code, 75, c.tail());
        assert.ok(stopMs < 9000, `stopped within the shutdown timeout (${stopMs} ms)`);
        assert.equal(summary.length, 1, 'one summary line');
        assert.match(summary[0]!, /read again from the source at the next start/);
        assert.equal(have, expected.size);
        assert.equal(sink.duplicatePks(), 0);
        assert.equal(exit2.code, 0, c2.tail());
      } finally {
        await scope.close();
      }
    },
  );

  const canMount = (() => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
    return (
      spawnSync('sh', ['-c', 'command -v mount >/dev/null && command -v umount >/dev/null']).status === 0
    );
  })();

  void test(
    '11. persistent queue out of space (1 MiB tmpfs), kill -9, damaged segment middle and tail, restart',
    {
      skip: skipReason(11) || (!canMount && 'needs root and mount (a 1 MiB tmpfs for the queue directory)'),
      timeout: 240_000,
    },
    async () => {
      const scope = new Scope();
      const dir = await scope.dir();
      const mnt = join(dir, 'small');
      mkdirSync(mnt, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
      scope.closers.unshift(() => Promise.resolve(spawnSync('umount', ['-l', mnt])));
      try {
        const emu = await scope.emulator({ events: 4000, users: 5, groups: 2, seed: 11 });
        const sink = await scope.sink();
        await sink.setMode({ kind: 'refuse' });
        const cfg = await buildConfig({
          dir,
          emu,
          // max_size_mib larger than the file system: the disk fills before the queue bound.
          sinks: [{ id: 'elasticsearch', sink, queue: 'persistent', maxSizeMiB: 64 }],
        });
        // The whole storage directory on the small file system.
        const yaml = readFileSync(cfg.path, 'utf8').replace(cfg.stateDir, join(mnt, 'state'));
        writeFileSync(cfg.path, yaml);
        const c = scope.start(cfg);
        await until(
          'the queue write fails for lack of space',
          () => /could not write to the queue log|ENOSPC/.test(c.stderr),
          90_000,
          { every: 250, alive: () => c.running, onTimeout: () => c.tail() },
        );
        await sleep(2000);
        assert.ok(c.running, 'no crash when the disk is full');
        c.kill('SIGKILL');
        await c.wait(10_000);
        // Damage the newest segment's tail: a torn record plus garbage.
        const qdir = findDir(join(mnt, 'state'), 'sending_queue');
        const segs = readdirSync(qdir)
          .filter((n) => n.endsWith('.seg'))
          .sort();
        assert.ok(segs.length > 0, 'segments on disk');
        // Damage the middle of a segment: a few payload bytes of a record between two intact ones (a
        // CRC mismatch, as bit rot or a misdirected write would leave). Its batch is lost (counted as
        // dropped, `queue_corrupted`); every batch after it must still be replayed.
        const mid = middleRecord(qdir, segs);
        assert.ok(mid, `a segment with at least 3 records (${segs.join(', ')})`);
        const damagedPks = [...expectedPks(emu)].filter((pk) =>
          mid.text.includes(pk.slice(pk.indexOf(':') + 1)),
        );
        const fd = openSync(mid.path, 'r+');
        try {
          writeSync(
            fd,
            Buffer.from('\u0001\u0002damaged\u0003'),
            0,
            10,
            mid.offset + 12 + 13 + Math.floor(mid.length / 3),
          );
        } finally {
          closeSync(fd);
        }
        const last = join(qdir, segs.at(-1)!);
        appendFileSync(
          last,
          Buffer.concat([Buffer.from([0x41, 0x4b, 0x51, 0x31, 0, 0, 1, 0]), Buffer.from('garbage')]),
        );
        await sink.setMode({ kind: 'ok' });
        const c2 = scope.start(cfg);
        const expected = expectedPks(emu);
        // Everything but the damaged batch; then a little longer, to see that nothing else arrives late.
        await until(
          'everything but the damaged batch after the restart',
          () => sinkHas(sink, expected) >= expected.size - mid.items,
          120_000,
          {
            every: 500,
            alive: () => c2.running,
            onTimeout: () => `${sinkHas(sink, expected)}/${expected.size}\n${c2.tail()}`,
          },
        );
        await sleep(3000);
        const have = sinkHas(sink, expected);
        const dropLine = c2.stderr.split('\n').find((l) => l.includes('queue_corrupted'));
        console.log(`scenario 11: drop logged as: ${dropLine}`);
        const skipped = /skipped a damaged or duplicate record/.test(c2.stderr);
        const dropped = metricSum(
          await metricsText(cfg.metricsPort),
          'otelcol_exporter_dropped_log_records',
          {
            reason: 'queue_corrupted',
          },
        );
        const missingPks = [...expected].filter((pk) => !sink.pksOf(pk.slice(0, pk.indexOf(':'))).has(pk));
        console.log(
          `scenario 11: ${have}/${expected.size} after the disk filled, kill -9, a damaged record in the middle of ${basename(mid.path)} (record ${mid.index + 1} of ${mid.count}, ${mid.items} log records) and a damaged tail; lost ${expected.size - have} (all in the damaged record), dropped{queue_corrupted} ${dropped}; tail damage reported: ${skipped}`,
        );
        record({
          scenario: '11 queue disk full + kill -9 + damaged middle and tail',
          expected: expected.size,
          delivered: have,
          duplicates: sink.duplicatePks(),
          lost: expected.size - have,
          peakRssMiB: Math.max(c.peakRssMiB, c2.peakRssMiB),
        });
        c2.kill('SIGTERM');
        const exit2 = await c2.wait(30_000);
        // Only the damaged record's batch is lost, and all of it is counted and logged as dropped.
        assert.equal(dropped, mid.items, 'the damaged batch is counted as dropped (queue_corrupted)');
        assert.ok(expected.size - have <= mid.items, 'nothing lost beyond the damaged batch');
        for (const pk of missingPks)
          assert.ok(damagedPks.includes(pk), `${pk} lost but not in the damaged record`);
        assert.ok(
          c2.stderr.includes(basename(mid.path)) && c2.stderr.includes('queue_corrupted'),
          'the drop is logged with the segment file',
        );
        assert.equal(sink.duplicatePks(), 0);
        assert.ok(skipped, 'the damaged tail was reported');
        assert.equal(exit2.code, 0, c2.tail());
      } finally {
        await scope.close();
      }
    },
  );

  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

  void test(
    '12. TLS handshake failure for 5 s (untrusted certificate), then the right one',
    { skip: skipReason(12) || (!hasOpenssl && 'openssl not installed'), timeout: 180_000 },
    async () => {
      const scope = new Scope();
      try {
        const dir = await scope.dir();
        const cert = (name: string) => {
          execFileSync(
            'openssl',
            [
              'req',
              '-x509',
              '-newkey',
              'ec',
              '-pkeyopt',
              'ec_paramgen_curve:prime256v1',
              '-nodes',
              '-days',
              '1',
              '-subj',
              '/CN=127.0.0.1',
              '-addext',
              'subjectAltName=IP:127.0.0.1',
              '-keyout',
              join(dir, `${name}.key`),
              '-out',
              join(dir, `${name}.pem`),
            ],
            { stdio: 'ignore' },
          );
          return {
            key: readFileSync(join(dir, `${name}.key`)),
            cert: readFileSync(join(dir, `${name}.pem`)),
          };
        };
        const good = cert('good');
        const bad = cert('bad');
        const emu = await scope.emulator({ events: 1500, users: 5, groups: 2, seed: 12 });
        const inserter = setInterval(() => emu.events.insert(3), 100);
        scope.closers.push(() => Promise.resolve(clearInterval(inserter)));
        const sink = await scope.sink();
        // A TLS terminator in front of the sink whose certificate can be swapped.
        const open = new Set<TLSSocket>();
        const proxy: TlsServer = createTlsServer({ ...good }, (s: TLSSocket) => {
          open.add(s);
          s.on('close', () => open.delete(s));
          const up = connect(sink.port, '127.0.0.1');
          s.pipe(up).pipe(s);
          s.on('error', () => up.destroy());
          up.on('error', () => s.destroy());
        });
        proxy.on('tlsClientError', () => undefined);
        await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
        scope.closers.push(() => new Promise((r) => proxy.close(() => r(undefined))));
        const port = (proxy.address() as { port: number }).port;
        const cfg = await buildConfig({
          dir,
          emu,
          sinks: [
            {
              id: 'elasticsearch',
              sink,
              extra: { endpoints: [`https://127.0.0.1:${port}`], tls: { ca_file: join(dir, 'good.pem') } },
            },
          ],
        });
        const c = scope.start(cfg);
        await until('first documents over TLS', () => sink.pksOf('event').size > 100, 60_000, {
          alive: () => c.running,
          onTimeout: () => c.tail(),
        });
        // The client connects by IP (no SNI): swap the server's certificate for new connections, and
        // cut the open ones so that every request needs a new handshake.
        proxy.setSecureContext({ ...bad });
        for (const sock of open) sock.destroy();
        const statuses = new Set<string>();
        const end = Date.now() + 5000;
        while (Date.now() < end) {
          const h = await health(cfg.healthPort);
          if (h['exporter:elasticsearch']) statuses.add(h['exporter:elasticsearch'].status);
          await sleep(250);
        }
        proxy.setSecureContext({ ...good });
        await sleep(2000);
        clearInterval(inserter);
        const expected = expectedPks(emu);
        await until('everything', () => sinkHas(sink, expected) === expected.size, 90_000, {
          every: 500,
          alive: () => c.running,
          onTimeout: () => `${sinkHas(sink, expected)}/${expected.size}\n${c.tail()}`,
        });
        const text = await metricsText(cfg.metricsPort);
        const have = sinkHas(sink, expected);
        console.log(`scenario 12: ${have}/${expected.size}; health statuses seen ${[...statuses].join(',')}`);
        record({
          scenario: '12 TLS handshake failure 5 s',
          expected: expected.size,
          delivered: have,
          duplicates: sink.duplicatePks(),
          lost: expected.size - have,
          peakRssMiB: c.peakRssMiB,
        });
        c.kill('SIGTERM');
        const exit = await c.wait(30_000);
        assert.equal(have, expected.size);
        assert.equal(sink.duplicatePks(), 0);
        assert.equal(dropped(text), 0);
        assert.ok(statuses.has('permanent_error'), 'health showed permanent_error (TLS failure)');
        assert.equal(exit.code, 0, c.tail());
      } finally {
        await scope.close();
      }
    },
  );
});

/**
 * The record in the middle of the segment with the most records (walked by the framing: magic u32,
 * length u32, CRC u32, payload `0x01 | id u64 | records u32 | batch JSON`).
 */
function middleRecord(
  qdir: string,
  segs: string[],
):
  | {
      path: string;
      offset: number;
      length: number;
      index: number;
      count: number;
      items: number;
      text: string;
    }
  | undefined {
  let best: { path: string; recs: { offset: number; length: number }[] } | undefined;
  for (const name of segs) {
    const path = join(qdir, name);
    const buf = readFileSync(path);
    const recs: { offset: number; length: number }[] = [];
    for (let off = 0; off + 12 <= buf.length;) {
      if (buf.readUInt32BE(off) !== 0x414b5131) break;
      const len = buf.readUInt32BE(off + 4);
      if (off + 12 + len > buf.length) break;
      recs.push({ offset: off, length: len });
      off += 12 + len;
    }
    if (recs.length >= 3 && (!best || recs.length > best.recs.length)) best = { path, recs };
  }
  if (!best) return undefined;
  const index = Math.floor(best.recs.length / 2);
  const r = best.recs[index]!;
  const buf = readFileSync(best.path);
  return {
    path: best.path,
    offset: r.offset,
    length: r.length,
    index,
    count: best.recs.length,
    items: buf.readUInt32BE(r.offset + 12 + 9),
    text: buf.subarray(r.offset + 12 + 13, r.offset + 12 + r.length).toString('utf8'),
  };
}

function findDir(root: string, name: string): string {
  for (const n of readdirSync(root, { withFileTypes: true })) {
    if (!n.isDirectory()) continue;
    const p = join(root, n.name);
    if (n.name === name) return p;
    try {
      return findDir(p, name);
    } catch {
      // not below this one
    }
  }
  throw new Error(`no ${name} below ${root}`);
}
