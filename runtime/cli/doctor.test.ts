/**
 * `authentik-collector doctor` (the real command, child processes) against the authentik emulator:
 * a healthy setup passes (exit 0); a wrong token, a missing permission, a clamped page size, an
 * unreachable OTLP endpoint and a checkpoint older than the retained events are each reported with
 * the right status, and any failure exits 1.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEmulator } from '../../test/emulator/index.ts';
import type { Emulator } from '../../test/emulator/index.ts';
import { nopHost, nopSettings } from '../../test/kit/index.ts';
import type { StorageExtension } from '../component.ts';
import { factory as fileStorage } from '../extensions/file_storage/factory.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'authentik-collector.js');

interface Check {
  component: string;
  check: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** Runs the command asynchronously (the emulator lives in this process, so no spawnSync). */
function doctor(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'doctor', ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', AUTHENTIK_COLLECTOR_NO_REEXEC: '1', ...env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const config = (
  url: string,
  extra = '',
  exporters = 'file: { path: out.ndjson }',
  list = '[file]',
) => `extensions:
  file_storage: { directory: ./state }
receivers:
  authentik:
    endpoint: ${url}
    token: \${env:AUTHENTIK_TOKEN}
    storage: file_storage
${extra}exporters:
  ${exporters}
service:
  extensions: [file_storage]
  pipelines:
    logs: { receivers: [authentik], exporters: ${list} }
`;

describe('doctor against the authentik emulator', { timeout: 120_000 }, () => {
  let emu: Emulator;
  let denied: Emulator;
  const dir = mkdtempSync(join(tmpdir(), 'ac-doctor-'));
  before(async () => {
    emu = await startEmulator({ events: 300, users: 5, groups: 3, seed: 3 });
    denied = await startEmulator({ events: 10, users: 2, groups: 1, seed: 4, denyDatasets: ['groups'] });
  });
  after(async () => {
    await emu.close();
    await denied.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const parse = (stdout: string) => (JSON.parse(stdout) as { checks: Check[] }).checks;
  const find = (checks: Check[], check: string) => checks.find((c) => c.check === check);

  test('a healthy setup: every check passes or warns only about optional things; exit 0; a table by default', async () => {
    writeFileSync(join(dir, 'ok.yaml'), config(emu.url));
    const r = await doctor(['--config', 'ok.yaml', '--json'], dir, { AUTHENTIK_TOKEN: emu.token });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const checks = parse(r.stdout);
    for (const name of [
      'reachable',
      'token',
      'permission events',
      'permission users',
      'permission groups',
      'version',
      'ordering',
      'page size',
      'QL search',
      'clock skew',
      'retention',
      'checkpoint',
    ]) {
      assert.equal(find(checks, name)?.status, 'pass', `${name}: ${JSON.stringify(find(checks, name))}`);
    }
    assert.match(find(checks, 'version')!.detail, /authentik 2026\.2/);
    assert.match(find(checks, 'retention')!.detail, /365 days .*GDPR compliance on/);
    const table = await doctor(['--config', 'ok.yaml'], dir, { AUTHENTIK_TOKEN: emu.token });
    assert.match(table.stdout, /^STATUS +COMPONENT +CHECK +DETAIL$/m);
    assert.match(table.stdout, /^PASS +receivers\.authentik +permission events +can read events/m);
    assert.match(table.stdout, /\d+ passed, \d+ warnings, 0 failed/);
    assert.ok(!table.stdout.includes(emu.token), 'the token is never printed');
  });

  test('a wrong token fails (exit 1) and says what a valid token is; the token is not printed', async () => {
    const r = await doctor(['--config', 'ok.yaml', '--json'], dir, { AUTHENTIK_TOKEN: 'wrong-token-123' });
    assert.equal(r.code, 1);
    const tok = find(parse(r.stdout), 'token')!;
    assert.equal(tok.status, 'fail');
    assert.match(tok.fix ?? '', /API token/);
    assert.ok(!r.stdout.includes('wrong-token-123'));
  });

  test('a missing permission names the permission to grant', async () => {
    writeFileSync(join(dir, 'denied.yaml'), config(denied.url));
    const r = await doctor(['--config', 'denied.yaml', '--json'], dir, { AUTHENTIK_TOKEN: denied.token });
    assert.equal(r.code, 1);
    const g = find(parse(r.stdout), 'permission groups')!;
    assert.equal(g.status, 'fail');
    assert.match(g.fix ?? '', /authentik_core\.view_group/);
  });

  test('a clamped page size warns; an unreachable OTLP endpoint fails', async () => {
    const port = await deadPort();
    writeFileSync(
      join(dir, 'clamp.yaml'),
      config(
        emu.url,
        '    events: { page_size: 1000 }\n',
        `otlphttp: { endpoint: "http://127.0.0.1:${port}" }`,
        '[otlphttp]',
      ),
    );
    const r = await doctor(['--config', 'clamp.yaml', '--json'], dir, { AUTHENTIK_TOKEN: emu.token });
    assert.equal(r.code, 1);
    const checks = parse(r.stdout);
    assert.equal(find(checks, 'page size')!.status, 'warn');
    assert.match(find(checks, 'page size')!.detail, /requested 1000, authentik serves 100 per page/);
    const otlp = checks.find((c) => c.component === 'exporters.otlphttp')!;
    assert.equal(otlp.status, 'fail');
    assert.match(otlp.detail, /cannot connect to http:\/\/127\.0\.0\.1:\d+\/v1\/logs \(ECONNREFUSED\)/);
  });

  test('a checkpoint older than the oldest retained event: events expired before they were collected', async () => {
    const sub = mkdtempSync(join(dir, 'old-'));
    const settings = nopSettings('file_storage', 'extension', sub);
    const ext = (await fileStorage.create(
      settings,
      fileStorage.configSchema.parse({ directory: './state' }),
    )) as StorageExtension;
    await ext.start(nopHost());
    const client = await ext.getClient('receiver', 'authentik', `authentik:${emu.url}`);
    const longAgo = Date.parse('2001-01-01T00:00:00Z') * 1000;
    await client.set(
      'events',
      Buffer.from(
        JSON.stringify({
          v: 1,
          phase: 'incremental',
          hw: String(longAgo),
          window: [],
          floor: null,
          backfill: null,
        }),
      ),
    );
    await ext.shutdown();
    writeFileSync(join(sub, 'c.yaml'), config(emu.url));
    const r = await doctor(['--config', 'c.yaml', '--json'], sub, { AUTHENTIK_TOKEN: emu.token });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const cp = find(parse(r.stdout), 'checkpoint')!;
    assert.equal(cp.status, 'fail');
    assert.match(cp.detail, /older than the oldest retained event .*expired before they were collected/);
  });

  test('unreachable authentik: "cannot connect", exit 1', async () => {
    const port = await deadPort();
    writeFileSync(join(dir, 'dead.yaml'), config(`http://127.0.0.1:${port}`));
    const r = await doctor(['--config', 'dead.yaml', '--json'], dir, { AUTHENTIK_TOKEN: 'x-token-1' });
    assert.equal(r.code, 1);
    const c = find(parse(r.stdout), 'reachable')!;
    assert.equal(c.status, 'fail');
    assert.match(c.detail, /^cannot connect to authentik at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });
});
