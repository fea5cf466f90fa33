/**
 * The `authentik-collector` command line.
 *
 *   authentik-collector run [--config F ...]       run the pipelines (default: ./collector.yaml)
 *   authentik-collector validate [--config F ...]  load, validate and create every component; do not start
 *   authentik-collector components [--json]        list every component type and its options
 *   authentik-collector --version | --help
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage, 130 aborted by a second signal.
 */
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { loadBuiltins } from '../builtins.ts';
import { loadConfig, loadPluginsFromFiles } from '../config/load.ts';
import type { ResolvedConfig } from '../config/resolved.ts';
import { CollectorError, ConfigError, ErrorCode, errorMessage } from '../errors.ts';
import { allNodes, buildGraph } from '../graph/graph.ts';
import { createLogger, isLogFormat, isLogLevel, scrubSecrets } from '../logger/logger.ts';
import type { LogFormat, LogLevel, RuntimeLogger } from '../logger/logger.ts';
import { ExitCode, runCollector } from '../service/run.ts';
import { collectorMetrics } from '../telemetry/metrics.ts';
import { TelemetryBindError } from '../telemetry/server.ts';
import { StatusBoard } from '../telemetry/status.ts';
import { didYouMean } from '../config/suggest.ts';
import { configJsonSchema, describeComponents, formatComponents } from './components.ts';
import { formatChecks, runDoctor } from './doctor.ts';

const NAME = 'authentik-collector';

/** Streams and environment the CLI uses (injectable for tests). */
export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Source of SIGINT/SIGTERM/SIGHUP (default `process`). */
  signals?: EventEmitter;
}

export const USAGE = `Usage: ${NAME} <command> [options]

Commands:
  run           Run the pipelines until stopped (SIGINT/SIGTERM) or until every finite receiver
                has finished; SIGHUP reloads the configuration. The default command when --config
                is given
  validate      Load and validate the configuration and create every component without starting
                anything; prints OK or every problem found
  doctor        Check the configured endpoints (authentik token and permissions, API features,
                retention, clock, checkpoint age, search server, OTLP endpoint); a table of
                pass / warn / fail, exit 1 when a check fails
  components    List every available component type with its options (--json, --schema)

Options:
  -c, --config <src>      Configuration: a file (or file:PATH), env:VAR (YAML in a variable) or
                          yaml:INLINE (keys may be a::b::c); repeat to merge (later wins).
                          Default for run/validate/doctor: collector.yaml in the current directory
      --set <key=value>   Override one option, e.g. --set processors::batch::timeout=2s
                          (keys separated by ::, or by . when no :: is used); applied last
      --log-level <lvl>   debug | info | warn | error (default: info, or service.telemetry.logs.level)
      --log-format <fmt>  text | json (default: text on a terminal, json otherwise)
      --json              components / doctor: print JSON
      --schema            components: print a JSON Schema of the configuration file (for editors)
  -v, --version           Print the version
  -h, --help              Print this help

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage, 130 aborted by a second signal.
`;

