/**
 * Push health shared inside one collector process: the `authentik_webhook` receiver publishes whether
 * push works for an authentik endpoint, and the `authentik` receiver polling the same endpoint reads
 * it to poll less often while push is healthy (polling stays the safety net that fills every gap).
 */

interface Entry {
  /** Push is healthy until this epoch ms (last accepted webhook + health window). */
  healthyUntil: number;
  /** Poll interval to use while healthy (ms); 0 = leave the poller alone. */
  interval: number;
}

const entries = new Map<string, Entry>();

/** The key both receivers agree on: origin + path without trailing slash. */
export function endpointKey(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return endpoint.replace(/\/+$/, '');
  }
}

/** Published by the webhook receiver after each accepted webhook (and cleared on shutdown). */
export function publishPushHealth(endpoint: string, healthyUntil: number, interval: number): void {
  entries.set(endpointKey(endpoint), { healthyUntil, interval });
}

export function clearPushHealth(endpoint: string): void {
  entries.delete(endpointKey(endpoint));
}

/** Whether push is currently healthy for `endpoint`. */
export function pushHealthy(endpoint: string, now = Date.now()): boolean {
  const e = entries.get(endpointKey(endpoint));
  return e !== undefined && now < e.healthyUntil;
}

/** The poll interval for `endpoint`: the slower push interval while push is healthy, else `base`. */
export function pollInterval(endpoint: string, base: number, now = Date.now()): number {
  const e = entries.get(endpointKey(endpoint));
  if (!e || e.interval <= 0 || now >= e.healthyUntil) return base;
  return Math.max(base, e.interval);
}

/**
 * A copy of an events config whose `interval` follows push health (read at every poll). This is the
 * whole hook into the `authentik` receiver.
 */
export function withPushInterval<T extends { interval: number }>(events: T, endpoint: string): T {
  const base = events.interval;
  const copy = { ...events };
  Object.defineProperty(copy, 'interval', {
    get: () => pollInterval(endpoint, base),
    enumerable: true,
  });
  return copy;
}
