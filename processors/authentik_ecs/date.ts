/**
 * The `date` processor with format `ISO8601` as Elasticsearch runs it: lenient ISO-8601 parsing
 * (`yyyy[-MM[-dd[T[HH[:mm[:ss[.fraction]]]][zone]]]]`, every part after the year optional), conversion to
 * UTC and output as `yyyy-MM-dd'T'HH:mm:ss.SSSXXX`, i.e. milliseconds truncated and `Z`.
 *
 * Failures carry the message of the innermost Java exception, which is what the integration writes to
 * `error.message` (`Text '...' could not be parsed at index N`, `Invalid value for MonthOfYear ...`).
 */

export interface ParsedDate {
  /** Whole seconds since the epoch (UTC). */
  epochSecond: number;
  /** Nanoseconds within the second (0..999_999_999), as written in the input (not rounded). */
  nano: number;
}

/** A date in the `date` processor's output form, with its instant. */
export interface NormalisedDate {
  ok: true;
  text: string;
  date: ParsedDate;
}

export type DateResult = { ok: true; date: ParsedDate } | { ok: false; message: string };

const D0 = 48; // '0'

function digitsAt(s: string, i: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(i + k) - D0;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

const MONTHS = [
  'JANUARY',
  'FEBRUARY',
  'MARCH',
  'APRIL',
  'MAY',
  'JUNE',
  'JULY',
  'AUGUST',
  'SEPTEMBER',
  'OCTOBER',
  'NOVEMBER',
  'DECEMBER',
];

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  return m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;
}

/** Days from 1970-01-01 to the given proleptic Gregorian date. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function fail(s: string, index: number, unparsed: boolean): DateResult {
  return {
    ok: false,
    message: unparsed
      ? `Text '${s}' could not be parsed, unparsed text found at index ${index}`
      : `Text '${s}' could not be parsed at index ${index}`,
  };
}

function range(field: string, lo: number, hi: number, v: number): DateResult {
  return { ok: false, message: `Invalid value for ${field} (valid values ${lo} - ${hi}): ${v}` };
}

/** Parses a zone at `i`; returns [offsetSeconds, nextIndex] or undefined when no zone is there. */
function parseZone(s: string, i: number): [number, number] | undefined {
  const c = s[i];
  if (c === 'Z') return [0, i + 1];
  if (c === '+' || c === '-') {
    const sign = c === '-' ? -1 : 1;
    const hh = digitsAt(s, i + 1, 2);
    if (hh < 0) return undefined;
    let j = i + 3;
    let mm = 0;
    let ss = 0;
    if (s[j] === ':' && isDigit(s, j + 1)) {
      mm = digitsAt(s, j + 1, 2);
      if (mm < 0) return undefined;
      j += 3;
      if (s[j] === ':' && isDigit(s, j + 1)) {
        ss = digitsAt(s, j + 1, 2);
        if (ss < 0) return undefined;
        j += 3;
      }
    } else if (isDigit(s, j)) {
      mm = digitsAt(s, j, 2);
      if (mm < 0) return undefined;
      j += 2;
    }
    if (hh > 18 || mm > 59 || ss > 59 || (hh === 18 && (mm > 0 || ss > 0))) return undefined;
    return [sign * (hh * 3600 + mm * 60 + ss), j];
  }
  for (const id of ['UTC', 'GMT', 'UT']) {
    if (s.startsWith(id, i)) return [0, i + id.length];
  }
  return undefined;
}

