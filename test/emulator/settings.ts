/**
 * `GET /api/v3/admin/settings/` of the emulator: the system settings as authentik 2025.12 serves them
 * (shape and values from ../shared/authentik/captures/2025.12.4/admin_settings.body), with the
 * retention, GDPR and page-size fields the emulator is configured with. Used by `doctor`.
 */

export const SETTINGS_PATH = '/api/v3/admin/settings/';

/** What the settings report. */
export interface SettingsOptions {
  /** `event_retention` (authentik's timedelta text, default `days=365`). */
  eventRetention?: string;
  /** `gdpr_compliance` (default true, authentik's default). */
  gdprCompliance?: boolean;
  /** `pagination_max_page_size` (default 100, authentik's default). */
  maxPageSize?: number;
}

/** The response body of `GET /api/v3/admin/settings/`. */
export function settingsBody(o: SettingsOptions = {}): Record<string, unknown> {
  return {
    avatars: 'initials',
    default_user_change_name: true,
    default_user_change_email: false,
    default_user_change_username: false,
    event_retention: o.eventRetention ?? 'days=365',
    reputation_lower_limit: -5,
    reputation_upper_limit: 5,
    footer_links: [],
    gdpr_compliance: o.gdprCompliance ?? true,
    impersonation: true,
    impersonation_require_reason: true,
    default_token_duration: 'minutes=30',
    default_token_length: 60,
    pagination_default_page_size: 20,
    pagination_max_page_size: o.maxPageSize ?? 100,
    flags: {},
  };
}
