import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Host, LogsConsumer } from '../../runtime/component.ts';
import { PermanentError, RetryableError } from '../../runtime/errors.ts';
import type { LogsBatch, LogRecord } from '../../runtime/model.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import type { TestSettings } from '../../test/kit/index.ts';
import { factory as storageFactory } from '../../runtime/extensions/file_storage/factory.ts';
import type { FileStorage } from '../../runtime/extensions/file_storage/storage.ts';
import { factory } from './factory.ts';
import { ATTR_ORIGINAL, CHECKPOINT_KEY } from './receiver.ts';
import type { FileReceiver } from './receiver.ts';

const FAST_RETRY = { initial_interval: '5ms', max_interval: '20ms' };

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: (tmp) => {
    const path = join(tmp, 'in.ndjson');
    writeFileSync(path, '{"a":1}\n{"a":2}\n');
    return { path, retry_on_failure: FAST_RETRY };
  },
  emitsData: true,
  expectedFixtureConfig: {
    path: 'events/in.ndjson',
    attributes: { 'data_stream.dataset': 'authentik.event', tags: ['replay', 'test'] },
    follow: true,
    poll_interval: 1000,
    force_flush_period: 2000,
    start_at: 'end',
    batch_size: 500,
    max_line_size: 1024 * 1024,
    storage: 'file_storage/replay',
    storage_key: 'replay-2024',
    include_file_name: true,
    include_file_path: true,
    retry_on_failure: {
      enabled: true,
      initial_interval: 100,
      max_interval: 5000,
      max_elapsed_time: 60_000,
      multiplier: 1.5,
      randomization_factor: 0.5,
    },
  },
});

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'file-receiver-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let seq = 0;
async function inputFile(content: string | Buffer): Promise<string> {
  const path = join(root, `in-${++seq}.ndjson`);
  await writeFile(path, content);
  return path;
}

interface Run {
  receiver: FileReceiver;
  settings: TestSettings;
}
async function startReceiver(
  cfg: Record<string, unknown>,
  next: LogsConsumer,
  opts: { host?: Host; id?: string } = {},
): Promise<Run> {
  const settings = nopSettings(opts.id ?? 'file', 'receiver', root);
  const receiver = factory.create(settings, factory.configSchema.parse(cfg), next) as FileReceiver;
  await receiver.start(opts.host ?? nopHost());
  return { receiver, settings };
}

function bodies(records: LogRecord[]): unknown[] {
  return records.map((r): unknown => r.body);
}