/** The collector's package version (read from package.json above this module). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        const json = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string };
        if (json.name === NAME && json.version) return json.version;
      } catch {
        // keep looking
      }
    }
    dir = dirname(dir);
  }
  return '0.0.0-unknown';
}

const COMMANDS = ['run', 'validate', 'doctor', 'components', 'help', 'version'] as const;
type Command = (typeof COMMANDS)[number];

/** Runs the CLI and resolves with the exit code (never throws, never exits the process). */
export async function main(argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: 'string', short: 'c', multiple: true },
        set: { type: 'string', multiple: true },
        schema: { type: 'boolean' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        json: { type: 'boolean' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usageError(io, optionHint(errorMessage(err)));
  }
  const { values, positionals } = parsed;
  if (argv.length === 0) {
    // A bare invocation gets help, not a collector on the default ports (otelcol needs --config too).
    io.stdout.write(USAGE);
    return ExitCode.CONFIG_INVALID;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return ExitCode.OK;
  }
  if (values.version) {
    io.stdout.write(`${NAME} ${version()}\n`);
    return ExitCode.OK;
  }
  const command = (positionals[0] ?? 'run') as Command;
  if (!COMMANDS.includes(command)) {
    const hint = didYouMean(command, COMMANDS);
    return usageError(io, `unknown command "${positionals[0]}"${hint}`);
  }
  if (positionals.length > 1) return usageError(io, `unexpected argument "${positionals[1]}"`);
  if (command === 'help') {
    io.stdout.write(USAGE);
    return ExitCode.OK;
  }
  if (command === 'version') {
    io.stdout.write(`${NAME} ${version()}\n`);
    return ExitCode.OK;
  }

  const level = values['log-level'];
  if (level !== undefined && !isLogLevel(level))
    return usageError(io, `--log-level must be debug, info, warn or error`);
  const format = values['log-format'];
  if (format !== undefined && !isLogFormat(format))
    return usageError(io, `--log-format must be text or json`);
  const logger = createLogger({
    level: level ?? 'info',
    ...(format ? { format } : {}),
    sink: io.stderr,
  });
  const files = values.config ?? [];

  try {
    if (command === 'components')
      return await components(
        io,
        files,
        values.schema === true ? 'schema' : values.json === true ? 'json' : 'text',
      );
    if (files.length === 0) {
      const dflt = resolve(io.cwd, 'collector.yaml');
      if (!existsSync(dflt)) {
        return fail(io, `no --config given and no collector.yaml in ${io.cwd}`, ExitCode.CONFIG_INVALID);
      }
      files.push(dflt);
    }
    const config = await loadConfig(files, { cwd: io.cwd, env: io.env, set: values.set ?? [] });
    applyLogSettings(logger, config, level, format);
    if (command === 'validate') return await validate(io, config, logger);
    if (command === 'doctor') {
      const checks = await runDoctor(config, { logger });
      io.stdout.write(
        values.json === true ? `${JSON.stringify({ checks }, null, 2)}\n` : formatChecks(checks),
      );
      return checks.some((c) => c.status === 'fail') ? ExitCode.RUNTIME_FAILURE : ExitCode.OK;
    }
    const reload = async () => {
      const next = await loadConfig(files, { cwd: io.cwd, env: io.env, set: values.set ?? [] });
      await checkBuild(next, logger);
      applyLogSettings(logger, next, level, format);
      return next;
    };
    return await runWithReload(config, logger, reload, io.signals ?? process);
  } catch (err) {
    return reportError(io, err, logger);
  }
}

function applyLogSettings(
  logger: RuntimeLogger,
  config: ResolvedConfig,
  level: LogLevel | undefined,
  format: LogFormat | undefined,
): void {
  const logs = config.telemetry.logs;
  if (level === undefined && logs.level !== undefined) logger.setLevel(logs.level);
  if (format === undefined && logs.format !== undefined) logger.setFormat(logs.format);
}

/**
 * Runs the collector; SIGHUP reloads the configuration as otelcol and Vector do: the files are read
 * and validated again and every component is created (as `validate` does); when that works the running
 * pipelines shut down gracefully (draining, checkpoints kept) and start again with the new
 * configuration, otherwise the error is logged and the old configuration keeps running.
 */
