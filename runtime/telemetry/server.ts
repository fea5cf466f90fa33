/**
 * The collector's own HTTP endpoints: Prometheus text at `service.telemetry.metrics.address`
 * (`GET /metrics`) and health at `service.telemetry.health.address`:
 *
 * - `GET /livez` (liveness probe): 200 while the process serves, 503 only on a fatal error. Never
 *   reflects a backend outage or a rejected credential: restarting would not fix those.
 * - `GET /readyz` and `GET /` (readiness probe, status report): JSON `{status, components}`, 200 when
 *   every component is started and none has an error that counts (see {@link ReadinessOptions}), 503
 *   otherwise.
 *
 * A port that cannot be bound fails the start ({@link TelemetryBindError}) unless
 * `service.telemetry.on_bind_error: warn`, which runs on without the endpoint.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../component.ts';
import { parseHostPort } from '../config/service.ts';
import type { ReadinessOptions, StatusBoard } from './status.ts';

/** A telemetry endpoint could not listen (port in use, address not available...). */
export class TelemetryBindError extends Error {
  override name = 'TelemetryBindError';
}

/** Options of {@link startTelemetryServers}. */
export interface TelemetryServerOptions {
  /** `host:port`, or undefined to disable. */
  metricsAddress?: string | undefined;
  healthAddress?: string | undefined;
  registry: Registry;
  status: StatusBoard;
  logger: Logger;
  /** How component errors count against readiness. */
  readiness?: Partial<ReadinessOptions>;
  /** `fail` (default): reject when a port cannot be bound; `warn`: log and run without it. */
  onBindError?: 'fail' | 'warn';
}

/** The running endpoints. URLs are undefined when disabled or when the port could not be bound. */
export interface TelemetryServers {
  metricsUrl?: string;
  healthUrl?: string;
  close(): Promise<void>;
}

/** Starts the metrics and health endpoints. Never rejects. */
export async function startTelemetryServers(o: TelemetryServerOptions): Promise<TelemetryServers> {
  const servers: Server[] = [];
  const result: TelemetryServers = {
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      ).then(() => undefined),
  };
  const fail = (o.onBindError ?? 'fail') === 'fail';
  const bind = async (...args: Parameters<typeof listen>) => {
    try {
      return await listen(...args);
    } catch (err) {
      await result.close();
      throw err;
    }
  };
  if (o.metricsAddress !== undefined) {
    const s = await bind(
      'metrics',
      o.metricsAddress,
      (req, res) => serveMetrics(o.registry, req, res, o.logger),
      o.logger,
      fail,
    );
    if (s) {
      servers.push(s.server);
      result.metricsUrl = `${s.base}/metrics`;
    }
  }
  if (o.healthAddress !== undefined) {
    const s = await bind(
      'health',
      o.healthAddress,
      (req, res) => serveHealth(o.status, o.readiness ?? {}, req, res),
      o.logger,
      fail,
    );
    if (s) {
      servers.push(s.server);
      result.healthUrl = `${s.base}/`;
    }
  }
  return result;
}

async function listen(
  what: string,
  address: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  logger: Logger,
  fail = false,
): Promise<{ server: Server; base: string } | undefined> {
  const hp = parseHostPort(address);
  if (!hp) {
    logger.warn(`${what} endpoint disabled: "${address}" is not host:port`);
    return undefined;
  }
  const server = createServer(handler);
  server.keepAliveTimeout = 5_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(hp.port, hp.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (fail) {
      const why = code === 'EADDRINUSE' ? 'the port is in use (another collector running?)' : code;
      throw new TelemetryBindError(
        `cannot listen on ${address} for the ${what} endpoint: ${why}. Choose another address ` +
          `(service.telemetry.${what}.address, e.g. --set service::telemetry::${what}::address=127.0.0.1:0), ` +
          `disable it with "", or set service.telemetry.on_bind_error: warn to run without it`,
      );
    }
    logger.warn(
      `${what} endpoint not started: cannot listen on ${address} (${code}); continuing without it`,
      {
        address,
      },
    );
    return undefined;
  }
  server.on('error', (err) => logger.warn(`${what} endpoint error`, { error: err }));
  server.unref();
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  logger.info(`${what} endpoint listening`, { address: `${host}:${a.port}` });
  return { server, base: `http://${host}:${a.port}` };
}

function serveMetrics(registry: Registry, req: IncomingMessage, res: ServerResponse, logger: Logger): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return send(res, 405, 'text/plain', 'method not allowed\n');
  if (path !== '/metrics') return send(res, 404, 'text/plain', 'not found: metrics are at /metrics\n');
  registry.metrics().then(
    (text) => send(res, 200, registry.contentType, text),
    (err: unknown) => {
      logger.warn('collecting metrics failed', { error: err });
      send(res, 500, 'text/plain', 'collecting metrics failed\n');
    },
  );
}

function serveHealth(
  status: StatusBoard,
  readiness: Partial<ReadinessOptions>,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD')
    return send(res, 405, 'text/plain', 'method not allowed\n');
  if (path === '/livez') {
    const alive = status.alive();
    return send(
      res,
      alive ? 200 : 503,
      'application/json',
      `${JSON.stringify({ status: alive ? 'alive' : 'fatal_error' })}\n`,
    );
  }
  if (path !== '/' && path !== '/readyz') {
    return send(
      res,
      404,
      'text/plain',
      'not found: liveness is at /livez, readiness and status at /readyz (or /)\n',
    );
  }
  const ready = status.ready(readiness);
  const body = `${JSON.stringify({ ready, ...status.snapshot() })}\n`;
  send(res, ready ? 200 : 503, 'application/json', body);
}

function send(res: ServerResponse, code: number, type: string, body: string): void {
  res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
