/**
 * The `authentik` receiver: wires the HTTP client, checkpoints, version detection and the three
 * dataset loops (events, users, groups), and owns their lifecycle.
 */
import { isAbsolute, resolve } from 'node:path';
import type {
  ComponentSettings,
  Host,
  LogsConsumer,
  Receiver,
  StorageClient,
} from '../../runtime/component.ts';
import { isStorageExtension, once } from '../../runtime/component.ts';
import { ConfigError, errorMessage } from '../../runtime/errors.ts';
import { sleep } from '../../runtime/exporterhelper/retry.ts';
import type { Config } from './config.ts';
import type { TokenSource } from './client.ts';
import { AuthentikClient, fileToken, Health, redactUrl, staticToken, StoppedError } from './client.ts';
import { CheckpointStore } from './checkpoint.ts';
import type { Delivery } from './deliver.ts';
import { DirectoryCollector } from './directory.ts';
import { EventsCollector } from './events.ts';
import { ReceiverMetrics } from './metrics.ts';
import { RecordFactory } from './records.ts';
import { describeVersion, versionFromBody, VersionState } from './version.ts';
import { withPushInterval } from '../authentik_webhook/push-state.ts';

export const VERSION_PATH = '/api/v3/admin/version/';

/** How long shutdown waits for an in-flight `consume()` to settle before giving up on it. */
export const SHUTDOWN_WAIT_MS = 10_000;

export class AuthentikReceiver implements Receiver {
  readonly #settings: ComponentSettings;
  readonly #config: Config;
  readonly #next: LogsConsumer;
  readonly #metrics: ReceiverMetrics;
  readonly #client: AuthentikClient;
  readonly #health: Health;
  readonly #version = new VersionState();
  readonly #abort = new AbortController();
  #store: CheckpointStore | undefined;
  #task: Promise<void> | undefined;
  /** The events collector (tests and diagnostics). */
  events: EventsCollector | undefined;
  directory: DirectoryCollector | undefined;

  constructor(settings: ComponentSettings, config: Config, next: LogsConsumer) {
    this.#settings = settings;
    this.#config = config;
    this.#next = next;
    const problems: { path: string; message: string }[] = [];
    const base = `receivers.${settings.id}`;
    let token: TokenSource | undefined;
    if (config.token !== undefined) token = staticToken(config.token);
    else if (config.token_file !== undefined) {
      const p = isAbsolute(config.token_file)
        ? config.token_file
        : resolve(settings.configDir, config.token_file);
      try {
        token = fileToken(p);
      } catch (e) {
        problems.push({ path: `${base}.token_file`, message: errorMessage(e) });
      }
    }
    this.#metrics = new ReceiverMetrics(settings.metrics, settings.id);
    const health = new Health((s, m) => settings.reportStatus(s, m), settings.logger);
    this.#health = health;
    let client: AuthentikClient | undefined;
    if (token) {
      try {
        client = new AuthentikClient({
          endpoint: config.endpoint,
          token,
          timeoutMs: config.timeout,
          maxConcurrent: config.max_concurrent_requests,
          tls: config.tls,
          proxyUrl: config.proxy_url,
          retry: config.api_retry,
          maxResponseSize: config.max_response_size,
          userAgent: `${settings.buildInfo.name}/${settings.buildInfo.version}`,
          configDir: settings.configDir,
          logger: settings.logger,
          metrics: this.#metrics,
          health,
          id: settings.id,
          tokenFromFile: config.token_file !== undefined,
        });
      } catch (e) {
        problems.push({ path: `${base}.tls`, message: errorMessage(e) });
      }
    }
    if (problems.length > 0 || !client) throw new ConfigError(problems);
    this.#client = client;
  }

