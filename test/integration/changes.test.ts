/**
 * Identity change records end to end through the CLI: emulator → authentik receiver → authentik_changes →
 * authentik_ecs → file exporter. Every change kind is made on the emulator's directory, some while the
 * collector runs, some while it is stopped; each must come out exactly once, across two restarts, and
 * nothing else may come out (the first listing is a silent baseline, a restart repeats nothing).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Emulator } from '../emulator/index.ts';
import { startEmulator } from '../emulator/index.ts';
import { DirectoryDriver } from '../scenarios/directory.ts';
import { Cli, completeLines, telemetryYaml, tempDir, waitUntil, writeText } from './helpers.ts';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Doc {
  event?: { action?: string; dataset?: string };
  data_stream?: { dataset?: string };
  user?: { id?: string; target?: { id?: string; name?: string } };
  group?: { id?: string; name?: string };
  authentik?: {
    change?: { events_shipped?: number; before?: Record<string, unknown>; after?: Record<string, unknown> };
  };
}

async function changeDocs(path: string): Promise<Doc[]> {
  if (!existsSync(path)) return [];
  return (await completeLines(path))
    .map((l) => JSON.parse(l) as Doc)
    .filter((d) => d.data_stream?.dataset === 'authentik.change');
}

/** `action target` of a change document (the user pk or the group uuid). */
const keyOf = (d: Doc): string =>
  `${d.event?.action} ${d.event?.action?.startsWith('group-') ? d.group?.id : d.user?.target?.id}`;

