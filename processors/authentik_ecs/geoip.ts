/**
 * GeoIP enrichment with MaxMind databases, shaped like Elasticsearch's `geoip` processor output.
 *
 * City database, default properties: `continent_name`, `country_iso_code`, `country_name`,
 * `region_iso_code` (`<country iso>-<most specific subdivision iso>`), `region_name`, `city_name`,
 * `location {lat, lon}`; English names; a property absent from the record is omitted; nothing at all for
 * an address the database does not know.
 * ASN database (as Elastic integrations map it): `as.number` and `as.organization.name`.
 */
import { readFileSync } from 'node:fs';
import { Reader } from 'maxmind';
import type { AsnResponse, CityResponse } from 'maxmind';
import type { JMap } from './common.ts';
import { Lru } from './lru.ts';

interface GeoTemplate {
  continent_name?: string;
  country_iso_code?: string;
  country_name?: string;
  region_iso_code?: string;
  region_name?: string;
  city_name?: string;
  lat?: number;
  lon?: number;
}

interface AsTemplate {
  number?: number;
  org?: string;
}

const NONE = null;

/** Opens and checks a database file; throws an Error with a readable message. */
export function openDatabase<T extends CityResponse | AsnResponse>(
  file: string,
  what: 'city' | 'asn',
): Reader<T> {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read ${what} database "${file}": ${code ?? (e as Error).message}`, { cause: e });
  }
  let reader: Reader<T>;
  try {
    reader = new Reader<T>(buf);
  } catch (e) {
    throw new Error(`"${file}" is not a valid MaxMind database (${(e as Error).message})`, { cause: e });
  }
  const type = reader.metadata.databaseType;
  const ok = what === 'city' ? /city|country|enterprise/i.test(type) : /asn|isp/i.test(type);
  if (!ok) {
    throw new Error(
      `"${file}" is a ${type} database; expected ${what === 'city' ? 'a City (or Country)' : 'an ASN'} database`,
    );
  }
  return reader;
}

/** Strips an IPv6 scope id (`fe80::1%eth0`), which the databases do not know about. */
function lookupKey(ip: string): string {
  const pct = ip.indexOf('%');
  return pct >= 0 ? ip.slice(0, pct) : ip;
}

export class GeoIp {
  readonly #city: Reader<CityResponse> | undefined;
  readonly #asn: Reader<AsnResponse> | undefined;
  readonly #cityCache: Lru<string, GeoTemplate | typeof NONE>;
  readonly #asnCache: Lru<string, AsTemplate | typeof NONE>;

  constructor(
    city: Reader<CityResponse> | undefined,
    asn: Reader<AsnResponse> | undefined,
    cacheSize = 10_000,
  ) {
    this.#city = city;
    this.#asn = asn;
    this.#cityCache = new Lru(cacheSize);
    this.#asnCache = new Lru(cacheSize);
  }

  get hasCity(): boolean {
    return this.#city !== undefined;
  }

  get hasAsn(): boolean {
    return this.#asn !== undefined;
  }

  #cityTemplate(ip: string): GeoTemplate | typeof NONE {
    const cached = this.#cityCache.get(ip);
    if (cached !== undefined) return cached;
    let t: GeoTemplate | typeof NONE = NONE;
    try {
      const r = this.#city!.get(lookupKey(ip));
      if (r) {
        const g: GeoTemplate = {};
        const continent = r.continent?.names?.en;
        const countryIso = r.country?.iso_code;
        const country = r.country?.names?.en;
        const subs = r.subdivisions;
        const sub = subs && subs.length > 0 ? subs[subs.length - 1] : undefined;
        const city = r.city?.names?.en;
        if (continent !== undefined) g.continent_name = continent;
        if (countryIso !== undefined) g.country_iso_code = countryIso;
        if (country !== undefined) g.country_name = country;
        if (countryIso !== undefined && sub?.iso_code !== undefined) {
          g.region_iso_code = `${countryIso}-${sub.iso_code}`;
        }
        if (sub?.names?.en !== undefined) g.region_name = sub.names.en;
        if (city !== undefined) g.city_name = city;
        const loc = r.location;
        if (loc && typeof loc.latitude === 'number' && typeof loc.longitude === 'number') {
          g.lat = loc.latitude;
          g.lon = loc.longitude;
        }
        if (Object.keys(g).length > 0) t = g;
      }
    } catch {
      t = NONE;
    }
    this.#cityCache.set(ip, t);
    return t;
  }

  /** `source.geo` for one address (a fresh object), or undefined. */
  city(ip: string): JMap | undefined {
    if (!this.#city) return undefined;
    const t = this.#cityTemplate(ip);
    if (t === NONE) return undefined;
    const out: JMap = {};
    if (t.city_name !== undefined) out['city_name'] = t.city_name;
    if (t.continent_name !== undefined) out['continent_name'] = t.continent_name;
    if (t.country_iso_code !== undefined) out['country_iso_code'] = t.country_iso_code;
    if (t.country_name !== undefined) out['country_name'] = t.country_name;
    if (t.lat !== undefined) out['location'] = { lat: t.lat, lon: t.lon };
    if (t.region_iso_code !== undefined) out['region_iso_code'] = t.region_iso_code;
    if (t.region_name !== undefined) out['region_name'] = t.region_name;
    return out;
  }

  /** `source.as` for one address (a fresh object), or undefined. */
  asn(ip: string): JMap | undefined {
    if (!this.#asn) return undefined;
    let t = this.#asnCache.get(ip);
    if (t === undefined) {
      t = NONE;
      try {
        const r = this.#asn.get(lookupKey(ip));
        if (r) {
          const a: AsTemplate = {};
          if (typeof r.autonomous_system_number === 'number') a.number = r.autonomous_system_number;
          if (typeof r.autonomous_system_organization === 'string') a.org = r.autonomous_system_organization;
          if (a.number !== undefined || a.org !== undefined) t = a;
        }
      } catch {
        t = NONE;
      }
      this.#asnCache.set(ip, t);
    }
    if (t === NONE) return undefined;
    const out: JMap = {};
    if (t.number !== undefined) out['number'] = t.number;
    if (t.org !== undefined) out['organization'] = { name: t.org };
    return out;
  }
}