async function runWithReload(
  first: ResolvedConfig,
  logger: RuntimeLogger,
  reload: () => Promise<ResolvedConfig>,
  source: EventEmitter,
): Promise<number> {
  const proxy = new EventEmitter();
  let stopping = false;
  let reloading = false;
  let next: ResolvedConfig | undefined;
  const forward = (sig: 'SIGINT' | 'SIGTERM') => () => {
    stopping = true;
    proxy.emit(sig);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  const onHup = () => {
    if (reloading || stopping) return;
    reloading = true;
    logger.info('received SIGHUP: reloading the configuration');
    reload().then(
      (cfg) => {
        reloading = false;
        if (stopping) return;
        next = cfg;
        logger.info('new configuration is valid: restarting the pipelines with it');
        proxy.emit('SIGTERM');
      },
      (err: unknown) => {
        reloading = false;
        const msg = err instanceof ConfigError ? err.message : errorMessage(err);
        logger.error(`configuration reload failed; still running the previous configuration: ${msg}`);
      },
    );
  };
  source.on('SIGINT', onInt);
  source.on('SIGTERM', onTerm);
  source.on('SIGHUP', onHup);
  try {
    let config = first;
    for (;;) {
      const code = await runCollector({
        config,
        logger,
        buildInfo: { name: NAME, version: version() },
        signals: proxy,
      });
      if (next === undefined || stopping) return code;
      config = next;
      next = undefined;
      logger.info('configuration reloaded');
    }
  } finally {
    source.off('SIGINT', onInt);
    source.off('SIGTERM', onTerm);
    source.off('SIGHUP', onHup);
  }
}

/** Creates every component of `config` and releases them again (what `run` does before starting). */
async function checkBuild(config: ResolvedConfig, logger: RuntimeLogger) {
  const registry = new Registry();
  const metrics = collectorMetrics(registry);
  const graph = await buildGraph(config, {
    logger,
    registry,
    metrics,
    status: new StatusBoard(metrics),
    buildInfo: { name: NAME, version: version() },
    configDir: config.configDir,
  });
  // Created but never started: release whatever `create` acquired.
  await Promise.allSettled(allNodes(graph).map((n) => n.component.shutdown()));
  return graph;
}

async function validate(io: CliIo, config: ResolvedConfig, logger: RuntimeLogger): Promise<number> {
  for (const w of config.warnings)
    logger.warn(`${w.path}: ${w.message}`, w.location ? { location: w.location } : {});
  const graph = await checkBuild(config, logger);
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const procs = [...graph.processors.values()].reduce((n, l) => n + l.length, 0);
  io.stdout.write(
    `configuration OK: ${count(config.pipelines.size, 'pipeline')} (${[...config.pipelines.keys()].join(', ')}), ` +
      `${count(graph.receivers.length, 'receiver')}, ${count(procs, 'processor instance')}, ` +
      `${count(graph.exporters.length, 'exporter')}, ${count(graph.extensions.length, 'extension')}\n`,
  );
  return ExitCode.OK;
}

async function components(io: CliIo, files: string[], format: 'text' | 'json' | 'schema'): Promise<number> {
  let registry = await loadBuiltins();
  let plugins: Awaited<ReturnType<typeof loadPluginsFromFiles>>['plugins'] = [];
  if (files.length > 0) {
    ({ registry, plugins } = await loadPluginsFromFiles(files, registry, { cwd: io.cwd, env: io.env }));
  }
  if (format === 'schema') {
    io.stdout.write(`${JSON.stringify(configJsonSchema(registry), null, 2)}\n`);
    return ExitCode.OK;
  }
  const report = describeComponents(registry, plugins);
  io.stdout.write(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatComponents(report));
  return ExitCode.OK;
}

function reportError(io: CliIo, err: unknown, logger: RuntimeLogger): number {
  if (err instanceof ConfigError) return fail(io, err.message, ExitCode.CONFIG_INVALID);
  if (err instanceof TelemetryBindError) return fail(io, err.message, ExitCode.RUNTIME_FAILURE);
  if (err instanceof CollectorError && err.code === ErrorCode.PLUGIN_INVALID) {
    return fail(io, err.message, ExitCode.RUNTIME_FAILURE);
  }
  if (logger.debugEnabled && err instanceof Error && err.stack)
    io.stderr.write(`${scrubSecrets(err.stack)}\n`);
  return fail(io, `unexpected error: ${errorMessage(err)}`, ExitCode.RUNTIME_FAILURE);
}

function fail(io: CliIo, message: string, code: number): number {
  io.stderr.write(`${NAME}: ${scrubSecrets(message)}\n`);
  return code;
}

const OPTIONS = ['config', 'set', 'log-level', 'log-format', 'json', 'schema', 'version', 'help'];

/** Adds a did-you-mean to node:util's "Unknown option '--conifg'" message. */
function optionHint(message: string): string {
  const m = /Unknown option '--([^']+)'/.exec(message);
  return m ? `${message}${didYouMean(m[1]!, OPTIONS).replace('"', '"--')}` : message;
}

function usageError(io: CliIo, message: string): number {
  io.stderr.write(`${NAME}: ${message}\nRun "${NAME} --help" for usage.\n`);
  return ExitCode.CONFIG_INVALID;
}

function defaultIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/**
 * Runs the CLI with `argv` and ends the process with its exit code. Lets pending output flush; a
 * component that leaks a timer or socket cannot keep the process alive for more than a second.
 */
export async function cli(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const code = await main(argv);
  if (code === ExitCode.ABORTED) process.exit(code);
  process.exitCode = code;
  setTimeout(() => process.exit(code), 1000).unref();
}

// Run when executed directly (`node runtime/cli/main.ts ...`), not when imported.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await cli();
}
