/**
 * Builds log records from API records: body = the record exactly as returned, dataset attribute,
 * timestamps, and the resource describing the authentik instance.
 */
import type { AnyValue, HrTime, LogRecord } from '../../runtime/model.ts';
import { ATTR_DATASET, hrTimeFromIso } from '../../runtime/model.ts';
import type { VersionState } from './version.ts';
import type { ListingInfo } from './listing.ts';
import { listingAttributes } from './listing.ts';

export const SCOPE_NAME = 'authentik-collector/receiver/authentik';

export class RecordFactory {
  readonly #host: string;
  readonly #scope: { name: string; version: string };
  readonly #version: VersionState;

  /** `host` is the endpoint's host name (without port). */
  constructor(host: string, collectorVersion: string, version: VersionState) {
    this.#host = host;
    this.#scope = { name: SCOPE_NAME, version: collectorVersion };
    this.#version = version;
  }

  #resource(): Record<string, string> {
    const r: Record<string, string> = {
      'service.name': 'authentik',
      'server.address': this.#host,
      'host.name': this.#host,
    };
    const v = this.#version.current.text;
    if (v !== undefined) r['service.version'] = v;
    return r;
  }

  /** An audit event; timestamp = `created` at full precision. */
  event(raw: Record<string, unknown>, observed: HrTime): LogRecord {
    const rec: LogRecord = {
      observedTimestamp: observed,
      body: raw as AnyValue,
      attributes: { [ATTR_DATASET]: 'authentik.event' },
      resource: this.#resource(),
      scope: { ...this.#scope },
    };
    const ts = typeof raw.created === 'string' ? hrTimeFromIso(raw.created) : undefined;
    if (ts) rec.timestamp = ts;
    return rec;
  }

  /**
   * A user or group snapshot; timestamp = collection time. `listing` (see listing.ts) tells downstream
   * processors which listing the record belongs to, so they can tell when a full listing is complete.
   */
  directory(
    raw: Record<string, unknown>,
    kind: 'user' | 'group',
    collectedAt: HrTime,
    listing?: ListingInfo,
  ): LogRecord {
    return {
      timestamp: collectedAt,
      observedTimestamp: collectedAt,
      body: raw as AnyValue,
      attributes: { [ATTR_DATASET]: `authentik.${kind}`, ...listingAttributes(listing) },
      resource: this.#resource(),
      scope: { ...this.#scope },
    };
  }
}
