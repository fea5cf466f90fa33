/**
 * Events checkpoint mapping: the scan frontier to and from its JSON form (with the optional total-order
 * position and the malformed rows known covered, which checkpoints of earlier versions lack), and a key
 * telling whether a frontier moved. Pure; unit-tested in events-parts.test.ts.
 */
import type { FrontierJson } from './checkpoint.ts';
import type { Frontier } from './scan.ts';

/**
 * The stored frontier, with the total-order position (`pk`) and the malformed rows known covered
 * (`bad`) as optional fields (checkpoints of earlier versions lack them; checkEventsState ignores them).
 */
export type StoredFrontier = FrontierJson & { pk?: string; bad?: string[] };

export function frontierFromJson(j: FrontierJson): Frontier {
  const x = j as StoredFrontier;
  return {
    c: j.c === null ? null : BigInt(j.c),
    pks: new Set(j.pks),
    ...(typeof x.pk === 'string' ? { pk: x.pk } : {}),
    ...(Array.isArray(x.bad) ? { bad: new Set(x.bad.filter((b) => typeof b === 'string')) } : {}),
  };
}

export function frontierToJson(f: Frontier): FrontierJson {
  const out: StoredFrontier = { c: f.c === null ? null : f.c.toString(), pks: [...f.pks] };
  if (f.pk !== undefined) out.pk = f.pk;
  if (f.bad && f.bad.size > 0 && f.bad.size <= 1000) out.bad = [...f.bad];
  return out;
}

export function frontierKey(f: Frontier): string {
  return `${String(f.c)}|${f.pk ?? ''}|${f.pks.size}|${f.bad?.size ?? 0}`;
}