describe('file receiver: reading', () => {
  test('reads NDJSON into records in file order, with static attributes and the raw line', async () => {
    const lines = Array.from({ length: 5 }, (_, i) => JSON.stringify({ i, msg: `m${i}` }));
    const path = await inputFile(lines.join('\n') + '\n');
    const sink = new SinkConsumer();
    const { receiver } = await startReceiver(
      { path, batch_size: 2, attributes: { 'data_stream.dataset': 'authentik.event', tags: ['a', 'b'] } },
      sink,
    );
    await receiver.finished;
    assert.deepEqual(
      sink.batches.map((b) => b.length),
      [2, 2, 1],
    );
    const all = sink.all();
    assert.deepEqual(
      bodies(all),
      lines.map((l): unknown => JSON.parse(l)),
    );
    for (const [i, r] of all.entries()) {
      assert.equal(r.attributes['data_stream.dataset'], 'authentik.event');
      assert.deepEqual(r.attributes['tags'], ['a', 'b']);
      assert.equal(r.attributes[ATTR_ORIGINAL], lines[i]);
      assert.equal(r.timestamp, undefined);
      assert.ok(Math.abs(r.observedTimestamp[0] * 1000 - Date.now()) < 60_000);
    }
    // Attribute lists are per record, not shared.
    assert.notEqual(all[0]!.attributes['tags'], all[1]!.attributes['tags']);
    await receiver.shutdown();
  });

  test('invalid JSON becomes a string body and is counted; empty lines are skipped', async () => {
    const path = await inputFile('{"ok":1}\nnot json {\n\n   \n[1,2]\n"str"\n{"ok":2\n42\n');
    const sink = new SinkConsumer();
    const { receiver, settings } = await startReceiver({ path }, sink);
    await receiver.finished;
    assert.deepEqual(bodies(sink.all()), [{ ok: 1 }, 'not json {', [1, 2], 'str', '{"ok":2', 42]);
    assert.equal(sink.all()[1]!.attributes[ATTR_ORIGINAL], 'not json {');
    const metrics = await settings.metrics.getSingleMetricAsString(
      'otelcol_receiver_file_invalid_json_lines',
    );
    assert.match(metrics, /otelcol_receiver_file_invalid_json_lines\{receiver="file"\} 2/);
    const debug = settings.logger.lines.filter((l) => l.level === 'debug' && /not valid JSON/.test(l.msg));
    assert.equal(debug.length, 2);
    assert.ok(!settings.logger.text().includes('not json {'), 'line content is not logged');
    assert.equal(settings.drops.length, 0);
    await receiver.shutdown();
  });

  test('UTF-8 BOM, CRLF line ends and a last line without newline', async () => {
    const path = await inputFile(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":"é"}\r\n{"b":2}\r\n{"c":3}')]),
    );
    const sink = new SinkConsumer();
    const { receiver } = await startReceiver({ path }, sink);
    await receiver.finished;
    assert.deepEqual(bodies(sink.all()), [{ a: 'é' }, { b: 2 }, { c: 3 }]);
    assert.deepEqual(
      sink.all().map((r) => r.attributes[ATTR_ORIGINAL]),
      ['{"a":"é"}', '{"b":2}', '{"c":3}'],
    );
    await receiver.shutdown();
  });

  test('a big file streams through in order', async () => {
    const n = 60_000;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(`{"seq":${i},"pad":"${'x'.repeat(40)}"}\n`);
    const path = await inputFile(parts.join(''));
    let expected = 0;
    let outOfOrder = 0;
    const consumer: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: (batch) => {
        for (const r of batch) if ((r.body as { seq: number }).seq !== expected++) outOfOrder++;
        return Promise.resolve();
      },
    };
    const { receiver, settings } = await startReceiver({ path, batch_size: 500 }, consumer);
    await receiver.finished;
    assert.equal(expected, n);
    assert.equal(outOfOrder, 0);
    const bytes = await settings.metrics.getSingleMetricAsString('otelcol_receiver_file_read_bytes');
    assert.match(bytes, new RegExp(`\\} ${Buffer.byteLength(parts.join(''))}$`, 'm'));
    await receiver.shutdown();
  });

  test('an oversized line is dropped with a count; the rest is delivered', async () => {
    const path = await inputFile(`{"a":1}\n{"big":"${'x'.repeat(200)}"}\n{"a":2}\n`);
    const sink = new SinkConsumer();
    const { receiver, settings } = await startReceiver({ path, max_line_size: 100 }, sink);
    await receiver.finished;
    assert.deepEqual(bodies(sink.all()), [{ a: 1 }, { a: 2 }]);
    assert.deepEqual(settings.drops, [{ count: 1, reason: 'line_too_long' }]);
    await receiver.shutdown();
  });

  test('a missing file fails start with a clear error (no follow)', async () => {
    const settings = nopSettings('file', 'receiver', root);
    const r = await factory.create(
      settings,
      factory.configSchema.parse({ path: 'nope.ndjson' }),
      new SinkConsumer(),
    );
    await assert.rejects(r.start(nopHost()), /nope\.ndjson: no such file/);
    await r.shutdown();
  });

  test('start_at: end without a checkpoint reads nothing that is already there', async () => {
    const path = await inputFile('{"old":1}\n');
    const sink = new SinkConsumer();
    const { receiver } = await startReceiver({ path, start_at: 'end' }, sink);
    await receiver.finished;
    assert.equal(sink.count(), 0);
    await receiver.shutdown();
  });

  test('relative paths resolve against the config directory; file name and path attributes', async () => {
    const path = await inputFile('{"a":1}\n');
    const sink = new SinkConsumer();
    const { receiver } = await startReceiver(
      { path: path.slice(root.length + 1), include_file_name: true, include_file_path: true },
      sink,
    );
    await receiver.finished;
    assert.equal(sink.all()[0]!.attributes['log.file.path'], path);
    assert.equal(sink.all()[0]!.attributes['log.file.name'], path.slice(root.length + 1));
    await receiver.shutdown();
  });
});

