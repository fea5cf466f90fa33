import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeComponent } from '../../../test/kit/conformance.ts';
import { nopHost, nopSettings } from '../../../test/kit/index.ts';
import type { TestSettings } from '../../../test/kit/index.ts';
import { factory } from './factory.ts';
import { frame, LOCK_FILE, TEMP_PREFIX, unframe, writeAtomic } from './files.ts';
import { dataDirName, INDEX_FILE } from './storage.ts';
import type { FileStorage } from './storage.ts';

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: (tmp) => ({ directory: join(tmp, 'state') }),
  expectedFixtureConfig: { directory: '/var/lib/authentik-collector', fsync: false, timeout: 5000 },
});

let root = '';
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'file-storage-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function newStorage(
  dir: string,
  extra: Record<string, unknown> = {},
): { ext: FileStorage; settings: TestSettings } {
  const settings = nopSettings('file_storage', 'extension', root);
  const cfg = factory.configSchema.parse({ directory: dir, ...extra });
  const ext = factory.create(settings, cfg) as FileStorage;
  return { ext, settings };
}

async function started(dir: string, extra: Record<string, unknown> = {}) {
  const s = newStorage(dir, extra);
  await s.ext.start(nopHost());
  return s;
}

describe('file_storage config', () => {
  test('defaults', () => {
    assert.deepEqual(factory.configSchema.parse({}), {
      directory: './data/state',
      fsync: true,
      timeout: 1000,
    });
  });
  test('rejects a bad timeout and an empty directory', () => {
    assert.equal(factory.configSchema.safeParse({ timeout: 'soon' }).success, false);
    assert.equal(factory.configSchema.safeParse({ directory: '' }).success, false);
  });
});

describe('file_storage values', () => {
  test('set, get, delete, missing key', async () => {
    const { ext } = await started(join(root, 'kv'));
    const c = await ext.getClient('receiver', 'file');
    assert.equal(await c.get('nope'), undefined);
    await c.set('cursor', Buffer.from('42'));
    assert.equal((await c.get('cursor'))?.toString(), '42');
    await c.set('cursor', Buffer.from('43'));
    assert.equal((await c.get('cursor'))?.toString(), '43');
    await c.delete('cursor');
    await c.delete('cursor');
    assert.equal(await c.get('cursor'), undefined);
    await c.close();
    await ext.shutdown();
  });

  test('values survive a restart; keys with odd characters are safe', async () => {
    const dir = join(root, 'restart');
    const a = await started(dir, { fsync: false });
    const c = await a.ext.getClient('receiver', 'authentik/prod', 'authentik:https://idp.example.com');
    const weird = '../../etc/passwd \u00e9 / \\ :*?';
    await c.set(weird, Buffer.from([0, 1, 2, 255]));
    await c.set('x'.repeat(500), Buffer.from('long'));
    await a.ext.shutdown();
    await assert.rejects(c.get(weird), /closed/);

    const b = await started(dir);
    const c2 = await b.ext.getClient('receiver', 'authentik/prod', 'authentik:https://idp.example.com');
    assert.deepEqual(await c2.get(weird), Buffer.from([0, 1, 2, 255]));
    assert.equal((await c2.get('x'.repeat(500)))?.toString(), 'long');
    await b.ext.shutdown();
    const files = await readdir(
      join(dir, dataDirName('receiver', 'authentik/prod', 'authentik:https://idp.example.com')),
    );
    assert.ok(
      files.every((f) => !f.includes('/') && !f.startsWith('.')),
      files.join(','),
    );
  });

  test('operations on one client run in call order', async () => {
    const { ext } = await started(join(root, 'order'));
    const c = await ext.getClient('receiver', 'file');
    const writes = Array.from({ length: 20 }, (_, i) => c.set('k', Buffer.from(String(i))));
    const read = c.get('k');
    await Promise.all(writes);
    assert.equal((await read)?.toString(), '19');
    await ext.shutdown();
  });

  test('getClient before start, and after shutdown, rejects', async () => {
    const { ext } = newStorage(join(root, 'unstarted'));
    await assert.rejects(ext.getClient('receiver', 'file'), /not started/);
    await ext.start(nopHost());
    await ext.shutdown();
    await assert.rejects(ext.getClient('receiver', 'file'), /stopped/);
  });

  test('creates the directory with mode 0700', async () => {
    const dir = join(root, 'fresh', 'nested', 'state');
    const { ext } = await started(dir);
    const st = await stat(dir);
    assert.equal(st.mode & 0o777, 0o700);
    const files = await ext.getDirectory('exporter', 'otlp', 'otlp:http://x');
    assert.ok(files.startsWith(dir));
    assert.ok((await stat(files)).isDirectory());
    await ext.shutdown();
  });
});

