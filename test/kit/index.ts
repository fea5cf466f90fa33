/**
 * Test kit: doubles for component tests. A component test goes factory → create (with a
 * SinkConsumer as `next`) → start(nopHost()) → consume → shutdown → assertions on the sink.
 */
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import type {
  ComponentKind,
  ComponentSettings,
  ComponentStatus,
  Extension,
  Host,
  Logger,
  LogsConsumer,
} from '../../runtime/component.ts';
import type { LogsBatch, LogRecord } from '../../runtime/model.ts';

/** A logger that keeps every line in memory (for assertions) and prints nothing. */
export class MemoryLogger implements Logger {
  readonly lines: { level: string; msg: string; fields: Record<string, unknown> }[];
  readonly #base: Record<string, unknown>;
  readonly debugEnabled = true;
  constructor(lines: MemoryLogger['lines'] = [], base: Record<string, unknown> = {}) {
    this.lines = lines;
    this.#base = base;
  }
  #push(level: string, msg: string, fields?: Record<string, unknown>) {
    this.lines.push({ level, msg, fields: { ...this.#base, ...fields } });
  }
  debug(msg: string, fields?: Record<string, unknown>) {
    this.#push('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>) {
    this.#push('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>) {
    this.#push('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>) {
    this.#push('error', msg, fields);
  }
  child(fields: Record<string, unknown>): Logger {
    return new MemoryLogger(this.lines, { ...this.#base, ...fields });
  }
  /** All lines rendered as text (for "secret never appears" assertions). */
  text(): string {
    return this.lines.map((l) => `${l.level} ${l.msg} ${JSON.stringify(l.fields)}`).join('\n');
  }
}

/** Settings with a memory logger and a private metrics registry; records status and drops. */
export interface TestSettings extends ComponentSettings {
  logger: MemoryLogger;
  statuses: { status: ComponentStatus; message?: string | undefined }[];
  drops: { count: number; reason: string }[];
}

export function nopSettings(
  id: string,
  kind: ComponentKind = 'receiver',
  configDir = process.cwd(),
): TestSettings {
  const statuses: TestSettings['statuses'] = [];
  const drops: TestSettings['drops'] = [];
  const logger = new MemoryLogger();
  return {
    id,
    kind,
    logger,
    metrics: new Registry(),
    buildInfo: { name: 'authentik-collector', version: '0.0.0-test' },
    configDir,
    statuses,
    drops,
    reportStatus(status, message) {
      statuses.push({ status, message });
    },
    reportDropped(count, reason, fields) {
      drops.push({ count, reason });
      logger.warn('dropped records', { count, reason, ...fields });
    },
  };
}

/** A host with the given extensions. */
export function nopHost(extensions: Record<string, Extension> = {}): Host {
  return { getExtension: (id) => extensions[id] };
}

/** Records every batch it receives. `consume` resolves immediately unless `failWith` is set. */
export class SinkConsumer implements LogsConsumer {
  readonly capabilities = { mutatesData: false };
  readonly batches: LogsBatch[] = [];
  /** When set, `consume` rejects with the value returned (per call); undefined means accept. */
  failWith: ((batch: LogsBatch, call: number) => unknown) | undefined;
  #calls = 0;
  async consume(batch: LogsBatch): Promise<void> {
    const call = ++this.#calls;
    const err = this.failWith?.(batch, call);
    if (err !== undefined) throw err instanceof Error ? err : new Error(JSON.stringify(err));
    this.batches.push(batch);
    await Promise.resolve();
  }
  all(): LogRecord[] {
    return this.batches.flat();
  }
  count(): number {
    return this.batches.reduce((n, b) => n + b.length, 0);
  }
  reset(): void {
    this.batches.length = 0;
  }
}

/** A consumer that always rejects with `err`. */
export function errConsumer(err: unknown): LogsConsumer {
  return {
    capabilities: { mutatesData: false },
    consume: () => Promise.reject(err instanceof Error ? err : new Error(String(err))),
  };
}

/** Waits until `cond()` is true, polling every `everyMs`, or throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, everyMs = 10): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A free TCP port on loopback (for servers a test starts in a child process). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}
