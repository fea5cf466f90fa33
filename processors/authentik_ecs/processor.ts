/**
 * The `authentik_ecs` processor: maps records of the datasets `authentik.event|group|user` to ECS
 * documents (see mapper.ts) and forwards the whole batch. Records of other datasets pass untouched.
 * Mapping problems never reject a batch: they produce documents flagged with `error.message`, counted in
 * `otelcol_processor_authentik_ecs_pipeline_errors{dataset}`.
 */
import type { Counter } from 'prom-client';
import type { ComponentSettings, Host, LogsConsumer, Processor } from '../../runtime/component.ts';
import { CollectorError, ErrorCode } from '../../runtime/errors.ts';
import type { LogsBatch } from '../../runtime/model.ts';
import { ATTR_DATASET } from '../../runtime/model.ts';
import type { EcsMapperOptions } from './mapper.ts';
import { counter } from '../../runtime/telemetry/metrics.ts';
import { ATTR_RECORD_ORIGINAL, DATASETS, EcsMapper } from './mapper.ts';

export const ERRORS_METRIC = 'otelcol_processor_authentik_ecs_pipeline_errors';

function errorCounter(settings: ComponentSettings): Counter<'dataset'> {
  return counter(settings.metrics, {
    name: ERRORS_METRIC,
    help: 'Documents produced by the authentik_ecs processor that carry error.message (mapping errors, CEL error documents)',
    labelNames: ['dataset'],
  });
}

export class AuthentikEcsProcessor implements Processor {
  readonly capabilities = { mutatesData: true };
  readonly #settings: ComponentSettings;
  readonly #next: LogsConsumer;
  readonly #mapper: EcsMapper;
  readonly #errors: Counter<'dataset'>;
  #stopped = false;

  constructor(settings: ComponentSettings, options: EcsMapperOptions, next: LogsConsumer) {
    this.#settings = settings;
    this.#next = next;
    this.#mapper = new EcsMapper(options);
    this.#errors = errorCounter(settings);
  }

  async start(_host: Host): Promise<void> {
    await Promise.resolve();
  }

  /** Stops intake; the processor holds no buffers, so there is nothing to flush. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    await Promise.resolve();
  }

  /** Maps every record of an authentik dataset in place (never throws). Returns the number of error documents. */
  mapBatch(batch: LogsBatch): number {
    let errors = 0;
    for (const record of batch) {
      const dataset = record.attributes[ATTR_DATASET];
      if (typeof dataset !== 'string' || DATASETS[dataset] === undefined) continue;
      const raw = record.attributes[ATTR_RECORD_ORIGINAL];
      let result;
      try {
        result = this.#mapper.map(record, dataset);
      } catch (e) {
        this.#settings.logger.warn('authentik_ecs: unexpected mapping failure; emitting an error document', {
          dataset,
          error: e instanceof Error ? e.message : String(e),
        });
        result = this.#mapper.fallback(record, dataset, e, typeof raw === 'string' ? raw : undefined);
      }
      if (result.error) {
        errors++;
        this.#errors.inc({ dataset });
        if (this.#settings.logger.debugEnabled) {
          this.#settings.logger.debug('authentik_ecs: document flagged with error.message', {
            dataset,
            error: result.firstError,
          });
        }
      }
    }
    return errors;
  }

  /** Maps the batch and forwards all of it; resolves when `next` accepted it. */
  async consume(batch: LogsBatch): Promise<void> {
    if (this.#stopped) {
      throw new CollectorError(ErrorCode.SHUTTING_DOWN, `${this.#settings.id} is shut down`);
    }
    this.mapBatch(batch);
    await this.#next.consume(batch);
  }
}