describe('file_storage crash tolerance', () => {
  test('framing detects truncation and corruption', () => {
    const f = frame(Buffer.from('hello'));
    assert.deepEqual(unframe(f), { value: Buffer.from('hello') });
    assert.ok('problem' in unframe(f.subarray(0, f.length - 1)));
    const bad = Buffer.from(f);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
    assert.ok('problem' in unframe(bad));
    assert.ok('problem' in unframe(Buffer.alloc(0)));
  });

  test('a truncated temp file left by a crash is ignored and removed; the old value stays', async () => {
    const dir = join(root, 'crash');
    const a = await started(dir);
    const c = await a.ext.getClient('receiver', 'file', 'file:/var/log/in.ndjson');
    await c.set('checkpoint', Buffer.from('{"offset":100}'));
    await a.ext.shutdown();

    const data = join(dir, dataDirName('receiver', 'file', 'file:/var/log/in.ndjson'));
    const valueFile = (await readdir(data)).find((f) => f.startsWith('v_'));
    assert.ok(valueFile);
    // Simulate a crash between write and rename: a partial temp file of a newer value.
    const newer = frame(Buffer.from('{"offset":200}'));
    await writeFile(join(data, `${TEMP_PREFIX}abc-${valueFile}`), newer.subarray(0, 7));

    const b = await started(dir);
    const c2 = await b.ext.getClient('receiver', 'file', 'file:/var/log/in.ndjson');
    assert.equal((await c2.get('checkpoint'))?.toString(), '{"offset":100}');
    assert.deepEqual(
      (await readdir(data)).filter((f) => f.startsWith(TEMP_PREFIX)),
      [],
      'leftover temp file removed',
    );
    await b.ext.shutdown();
  });

  test('a damaged value file is treated as missing with a warning', async () => {
    const dir = join(root, 'damaged');
    const a = await started(dir);
    const c = await a.ext.getClient('receiver', 'file');
    await c.set('checkpoint', Buffer.from('{"offset":100}'));
    const data = join(dir, dataDirName('receiver', 'file'));
    const [valueFile] = (await readdir(data)).filter((f) => f.startsWith('v_'));
    const full = await readFile(join(data, valueFile!));
    await writeFile(join(data, valueFile!), full.subarray(0, full.length - 3));
    assert.equal(await c.get('checkpoint'), undefined);
    assert.ok(a.settings.logger.lines.some((l) => l.level === 'warn' && /damaged/.test(l.msg)));
    // A later set repairs it.
    await c.set('checkpoint', Buffer.from('ok'));
    assert.equal((await c.get('checkpoint'))?.toString(), 'ok');
    await a.ext.shutdown();
  });

  test('an unreadable index is replaced with a warning', async () => {
    const dir = join(root, 'bad-index');
    const a = await started(dir);
    await (await a.ext.getClient('receiver', 'file')).set('k', Buffer.from('v'));
    await a.ext.shutdown();
    await writeFile(join(dir, INDEX_FILE), '{"version":1,"compo');
    const b = await started(dir);
    assert.ok(b.settings.logger.lines.some((l) => l.level === 'warn' && /index is unreadable/.test(l.msg)));
    assert.equal((await (await b.ext.getClient('receiver', 'file')).get('k'))?.toString(), 'v');
    await b.ext.shutdown();
    JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8'));
  });

  test('writeAtomic leaves no temp file behind and replaces the target', async () => {
    const dir = await mkdtemp(join(root, 'atomic-'));
    await writeAtomic(dir, 'a', Buffer.from('1'), true);
    await writeAtomic(dir, 'a', Buffer.from('2'), false);
    assert.deepEqual(await readdir(dir), ['a']);
    assert.equal(await readFile(join(dir, 'a'), 'utf8'), '2');
  });
});