  async start(host: Host): Promise<void> {
    const cfg = this.#config;
    const log = this.#settings.logger;
    let storage: StorageClient | undefined;
    if (cfg.storage !== undefined) {
      const ext = host.getExtension(cfg.storage);
      if (!ext) {
        throw new Error(
          `receivers.${this.#settings.id}.storage: extension "${cfg.storage}" is not configured (declare it under extensions and list it in service.extensions)`,
        );
      }
      if (!isStorageExtension(ext)) {
        throw new Error(
          `receivers.${this.#settings.id}.storage: extension "${cfg.storage}" is not a storage extension`,
        );
      }
      storage = await ext.getClient(
        'receiver',
        this.#settings.id,
        cfg.storage_key ?? `authentik:${cfg.endpoint}`,
      );
    } else {
      log.warn(
        'no storage configured: checkpoints live in memory only, so a restart re-reads events according to events.backfill; set storage: file_storage',
      );
    }
    const store = new CheckpointStore(storage, log);
    this.#store = store;
    const signal = this.#abort.signal;
    const delivery: Delivery = {
      next: this.#next,
      retry: cfg.retry_on_failure,
      settings: this.#settings,
      metrics: this.#metrics,
      signal,
    };
    const records = new RecordFactory(
      new URL(cfg.endpoint).hostname,
      this.#settings.buildInfo.version,
      this.#version,
    );
    if (cfg.events.enabled) {
      this.events = new EventsCollector({
        client: this.#client,
        store,
        delivery,
        // Polls less often while an authentik_webhook receiver reports push healthy for this endpoint.
        cfg: withPushInterval(cfg.events, cfg.endpoint),
        maxConcurrent: cfg.max_concurrent_requests,
        settings: this.#settings,
        metrics: this.#metrics,
        records,
        version: this.#version,
        health: this.#health,
      });
      // A damaged checkpoint stops the start (exit 1) before anything is read.
      await this.events.load();
    }
    if (cfg.users.enabled || cfg.groups.enabled) {
      this.directory = new DirectoryCollector({
        client: this.#client,
        store,
        delivery,
        users: cfg.users,
        groups: cfg.groups,
        settings: this.#settings,
        metrics: this.#metrics,
        records,
        version: this.#version,
      });
      await this.directory.load();
    }
    log.info('authentik receiver starting', {
      endpoint: cfg.endpoint,
      proxy: cfg.proxy_url !== undefined ? redactUrl(cfg.proxy_url) : undefined,
      events: cfg.events.enabled,
      users: cfg.users.enabled,
      groups: cfg.groups.enabled,
      durable: store.durable,
    });
    this.#task = this.#run(signal).catch((e: unknown) => {
      if (!(e instanceof StoppedError))
        log.error('authentik receiver stopped unexpectedly', { reason: errorMessage(e) });
    });
  }

  async #run(signal: AbortSignal): Promise<void> {
    await this.#detectVersion(signal);
    const loops: Promise<void>[] = [];
    if (this.events) loops.push(this.events.run(signal));
    if (this.directory && this.#config.users.enabled) loops.push(this.directory.runUsers(signal));
    if (this.directory && this.#config.groups.enabled) loops.push(this.directory.runGroups(signal));
    await Promise.all(loops);
  }

  /** `version_current` from the admin endpoint; without permission the shapes of list responses tell. */
  async #detectVersion(signal: AbortSignal): Promise<void> {
    const log = this.#settings.logger;
    let failure: { kind: string; message?: string } | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await this.#client.tryJson('version', VERSION_PATH, signal);
      failure = 'kind' in r ? r : undefined;
      if ('body' in r) {
        const v = versionFromBody(r.body);
        if (v) {
          this.#version.set(v);
          log.info('authentik version detected', { version: describeVersion(v) });
          return;
        }
        break;
      }
      if (
        r.kind === 'http_403' ||
        r.kind === 'http_401' ||
        r.kind === 'http_404' ||
        r.kind.startsWith('http_4')
      )
        break;
      if (await sleep(1000 * attempt, signal)) throw new StoppedError();
    }
    if (failure && !failure.kind.startsWith('http_')) {
      // Unreachable is not a token problem: say so first (the data loops retry and log it too).
      log.warn(
        `${failure.message ?? `cannot connect to authentik (${failure.kind})`} reading ${VERSION_PATH}; ` +
          'the API generation will be detected from response shapes once authentik answers',
      );
      return;
    }
    log.info(
      `${VERSION_PATH} not readable with this token; detecting the API generation from response shapes`,
    );
  }

  readonly shutdown = once(async () => {
    this.#abort.abort();
    if (this.#task) {
      const stopTimer = new AbortController();
      const timer = sleep(SHUTDOWN_WAIT_MS, stopTimer.signal);
      const settled = await Promise.race([this.#task.then(() => true), timer.then(() => false)]);
      stopTimer.abort();
      if (!settled) {
        this.#settings.logger.warn(
          'shutdown: a batch was still being delivered; its checkpoint is not written',
          {
            waitedMs: SHUTDOWN_WAIT_MS,
          },
        );
      }
    }
    await this.directory?.flush();
    await this.#store?.close();
    await this.#client.close();
  });
}
