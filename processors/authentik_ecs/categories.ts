/**
 * ECS categorisation of authentik event actions.
 *
 * `ELASTIC_CATEGORIES` is the table of the integration's categorisation script (15 actions, exact and
 * case-sensitive match on the raw action). `EXTENDED_CATEGORIES` covers the actions Elastic leaves
 * uncategorised; it is used only with `categorize_all_actions: true`.
 */

export interface Categorisation {
  category: readonly string[];
  type: readonly string[];
  outcome?: 'success' | 'failure' | 'unknown';
}

function table(entries: Record<string, Categorisation>): Map<string, Categorisation> {
  return new Map(Object.entries(entries));
}

export const ELASTIC_CATEGORIES: ReadonlyMap<string, Categorisation> = table({
  login: { category: ['authentication'], type: ['start'], outcome: 'success' },
  login_failed: { category: ['authentication'], type: ['start'], outcome: 'failure' },
  logout: { category: ['authentication'], type: ['end'], outcome: 'success' },
  user_write: { category: ['iam'], type: ['change'] },
  suspicious_request: { category: ['intrusion_detection'], type: ['info'] },
  password_set: { category: ['iam'], type: ['change', 'user'] },
  secret_view: { category: ['iam'], type: ['info'] },
  secret_rotate: { category: ['iam'], type: ['change'] },
  invitation_used: { category: ['iam'], type: ['info'] },
  authorize_application: { category: ['authentication'], type: ['info'] },
  configuration_error: { category: ['configuration'], type: ['info'] },
  model_created: { category: ['configuration'], type: ['info', 'creation'] },
  model_updated: { category: ['configuration'], type: ['info', 'change'] },
  model_deleted: { category: ['configuration'], type: ['info', 'deletion'] },
  email_sent: { category: ['email'], type: ['info'] },
});

/**
 * Our categories for the remaining authentik actions (EventActions enum up to 2026.2). Chosen from the
 * ECS allowed values so that each pair is one ECS lists as expected (category → type).
 */
export const EXTENDED_CATEGORIES: ReadonlyMap<string, Categorisation> = table({
  // A user connected an external identity (OAuth/SAML/LDAP source) to the account.
  source_linked: { category: ['iam'], type: ['user', 'change'] },
  // An administrator starts/stops acting as another user: a session boundary.
  impersonation_started: { category: ['session'], type: ['start'], outcome: 'success' },
  impersonation_ended: { category: ['session'], type: ['end'], outcome: 'success' },
  // A flow (authentication, enrollment, recovery, ...) was executed through the web interface.
  flow_execution: { category: ['web'], type: ['access'] },
  // A policy was evaluated for an access decision / failed while evaluating.
  policy_execution: { category: ['iam'], type: ['info'] },
  policy_exception: { category: ['configuration'], type: ['info'], outcome: 'failure' },
  property_mapping_exception: { category: ['configuration'], type: ['info'], outcome: 'failure' },
  // Background tasks of the authentik server.
  system_task_execution: { category: ['process'], type: ['info'] },
  system_task_exception: { category: ['process'], type: ['info'], outcome: 'failure' },
  system_exception: { category: ['host'], type: ['info'], outcome: 'failure' },
  configuration_warning: { category: ['configuration'], type: ['info'] },
  update_available: { category: ['package'], type: ['info'] },
  // An (enterprise) data export finished and a file is ready.
  export_ready: { category: ['file'], type: ['creation'] },
  // Access reviews (2026.2+).
  review_initiated: { category: ['iam'], type: ['info'] },
  review_overdue: { category: ['iam'], type: ['info'] },
  review_attested: { category: ['iam'], type: ['info'] },
  review_completed: { category: ['iam'], type: ['info'] },
});

/** The categorisation for `action`, or undefined (unknown and `custom_*` actions stay uncategorised). */
export function categorise(action: string, all: boolean): Categorisation | undefined {
  return ELASTIC_CATEGORIES.get(action) ?? (all ? EXTENDED_CATEGORIES.get(action) : undefined);
}
