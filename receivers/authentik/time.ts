/**
 * authentik timestamps at full precision. `created` is rendered with microseconds (`…42.771091Z`), and
 * the receiver's ordering and de-duplication must not lose them, so instants are bigint microseconds
 * since the epoch.
 */

const ISO =
  /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Parses an ISO-8601 timestamp into epoch microseconds; undefined when invalid. No zone means UTC. */
export function parseMicros(s: unknown): bigint | undefined {
  if (typeof s !== 'string') return undefined;
  const m = ISO.exec(s.trim());
  if (!m) return undefined;
  const [, date, hh, mm, ss = '00', frac = '', tzRaw = 'Z'] = m;
  let tz = tzRaw.toUpperCase();
  if (tz !== 'Z')
    tz = tz.length === 3 ? `${tz}:00` : tz.length === 5 ? `${tz.slice(0, 3)}:${tz.slice(3)}` : tz;
  const ms = Date.parse(`${date}T${hh}:${mm}:${ss}${tz}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1000n + BigInt((frac + '000000').slice(0, 6));
}

/** Formats epoch microseconds as authentik does: `2026-03-01T12:00:00.123456Z`. */
export function formatMicros(us: bigint): string {
  const ms = Number(us / 1000n);
  const micro = Number(((us % 1_000_000n) + 1_000_000n) % 1_000_000n);
  const base = new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);
  return `${base}.${String(micro).padStart(6, '0')}Z`;
}

/** `YYYY-MM-DD HH:MM:SS` (UTC, floored to the second): the QL DateTimeField value format. */
export function qlSecond(us: bigint): string {
  const sec = us >= 0n ? us / 1_000_000n : (us - 999_999n) / 1_000_000n;
  return new Date(Number(sec) * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

/** Floors microseconds to a whole second. */
export function floorSecond(us: bigint): bigint {
  const r = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  return us - r;
}

/** Epoch microseconds of now. */
export function nowMicros(): bigint {
  return BigInt(Date.now()) * 1000n;
}

/** Milliseconds → microseconds. */
export function msToMicros(ms: number): bigint {
  return BigInt(Math.round(ms)) * 1000n;
}
