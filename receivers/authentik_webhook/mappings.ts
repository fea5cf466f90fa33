/**
 * The property mapping expressions the collector installs in authentik. The first line of each is a
 * marker: provisioning recognises its own objects by it, and the API emulator (which cannot run
 * Python) recognises the mappings by it and produces what authentik would.
 */

export const BODY_MARKER = '# authentik-collector: event body mapping v1';
export const HEADER_MARKER = '# authentik-collector: secret header mapping v1';

/**
 * Body mapping: the event exactly as `GET /api/v3/events/events/<pk>/` serializes it (same fields,
 * key order, datetime format, `brand`/`tenant`), so a pushed event and its polled copy give the same
 * `event.original` and document `_id`. Guarded so it can never raise (a raising mapping makes
 * authentik write a `property_mapping_exception` event, which this rule would push again).
 */
export const BODY_EXPRESSION = [
  BODY_MARKER,
  '# Sends the event as the events API serializes it (same pk, fields, key order and datetime format).',
  'from authentik.events.api.events import EventSerializer',
  '',
  'event = getattr(notification, "event", None)',
  'if event is None:',
  '    return {}',
  'return EventSerializer(event).data',
  '',
].join('\n');

/** Header mapping that sends the shared secret. `secret` must be the real value (never logged). */
export function headerExpression(header: string, secret: string): string {
  // A JSON string literal is a valid Python string literal for these characters.
  return [HEADER_MARKER, `return {${JSON.stringify(header)}: ${JSON.stringify(secret)}}`, ''].join('\n');
}

/** Placeholder shown instead of the secret when the objects are printed (provision: false). */
export const SECRET_PLACEHOLDER = '<the receiver secret>';
