import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from './index.ts';

test('events.insertRecords: custom events in the API key order, listed and GDPR-deleted like the others', async () => {
  const emu = await startEmulator({ events: 5, users: 5, groups: 3 });
  try {
    const at = new Date(Date.now() - 60_000);
    const rec = {
      user: { pk: 4242, email: 'x@example.com', username: 'x' },
      action: 'login_failed',
      app: 'authentik.events.signals',
      context: { username: 'x' },
      client_ip: '81.2.69.142',
      brand: { pk: 'b', app: 'authentik_brands', name: 'Default brand', model_name: 'brand' },
    };
    const pks = emu.events.insertRecords([rec, rec], at);
    assert.equal(pks.length, 2);
    assert.equal(emu.events.count(), 7);
    const got = emu.events.get(pks[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(got), [
      'pk',
      'user',
      'action',
      'app',
      'context',
      'client_ip',
      'created',
      'expires',
      'brand',
    ]);
    assert.equal(got.pk, pks[0]);
    assert.equal(Date.parse(got.created as string), at.getTime());
    const res = await fetch(`${emu.url}/api/v3/events/events/?page_size=100&username=x`, {
      headers: { authorization: `Bearer ${emu.token}` },
    });
    const body = (await res.json()) as { results: { pk: string }[] };
    assert.deepEqual(body.results.map((r) => r.pk).sort(), [...pks].sort());
    assert.equal(emu.events.deleteByUserPk(4242), 2);
    assert.equal(emu.events.count(), 5);
  } finally {
    await emu.close();
  }
});
