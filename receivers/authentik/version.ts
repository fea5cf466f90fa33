/**
 * authentik release detection and the capabilities that depend on it (spec authentik-api.md §6).
 *
 * The version comes from `GET /api/v3/admin/version/` (`version_current`). That endpoint needs a
 * permission a collector's token may lack; then the shape of list responses is used instead
 * (`autocomplete` key → 2025.8+, `User.roles` → 2025.12+, `Group.parents` → 2025.12+ …).
 */

/** A release as `year * 100 + month` (2025.12 → 202512), plus the exact string when known. */
export interface ServerVersion {
  /** `version_current` as reported, when the version endpoint answered. */
  text: string | undefined;
  /** Lower bound of the release (year*100+minor); 0 when nothing is known yet. */
  release: number;
  /** True when `release` is exact (from the version endpoint) rather than a lower bound from shapes. */
  exact: boolean;
}

export const UNKNOWN_VERSION: ServerVersion = { text: undefined, release: 0, exact: false };

/** Parses `2025.12.1`, `2026.2.0-rc1`, `2024.2.4+build` into year*100+minor; undefined when not a release. */
export function parseRelease(text: string): number | undefined {
  const m = /^\s*v?(\d{4})\.(\d{1,2})(?:\.\d+)?/.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const minor = Number(m[2]);
  if (year < 2018 || minor < 1 || minor > 12) return undefined;
  return year * 100 + minor;
}

/** Formats year*100+minor as `2025.12`. */
export function formatRelease(release: number): string {
  return `${Math.floor(release / 100)}.${release % 100}`;
}

/** What the receiver may rely on. */
export interface Capabilities {
  /** `include_groups` (users) / `include_users` (groups): 2024.4+. Older servers ignore them. */
  includeFlags: boolean;
  /** `include_roles` on users: 2025.12+. */
  includeRoles: boolean;
  /** `last_updated__gt` filter and `User.last_updated`: 2025.8+. */
  lastUpdatedFilter: boolean;
  /** Enterprise QL `search` may exist (2025.8+; honoured only with a license, verified by probing). */
  qlCandidate: boolean;
  /**
   * QL is open source (AKQL, no enterprise check): 2026.5+ per authentik's docs. The licence is not
   * consulted; the probe still verifies that the server honours the filter.
   */
  qlWithoutLicence: boolean;
}

export function capabilitiesOf(v: ServerVersion): Capabilities {
  const r = v.release;
  return {
    // When nothing is known, sending the flags is harmless: django-filter ignores unknown parameters.
    includeFlags: r === 0 || r >= 202404,
    includeRoles: r >= 202512,
    lastUpdatedFilter: r >= 202508,
    qlCandidate: r >= 202508,
    qlWithoutLicence: r >= 202605,
  };
}

/** From a `Version` response body; undefined when it is not one. */
export function versionFromBody(body: unknown): ServerVersion | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const text = (body as Record<string, unknown>).version_current;
  if (typeof text !== 'string') return undefined;
  const release = parseRelease(text);
  if (release === undefined) return undefined;
  return { text, release, exact: true };
}

/**
 * Raises the lower bound from what a list response shows. `dataset` says which list it was.
 * Never lowers an exact version.
 */
export function refineFromShape(
  v: ServerVersion,
  dataset: 'events' | 'users' | 'groups',
  envelope: Record<string, unknown>,
  first: Record<string, unknown> | undefined,
): ServerVersion {
  if (v.exact) return v;
  let r = v.release;
  if ('autocomplete' in envelope) r = Math.max(r, 202508);
  if (first) {
    if (dataset === 'users') {
      if ('roles' in first || 'roles_obj' in first) r = Math.max(r, 202512);
      else if ('last_updated' in first) r = Math.max(r, 202508);
      else if ('date_joined' in first) r = Math.max(r, 202504);
      else if ('password_change_date' in first) r = Math.max(r, 202502);
    } else if (dataset === 'groups') {
      if ('parents' in first || 'inherited_roles_obj' in first) r = Math.max(r, 202512);
      else if ('children' in first) r = Math.max(r, 202508);
    } else if ('brand' in first) {
      r = Math.max(r, 202402);
    }
  }
  return r === v.release ? v : { text: undefined, release: r, exact: false };
}

/** Human description: `2025.12.1`, `≥ 2025.8 (from response shape)` or `unknown`. */
export function describeVersion(v: ServerVersion): string {
  if (v.text !== undefined) return v.text;
  if (v.release > 0) return `>= ${formatRelease(v.release)} (from response shape)`;
  return 'unknown';
}

/** The receiver's knowledge of the server's version, shared by all datasets. */
export class VersionState {
  #v: ServerVersion = UNKNOWN_VERSION;

  get current(): ServerVersion {
    return this.#v;
  }

  get caps(): Capabilities {
    return capabilitiesOf(this.#v);
  }

  set(v: ServerVersion): void {
    this.#v = v;
  }

  /** Raises the lower bound from a list response (only when the exact version is unknown). */
  refine(
    dataset: 'events' | 'users' | 'groups',
    envelope: Record<string, unknown>,
    results: Record<string, unknown>[],
  ): void {
    this.#v = refineFromShape(this.#v, dataset, envelope, results[0]);
  }
}
