import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { AsnResponse, CityResponse } from 'maxmind';
import { needShared } from '../../test/kit/shared.ts';
import { asnDb, cityDb, countryDb } from './fixtures.ts';
import { GeoIp, openDatabase } from './geoip.ts';

describe('GeoIP (Elasticsearch geoip processor shape)', { skip: needShared('geoip') }, () => {
  const geo = new GeoIp(
    openDatabase<CityResponse>(cityDb, 'city'),
    openDatabase<AsnResponse>(asnDb, 'asn'),
    10,
  );

  test('London (fixture values)', () => {
    assert.deepEqual(geo.city('81.2.69.142'), {
      city_name: 'London',
      continent_name: 'Europe',
      country_iso_code: 'GB',
      country_name: 'United Kingdom',
      location: { lat: 51.5142, lon: -0.0931 },
      region_iso_code: 'GB-ENG',
      region_name: 'England',
    });
  });

  test('Bhutan: no city, no region', () => {
    assert.deepEqual(geo.city('67.43.156.0'), {
      continent_name: 'Asia',
      country_iso_code: 'BT',
      country_name: 'Bhutan',
      location: { lat: 27.5, lon: 90.5 },
    });
  });

  test('non-ASCII names stay as in the database', () => {
    const g = geo.city('89.160.20.112')!;
    assert.equal(g['city_name'], 'Linköping');
    assert.equal(g['region_iso_code'], 'SE-E');
    assert.equal(g['region_name'], 'Östergötland County');
  });

  test('IPv6 addresses, scope ids and IPv4-mapped addresses', () => {
    const jp = geo.city('2001:218::1')!;
    assert.equal(jp['country_iso_code'], 'JP');
    assert.equal(jp['continent_name'], 'Asia');
    assert.equal(jp['city_name'], undefined);
    assert.deepEqual(geo.city('2001:218::1%eth0'), jp);
    assert.equal(geo.city('::ffff:81.2.69.142')?.['city_name'], 'London');
  });

  test('unknown and private addresses give nothing', () => {
    assert.equal(geo.city('10.212.128.24'), undefined);
    assert.equal(geo.city('255.255.255.255'), undefined);
    assert.equal(geo.city('1.128.0.0'), undefined);
  });

  test('ASN database → as.number, as.organization.name', () => {
    assert.deepEqual(geo.asn('1.128.0.0'), { number: 1221, organization: { name: 'Telstra Pty Ltd' } });
    assert.deepEqual(geo.asn('2600:7000::1'), {
      number: 6939,
      organization: { name: 'Hurricane Electric, Inc.' },
    });
    assert.equal(geo.asn('10.0.0.1'), undefined);
  });

  test('cached lookups still return fresh objects', () => {
    const a = geo.city('81.2.69.142')!;
    a['city_name'] = 'changed';
    (a['location'] as Record<string, number>)['lat'] = 0;
    assert.equal(geo.city('81.2.69.142')?.['city_name'], 'London');
    assert.deepEqual(geo.city('81.2.69.142')?.['location'], { lat: 51.5142, lon: -0.0931 });
  });

  test('a Country database is accepted as city database', () => {
    const g = new GeoIp(openDatabase<CityResponse>(countryDb, 'city'), undefined);
    assert.equal(g.city('81.2.69.142')?.['country_iso_code'], 'GB');
    assert.equal(g.asn('81.2.69.142'), undefined);
  });
});

describe('database checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'authentik-ecs-geoip-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('missing file', () => {
    assert.throws(
      () => openDatabase(join(dir, 'nope.mmdb'), 'city'),
      /cannot read city database ".*nope.mmdb": ENOENT/,
    );
  });

  test('not a MaxMind database', () => {
    const f = join(dir, 'junk.mmdb');
    writeFileSync(f, 'this is not a database');
    assert.throws(() => openDatabase(f, 'city'), /is not a valid MaxMind database/);
  });

  test('swapped databases are refused', { skip: needShared('geoip') }, () => {
    assert.throws(() => openDatabase(asnDb, 'city'), /is a GeoLite2-ASN database; expected a City/);
    assert.throws(() => openDatabase(cityDb, 'asn'), /is a GeoLite2-City database; expected an ASN database/);
  });
});
