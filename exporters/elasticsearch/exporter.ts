/**
 * The `elasticsearch` exporter: writes each record's ECS document into an Elasticsearch / OpenSearch data
 * stream with `_bulk` `create`, resolving `consume()` only when every document is indexed, already present
 * (409) or dead-lettered.
 */
import type { ComponentSettings, ComponentStatus, Exporter, Host, Logger } from '../../runtime/component.ts';
import { RetryableError, errorMessage } from '../../runtime/errors.ts';
import {
  SinkUnusableError,
  sendFailedCounter,
  sinkUnusableDelay,
} from '../../runtime/exporterhelper/failure.ts';
import { RetriesExhaustedError, backoffDelay, sleep } from '../../runtime/exporterhelper/retry.ts';
import type { LogRecord, LogsBatch } from '../../runtime/model.ts';
import { BulkSender } from './bulk.ts';
import type { ItemError, ItemSink } from './bulk.ts';
import type { TlsMaterial } from './client.ts';
import { EsClient, TransportError } from './client.ts';
import type { Config } from './config.ts';
import { DeadLetterFile } from './deadletter.ts';
import type { DeadLetter } from './deadletter.ts';
import type { BulkItem, RoutingOptions } from './document.ts';
import { chunkItems, encodeItem, itemDocument } from './document.ts';
import { EsMetrics } from './metrics.ts';
import { ReplayChecker } from './replay.ts';
import type { ServerInfo } from './templates.ts';
import { SetupError, detectServer, initialServerTypes, installTemplates } from './templates.ts';

/** Drop reason for documents the server rejected for good. */
export const DROP_REASON_REJECTED = 'permanent_rejected_by_elasticsearch';
/** Drop reason for records that could not be turned into JSON. */
export const DROP_REASON_UNENCODABLE = 'unencodable_document';

export interface ExporterDeps {
  tls?: TlsMaterial | undefined;
  /** Authorization header value (revealed on the wire only). */
  authorization?: (() => string | undefined) | undefined;
  /** Absolute dead-letter path (resolved against the config directory by the factory). */
  deadLetterPath?: string | undefined;
}

export class ElasticsearchExporter implements Exporter {
  readonly capabilities = { mutatesData: false };
  readonly #s: ComponentSettings;
  readonly #cfg: Config;
  readonly #log: Logger;
  readonly #client: EsClient;
  readonly #metrics: EsMetrics;
  readonly #sender: BulkSender;
  readonly #deadLetter: DeadLetterFile | undefined;
  readonly #routing: RoutingOptions;
  readonly #replay: ReplayChecker | undefined;
  readonly #abort = new AbortController();
  /** Records already settled (delivered or dead-lettered): skipped when a rejected batch comes back. */
  readonly #settled = new WeakSet<LogRecord>();
  readonly #inflight = new Set<Promise<unknown>>();
  #status: ComponentStatus | undefined;
  #statusMessage: string | undefined;
  /** The status is `recoverable_error` only because some endpoints are down. */
  #degraded = false;
  #server: ServerInfo | undefined;
  #setup: Promise<void> = Promise.resolve();
  #setupDone = true;
  /** Set while setup fails because the credentials are refused (class 2). */
  #setupAuthError: SetupError | undefined;
  #wakeSetup: (() => void) | undefined;
  #started = false;
  #closing = false;
  #shutdownP: Promise<void> | undefined;

