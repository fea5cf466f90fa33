/**
 * Collector configurations the benchmarks run: the `authentik` receiver reading the emulator, optionally
 * `authentik_ecs`, into one or more exporters. Option names are the components' contracts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './collector.ts';
import { sharedPath } from '../../test/kit/shared.ts';

/** Environment variable the token is passed in (so it is not written into the config file). */
export const TOKEN_ENV = 'AC_BENCH_AUTHENTIK_TOKEN';

export interface PipelineOptions {
  endpoint: string;
  /** `events` options of the receiver (interval, page_size, backfill, overlap...). */
  events: Record<string, unknown>;
  maxConcurrentRequests: number;
  /** Put `authentik_ecs` in the pipeline (default: when the processor exists). */
  ecs?: boolean;
  /** GeoIP databases for authentik_ecs (MaxMind test databases). */
  geoip?: boolean;
  exporters: Record<string, Record<string, unknown>>;
  /** Extra receiver options. */
  receiver?: Record<string, unknown>;
}

/** `../shared/geoip`, or `$AC_SHARED_DIR/geoip`. */
export const GEOIP_DIR = sharedPath('geoip');

export function hasEcs(): boolean {
  return existsSync(join(ROOT, 'processors', 'authentik_ecs', 'factory.ts'));
}

function geoipFiles(): { city_database?: string; asn_database?: string } {
  const city = join(GEOIP_DIR, 'GeoLite2-City-Test.mmdb');
  const asn = join(GEOIP_DIR, 'GeoLite2-ASN-Test.mmdb');
  return {
    ...(existsSync(city) ? { city_database: city } : {}),
    ...(existsSync(asn) ? { asn_database: asn } : {}),
  };
}

/** Events only: users and groups are off (the baselines read the `event` stream only). */
export function pipelineConfig(o: PipelineOptions): Record<string, unknown> {
  const ecs = o.ecs ?? hasEcs();
  return {
    receivers: {
      authentik: {
        endpoint: o.endpoint,
        token: `\${env:${TOKEN_ENV}}`,
        events: { enabled: true, ...o.events },
        users: { enabled: false },
        groups: { enabled: false },
        max_concurrent_requests: o.maxConcurrentRequests,
        ...o.receiver,
      },
    },
    processors: ecs ? { authentik_ecs: o.geoip === false ? {} : { geoip: geoipFiles() } } : {},
    exporters: o.exporters,
    service: {
      pipelines: {
        logs: {
          receivers: ['authentik'],
          processors: ecs ? ['authentik_ecs'] : [],
          exporters: Object.keys(o.exporters),
        },
      },
    },
  };
}
