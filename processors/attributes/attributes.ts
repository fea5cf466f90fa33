/**
 * The `attributes` processor: applies insert/update/upsert/delete actions to every record's
 * attributes, in the configured order, then forwards the batch. Records are changed in place
 * (`mutatesData`), so fan-out hands this processor its own copy.
 */
import { once } from '../../runtime/component.ts';
import type { ComponentSettings, Host, LogsConsumer, Processor } from '../../runtime/component.ts';
import { CollectorError, ErrorCode } from '../../runtime/errors.ts';
import type { LogAttributes, LogsBatch } from '../../runtime/model.ts';
import type { Action, Config } from './config.ts';

type Apply = (attrs: LogAttributes) => void;

/** A fresh copy of an attribute value (lists are not shared between records). */
function copy<T>(v: T): T {
  return Array.isArray(v) ? ([...(v as unknown[])] as T) : v;
}

/** Compiles one action into a function over a record's attributes (OTel attributes-processor semantics). */
export function compileAction(a: Action): Apply {
  const { key } = a;
  if (a.action === 'delete') {
    return (attrs) => {
      delete attrs[key];
    };
  }
  const { action, from_attribute: from, value } = a;
  return (attrs) => {
    const exists = Object.hasOwn(attrs, key);
    if ((action === 'insert' && exists) || (action === 'update' && !exists)) return;
    if (from === undefined) attrs[key] = copy(value);
    else if (Object.hasOwn(attrs, from)) attrs[key] = copy(attrs[from]);
  };
}

/** The `attributes` processor. */
export class AttributesProcessor implements Processor {
  readonly capabilities = { mutatesData: true };
  readonly #next: LogsConsumer;
  readonly #actions: Apply[];
  #stopped = false;

  constructor(_settings: ComponentSettings, cfg: Config, next: LogsConsumer) {
    this.#next = next;
    this.#actions = cfg.actions.map(compileAction);
  }

  start(_host: Host): Promise<void> {
    return Promise.resolve();
  }

  consume(batch: LogsBatch): Promise<void> {
    if (this.#stopped) {
      return Promise.reject(new CollectorError(ErrorCode.SHUTTING_DOWN, 'attributes processor is shut down'));
    }
    for (const r of batch) for (const apply of this.#actions) apply(r.attributes);
    return this.#next.consume(batch);
  }

  readonly shutdown = once(() => {
    this.#stopped = true;
    return Promise.resolve();
  });
}
