/**
 * The `authentik_webhook` receiver: accepts authentik's notification webhooks (one POST per event,
 * body = the event as the events API serializes it), authenticates them by a shared secret header,
 * and hands each event to the pipeline with the same record shape as the `authentik` receiver. A
 * webhook is answered 200 only once the pipeline accepted the event (delivered or durably queued);
 * anything else gets a non-2xx answer, so authentik's own retry and the poller cover failures.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { ComponentSettings, Host, LogsConsumer, Receiver } from '../../runtime/component.ts';
import { once } from '../../runtime/component.ts';
import { ConfigError, errorMessage, isPermanent } from '../../runtime/errors.ts';
import { sleep } from '../../runtime/exporterhelper/retry.ts';
import { hrTimeFromIso, hrTimeToMillis, nowHrTime } from '../../runtime/model.ts';
import { RecordFactory } from '../authentik/records.ts';
import { parseRelease, VersionState } from '../authentik/version.ts';
import type { Config } from './config.ts';
import type { RejectReason } from './metrics.ts';
import { WebhookMetrics } from './metrics.ts';
import { deprovision, plan, provision, ProvisionError } from './provision.ts';
import { clearPushHealth, publishPushHealth } from './push-state.ts';

/** How many recently accepted event pks are remembered to count authentik's re-sends. */
const RECENT_PKS = 10_000;
/** Instrumentation scope of pushed records (the poller's is `authentik-collector/receiver/authentik`). */
export const WEBHOOK_SCOPE = 'authentik-collector/receiver/authentik_webhook';
const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function digest(v: string | Buffer): Buffer {
  return createHash('sha256').update(v).digest();
}