describe('file_storage stable keys', () => {
  test('a renamed component keeps its checkpoint (info), a changed key does not (warn)', async () => {
    const dir = join(root, 'keys');
    const a = await started(dir);
    await (
      await a.ext.getClient('receiver', 'authentik/old', 'authentik:https://idp')
    ).set('cursor', Buffer.from('7'));
    await a.ext.shutdown();

    const b = await started(dir);
    const renamed = await b.ext.getClient('receiver', 'authentik/new', 'authentik:https://idp');
    assert.equal((await renamed.get('cursor'))?.toString(), '7');
    const info = b.settings.logger.lines.find((l) => l.level === 'info' && /renamed/.test(l.msg));
    assert.ok(info, 'rename is logged');
    assert.equal(info.fields['previous_id'], 'authentik/old');
    assert.ok(!b.settings.logger.lines.some((l) => l.level === 'warn'));
    await b.ext.shutdown();

    const c = await started(dir);
    const rekeyed = await c.ext.getClient('receiver', 'authentik/new', 'authentik:https://other-idp');
    assert.equal(await rekeyed.get('cursor'), undefined, 'old checkpoint is not used for a new key');
    const warn = c.settings.logger.lines.find((l) => l.level === 'warn');
    assert.ok(warn && /different storage key/.test(warn.msg));
    assert.equal(warn.fields['previous_key'], 'authentik:https://idp');
    assert.equal(warn.fields['key'], 'authentik:https://other-idp');
    await c.ext.shutdown();

    const index = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8'));
    assert.deepEqual(Object.keys(index.components), ['receiver:authentik/new']);
  });

  test('two components with the same key in one run is an error', async () => {
    const { ext } = await started(join(root, 'shared-key'));
    await ext.getClient('receiver', 'file/a', 'file:/x');
    await assert.rejects(ext.getClient('receiver', 'file/b', 'file:/x'), /same storage key/);
    await ext.shutdown();
  });

  test('directory names: sanitised id without key, type plus key hash with a key', () => {
    assert.equal(dataDirName('receiver', 'file/in put'), 'receiver_file~in~put');
    assert.match(dataDirName('receiver', 'authentik/prod', 'k'), /^receiver_authentik_[0-9a-f]{16}$/);
    assert.equal(dataDirName('receiver', 'authentik/a', 'k'), dataDirName('receiver', 'authentik/b', 'k'));
  });
});

describe('file_storage lock', () => {
  test('a second instance on the same directory fails with a clear error until the first stops', async () => {
    const dir = join(root, 'locked');
    const a = await started(dir);
    const b = newStorage(dir, { timeout: '100ms' });
    const t0 = Date.now();
    await assert.rejects(b.ext.start(nopHost()), (err: Error) => {
      assert.match(err.message, /in use by another file_storage extension of this collector/);
      assert.match(err.message, new RegExp(LOCK_FILE));
      return true;
    });
    assert.ok(Date.now() - t0 >= 90, 'waited for the timeout');
    await a.ext.shutdown();
    const c = await started(dir);
    await c.ext.shutdown();
  });

  test('waits for a holder that releases within the timeout', async () => {
    const dir = join(root, 'handover');
    const a = await started(dir);
    const b = newStorage(dir, { timeout: '3s' });
    const starting = b.ext.start(nopHost());
    setTimeout(() => void a.ext.shutdown(), 100);
    await starting;
    await b.ext.shutdown();
  });

  test('a lock left by a dead process is taken over with a warning', async () => {
    const dir = join(root, 'stale');
    const a = await started(dir);
    await a.ext.shutdown();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    assert.ok(dead);
    await writeFile(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: dead, hostname: hostname(), started: 'x', token: 'dead' }),
    );
    const b = await started(dir, { timeout: '100ms' });
    assert.ok(b.settings.logger.lines.some((l) => l.level === 'warn' && /stale/.test(l.msg)));
    await b.ext.shutdown();
    await assert.rejects(stat(join(dir, LOCK_FILE)), { code: 'ENOENT' });
  });

  test('a lock held by a live process on another host is respected', async () => {
    const dir = join(root, 'remote');
    const a = await started(dir);
    await a.ext.shutdown();
    await writeFile(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: 1, hostname: 'some-other-host', started: 'x', token: 't' }),
    );
    const b = newStorage(dir, { timeout: '50ms' });
    await assert.rejects(b.ext.start(nopHost()), /process 1 on host some-other-host/);
  });
});
