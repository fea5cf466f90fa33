/**
 * Every error the runtime raises, with a stable `code`. Match on `code`, not on the message.
 * The table in README.md ("Error codes") lists the same codes; `errors.test.ts` keeps them in sync.
 */

/** Stable error codes. */
export const ErrorCode = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  COMPONENT_START_FAILED: 'COMPONENT_START_FAILED',
  COMPONENT_SHUTDOWN_FAILED: 'COMPONENT_SHUTDOWN_FAILED',
  SIGNAL_NOT_SUPPORTED: 'SIGNAL_NOT_SUPPORTED',
  TIMEOUT: 'TIMEOUT',
  CONSUME_PERMANENT: 'CONSUME_PERMANENT',
  CONSUME_RETRYABLE: 'CONSUME_RETRYABLE',
  CONSUME_PARTIAL: 'CONSUME_PARTIAL',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  PLUGIN_INVALID: 'PLUGIN_INVALID',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of all runtime errors. */
export class CollectorError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CollectorError';
    this.code = code;
  }
}

/** One problem found while loading or validating configuration. */
export interface ConfigProblem {
  /** Dotted path of the offending key, e.g. `exporters.elasticsearch.retry.max_interval`. */
  path: string;
  message: string;
  /** `file:line:column` of the YAML node, when known. */
  location?: string;
}

/** Configuration is invalid. Carries every problem found, not just the first. Exit code 2. */
export class ConfigError extends CollectorError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(ErrorCode.CONFIG_INVALID, formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map(
    (p) => `  - ${p.location ? `${p.location}: ` : ''}${p.path ? `${p.path}: ` : ''}${p.message}`,
  );
  return `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}

/**
 * A downstream consumer refused a batch and the same input will always fail (bad data, 400-class
 * answers). Never retried by the sender.
 */
export class PermanentError extends CollectorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.CONSUME_PERMANENT, message, options);
    this.name = 'PermanentError';
  }
}

/**
 * A downstream consumer could not take the batch now; the same batch may succeed later.
 * `retryAfterMs` is the delay the peer asked for (e.g. HTTP `Retry-After`), if any.
 */
export class RetryableError extends CollectorError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number | undefined }) {
    super(ErrorCode.CONSUME_RETRYABLE, message, options);
    this.name = 'RetryableError';
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * Several consumers of a fan-out failed (or some did). `errors` holds each failure; the aggregate is
 * permanent only when every failure is permanent.
 */
export class FanoutError extends CollectorError {
  readonly errors: { id: string; error: unknown }[];
  constructor(errors: { id: string; error: unknown }[]) {
    const permanent = errors.every((e) => isPermanent(e.error));
    super(
      permanent ? ErrorCode.CONSUME_PERMANENT : ErrorCode.CONSUME_RETRYABLE,
      errors.map((e) => `${e.id}: ${errorMessage(e.error)}`).join('; '),
    );
    this.name = 'FanoutError';
    this.errors = errors;
  }
  get retryAfterMs(): number | undefined {
    const delays = this.errors.map((e) => retryAfterOf(e.error)).filter((d): d is number => d !== undefined);
    return delays.length ? Math.max(...delays) : undefined;
  }
}

/** An operation exceeded its deadline. Retryable. */
export class TimeoutError extends CollectorError {
  constructor(message: string) {
    super(ErrorCode.TIMEOUT, message);
    this.name = 'TimeoutError';
  }
}

/** True when the error says the same input will always fail. Unknown errors count as retryable. */
export function isPermanent(err: unknown): boolean {
  if (err instanceof FanoutError) return err.code === ErrorCode.CONSUME_PERMANENT;
  return err instanceof CollectorError && err.code === ErrorCode.CONSUME_PERMANENT;
}

/** The delay a peer asked for before retrying, if the error carries one. */
export function retryAfterOf(err: unknown): number | undefined {
  if (err instanceof RetryableError || err instanceof FanoutError) return err.retryAfterMs;
  return undefined;
}

/** Best-effort message of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Runs `fn` with a deadline. On expiry rejects with {@link TimeoutError}; `fn` keeps running but its
 * result is ignored.
 */
export async function withTimeout<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