  constructor(settings: ComponentSettings, config: Config, deps: ExporterDeps = {}) {
    this.#s = settings;
    this.#cfg = config;
    this.#log = settings.logger;
    this.#metrics = new EsMetrics(settings.metrics, settings.id);
    this.#client = new EsClient({
      endpoints: config.endpoints,
      timeoutMs: config.timeout,
      // The sending queue may run several consumes at once, each with max_in_flight requests.
      connections: Math.max(4, config.max_in_flight * 4),
      cooldownMs: config.endpoint_cooldown,
      userAgent: `${settings.buildInfo.name}/${settings.buildInfo.version}`,
      authorization: deps.authorization,
      tls: deps.tls,
      onEndpointState: (endpoint, up, reason) => {
        if (up) this.#log.info('endpoint reachable again', { endpoint });
        else
          this.#log.warn('endpoint unreachable, skipping it for a while', {
            endpoint,
            reason,
            cooldown_ms: config.endpoint_cooldown,
          });
        this.#metrics.endpointUp(endpoint, up);
        // An `ok` turns into `recoverable_error` naming the dead endpoint(s), and back.
        if (this.#status === 'ok' || this.#degraded) this.#setStatus('ok');
      },
    });
    for (const e of this.#client.endpoints) this.#metrics.endpointUp(e, true);
    this.#sender = new BulkSender({
      client: this.#client,
      compression: config.compression,
      retry: config.retry,
      metrics: this.#metrics,
      logger: this.#log,
      onRequestFailure: (msg) => this.#setStatus('recoverable_error', msg),
      onRequestSuccess: () => this.#setStatus('ok'),
      onAttemptFailed: sendFailedCounter(settings),
    });
    this.#deadLetter =
      deps.deadLetterPath !== undefined ? new DeadLetterFile(deps.deadLetterPath) : undefined;
    this.#replay =
      config.replay_check === 'none'
        ? undefined
        : new ReplayChecker({
            client: this.#client,
            metrics: this.#metrics,
            logger: this.#log,
            mode: config.replay_check,
            startedAtMs: Date.now(),
            timeoutMs: config.timeout,
          });
    this.#routing = {
      index: config.index,
      dataset: config.data_stream.dataset,
      namespace: config.data_stream.namespace,
    };
  }

  /** What `GET /` found (after start). */
  get server(): ServerInfo | undefined {
    return this.#server;
  }

  /** Resolves when server detection and template setup finished (or gave up for good). */
  whenSetUp(): Promise<void> {
    return this.#setup;
  }

  #setStatus(status: ComponentStatus, message?: string): void {
    if (this.#status === 'permanent_error' && status !== 'ok') return;
    // Delivering, but some endpoints are down: say which (the others serve).
    const down = status === 'ok' ? this.#client.downEndpoints() : [];
    if (down.length > 0) {
      const up = this.#client.endpoints.filter((u) => !down.some((d) => d.url === u));
      status = 'recoverable_error';
      message =
        `${down.length} of ${this.#client.endpoints.length} endpoints unreachable: ` +
        down.map((d) => `${d.url} since ${new Date(d.since).toISOString()} (${d.reason})`).join('; ') +
        (up.length > 0 ? `; delivering through ${up.join(', ')}` : '');
    }
    // The same status again is news only when a message about endpoints changes (e.g. every node down now).
    const endpointNews = this.#degraded || down.length > 0;
    if (this.#status === status && (!endpointNews || this.#statusMessage === message)) return;
    this.#status = status;
    this.#statusMessage = message;
    this.#degraded = down.length > 0;
    this.#s.reportStatus(status, message);
  }

  async start(_host: Host): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#deadLetter) {
      await this.#deadLetter.open();
      this.#log.info('dead-letter file ready', { path: this.#deadLetter.path });
    }
    if (this.#cfg.tls?.insecure_skip_verify) {
      this.#log.warn('TLS certificate verification is disabled (tls.insecure_skip_verify)');
    }
    this.#setupDone = false;
    this.#setup = this.#runSetup().finally(() => {
      this.#setupDone = true;
    });
  }

  /** Server detection and template installation, retried in the background until it settles. */
  async #runSetup(): Promise<void> {
    const signal = this.#abort.signal;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        if (!this.#server) {
          this.#server = await detectServer(this.#client, signal);
          const s = this.#server;
          this.#log.info('connected to search server', {
            flavor: s.flavor,
            version: s.version,
            identified_by: s.source,
            ...(s.modules ? { modules: s.modules.length } : {}),
          });
        }
        if (this.#cfg.setup.templates) {
          const types = initialServerTypes(this.#server);
          const report = await installTemplates(
            this.#client,
            types,
            this.#cfg.setup.template_priority,
            signal,
            [this.#cfg.data_stream.namespace],
          );
          if (report.fleetManaged.length > 0) {
            this.#log.info(
              "Fleet manages these data streams' index templates (Elastic's integration); ours are not installed there",
              {
                data_streams: report.fleetManaged.map((f) => `logs-${f.dataset}-*`),
                templates: report.fleetManaged.map((f) => f.template),
              },
            );
          }
          if (report.shadowing.length > 0) {
            this.#log.warn(
              "index templates of ours still exist for Fleet-managed data streams and may take precedence over Fleet's; delete them unless intended",
              { templates: report.shadowing },
            );
          }
          const degraded = [...new Set(report.degraded.map((d) => `${d.wanted}->${d.used}`))];
          this.#log.info('index templates ready', {
            installed: report.installed,
            up_to_date: report.upToDate,
            flavor: this.#server.flavor,
          });
          if (degraded.length > 0) {
            this.#log.warn('server lacks some field types; templates use the nearest core type instead', {
              degraded,
              fields: report.degraded.map((d) => `${d.field}:${d.used}`),
              discovered_on_put: report.discoveredUnsupported,
            });
          }
        }
        this.#setupAuthError = undefined;
        this.#setStatus('ok');
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof SetupError && err.kind === 'auth') {
          // Class 2: the sink is unusable until the credentials are fixed. Keep trying, slowly; batches
          // wait in the sending queue meanwhile (consume rejects with SinkUnusableError).
          if (!this.#setupAuthError) {
            this.#log.error('cannot set up: credentials rejected; retrying slowly until they are fixed', {
              error: err.message,
            });
          }
          this.#setupAuthError = err;
          this.#setStatus('permanent_error', err.message);
          const wake = new AbortController();
          this.#wakeSetup = () => wake.abort();
          await sleep(sinkUnusableDelay(attempt, this.#cfg.retry), AbortSignal.any([signal, wake.signal]));
          this.#wakeSetup = undefined;
          continue;
        }
        if (err instanceof SetupError && err.kind !== 'retryable') {
          if (err.kind === 'privilege') {
            this.#log.warn(
              'not permitted to install index templates (needs manage_index_templates); continuing without them — documents get dynamic mappings unless the templates are installed otherwise',
              { error: err.message },
            );
          } else {
            this.#log.error('index templates not installed; continuing without them', { error: err.message });
          }
          return;
        }
        const delay = backoffDelay(this.#cfg.retry, Math.min(attempt, 30));
        const msg = `cannot reach ${this.#client.endpoints.join(', ')} for setup: ${errorMessage(err)}`;
        this.#setStatus('recoverable_error', msg);
        if (attempt === 1 || attempt % 10 === 0) {
          this.#log.warn('server setup failed; retrying in the background', {
            attempt,
            retry_in_ms: delay,
            error: errorMessage(err),
            transport: err instanceof TransportError ? err.kind : undefined,
          });
        }
        const wake = new AbortController();
        this.#wakeSetup = () => wake.abort();
        await sleep(delay, AbortSignal.any([signal, wake.signal]));
        this.#wakeSetup = undefined;
      }
    }
  }

  /** Waits for setup (templates must exist before the first document creates a data stream). */
  async #awaitSetup(): Promise<void> {
    if (this.#setupDone || !this.#cfg.setup.templates) return;
    this.#wakeSetup?.();
    const authError = this.#setupAuthError;
    if (authError) {
      throw new SinkUnusableError('http_401', `cannot set up the index templates: ${authError.message}`, {
        cause: authError,
      });
    }
    const budget = this.#cfg.retry.max_elapsed_time;
    const signal = this.#abort.signal;
    let timer: NodeJS.Timeout | undefined;
    const stop = new Promise<'timeout' | 'aborted'>((resolve) => {
      if (budget > 0) timer = setTimeout(() => resolve('timeout'), budget);
      signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
    try {
      const r = await Promise.race([this.#setup.then(() => 'done' as const), stop]);
      if (r === 'timeout') {
        throw new RetryableError(
          `index templates are not installed yet (server unreachable for ${budget} ms); try again later`,
        );
      }
      if (r === 'aborted') throw new RetryableError('exporter is shutting down');
    } finally {
      clearTimeout(timer);
    }
  }

  consume(batch: LogsBatch): Promise<void> {
    const p = this.#consume(batch);
    this.#inflight.add(p);
    void p.then(
      () => this.#inflight.delete(p),
      () => this.#inflight.delete(p),
    );
    return p;
  }

  async #consume(batch: LogsBatch): Promise<void> {
    if (this.#closing) throw new RetryableError('exporter is shutting down');
    await this.#awaitSetup();

    const deadLetters: DeadLetter[] = [];
    let rejected = 0;
    const firstReasons = new Set<string>();
    const items: BulkItem[] = [];
    let unencodable = 0;
    for (let pos = 0; pos < batch.length; pos++) {
      const r = batch[pos]!;
      if (this.#settled.has(r)) continue;
      try {
        items.push(encodeItem(r, pos, this.#routing));
      } catch (err) {
        unencodable++;
        this.#settled.add(r);
        this.#log.debug('record cannot be encoded as JSON', { error: errorMessage(err) });
      }
    }
    if (unencodable > 0) {
      this.#metrics.docs('rejected', unencodable);
      this.#s.reportDropped(unencodable, DROP_REASON_UNENCODABLE);
    }

    let indexed = 0;
    let duplicates = 0;
    const sink: ItemSink = {
      delivered: (it, status) => {
        this.#settled.add(batch[it.pos]!);
        if (status === 409) duplicates++;
        else indexed++;
      },
      rejected: (it, status, error: ItemError) => {
        this.#settled.add(batch[it.pos]!);
        rejected++;
        if (firstReasons.size < 3)
          firstReasons.add(`${status} ${String(error.type)}: ${String(error.reason)}`);
        if (this.#log.debugEnabled) {
          this.#log.debug('document rejected', { index: it.index, id: it.id, status, error });
        }
        deadLetters.push({ index: it.index, documentId: it.id, status, error, document: itemDocument(it) });
      },
    };

    const toSend = this.#replay
      ? await this.#replay.skipPresent(items, batch, this.#abort.signal, (it) =>
          this.#settled.add(batch[it.pos]!),
        )
      : items;
    const chunks = chunkItems(toSend, this.#cfg.flush.max_documents, this.#cfg.flush.max_bytes);
    const errors: unknown[] = [];
    let next = 0;
    const worker = async () => {
      while (next < chunks.length && errors.every((e) => !(e instanceof SinkUnusableError))) {
        const chunk = chunks[next++]!;
        try {
          await this.#sender.send(chunk, sink, this.#abort.signal);
        } catch (err) {
          errors.push(err);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.#cfg.max_in_flight, chunks.length) }, worker));
    } finally {
      this.#metrics.docs('indexed', indexed);
      this.#metrics.docs('duplicate', duplicates);
      if (duplicates > 0) {
        this.#log.debug('documents already present (409), counted as delivered', { count: duplicates });
      }
      await this.#flushDeadLetters(deadLetters, rejected, firstReasons);
    }

    if (errors.length === 0) return;
    const pending = batch.length - batch.filter((r) => this.#settled.has(r)).length;
    const unusable = errors.find((e): e is SinkUnusableError => e instanceof SinkUnusableError);
    if (unusable) {
      // Class 2 (401/403, 404, TLS, ...): nothing is dropped; the sending queue retries the batch slowly
      // (documents already delivered are skipped then) and reports the episode on the health endpoint.
      this.#setStatus('permanent_error', unusable.message);
      throw unusable;
    }
    const first = errors[0];
    if (first instanceof RetriesExhaustedError) {
      throw new RetryableError(
        `${pending} of ${batch.length} documents not delivered: retries exhausted (retry.max_elapsed_time); ` +
          `${indexed + duplicates} were delivered and will be skipped if the batch is retried: ${first.message}`,
        { cause: first },
      );
    }
    if (this.#abort.signal.aborted) {
      throw new RetryableError(
        `exporter is shutting down; ${pending} of ${batch.length} documents not delivered yet`,
        { cause: first },
      );
    }
    // Not expected (retryable errors are retried until one of the above); keep the cause.
    throw new RetryableError(`${pending} documents not delivered: ${errorMessage(first)}`, { cause: first });
  }

  async #flushDeadLetters(entries: DeadLetter[], rejected: number, reasons: Set<string>): Promise<void> {
    if (rejected === 0) return;
    let written = 0;
    if (this.#deadLetter) {
      try {
        await this.#deadLetter.write(entries);
        written = entries.length;
      } catch (err) {
        this.#log.error('cannot write the dead-letter file; the rejected documents are lost', {
          path: this.#deadLetter.path,
          count: entries.length,
          error: errorMessage(err),
        });
      }
    }
    this.#metrics.docs('dead_lettered', written);
    this.#metrics.docs('rejected', rejected - written);
    this.#s.reportDropped(rejected, DROP_REASON_REJECTED, {
      reasons: [...reasons],
      ...(written > 0 ? { dead_letter: this.#deadLetter!.path } : { dead_letter: 'none' }),
    });
  }

  shutdown(): Promise<void> {
    return (this.#shutdownP ??= this.#shutdown());
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    this.#abort.abort();
    await this.#setup.catch(() => undefined);
    await Promise.allSettled([...this.#inflight]);
    let timer: NodeJS.Timeout | undefined;
    const graceful = this.#client.close();
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        void this.#client.destroy().then(resolve);
      }, 2000);
    });
    await Promise.race([graceful, forced]);
    clearTimeout(timer);
    await this.#deadLetter?.close();
  }
}