describe('identity change records through the CLI', () => {
  test('every change kind exactly once, across restarts and changes made while stopped', async () => {
    const t = await tempDir('changes');
    cleanups.push(t.cleanup);
    const emu: Emulator = await startEmulator({
      events: 400,
      users: 30,
      groups: 8,
      version: '2026.2',
      seed: 7,
    });
    cleanups.push(() => emu.close());
    const d = new DirectoryDriver(emu);
    const tel = await telemetryYaml();
    const cfg = await writeText(
      t.dir,
      'collector.yaml',
      `extensions:
  file_storage: { directory: ./state }
receivers:
  authentik:
    endpoint: ${emu.url}
    token: \${env:AUTHENTIK_TOKEN}
    storage: file_storage
    events: { interval: 1s, backfill: all }
    users: { interval: 2s, changes_interval: 1s }
    groups: { interval: 2s }
    api_retry: { initial_interval: 200ms, max_interval: 1s }
processors:
  authentik_changes: { storage: file_storage, counts_flush_interval: 1s }
  authentik_ecs: {}
exporters:
  file: { path: ./out.ndjson }
service:
  extensions: [file_storage]
${tel.yaml}  pipelines:
    logs: { receivers: [authentik], processors: [authentik_changes, authentik_ecs], exporters: [file] }
`,
    );
    const out = `${t.dir}/out.ndjson`;
    const start = () => {
      const cli = new Cli(['run', '--config', cfg, '--log-format', 'json'], {
        cwd: t.dir,
        env: { AUTHENTIK_TOKEN: emu.token },
      });
      cleanups.push(() => cli.kill());
      return cli;
    };
    const listings = (cli: Cli, what: 'users' | 'groups') =>
      cli.logLines().filter((l) => l['msg'] === `${what}: full listing delivered`).length;
    const waitListings = async (cli: Cli, n: number) =>
      waitUntil(
        () => listings(cli, 'users') >= n && listings(cli, 'groups') >= n,
        30_000,
        `${n} full user and group listings`,
        () => cli.stderr.slice(-3000),
      );
    const expected = new Map<string, string>(); // key -> phase
    const expect = (phase: string, action: string, target: string | number) =>
      expected.set(`${action} ${target}`, phase);
    const waitChanges = async (cli: Cli) => {
      let missing: string[] = [];
      await waitUntil(
        async () => {
          const got = new Set((await changeDocs(out)).map(keyOf));
          missing = [...expected.keys()].filter((k) => !got.has(k));
          return missing.length === 0;
        },
        30_000,
        'the expected change records',
        () => `missing: ${missing.join(', ')}\n${cli.stderr.slice(-2000)}`,
      );
    };

    const plain = d.plainUsers();
    assert.ok(plain.length >= 9, `need 9 plain users, have ${plain.length}`);
    // The user to delete: the plain user with the most events (GDPR cleanup deletes them with it).
    const eventsOf = new Map<number, number>();
    for (const pk of emu.events.allPks()) {
      const u = (emu.events.get(pk) as { user?: { pk?: unknown } }).user?.pk;
      if (typeof u === 'number') eventsOf.set(u, (eventsOf.get(u) ?? 0) + 1);
    }
    const victim = [...plain].sort((a, b) => (eventsOf.get(b.pk) ?? 0) - (eventsOf.get(a.pk) ?? 0))[0]!;
    assert.ok((eventsOf.get(victim.pk) ?? 0) > 0, 'the deleted user has events');
    const [u2, u3, u4, u5, u6, u7, u8] = plain.filter((u) => u.pk !== victim.pk);
    const admins = d.groups.find((g) => g.is_superuser)!;
    const parent = d.groups.find((g) => !g.is_superuser)!;

    // Run 1: baseline, then changes while running.
    let cli = start();
    await waitListings(cli, 2);
    assert.equal((await changeDocs(out)).length, 0, 'the first listings are a silent baseline');
    const u1 = d.createUser('scn-new-user');
    expect('A', 'user-created', u1.pk);
    d.setActive(u2!.pk, false);
    expect('A', 'user-deactivated', u2!.pk);
    d.setEmail(u3!.pk, 'changed@example.org');
    expect('A', 'user-email-changed', u3!.pk);
    d.setUsername(u4!.pk, 'scn-renamed');
    expect('A', 'user-username-changed', u4!.pk);
    d.addToGroup(u5!.pk, admins.pk);
    expect('A', 'user-added-to-group', u5!.pk);
    expect('A', 'user-superuser-granted', u5!.pk);
    d.setType(u6!.pk, 'external');
    expect('A', 'user-type-changed', u6!.pk);
    const g1 = d.createGroup('scn-group-1');
    expect('A', 'group-created', g1.pk);
    const g2 = d.createGroup('scn-group-2');
    expect('A', 'group-created', g2.pk);
    await waitChanges(cli);
    assert.equal((await cli.stop()).code, 0);

    // While stopped.
    d.setActive(u2!.pk, true);
    expect('B', 'user-activated', u2!.pk);
    d.removeFromGroup(u5!.pk, admins.pk);
    expect('B', 'user-removed-from-group', u5!.pk);
    expect('B', 'user-superuser-revoked', u5!.pk);
    d.changePassword(u7!.pk);
    expect('B', 'user-password-changed', u7!.pk);
    d.setName(u8!.pk, 'Renamed Person');
    expect('B', 'user-name-changed', u8!.pk);
    const shippedBefore = (await completeLines(out))
      .map((l) => JSON.parse(l) as Doc)
      .filter((x) => x.data_stream?.dataset === 'authentik.event' && x.user?.id === String(victim.pk)).length;
    d.deleteUser(victim.pk);
    expect('B', 'user-deleted', victim.pk);
    d.setParent(g1.pk, parent.pk);
    expect('B', 'group-parent-changed', g1.pk);
    d.setGroupSuperuser(g1.pk, true);
    expect('B', 'group-superuser-granted', g1.pk);
    d.renameGroup(g1.pk, 'scn-group-1-renamed');
    expect('B', 'group-renamed', g1.pk);
    d.deleteGroup(g2.pk);
    expect('B', 'group-deleted', g2.pk);

    // Run 2: the changes made while stopped, then one more while running.
    cli = start();
    await waitChanges(cli);
    d.setGroupSuperuser(g1.pk, false);
    expect('C', 'group-superuser-revoked', g1.pk);
    await waitChanges(cli);
    assert.equal((await cli.stop()).code, 0);

    // Run 3: nothing changed, nothing reported (three more listings).
    cli = start();
    await waitListings(cli, 3);
    assert.equal((await cli.stop()).code, 0);

    const docs = await changeDocs(out);
    const counts = new Map<string, number>();
    for (const x of docs) counts.set(keyOf(x), (counts.get(keyOf(x)) ?? 0) + 1);
    const rows = [...expected].map(([k, phase]) => `${phase}  ${k.padEnd(48)} ${counts.get(k) ?? 0}`);
    console.log(
      `change records (phase A: running, B: while stopped, C: after a restart)\n${rows.join('\n')}`,
    );
    for (const k of expected.keys()) assert.equal(counts.get(k), 1, `${k}: exactly once`);
    const unexpected = [...counts.keys()].filter((k) => !expected.has(k));
    assert.deepEqual(unexpected, [], 'no other change records');
    const kinds = new Set(docs.map((x) => x.event!.action));
    assert.equal(kinds.size, 19, `all 19 change kinds: ${[...kinds].sort().join(', ')}`);
    const del = docs.find((x) => x.event?.action === 'user-deleted')!;
    assert.equal(del.authentik?.change?.events_shipped, shippedBefore, 'events shipped of the deleted user');
    assert.ok(shippedBefore > 0);
    const parentDoc = docs.find((x) => x.event?.action === 'group-parent-changed')!;
    assert.deepEqual(parentDoc.authentik?.change?.after, {
      parents: [parent.pk],
      parent_names: [parent.name],
    });
  });
});
