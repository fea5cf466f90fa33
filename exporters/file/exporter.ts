/**
 * The `file` exporter: appends one JSON line per record, in batch order, and acknowledges a batch only
 * after it is written (and fsynced when configured). Batches are written one after another in call
 * order, so lines of concurrent batches never interleave.
 */
import { resolve } from 'node:path';
import type { Counter } from 'prom-client';
import { once } from '../../runtime/component.ts';
import type { ComponentSettings, Exporter, Host } from '../../runtime/component.ts';
import { CollectorError, ErrorCode, RetryableError, errorMessage } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { counter } from '../../runtime/telemetry/metrics.ts';
import type { Config } from './config.ts';
import { encodeNdjson, encodeOtlpJson } from './encode.ts';
import { SinkUnusableError } from '../../runtime/exporterhelper/failure.ts';
import { LineFile } from './writer.ts';

/** Write errors that mean the file cannot take anything until fixed. */
const UNUSABLE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EFBIG']);

/** The `file` exporter. */
export class FileExporter implements Exporter {
  readonly capabilities = { mutatesData: false };
  readonly #settings: ComponentSettings;
  readonly #file: LineFile;
  readonly #encode: (r: LogsBatch[number]) => string;
  readonly #bytes: Counter<'exporter'>;
  readonly #rotations: Counter<'exporter'>;
  /** Tail of the write chain: each batch waits for the one before it. */
  #chain: Promise<unknown> = Promise.resolve();
  #state: 'created' | 'started' | 'stopped' = 'created';

  constructor(settings: ComponentSettings, cfg: Config) {
    this.#settings = settings;
    this.#encode = cfg.format === 'otlp_json' ? encodeOtlpJson : encodeNdjson;
    this.#bytes = counter(settings.metrics, {
      name: 'otelcol_exporter_file_written_bytes',
      help: 'Bytes written by the file exporter',
      labelNames: ['exporter'],
    });
    this.#rotations = counter(settings.metrics, {
      name: 'otelcol_exporter_file_rotations',
      help: 'Files rotated by the file exporter',
      labelNames: ['exporter'],
    });
    this.#file = new LineFile(resolve(settings.configDir, cfg.path), {
      fsync: cfg.fsync,
      ...(cfg.rotation
        ? {
            rotation: {
              maxBytes: cfg.rotation.max_megabytes * 1024 * 1024,
              maxBackups: cfg.rotation.max_backups,
            },
          }
        : {}),
      onRotate: () => {
        this.#rotations.inc({ exporter: settings.id });
        settings.logger.info('rotated output file', { path: this.#file.path });
      },
    });
  }

  async start(_host: Host): Promise<void> {
    if (this.#state !== 'created')
      throw new Error(`file exporter ${this.#settings.id}: start after ${this.#state}`);
    await this.#file.open().catch((err: unknown) => {
      throw new Error(`cannot open ${this.#file.path} for writing: ${errorMessage(err)}`, { cause: err });
    });
    // shutdown() may have run while the file was being opened.
    if ((this.#state as string) === 'stopped') await this.#file.close();
    else this.#state = 'started';
  }

  consume(batch: LogsBatch): Promise<void> {
    if (this.#state !== 'started') {
      return Promise.reject(
        new CollectorError(ErrorCode.SHUTTING_DOWN, `file exporter ${this.#settings.id} is ${this.#state}`),
      );
    }
    if (batch.length === 0) return this.#chain.then(() => undefined);
    // Encode now: the batch belongs to the caller again once consume settles.
    const lines: Buffer[] = [];
    for (const r of batch) {
      try {
        lines.push(Buffer.from(this.#encode(r) + '\n', 'utf8'));
      } catch (err) {
        // Only a processor can produce such a record (e.g. a BigInt or a cycle in the body).
        this.#settings.reportDropped(1, 'unencodable', { error: errorMessage(err) });
      }
    }
    const p = this.#chain.then(async () => {
      try {
        await this.#file.write(lines);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const msg = `cannot write ${this.#file.path}: ${errorMessage(err)}`;
        // Full disk, quota, permissions, read-only file system: nothing goes in until someone fixes it
        // (class 2: retried slowly, never dropped, health permanent_error). Other errors: retryable.
        if (code !== undefined && UNUSABLE_CODES.has(code)) {
          throw new SinkUnusableError(
            code === 'ENOSPC' || code === 'EDQUOT' ? 'disk_full' : 'not_writable',
            msg,
            {
              cause: err,
            },
          );
        }
        throw new RetryableError(msg, { cause: err });
      }
      this.#bytes.inc(
        { exporter: this.#settings.id },
        lines.reduce((n, l) => n + l.length, 0),
      );
    });
    this.#chain = p.catch(() => undefined);
    return p;
  }

  readonly shutdown = once(async () => {
    this.#state = 'stopped';
    await this.#chain;
    await this.#file.close();
  });
}
