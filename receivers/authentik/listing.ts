/**
 * Listing attributes of user and group records. Each record of a listing carries which listing it
 * belongs to, whether that listing is a full one or only the changed users (`last_updated__gt`), and
 * the list's `pagination.count` as the page reported it. A downstream processor (authentik_changes)
 * uses them to know when it has seen every record of a full listing, which is the only way to notice
 * deletions: the API has no tombstones. Processors that do not know them ignore them; the
 * elasticsearch exporter never writes attributes of ECS documents.
 */
import type { LogAttributes } from '../../runtime/model.ts';

export const ATTR_LISTING_ID = 'authentik.listing.id';
export const ATTR_LISTING_MODE = 'authentik.listing.mode';
export const ATTR_LISTING_COUNT = 'authentik.listing.count';

export interface ListingInfo {
  /** Unique per listing and receiver start (`users:full:<start ms>:<random>`). */
  id: string;
  mode: 'full' | 'changes';
  /** `pagination.count` of the page the record came from (absent before the first page). */
  count?: number;
}

export function newListing(
  kind: 'users' | 'groups',
  mode: ListingInfo['mode'],
  startedAt: number,
): ListingInfo {
  return { id: `${kind}:${mode}:${startedAt}:${Math.random().toString(36).slice(2, 10)}`, mode };
}

export function listingAttributes(l: ListingInfo | undefined): LogAttributes {
  if (l === undefined) return {};
  const a: LogAttributes = { [ATTR_LISTING_ID]: l.id, [ATTR_LISTING_MODE]: l.mode };
  if (l.count !== undefined) a[ATTR_LISTING_COUNT] = l.count;
  return a;
}