describe('file receiver: downstream errors', () => {
  test('retries a refused batch with backoff and delivers everything once, in order', async () => {
    const path = await inputFile('{"n":1}\n{"n":2}\n{"n":3}\n');
    const sink = new SinkConsumer();
    sink.failWith = (batch, call) => {
      if (call > 3) return undefined;
      // A consumer that mutates before refusing must not corrupt the retry.
      (batch[0]!.body as Record<string, unknown>)['n'] = 'mutated';
      batch[0]!.attributes['x'] = 'mutated';
      return new RetryableError('busy', { retryAfterMs: 5 });
    };
    const { receiver, settings } = await startReceiver(
      { path, batch_size: 2, retry_on_failure: FAST_RETRY },
      sink,
    );
    await receiver.finished;
    assert.deepEqual(
      sink.batches.map((b) => b.length),
      [2, 1],
    );
    assert.deepEqual(bodies(sink.all()), [{ n: 1 }, { n: 2 }, { n: 3 }]);
    assert.ok(sink.all().every((r) => !('x' in r.attributes)));
    assert.equal(settings.logger.lines.filter((l) => /retrying/.test(l.msg)).length, 3);
    assert.equal(settings.drops.length, 0);
    await receiver.shutdown();
  });

  test('a permanent error drops that batch with a reason and reading continues', async () => {
    const path = await inputFile('{"n":1}\n{"n":2}\n{"n":3}\n');
    const sink = new SinkConsumer();
    sink.failWith = (_b, call) => (call === 1 ? new PermanentError('mapping rejected') : undefined);
    const { receiver, settings } = await startReceiver({ path, batch_size: 2 }, sink);
    await receiver.finished;
    assert.deepEqual(bodies(sink.all()), [{ n: 3 }]);
    assert.deepEqual(settings.drops, [{ count: 2, reason: 'rejected_permanent' }]);
    await receiver.shutdown();
  });

  test('retries give up after max_elapsed_time and count the drop', async () => {
    const path = await inputFile('{"n":1}\n');
    const { receiver, settings } = await startReceiver(
      { path, retry_on_failure: { ...FAST_RETRY, max_elapsed_time: '30ms' } },
      { capabilities: { mutatesData: false }, consume: () => Promise.reject(new RetryableError('down')) },
    );
    await receiver.finished;
    assert.deepEqual(settings.drops, [{ count: 1, reason: 'retries_exhausted' }]);
    await receiver.shutdown();
  });

  test('shutdown during retries (no storage) counts the undelivered records', async () => {
    const path = await inputFile('{"n":1}\n{"n":2}\n');
    const { receiver, settings } = await startReceiver(
      { path, retry_on_failure: FAST_RETRY },
      { capabilities: { mutatesData: false }, consume: () => Promise.reject(new RetryableError('down')) },
    );
    await waitFor(() => settings.logger.lines.some((l) => /retrying/.test(l.msg)));
    await receiver.shutdown();
    await receiver.finished;
    assert.deepEqual(settings.drops, [{ count: 2, reason: 'shutdown_before_delivery' }]);
  });
});

describe('file receiver: checkpoints with file_storage', () => {
  async function storage(dir: string): Promise<{ host: Host; ext: FileStorage }> {
    const ext = storageFactory.create(
      nopSettings('file_storage', 'extension', root),
      storageFactory.configSchema.parse({ directory: dir }),
    ) as FileStorage;
    await ext.start(nopHost());
    return { host: nopHost({ file_storage: ext }), ext };
  }

  test('a restart continues after the last acknowledged line, also under a new id', async () => {
    const dir = join(root, 'state-resume');
    const path = await inputFile('{"n":1}\n{"n":2}\n{"n":3}\n');
    let s = await storage(dir);
    let sink = new SinkConsumer();
    let run = await startReceiver({ path, storage: 'file_storage', batch_size: 2 }, sink, { host: s.host });
    await run.receiver.finished;
    await run.receiver.shutdown();
    await s.ext.shutdown();
    assert.equal(sink.count(), 3);

    await appendFile(path, '{"n":4}\n{"n":5}');
    s = await storage(dir);
    sink = new SinkConsumer();
    run = await startReceiver({ path, storage: 'file_storage' }, sink, { host: s.host, id: 'file/renamed' });
    await run.receiver.finished;
    await run.receiver.shutdown();
    assert.deepEqual(bodies(sink.all()), [{ n: 4 }, { n: 5 }]);
    assert.ok(s.ext && (await s.ext.getClient('receiver', 'x', `file:${path}`)).get(CHECKPOINT_KEY));
    await s.ext.shutdown();
  });

  test('the checkpoint never passes an unacknowledged batch', async () => {
    const dir = join(root, 'state-unacked');
    const path = await inputFile('{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n');
    let s = await storage(dir);
    let release: () => void = () => undefined;
    const accepted: LogsBatch[] = [];
    const blocking: LogsConsumer = {
      capabilities: { mutatesData: false },
      consume: (batch) => {
        if (accepted.length === 0) {
          accepted.push(batch);
          return Promise.resolve();
        }
        // Second batch: never acknowledged; rejected (retryable) when the test shuts down.
        return new Promise((_res, rej) => {
          release = () => rej(new RetryableError('shutting down'));
        });
      },
    };
    const run = await startReceiver(
      { path, storage: 'file_storage', batch_size: 2, retry_on_failure: FAST_RETRY },
      blocking,
      {
        host: s.host,
      },
    );
    await waitFor(() => accepted.length === 1);
    await new Promise((r) => setTimeout(r, 30));
    const stopping = run.receiver.shutdown();
    release();
    await stopping;
    assert.equal(run.settings.drops.length, 0, 'with storage the batch is re-read, not dropped');
    await s.ext.shutdown();

    s = await storage(dir);
    const sink = new SinkConsumer();
    const again = await startReceiver({ path, storage: 'file_storage' }, sink, { host: s.host });
    await again.receiver.finished;
    await again.receiver.shutdown();
    await s.ext.shutdown();
    assert.deepEqual(bodies(sink.all()), [{ n: 3 }, { n: 4 }]);
  });

  test('a replaced file (different content at the head) is read from the start', async () => {
    const dir = join(root, 'state-replaced');
    const path = await inputFile('{"gen":1}\n{"gen":1}\n');
    let s = await storage(dir);
    let run = await startReceiver({ path, storage: 'file_storage' }, new SinkConsumer(), { host: s.host });
    await run.receiver.finished;
    await run.receiver.shutdown();
    await s.ext.shutdown();

    await writeFile(path, '{"gen":2}\n{"gen":2}\n{"gen":2}\n');
    s = await storage(dir);
    const sink = new SinkConsumer();
    run = await startReceiver({ path, storage: 'file_storage' }, sink, { host: s.host });
    await run.receiver.finished;
    await run.receiver.shutdown();
    await s.ext.shutdown();
    assert.equal(sink.count(), 3);
    assert.ok(run.settings.logger.lines.some((l) => /replaced/.test(l.msg)));
  });

  test('a storage id that is not configured fails start', async () => {
    const path = await inputFile('{"n":1}\n');
    const settings = nopSettings('file', 'receiver', root);
    const r = await factory.create(
      settings,
      factory.configSchema.parse({ path, storage: 'file_storage/x' }),
      new SinkConsumer(),
    );
    await assert.rejects(r.start(nopHost()), /storage extension "file_storage\/x" is not available/);
    await r.shutdown();
  });
});

