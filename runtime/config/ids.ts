/**
 * Component and pipeline ids: `type[/name]` (OTel component/identifiable.go rules).
 */

const TYPE_RE = /^[a-zA-Z][a-zA-Z0-9_]{0,62}$/;
// Any characters except whitespace/separators, control/format characters and symbols.
const NAME_RE = /^[^\p{Z}\p{C}\p{S}]{1,1024}$/u;

/** A parsed component id. */
export interface ComponentId {
  type: string;
  /** Absent for a bare `type`. */
  name?: string;
}

/** Parses `type[/name]`; returns a problem message when the id is malformed. */
export function parseComponentId(id: string): ComponentId | { problem: string } {
  const slash = id.indexOf('/');
  const type = slash < 0 ? id : id.slice(0, slash);
  if (type === '') return { problem: `id "${id}" has an empty type before "/"` };
  if (!TYPE_RE.test(type)) {
    return {
      problem: `id "${id}": type "${type}" must start with a letter and contain only letters, digits and "_" (at most 63 characters)`,
    };
  }
  if (slash < 0) return { type };
  const name = id.slice(slash + 1);
  if (name === '') return { problem: `id "${id}" has an empty name after "/"` };
  if (!NAME_RE.test(name)) {
    return {
      problem: `id "${id}": name "${name}" must be 1 to 1024 characters without spaces, control characters or symbols`,
    };
  }
  return { type, name };
}

/** The only signal this collector carries. */
export const SIGNAL = 'logs';

/** Checks a pipeline id (`logs` or `logs/<name>`); returns a problem message or undefined. */
export function checkPipelineId(id: string): string | undefined {
  const parsed = parseComponentId(id);
  if ('problem' in parsed) return `pipeline ${parsed.problem}`;
  if (parsed.type !== SIGNAL) {
    return `pipeline "${id}": signal "${parsed.type}" is not supported (only "logs" and "logs/<name>")`;
  }
  return undefined;
}
