/**
 * Version profiles: what differs between authentik releases for the endpoints the collector uses
 * (../shared/spec/authentik-api.md §6).
 */

export type VersionProfile = '2024.2' | '2024.4' | '2025.8' | '2025.10' | '2025.12' | '2026.2' | '2026.5';

export const PROFILES: readonly VersionProfile[] = [
  '2024.2',
  '2024.4',
  '2025.8',
  '2025.10',
  '2025.12',
  '2026.2',
  '2026.5',
];

export interface ProfileInfo {
  /** What /api/v3/admin/version/ reports as version_current. */
  versionCurrent: string;
  /** Default page size when `page_size` is absent or invalid. */
  defaultPageSize: number;
  /** Largest page size honoured (requests above are clamped silently); undefined = unbounded. */
  maxPageSize: number | undefined;
  /** `autocomplete: {}` in every paginated list response (2025.8+). */
  autocomplete: boolean;
  /** `include_groups` (users) / `include_users` (groups) exist (2024.4+); before, *_obj are always filled. */
  includeFlags: boolean;
  /** `User.password_change_date` (2025.2+). */
  passwordChangeDate: boolean;
  /** `User.date_joined` (2025.4+). */
  dateJoined: boolean;
  /** `User.last_updated` and the `last_updated__gt/__lt` filters (2025.8+). */
  lastUpdated: boolean;
  /** `User.roles` / `roles_obj` and `include_roles` (2025.12+). */
  userRoles: boolean;
  /** Groups: `parents` / `parents_obj` (2025.12+) instead of `parent` / `parent_name`. */
  groupParents: boolean;
  /** Groups: `children` / `children_obj` and `include_children` (2025.8+). */
  groupChildren: boolean;
  /** Groups: `inherited_roles_obj` and `include_inherited_roles` (2025.12+). */
  inheritedRoles: boolean;
  /** Events: `actions` multi-filter (2025.8+). */
  actionsFilter: boolean;
  /** Enterprise QL `search` exists (2025.8+, honoured only with a license). */
  qlSearch: boolean;
  /**
   * QL honoured without a licence: AKQL (`authentik/api/search/ql.py`, no enterprise check), documented
   * for 2026.5 by authentik's docs (PR 22693). Not captured from a real server.
   */
  qlOpen: boolean;
  /** Event actions that exist in this release (plus custom_*). */
  extraActions: readonly string[];
  /** Users: `last_login__*` filters (2026.2). */
  lastLoginFilters: boolean;
}

const base = {
  autocomplete: false,
  includeFlags: false,
  passwordChangeDate: false,
  dateJoined: false,
  lastUpdated: false,
  userRoles: false,
  groupParents: false,
  groupChildren: false,
  inheritedRoles: false,
  actionsFilter: false,
  qlSearch: false,
  qlOpen: false,
  extraActions: [] as readonly string[],
  lastLoginFilters: false,
  defaultPageSize: 100,
  maxPageSize: undefined as number | undefined,
};

// Each release as the one before it plus what changed (../shared/spec/authentik-api.md §6).
const PROFILE_2025_8: ProfileInfo = {
  ...base,
  versionCurrent: '2025.8.4',
  includeFlags: true,
  passwordChangeDate: true,
  dateJoined: true,
  lastUpdated: true,
  autocomplete: true,
  groupChildren: true,
  actionsFilter: true,
  qlSearch: true,
};

const PROFILE_2025_12: ProfileInfo = {
  ...PROFILE_2025_8,
  versionCurrent: '2025.12.4',
  userRoles: true,
  groupParents: true,
  inheritedRoles: true,
  defaultPageSize: 20,
  maxPageSize: 100,
  extraActions: ['export_ready'],
};

const PROFILE_2026_2: ProfileInfo = {
  ...PROFILE_2025_12,
  versionCurrent: '2026.2.2',
  lastLoginFilters: true,
  extraActions: [
    'export_ready',
    'configuration_warning',
    'review_initiated',
    'review_overdue',
    'review_attested',
    'review_completed',
  ],
};

export const PROFILE_INFO: Readonly<Record<VersionProfile, ProfileInfo>> = {
  '2024.2': { ...base, versionCurrent: '2024.2.4' },
  '2024.4': { ...base, versionCurrent: '2024.4.4', includeFlags: true },
  '2025.8': PROFILE_2025_8,
  '2025.10': { ...PROFILE_2025_8, versionCurrent: '2025.10.3' },
  '2025.12': PROFILE_2025_12,
  '2026.2': PROFILE_2026_2,
  // 2026.2 plus AKQL (not captured: no change to the Event, User or Group shapes is known).
  '2026.5': { ...PROFILE_2026_2, versionCurrent: '2026.5.0', qlOpen: true },
};

/** The 27 actions stable from 2021.10 to 2025.10 (custom_* is a prefix, handled separately). */
export const BASE_ACTIONS: readonly string[] = [
  'login',
  'login_failed',
  'logout',
  'user_write',
  'suspicious_request',
  'password_set',
  'secret_view',
  'secret_rotate',
  'invitation_used',
  'authorize_application',
  'source_linked',
  'impersonation_started',
  'impersonation_ended',
  'flow_execution',
  'policy_execution',
  'policy_exception',
  'property_mapping_exception',
  'system_task_execution',
  'system_task_exception',
  'system_exception',
  'configuration_error',
  'model_created',
  'model_updated',
  'model_deleted',
  'email_sent',
  'update_available',
];

/** Every action value of a profile, in schema order, ending with the `custom_` prefix. */
export function actionsOf(profile: VersionProfile): string[] {
  const extra = PROFILE_INFO[profile].extraActions;
  const order = [
    'login',
    'login_failed',
    'logout',
    'user_write',
    'suspicious_request',
    'password_set',
    'secret_view',
    'secret_rotate',
    'invitation_used',
    'authorize_application',
    'source_linked',
    'impersonation_started',
    'impersonation_ended',
    'flow_execution',
    'policy_execution',
    'policy_exception',
    'property_mapping_exception',
    'system_task_execution',
    'system_task_exception',
    'system_exception',
    'configuration_error',
    'configuration_warning',
    'model_created',
    'model_updated',
    'model_deleted',
    'email_sent',
    'update_available',
    'export_ready',
    'review_initiated',
    'review_overdue',
    'review_attested',
    'review_completed',
    'custom_',
  ];
  return order.filter((a) => a === 'custom_' || BASE_ACTIONS.includes(a) || extra.includes(a));
}

export function isProfile(v: string): v is VersionProfile {
  return (PROFILES as readonly string[]).includes(v);
}