describe('file receiver: follow', () => {
  const FOLLOW = { follow: true, poll_interval: '10ms', force_flush_period: '50ms' };

  test('tails appended lines, handles truncation and rotation', async () => {
    const path = await inputFile('{"n":1}\n');
    const sink = new SinkConsumer();
    const { receiver } = await startReceiver({ path, ...FOLLOW }, sink);
    assert.equal(receiver.finished, undefined, 'a tailing receiver never finishes');
    await waitFor(() => sink.count() === 1);
    await appendFile(path, '{"n":2}\n{"n":');
    await waitFor(() => sink.count() === 2);
    await appendFile(path, '3}\n');
    await waitFor(() => sink.count() === 3);
    assert.deepEqual((sink.all()[2]!.body as { n: number }).n, 3, 'a line split across writes is joined');

    await truncate(path, 0);
    await new Promise((r) => setTimeout(r, 50));
    await appendFile(path, '{"n":"after-truncate"}\n');
    await waitFor(() => sink.count() === 4);

    await rename(path, `${path}.1`);
    await appendFile(`${path}.1`, '{"n":"late-old"}\n');
    await writeFile(path, '{"n":"new-file"}\n');
    await waitFor(() => sink.count() === 6);
    assert.deepEqual(
      bodies(sink.all()).map((b) => (b as { n: unknown }).n),
      [1, 2, 3, 'after-truncate', 'late-old', 'new-file'],
    );
    await receiver.shutdown();
  });

  test('an unterminated last line is emitted after force_flush_period', async () => {
    const path = await inputFile('{"n":1}\n{"n":2}');
    const sink = new SinkConsumer();
    const { receiver } = await startReceiver({ path, ...FOLLOW }, sink);
    await waitFor(() => sink.count() === 2);
    await receiver.shutdown();
  });

  test('waits for a file that does not exist yet and then reads it from its start', async () => {
    const path = join(root, 'later.ndjson');
    const sink = new SinkConsumer();
    const { receiver, settings } = await startReceiver({ path, ...FOLLOW, start_at: 'end' }, sink);
    await waitFor(() => settings.logger.lines.some((l) => /waiting for the file/.test(l.msg)));
    await writeFile(path, '{"n":1}\n');
    await waitFor(() => sink.count() === 1);
    await receiver.shutdown();
  });

  test('start_at end skips what is already in the file', async () => {
    const path = await inputFile('{"n":1}\n');
    const sink = new SinkConsumer();
    const { receiver, settings } = await startReceiver({ path, ...FOLLOW, start_at: 'end' }, sink);
    await waitFor(() => settings.logger.lines.some((l) => /reading file/.test(l.msg)));
    await appendFile(path, '{"n":2}\n');
    await waitFor(() => sink.count() >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(bodies(sink.all()), [{ n: 2 }]);
    await receiver.shutdown();
  });
});