/** Token bucket (requests per second, burst). */
class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at = performance.now();
  constructor(rate: number, burst: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
  }
  take(): boolean {
    if (this.#rate <= 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Why a body is not an authentik event, or undefined when it is one. */
export function notAnEvent(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body is not a JSON object';
  const o = body as Record<string, unknown>;
  if ('severity' in o && 'body' in o && !('pk' in o)) {
    return "this is authentik's default notification body, not an event: set the transport's body mapping to the collector's (provision: true does)";
  }
  if (typeof o.pk !== 'string' || !UUID_RE.test(o.pk)) return 'no event pk (uuid)';
  if (typeof o.action !== 'string') return 'no action';
  if (typeof o.created !== 'string' || hrTimeFromIso(o.created) === undefined) return 'no valid created';
  return undefined;
}

export class WebhookReceiver implements Receiver {
  readonly #settings: ComponentSettings;
  readonly #config: Config;
  readonly #next: LogsConsumer;
  readonly #metrics: WebhookMetrics;
  readonly #secret: Buffer;
  readonly #header: string;
  readonly #limiter: RateLimiter;
  readonly #version = new VersionState();
  readonly #records: RecordFactory;
  readonly #abort = new AbortController();
  readonly #inflight = new Set<Promise<void>>();
  readonly #recent = new Set<string>();
  readonly #tlsOptions: { cert: Buffer; key: Buffer } | undefined;
  #server: http.Server | undefined;
  #closing = false;
  #lastAccepted = 0;
  #provisionError: string | undefined;
  #notEventWarned = false;
  #healthTimer: NodeJS.Timeout | undefined;
  #provisionTask: Promise<void> | undefined;
  #status = '';
  /** Where the server listens (after start), e.g. `http://127.0.0.1:9443/authentik/webhook`. */
  url = '';

  constructor(settings: ComponentSettings, config: Config, next: LogsConsumer) {
    this.#settings = settings;
    this.#config = config;
    this.#next = next;
    this.#metrics = new WebhookMetrics(settings.metrics, settings.id);
    this.#secret = digest(config.secret.reveal());
    this.#header = config.secret_header.toLowerCase();
    this.#limiter = new RateLimiter(config.rate_limit.requests_per_second, config.rate_limit.burst);
    this.#records = new RecordFactory(
      new URL(config.authentik.endpoint).hostname,
      settings.buildInfo.version,
      this.#version,
    );
    if (config.tls) {
      const base = `receivers.${settings.id}.tls`;
      const read = (p: string, key: string) => {
        try {
          return readFileSync(isAbsolute(p) ? p : resolve(settings.configDir, p));
        } catch (e) {
          throw new ConfigError([{ path: `${base}.${key}`, message: errorMessage(e) }]);
        }
      };
      this.#tlsOptions = {
        cert: read(config.tls.cert_file, 'cert_file'),
        key: read(config.tls.key_file, 'key_file'),
      };
    }
  }

  /** Whether push counts as healthy right now. */
  get healthy(): boolean {
    return this.#lastAccepted > 0 && Date.now() - this.#lastAccepted < this.#config.health_window;
  }

  async start(_host: Host): Promise<void> {
    const cfg = this.#config;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.#track(
        this.#handle(req, res).catch((e: unknown) => {
          this.#settings.logger.error('webhook handler failed', { reason: errorMessage(e) });
          if (!res.headersSent) res.writeHead(500, { connection: 'close' });
          res.end();
        }),
      );
    const server = this.#tlsOptions
      ? https.createServer({ ...this.#tlsOptions, keepAlive: true }, handler)
      : http.createServer({ keepAlive: true }, handler);
    server.headersTimeout = 30_000;
    server.requestTimeout = 60_000;
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolvePromise, reject) => {
      server.once('error', reject);
      server.listen(cfg.endpoint.port, cfg.endpoint.host, () => {
        server.off('error', reject);
        resolvePromise();
      });
    });
    server.on('error', (e) =>
      this.#settings.logger.error('webhook server error', { reason: errorMessage(e) }),
    );
    this.#server = server;
    const addr = server.address() as AddressInfo;
    const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.url = `${this.#tlsOptions ? 'https' : 'http'}://${host}:${addr.port}${cfg.path}`;
    this.#settings.logger.info('authentik webhook receiver listening', {
      url: this.url,
      secretHeader: cfg.secret_header,
      authentik: cfg.authentik.endpoint,
      provision: cfg.provision,
    });
    if (!this.#tlsOptions && !['127.0.0.1', '::1', 'localhost'].includes(cfg.endpoint.host)) {
      this.#settings.logger.warn(
        'webhook listener serves plain HTTP on a non-loopback address: the secret and the events cross the network unencrypted; set tls (or terminate TLS in front)',
      );
    }
    this.#healthTimer = setInterval(() => this.#refreshHealth(), 1000);
    this.#healthTimer.unref();
    this.#refreshHealth();
    if (cfg.provision) this.#provisionTask = this.#provisionLoop(this.#abort.signal);
    else this.#printPlan();
  }

  #track(p: Promise<void>): void {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  #printPlan(): void {
    this.#settings.logger.info(
      "push is not provisioned by the collector (provision: false): create these objects in authentik, in this order, replacing <...> by the pks of the objects created before and the secret by the receiver's secret (or set provision: true)",
      { objects: plan(this.#config) },
    );
  }

  async #provisionLoop(signal: AbortSignal): Promise<void> {
    const log = this.#settings.logger;
    let delay = 1000;
    for (;;) {
      try {
        const steps = await provision(this.#config, this.#settings.configDir);
        for (const s of steps) {
          this.#metrics.provisioned(s.action);
          log.info(`push provisioning: ${s.object} ${s.action}`, {
            object: s.object,
            name: s.name,
            pk: s.pk,
            action: s.action,
          });
        }
        const count = (a: string) => steps.filter((s) => s.action === a).length;
        log.info('push provisioned in authentik', {
          created: count('created'),
          updated: count('updated'),
          unchanged: count('unchanged'),
          webhookUrl: this.#config.public_url,
        });
        this.#provisionError = undefined;
        this.#refreshHealth();
        return;
      } catch (e) {
        if (signal.aborted) return;
        const msg = errorMessage(e);
        if (msg !== this.#provisionError)
          log.error('push provisioning failed; retrying (polling continues meanwhile)', { reason: msg });
        this.#provisionError = msg;
        this.#refreshHealth();
        const transient = e instanceof ProvisionError ? e.transient : true;
        delay = Math.min(transient ? delay * 2 : 300_000, 300_000);
        if (await sleep(delay, signal)) return;
      }
    }
  }

  /** Removes the provisioned objects (used by tests and documented for operators). */
  async deprovision(): Promise<void> {
    const steps = await deprovision(this.#config, this.#settings.configDir);
    for (const s of steps)
      this.#settings.logger.info(`push deprovisioning: ${s.object} ${s.action}`, { ...s });
  }

  #refreshHealth(): void {
    const healthy = this.healthy;
    this.#metrics.healthy(healthy);
    let status: 'ok' | 'recoverable_error' = 'ok';
    let msg: string;
    if (this.#provisionError !== undefined) {
      status = 'recoverable_error';
      msg = `push not healthy: provisioning failed: ${this.#provisionError}`;
    } else if (healthy) msg = 'push healthy';
    else if (this.#lastAccepted === 0)
      msg = 'push not healthy yet: no webhook accepted since start (polling at its normal interval)';
    else
      msg = `push not healthy: no webhook accepted in the last ${Math.round(this.#config.health_window / 1000)}s (polling at its normal interval)`;
    const key = `${status}|${msg}`;
    if (key !== this.#status) {
      this.#status = key;
      this.#settings.reportStatus(status, msg);
    }
  }

  #reject(
    res: http.ServerResponse,
    status: number,
    reason: RejectReason,
    detail: string,
    headers: Record<string, string> = {},
  ): void {
    this.#metrics.rejected(reason);
    if (res.headersSent) return;
    const body = JSON.stringify({ detail });
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const cfg = this.#config;
    const log = this.#settings.logger;
    this.#metrics.received();
    const path = (req.url ?? '/').split('?')[0];
    // Requests are answered before their body is read when they are refused: drop the connection
    // afterwards instead of reading an unwanted body.
    const refuse = (
      status: number,
      reason: RejectReason,
      detail: string,
      headers: Record<string, string> = {},
    ) => {
      this.#reject(res, status, reason, detail, { connection: 'close', ...headers });
      req.resume();
    };
    if (this.#closing) return refuse(503, 'shutting_down', 'shutting down', { 'retry-after': '5' });
    if (path !== cfg.path) return refuse(404, 'not_found', 'not found');
    if (req.method !== 'POST') return refuse(405, 'method', 'only POST', { allow: 'POST' });
    if (!this.#limiter.take())
      return refuse(429, 'rate_limited', 'too many requests', { 'retry-after': '1' });
    const got = req.headers[this.#header];
    const value = Array.isArray(got) ? got[0] : got;
    if (value === undefined || !timingSafeEqual(digest(value), this.#secret)) {
      return refuse(401, 'unauthorized', `missing or wrong ${cfg.secret_header} header`);
    }
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > cfg.max_body_size) {
      return refuse(413, 'too_large', `body larger than ${cfg.max_body_size} bytes`);
    }
    const enc = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (enc !== 'identity') return refuse(415, 'bad_request', `unsupported content-encoding ${enc}`);
    const chunks: Buffer[] = [];
    let size = 0;
    const ok = await new Promise<boolean>((done) => {
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > cfg.max_body_size) {
          done(false);
          req.removeAllListeners('data');
          req.resume();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => done(true));
      req.on('error', () => done(false));
      req.on('aborted', () => done(false));
    });
    if (!ok) {
      if (size > cfg.max_body_size)
        return refuse(413, 'too_large', `body larger than ${cfg.max_body_size} bytes`);
      this.#metrics.rejected('bad_request');
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return refuse(400, 'bad_request', 'body is not JSON');
    }
    const why = notAnEvent(body);
    if (why !== undefined) {
      if (!this.#notEventWarned) {
        log.warn(
          'webhook body is not an authentik event; answered 422 (the poller still collects the event)',
          { reason: why },
        );
        this.#notEventWarned = true;
      }
      return refuse(422, 'not_an_event', why);
    }
    const ua = String(req.headers['user-agent'] ?? '');
    const uaVersion = /^authentik@(\S+)/.exec(ua)?.[1];
    if (uaVersion !== undefined && this.#version.current.text !== uaVersion) {
      const release = parseRelease(uaVersion);
      if (release !== undefined)
        this.#version.set({ text: uaVersion.replace(/\+.*$/, ''), release, exact: true });
    }
    const event = body as Record<string, unknown>;
    const pk = String(event.pk);
    if (this.#recent.has(pk)) this.#metrics.duplicate();
    const record = this.#records.event(event, nowHrTime());
    // Same record as the poller's but for the scope, which names the path it came by.
    record.scope = { name: WEBHOOK_SCOPE, version: this.#settings.buildInfo.version };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (r) => (timer = setTimeout(() => r('timeout'), cfg.pipeline_timeout)),
    );
    let outcome: 'ok' | 'timeout' | { error: unknown };
    try {
      outcome = await Promise.race([this.#next.consume([record]).then(() => 'ok' as const), timeout]);
    } catch (e) {
      outcome = { error: e };
    } finally {
      clearTimeout(timer);
    }
    if (outcome === 'ok') {
      const created = record.timestamp ? hrTimeToMillis(record.timestamp) : undefined;
      this.#metrics.accepted(created === undefined ? undefined : (Date.now() - created) / 1000);
      this.#remember(pk);
      this.#lastAccepted = Date.now();
      publishPushHealth(
        cfg.authentik.endpoint,
        this.#lastAccepted + cfg.health_window,
        cfg.poll_interval_when_healthy,
      );
      this.#refreshHealth();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 21 });
      res.end('{"status":"accepted"}');
      return;
    }
    if (outcome !== 'timeout' && isPermanent(outcome.error)) {
      // The pipeline will never take this event (the poller's copy meets the same fate): counted as
      // dropped once, and answered 200 so authentik does not send it again and again.
      this.#settings.reportDropped(
        1,
        `pipeline refused the pushed event permanently: ${errorMessage(outcome.error)}`,
        { pk },
      );
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 20 });
      res.end('{"status":"dropped"}');
      return;
    }
    const reason =
      outcome === 'timeout' ? `not accepted within ${cfg.pipeline_timeout} ms` : errorMessage(outcome.error);
    log.debug(
      'pipeline did not accept a pushed event; answered 503 (authentik retries, the poller fills the gap)',
      { pk, reason },
    );
    this.#reject(res, 503, 'pipeline_refused', 'the pipeline did not accept the event; retry later', {
      'retry-after': '5',
    });
  }

  #remember(pk: string): void {
    this.#recent.add(pk);
    if (this.#recent.size > RECENT_PKS) {
      const first = this.#recent.values().next().value;
      if (first !== undefined) this.#recent.delete(first);
    }
  }

  readonly shutdown = once(async () => {
    this.#closing = true;
    this.#abort.abort();
    if (this.#healthTimer) clearInterval(this.#healthTimer);
    clearPushHealth(this.#config.authentik.endpoint);
    const server = this.#server;
    if (server) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const stop = new AbortController();
      await Promise.race([Promise.allSettled([...this.#inflight]), sleep(10_000, stop.signal)]);
      stop.abort();
      server.closeAllConnections();
      await closed;
    }
    await this.#provisionTask;
  });
}
