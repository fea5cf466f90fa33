import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator } from '../../test/emulator/index.ts';
import { describeComponent } from '../../test/kit/conformance.ts';
import { nopHost, nopSettings, SinkConsumer, waitFor } from '../../test/kit/index.ts';
import { RetryableError } from '../../runtime/errors.ts';
import { configSchema } from './config.ts';
import { factory } from './factory.ts';
import { WebhookReceiver } from './receiver.ts';
import { pollInterval } from './push-state.ts';
import { diff, plan } from './provision.ts';

const SECRET = 'a-very-secret-webhook-value-0123456789';
const em = await startEmulator({
  events: 50,
  users: 5,
  groups: 3,
  version: '2025.12',
  notifications: { retryDelaysMs: [200, 400, 800] },
});
after(() => em.close());

describeComponent(factory, {
  dir: import.meta.dirname,
  minimalConfig: { endpoint: '127.0.0.1:0', secret: SECRET, authentik: { endpoint: em.url } },
});

async function startReceiver(extra: Record<string, unknown> = {}, sink = new SinkConsumer()) {
  const cfg = configSchema.parse({
    endpoint: '127.0.0.1:0',
    secret: SECRET,
    authentik: { endpoint: em.url, token: em.token },
    rate_limit: { requests_per_second: 0 },
    ...extra,
  });
  const settings = nopSettings('authentik_webhook', 'receiver');
  const r = new WebhookReceiver(settings, cfg, sink);
  await r.start(nopHost());
  return { r, sink, settings, cfg };
}

async function metric(
  settings: { metrics: { getSingleMetricAsString(n: string): Promise<string> } },
  name: string,
) {
  return settings.metrics.getSingleMetricAsString(name);
}

describe('authentik_webhook provisioning plan', () => {
  test('provision: false lists the eight objects, with the secret as a placeholder', async () => {
    const { r, settings, cfg } = await startReceiver({ public_url: 'https://collector.example.com/hook' });
    await r.shutdown();
    const objs = plan(cfg);
    assert.deepEqual(
      objs.map((o) => o.path),
      [
        '/api/v3/core/users/',
        '/api/v3/core/groups/',
        '/api/v3/propertymappings/notification/',
        '/api/v3/propertymappings/notification/',
        '/api/v3/events/transports/',
        '/api/v3/policies/event_matcher/',
        '/api/v3/events/rules/',
        '/api/v3/policies/bindings/',
      ],
    );
    assert.ok(!JSON.stringify(objs).includes(SECRET));
    assert.ok(JSON.stringify(plan(cfg, true)).includes(SECRET));
    const printed = settings.logger.lines.find((l) => l.msg.startsWith('push is not provisioned'));
    assert.ok(printed, 'the plan is logged');
    assert.ok(!settings.logger.text().includes(SECRET));
    assert.equal(em.notifications.objects().rules.length, 0, 'nothing was created');
  });

  test('diff ignores fields the server does not have and compares arrays as sets', () => {
    assert.deepEqual(
      diff({ a: 1, t: ['x', 'y'] }, { a: 1, t: ['y', 'x'], destination_event_user: false }),
      {},
    );
    assert.deepEqual(diff({ a: 1 }, { a: 2 }), { a: 2 });
  });
});

