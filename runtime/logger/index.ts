/** The collector's logger (see logger.ts). */
export {
  createLogger,
  errorText,
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  LOG_LEVELS,
  RuntimeLogger,
  scrubSecrets,
} from './logger.ts';
export type { LogFormat, LoggerOptions, LogLevel, LogSink } from './logger.ts';
