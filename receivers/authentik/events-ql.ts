/**
 * Enterprise QL (`search=created >= "…"`): when to probe it and how to tell whether the server honours
 * it. `is_enterprise` in root/config only says the enterprise app is installed; the licence summary says
 * whether QL is honoured; every answer is checked client-side (a silent substring fallback fails it).
 * The requests themselves are made by the collector (events.ts). Pure; unit-tested in events-parts.test.ts.
 */
import type { Row } from './scan.ts';

/**
 * How long a negative QL probe is trusted before probing again (a license may be added). Long,
 * because on an unlicensed server the probe is a substring search over the whole event table.
 */
export const QL_REPROBE_MS = 24 * 3_600_000;
/** Anonymous instance configuration; `capabilities` lists `is_enterprise` when the enterprise app is installed. */
export const CONFIG_PATH = '/api/v3/root/config/';
/** Licence state (any authenticated token): `status` valid / expiry_soon / limit_exceeded_* honour QL. */
export const LICENSE_PATH = '/api/v3/enterprise/license/summary/';

/** Whether a licence summary says QL is honoured; undefined when the body is not a summary. */
export function licenceValid(body: unknown): boolean | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.status === 'string')
    return ['valid', 'expiry_soon', 'limit_exceeded_admin', 'limit_exceeded_user'].includes(b.status);
  if (typeof b.valid === 'boolean') return b.valid; // before 2024.10: {valid, show_admin_warning, …}
  return undefined;
}
/** The QL server returned an event outside the filter: it does not honour it (any more). */
export class QlNotHonoured extends Error {}

/**
 * Whether a QL probe for `created >= bound` was honoured: every returned event is at or after the
 * bound, and every event of page 1 at or after it (`expected`) came back.
 */
export function qlHonoured(got: readonly Row[], bound: bigint, expected: readonly string[]): boolean {
  const pks = new Set(got.map((r) => r.pk));
  return got.every((r) => r.c >= bound) && expected.every((pk) => pks.has(pk));
}
