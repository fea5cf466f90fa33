/**
 * authentik REST API emulator: the public API used by tests, the demo and the benchmarks.
 * See README.md in this folder for semantics, options, profiles and fault kinds.
 */
export type { VersionProfile } from './profiles.ts';
export { PROFILES, PROFILE_INFO, actionsOf } from './profiles.ts';
import type { VersionProfile } from './profiles.ts';
import type { UserRec, GroupRec, RoleRec } from './data.ts';
import type { NotificationOptions, NotificationsHandle } from './notifications.ts';
export type { NotificationOptions, NotificationsHandle, DeliveryLogEntry } from './notifications.ts';
export type { UserRec, GroupRec, RoleRec } from './data.ts';

export type FaultKind =
  '500' | '502' | '503' | '504' | '429' | 'reset' | 'truncated' | 'timeout' | 'non_json';
export const FAULT_KINDS: readonly FaultKind[] = [
  '500',
  '502',
  '503',
  '504',
  '429',
  'reset',
  'truncated',
  'timeout',
  'non_json',
];

export interface FaultConfig {
  /** 0..1 share of requests that fault (default 0) */
  rate?: number;
  /** kinds drawn uniformly for a faulting request (default: all but 'timeout') */
  kinds?: FaultKind[];
  /** Retry-After for 429 (seconds, default 1) */
  retryAfterSeconds?: number;
  /** fixed latency added to every request (ms) */
  latencyMs?: number;
  /** extra uniform latency in [0, jitterMs) (ms) */
  jitterMs?: number;
  /** only requests whose path starts with one of these fault (default: every /api/v3/ path) */
  paths?: string[];
}

export type Dataset = 'events' | 'users' | 'groups';

export interface EmulatorOptions {
  /** initial events (default 1000) */
  events?: number;
  /** users in the directory (default 50) */
  users?: number;
  /** groups in the directory (default 12) */
  groups?: number;
  /** seed for every generated value and fault decision (default 1) */
  seed?: number;
  /** authentik release to emulate (default '2026.2') */
  version?: VersionProfile;
  /** the valid API token (default 'emulator-token') */
  token?: string;
  /** tokens that are app passwords (rejected with 403 "Token invalid/expired", like the real server) */
  appPasswords?: string[];
  /** listen port (0 = random, the default) */
  port?: number;
  /** listen host (default 127.0.0.1) */
  host?: string;
  /** enterprise license present: QL `search` honoured (2025.8+); otherwise silent substring fallback */
  enterprise?: boolean;
  /**
   * the enterprise app is installed (default true): `/api/v3/root/config/` lists `is_enterprise` in
   * `capabilities` whether or not a licence is present, as both real releases (2023.10.7, 2025.12.4) do
   */
  enterpriseApp?: boolean;
  /**
   * `pk` as a second ordering term orders tied rows (default true, as on both real releases); false
   * emulates a server that ignores it (tied rows then come back in a fresh order per request)
   */
  honourPkOrdering?: boolean;
  /** override the profile's max page size (2025.12+: 100; older: unbounded) */
  maxPageSize?: number;
  /** override the profile's default page size (2025.12+: 20; older: 100) */
  defaultPageSize?: number;
  /** created of the oldest event (default: so that the newest initial event is ~1 min ago) */
  startTime?: Date;
  /** mean time between generated events (ms, default 30000, shrunk to fit 330 days) */
  spacingMs?: number;
  /** events inserted per second by a timer while running (default 0) */
  insertPerSecond?: number;
  /** oldest events deleted per second by a timer, like retention cleanup (default 0) */
  deletePerSecond?: number;
  /** share (0..1) of the initial events that predate 2024.2 and keep tenant content under `brand` (default 0.02) */
  legacyTenantShare?: number;
  /** datasets the token lacks the view permission for (403 "You do not have permission…") */
  denyDatasets?: Dataset[];
  faults?: FaultConfig;
  /** keep per-request log entries (default true; false = counters only) */
  logRequests?: boolean;
  /**
   * measure `stats.cpuMs` around the synchronous work (default true). Off in a worker thread, where
   * `process.cpuUsage` counts every thread of the process and the two calls per request cost more than
   * rendering a page
   */
  measureCpu?: boolean;
  /** maximum request log entries kept (oldest dropped; default 200000) */
  maxLogEntries?: number;
  /** webhook worker of notification rules (notifications.ts) */
  notifications?: NotificationOptions;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  status: number;
  bytes: number;
  ms: number;
  at: number;
  fault?: string;
}

export interface EmulatorStats {
  requests: number;
  bytes: number;
  cpuMs: number;
  byPath: Record<string, number>;
  byStatus: Record<string, number>;
  faults: Record<string, number>;
}

export interface Emulator {
  url: string;
  port: number;
  /** the currently valid token */
  token: string;
  version: VersionProfile;
  /** request log (bounded; empty when logRequests is false) */
  requests: RequestLogEntry[];
  stats: EmulatorStats;
  /** notification objects and webhook deliveries (notifications.ts) */
  notifications: NotificationsHandle;
  events: {
    count(): number;
    /** inserts n events created now (or at `at`, possibly in the past: commit lag); returns their pks */
    insert(n: number, at?: Date): string[];
    /** retention: deletes the n oldest; returns their pks */
    deleteOldest(n: number): string[];
    /**
     * inserts the given events (`user`, `action`, `app`, `context`, `client_ip`, `brand`; the emulator sets
     * `pk`, `created` = now or `at` + i µs, `expires`); returns their pks. For test scenarios.
     */
    insertRecords(records: Record<string, unknown>[], at?: Date): string[];
    /** GDPR cleanup: deletes every event whose user.pk is pk; returns how many */
    deleteByUserPk(pk: number): number;
    /**
     * inserts a block of n events sharing one `created` (now, or `at`): real servers return such ties
     * in a different order per request under `-created`, and by pk under `-created,pk`
     */
    insertTied(n: number, at?: Date): string[];
    /** user.pk of an alive event (undefined: none or unknown event) */
    userPkOf(pk: string): number | undefined;
    /**
     * runs fn once, in the next events list request, between its COUNT and its rows query (Django's
     * paginator takes them in two snapshots: `count` and `next` can miss rows committed in between)
     */
    betweenCountAndRows(fn: () => void): void;
    /** alive pks, oldest first */
    allPks(): string[];
    get(pk: string): object | undefined;
  };
  users: {
    count(): number;
    all(): UserRec[];
    /** marks a user changed now (bumps last_updated); returns false if unknown */
    touch(pk: number, at?: Date): boolean;
    /** deletes a user; with gdpr (default true) also its events. Returns false if unknown */
    remove(pk: number, gdpr?: boolean): boolean;
  };
  groups: { count(): number; all(): GroupRec[]; roles(): RoleRec[] };
  setFaults(f: FaultConfig | undefined): void;
  /** replaces the valid token with a new one; the old one now gets 403 "Token invalid/expired" */
  rotateToken(next?: string): string;
  /** clears the request log and counters */
  resetStats(): void;
  close(): Promise<void>;
}

export { startEmulator } from './server.ts';