/** Parses an ISO-8601 text the way the integration's `date` processors do. */
export function parseIsoDate(s: string): DateResult {
  const n = s.length;
  let i = 0;
  // Year: 4 digits, or a sign followed by 5 to 9 digits.
  let sign = 1;
  if (s[0] === '+' || s[0] === '-') {
    sign = s[0] === '-' ? -1 : 1;
    i = 1;
  }
  let yd = 0;
  while (yd < 10 && isDigit(s, i + yd)) yd++;
  if (i === 0 ? yd !== 4 : yd < 5 || yd > 9) return fail(s, 0, false);
  const year = sign * digitsAt(s, i, yd);
  i += yd;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nano = 0;
  let offset = 0;
  if (s[i] === '-' && digitsAt(s, i + 1, 2) >= 0) {
    month = digitsAt(s, i + 1, 2);
    i += 3;
    if (s[i] === '-' && digitsAt(s, i + 1, 2) >= 0) {
      day = digitsAt(s, i + 1, 2);
      i += 3;
      if (s[i] === 'T') {
        i++;
        if (digitsAt(s, i, 2) >= 0) {
          hour = digitsAt(s, i, 2);
          i += 2;
          if (s[i] === ':' && digitsAt(s, i + 1, 2) >= 0) {
            minute = digitsAt(s, i + 1, 2);
            i += 3;
            if (s[i] === ':' && digitsAt(s, i + 1, 2) >= 0) {
              second = digitsAt(s, i + 1, 2);
              i += 3;
              if ((s[i] === '.' || s[i] === ',') && isDigit(s, i + 1)) {
                let fd = 0;
                while (fd < 9 && isDigit(s, i + 1 + fd)) fd++;
                nano = digitsAt(s, i + 1, fd) * 10 ** (9 - fd);
                i += 1 + fd;
              }
            }
          }
        }
        const z = parseZone(s, i);
        if (z) {
          offset = z[0];
          i = z[1];
        }
      }
    }
  }
  if (i < n) return fail(s, i, true);
  if (month < 1 || month > 12) return range('MonthOfYear', 1, 12, month);
  if (day < 1 || day > 31) return range('DayOfMonth', 1, 31, day);
  if (hour > 23) return range('HourOfDay', 0, 23, hour);
  if (minute > 59) return range('MinuteOfHour', 0, 59, minute);
  if (second > 59) return range('SecondOfMinute', 0, 59, second);
  if (day > daysInMonth(year, month)) {
    return {
      ok: false,
      message:
        month === 2 && day === 29
          ? `Invalid date 'February 29' as '${year}' is not a leap year`
          : `Invalid date '${MONTHS[month - 1]!} ${day}'`,
    };
  }
  const days = daysFromCivil(year, month, day);
  const epochSecond = days * 86400 + hour * 3600 + minute * 60 + second - offset;
  return { ok: true, date: { epochSecond, nano } };
}

function pad(v: number, w: number): string {
  return String(v).padStart(w, '0');
}

/** Formats as `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC (milliseconds truncated). */
export function formatIsoMillis(d: ParsedDate): string {
  const days = Math.floor(d.epochSecond / 86400);
  const sod = d.epochSecond - days * 86400;
  // civil from days (inverse of daysFromCivil)
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  // `yyyy` is year-of-era: years before 1 are printed as 1 - year.
  const yoeOut = year > 0 ? year : 1 - year;
  const hh = Math.floor(sod / 3600);
  const mm = Math.floor((sod % 3600) / 60);
  const ss = sod % 60;
  const ms = Math.floor(d.nano / 1e6);
  return `${pad(yoeOut, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}.${pad(ms, 3)}Z`;
}

/** Digit value of `s[i]`, or -1. */
function dig(s: string, i: number): number {
  const c = s.charCodeAt(i) - D0;
  return c >= 0 && c <= 9 ? c : -1;
}

/**
 * Fast path for the canonical authentik form `YYYY-MM-DDTHH:MM:SS(.f{1,9})?Z` (ranges checked); returns
 * undefined for anything else.
 */
function canonical(s: string): NormalisedDate | undefined {
  const n = s.length;
  if (n < 20 || n > 30 || s.charCodeAt(n - 1) !== 90 /* Z */) return undefined;
  if (s[4] !== '-' || s[7] !== '-' || s[10] !== 'T' || s[13] !== ':' || s[16] !== ':') return undefined;
  const y = digitsAt(s, 0, 4);
  const mo = digitsAt(s, 5, 2);
  const da = digitsAt(s, 8, 2);
  const h = digitsAt(s, 11, 2);
  const mi = digitsAt(s, 14, 2);
  const se = digitsAt(s, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || da < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59) {
    return undefined;
  }
  if (da > daysInMonth(y, mo)) return undefined;
  let nano = 0;
  let text: string;
  if (n > 20) {
    if (s[19] !== '.') return undefined;
    const fd = n - 21;
    if (fd < 1 || fd > 9) return undefined;
    for (let i = 20; i < n - 1; i++) {
      const d = dig(s, i);
      if (d < 0) return undefined;
      nano = nano * 10 + d;
    }
    nano *= 10 ** (9 - fd);
    // Milliseconds truncated: exactly three digits is the output form already.
    if (fd === 3) text = s;
    else if (fd > 3) text = `${s.slice(0, 23)}Z`;
    else text = `${s.slice(0, 20 + fd)}${fd === 1 ? '00' : '0'}Z`;
  } else {
    text = `${s.slice(0, 19)}.000Z`;
  }
  const epochSecond = daysFromCivil(y, mo, da) * 86400 + h * 3600 + mi * 60 + se;
  return { ok: true, text, date: { epochSecond, nano } };
}

/**
 * Normalises a date string: `{ok, text, date}` on success, `{ok:false, message}` otherwise.
 */
export function normaliseDate(s: string): NormalisedDate | { ok: false; message: string } {
  const c = canonical(s);
  if (c) return c;
  const r = parseIsoDate(s);
  if (!r.ok) return r;
  return { ok: true, text: formatIsoMillis(r.date), date: r.date };
}