describe('authentik_webhook against the emulator', () => {
  test('provisions from nothing, idempotently, and pushes every new event exactly as the API serializes it', async () => {
    // First run: a receiver whose public URL is itself.
    const probe = await startReceiver();
    const url = probe.r.url;
    await probe.r.shutdown();
    const port = new URL(url).port;
    const { r, sink, settings } = await startReceiver({
      endpoint: `127.0.0.1:${port}`,
      provision: true,
      public_url: url,
    });
    try {
      await waitFor(
        () => settings.logger.lines.some((l) => l.msg === 'push provisioned in authentik'),
        10_000,
      );
      const created = settings.logger.lines.filter((l) => l.msg.startsWith('push provisioning:'));
      assert.equal(created.length, 8);
      assert.ok(
        created.every((l) => l.fields?.['action'] === 'created'),
        JSON.stringify(created),
      );
      const objs = em.notifications.objects();
      assert.equal(objs.transports.length, 1);
      assert.equal(objs.transports[0]!['send_once'], true);
      assert.equal(objs.bindings.length, 1);
      const pks = em.events.insert(20);
      await waitFor(() => sink.count() >= 20, 10_000);
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(sink.count(), 20, 'exactly one webhook per event');
      const got = sink.all();
      for (let i = 0; i < pks.length; i++) {
        const rec = got.find((x) => (x.body as Record<string, unknown>)['pk'] === pks[i])!;
        assert.ok(rec, `event ${pks[i]} pushed`);
        // Same values and the same key order as the events API.
        assert.equal(JSON.stringify(rec.body), JSON.stringify(em.events.get(pks[i]!)));
        assert.equal(rec.attributes['data_stream.dataset'], 'authentik.event');
        assert.equal(rec.resource?.['service.version'], '2025.12.4');
      }
      assert.ok(r.healthy);
      assert.equal(pollInterval(em.url, 10_000), 60_000, 'the poller slows down while push is healthy');
      assert.match(await metric(settings, 'otelcol_receiver_authentik_webhook_accepted'), / 20$/m);
      // Second run: nothing to change.
      const again = await startReceiver({ provision: true, public_url: url });
      await waitFor(
        () => again.settings.logger.lines.some((l) => l.msg === 'push provisioned in authentik'),
        10_000,
      );
      const steps = again.settings.logger.lines.filter((l) => l.msg.startsWith('push provisioning:'));
      assert.ok(
        steps.every((l) => l.fields?.['action'] === 'unchanged'),
        JSON.stringify(steps.map((l) => l.msg)),
      );
      await again.r.shutdown();
      // The secret never appears in a log line.
      assert.ok(!JSON.stringify(settings.logger.lines).includes(SECRET));
      // A new secret updates the header mapping only.
      const rotated = await startReceiver({ provision: true, public_url: url, secret: `${SECRET}-rotated` });
      await waitFor(
        () => rotated.settings.logger.lines.some((l) => l.msg === 'push provisioned in authentik'),
        10_000,
      );
      const upd = rotated.settings.logger.lines.filter((l) => l.fields?.['action'] === 'updated');
      assert.deepEqual(
        upd.map((l) => l.fields?.['object']),
        ['header_mapping'],
      );
      await rotated.r.deprovision();
      assert.equal(em.notifications.objects().rules.length, 0);
      assert.equal(em.notifications.objects().transports.length, 0);
      await rotated.r.shutdown();
    } finally {
      await r.shutdown();
    }
  });

  test('rejects and counts wrong or missing secrets, oversized bodies, non-events and floods', async () => {
    const { r, sink, settings } = await startReceiver({
      max_body_size: 2048,
      rate_limit: { requests_per_second: 1, burst: 12 },
    });
    try {
      const ev = em.events.get(em.events.allPks()[0]!)!;
      const post = (headers: Record<string, string>, body: string) =>
        fetch(r.url, { method: 'POST', headers: { 'content-type': 'text/json', ...headers }, body });
      const h = { 'X-Authentik-Collector-Secret': SECRET };
      assert.equal((await post({}, JSON.stringify(ev))).status, 401);
      assert.equal((await post({ 'X-Authentik-Collector-Secret': 'wrong' }, JSON.stringify(ev))).status, 401);
      assert.equal(
        (await post({ 'X-Authentik-Collector-Secret': `${SECRET}x` }, JSON.stringify(ev))).status,
        401,
      );
      assert.equal((await post(h, JSON.stringify({ ...ev, pad: 'x'.repeat(5000) }))).status, 413);
      assert.equal((await post(h, '{not json')).status, 400);
      assert.equal(
        (
          await post(
            h,
            JSON.stringify({ body: 'login: {}', severity: 'notice', user_email: '', user_username: 'x' }),
          )
        ).status,
        422,
      );
      assert.equal((await fetch(r.url)).status, 405);
      assert.equal((await post(h, JSON.stringify(ev))).status, 200);
      assert.equal(sink.count(), 1);
      let limited = 0;
      for (let i = 0; i < 10; i++) if ((await post(h, JSON.stringify(ev))).status === 429) limited++;
      assert.ok(limited >= 5, `rate limited ${limited}`);
      const rejected = await metric(settings, 'otelcol_receiver_authentik_webhook_rejected');
      assert.match(rejected, /reason="unauthorized"} 3$/m);
      assert.match(rejected, /reason="too_large"} 1$/m);
      assert.match(rejected, /reason="not_an_event"} 1$/m);
      assert.match(rejected, /reason="rate_limited"} \d+$/m);
      assert.match(await metric(settings, 'otelcol_receiver_authentik_webhook_duplicates'), / [1-9]\d*$/m);
      assert.ok(!JSON.stringify(settings.logger.lines).includes(SECRET));
    } finally {
      await r.shutdown();
    }
  });

  test('answers 503 while the pipeline refuses, so the worker retries until it is accepted', async () => {
    const sink = new SinkConsumer();
    let refuse = true;
    sink.failWith = () => (refuse ? new RetryableError('queue full') : undefined);
    const { r } = await startReceiver({}, sink);
    try {
      const ev = em.events.get(em.events.allPks()[1]!)!;
      const res = await fetch(r.url, {
        method: 'POST',
        headers: { 'X-Authentik-Collector-Secret': SECRET },
        body: JSON.stringify(ev),
      });
      assert.equal(res.status, 503);
      refuse = false;
      const ok = await fetch(r.url, {
        method: 'POST',
        headers: { 'X-Authentik-Collector-Secret': SECRET },
        body: JSON.stringify(ev),
      });
      assert.equal(ok.status, 200);
      assert.equal(sink.count(), 1);
    } finally {
      await r.shutdown();
    }
  });
});
