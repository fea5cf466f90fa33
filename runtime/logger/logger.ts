/**
 * The collector's logger: levels debug/info/warn/error, human-readable text on a TTY and JSON lines
 * otherwise, written to stderr. Every line is scrubbed of every known secret value
 * (`Secret.registry`) and `Secret` objects render as `[REDACTED]`.
 */
import { inspect } from 'node:util';
import type { Logger } from '../component.ts';
import { Secret } from '../config/types.ts';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where lines go (one call per line, newline included). */
export interface LogSink {
  write(line: string): unknown;
  isTTY?: boolean;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Default: `text` when the sink is a TTY, `json` otherwise. */
  format?: LogFormat;
  /** Default: `process.stderr`. */
  sink?: LogSink;
  /** ANSI colours in text format (default: when the sink is a TTY and NO_COLOR is unset). */
  color?: boolean;
  /** Clock (tests). */
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const COLOR: Record<LogLevel, string> = {
  debug: '\x1b[90m',
  info: '\x1b[36m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';

interface State {
  level: LogLevel;
  format: LogFormat;
  sink: LogSink;
  color: boolean;
  now: () => Date;
}

/** True when `s` is a log level name. */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** True when `s` is a log format name. */
export function isLogFormat(s: string): s is LogFormat {
  return (LOG_FORMATS as readonly string[]).includes(s);
}

/** Creates the root logger. */
export function createLogger(opts: LoggerOptions = {}): RuntimeLogger {
  const sink = opts.sink ?? process.stderr;
  const tty = sink.isTTY === true;
  return new RuntimeLogger(
    {
      level: opts.level ?? 'info',
      format: opts.format ?? (tty ? 'text' : 'json'),
      sink,
      color: opts.color ?? (tty && !process.env.NO_COLOR),
      now: opts.now ?? (() => new Date()),
    },
    {},
  );
}

/**
 * A {@link Logger} whose level and format can change after creation (the CLI applies the config's
 * `service.telemetry.logs` once it is loaded); children follow their root.
 */
export class RuntimeLogger implements Logger {
  readonly #state: State;
  readonly #base: Record<string, unknown>;

  constructor(state: State, base: Record<string, unknown>) {
    this.#state = state;
    this.#base = base;
  }

  get level(): LogLevel {
    return this.#state.level;
  }
  get format(): LogFormat {
    return this.#state.format;
  }
  get debugEnabled(): boolean {
    return this.#state.level === 'debug';
  }
  setLevel(level: LogLevel): void {
    this.#state.level = level;
  }
  setFormat(format: LogFormat): void {
    this.#state.format = format;
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.#log('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.#log('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.#log('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.#log('error', msg, fields);
  }
  child(fields: Record<string, unknown>): RuntimeLogger {
    return new RuntimeLogger(this.#state, { ...this.#base, ...fields });
  }

  #log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    const s = this.#state;
    if (RANK[level] < RANK[s.level]) return;
    const all = fields ? { ...this.#base, ...fields } : this.#base;
    let line: string;
    try {
      line =
        s.format === 'json'
          ? jsonLine(s.now(), level, msg, all)
          : textLine(s.now(), level, msg, all, s.color);
    } catch (err) {
      line = JSON.stringify({ time: s.now().toISOString(), level, msg, log_error: String(err) });
    }
    try {
      s.sink.write(`${scrubSecrets(line)}\n`);
    } catch {
      // A logger never throws into the code that logs.
    }
  }
}

function jsonLine(time: Date, level: LogLevel, msg: string, fields: Record<string, unknown>): string {
  const obj: Record<string, unknown> = { time: time.toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) obj[k] = toPlain(v, 0);
  return JSON.stringify(obj);
}

function textLine(
  time: Date,
  level: LogLevel,
  msg: string,
  fields: Record<string, unknown>,
  color: boolean,
): string {
  const lvl = level.toUpperCase().padEnd(5);
  const parts = [
    color ? `${DIM}${time.toISOString()}${RESET}` : time.toISOString(),
    color ? `${COLOR[level]}${lvl}${RESET}` : lvl,
  ];
  const component = [fields.kind, fields.id].filter((x) => typeof x === 'string').join(' ');
  if (component) parts.push(color ? `${DIM}[${component}]${RESET}` : `[${component}]`);
  parts.push(msg);
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || ((k === 'kind' || k === 'id') && typeof v === 'string')) continue;
    const plain = toPlain(v, 0);
    if (typeof plain !== 'string') parts.push(`${k}=${JSON.stringify(plain)}`);
    else parts.push(`${k}=${/^[^\s"=]+$/.test(plain) ? plain : JSON.stringify(plain)}`);
  }
  return parts.join(' ');
}

/** Converts a field value to something JSON can print: errors to messages, secrets redacted. */
function toPlain(v: unknown, depth: number): unknown {
  if (v instanceof Secret) return '[REDACTED]';
  if (v instanceof Error) return errorText(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'function' || typeof v === 'symbol') return String(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth > 8) return inspect(v, { depth: 0 });
  if (Array.isArray(v)) return v.map((x) => toPlain(x, depth + 1));
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), toPlain(x, depth + 1)]));
  if (v instanceof Set) return [...v].map((x) => toPlain(x, depth + 1));
  if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toPlain(x, depth + 1);
  return out;
}

/** The message of an error and its causes, with its code (no stack). */
export function errorText(err: Error): string {
  let text = err.message || err.name;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && !text.includes(code)) text += ` [${code}]`;
  let cause: unknown = err.cause;
  for (let i = 0; i < 3 && cause !== undefined && cause !== null; i++) {
    const m = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : '';
    if (m && !text.includes(m)) text += `: ${m}`;
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return text;
}

/**
 * Replaces every known secret value (see `Secret.registry`) in `text` by `[REDACTED]`, including
 * JSON-escaped forms. Values shorter than 3 characters are left alone (they would shred every line).
 */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const secret of Secret.registry) {
    if (secret.length < 3) continue;
    if (out.includes(secret)) out = out.replaceAll(secret, '[REDACTED]');
    const escaped = JSON.stringify(secret).slice(1, -1);
    if (escaped !== secret && out.includes(escaped)) out = out.replaceAll(escaped, '[REDACTED]');
  }
  return out;
}
