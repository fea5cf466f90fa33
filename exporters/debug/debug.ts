/**
 * The `debug` exporter: renders batches as text on stderr (one summary line, one line per record, or a
 * full dump), with OTel's per-second sampling. It never fails a batch: output problems do not stop a
 * pipeline.
 */
import { once } from '../../runtime/component.ts';
import type { ComponentSettings, Exporter, Host } from '../../runtime/component.ts';
import { CollectorError, ErrorCode } from '../../runtime/errors.ts';
import type { HrTime, LogAttributes, LogRecord, LogsBatch } from '../../runtime/model.ts';
import { anyValueToJson } from '../file/encode.ts';
import type { Config } from './config.ts';

/** Where the text goes. The default writes to stderr (not via console, so nothing is reformatted). */
export type TextWriter = (text: string) => void;

const stderrWriter: TextWriter = (text) => {
  process.stderr.write(text);
};

/** HrTime as RFC 3339 with nanoseconds (`2024-05-01T10:00:00.123456789Z`). */
export function formatHrTime(t: HrTime): string {
  const iso = new Date(t[0] * 1000).toISOString().slice(0, 19);
  return `${iso}.${String(t[1]).padStart(9, '0')}Z`;
}

function oneLineAttributes(attrs: LogAttributes): string {
  return Object.entries(attrs)
    .map(([k, v]) => `${k}=${anyValueToJson(v)}`)
    .join(' ');
}

/** `normal`: time, severity, event name, body and attributes of one record on one line. */
export function renderNormal(r: LogRecord): string {
  const parts = [formatHrTime(r.timestamp ?? r.observedTimestamp)];
  if (r.severityText !== undefined || r.severityNumber !== undefined) {
    parts.push(r.severityText ?? `SEVERITY${r.severityNumber}`);
  }
  if (r.eventName !== undefined) parts.push(r.eventName);
  parts.push(anyValueToJson(r.body));
  const attrs = oneLineAttributes(r.attributes);
  if (attrs) parts.push(attrs);
  return parts.join(' ');
}

function indent(text: string, by: string): string {
  return text.replace(/\n/g, `\n${by}`);
}

/** `detailed`: every field of one record, body and maps pretty-printed. */
export function renderDetailed(r: LogRecord, index: number): string {
  const lines = [`LogRecord #${index}`];
  lines.push(`  Timestamp: ${r.timestamp ? formatHrTime(r.timestamp) : '(unset)'}`);
  lines.push(`  ObservedTimestamp: ${formatHrTime(r.observedTimestamp)}`);
  lines.push(`  SeverityText: ${r.severityText ?? ''}`);
  lines.push(`  SeverityNumber: ${r.severityNumber ?? 0}`);
  if (r.eventName !== undefined) lines.push(`  EventName: ${r.eventName}`);
  if (r.resource && Object.keys(r.resource).length > 0) {
    lines.push('  Resource:');
    for (const [k, v] of Object.entries(r.resource)) lines.push(`    -> ${k}: ${anyValueToJson(v)}`);
  }
  if (r.scope) lines.push(`  Scope: ${r.scope.name}${r.scope.version ? ` ${r.scope.version}` : ''}`);
  lines.push('  Attributes:');
  for (const [k, v] of Object.entries(r.attributes))
    lines.push(`    -> ${k}: ${indent(anyValueToJson(v, 2), '       ')}`);
  lines.push(`  Body: ${indent(anyValueToJson(r.body, 2), '  ')}`);
  return lines.join('\n');
}

/** The `debug` exporter. */
export class DebugExporter implements Exporter {
  readonly capabilities = { mutatesData: false };
  readonly #id: string;
  readonly #cfg: Config;
  readonly #write: TextWriter;
  #windowStart = 0;
  #inWindow = 0;
  #stopped = false;

  constructor(settings: ComponentSettings, cfg: Config, write: TextWriter = stderrWriter) {
    this.#id = settings.id;
    this.#cfg = cfg;
    this.#write = write;
  }

  start(_host: Host): Promise<void> {
    return Promise.resolve();
  }

  consume(batch: LogsBatch): Promise<void> {
    if (this.#stopped) {
      return Promise.reject(
        new CollectorError(ErrorCode.SHUTTING_DOWN, `debug exporter ${this.#id} is shut down`),
      );
    }
    if (!this.#sampled()) return Promise.resolve();
    const head = `${this.#id}: ${batch.length} log record${batch.length === 1 ? '' : 's'}\n`;
    let text = head;
    if (this.#cfg.verbosity === 'normal') {
      text += batch.map((r) => `${renderNormal(r)}\n`).join('');
    } else if (this.#cfg.verbosity === 'detailed') {
      text += batch.map((r, i) => `${renderDetailed(r, i)}\n`).join('');
    }
    try {
      this.#write(text);
    } catch {
      // A closed stderr must not fail the pipeline; the runtime still counts the batch as sent.
    }
    return Promise.resolve();
  }

  /** OTel sampling: per one-second window, the first `sampling_initial` batches, then every Nth. */
  #sampled(): boolean {
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#inWindow = 0;
    }
    this.#inWindow++;
    const { sampling_initial: initial, sampling_thereafter: every } = this.#cfg;
    return this.#inWindow <= initial || (this.#inWindow - initial) % every === 0;
  }

  readonly shutdown = once(() => {
    this.#stopped = true;
    return Promise.resolve();
  });
}
