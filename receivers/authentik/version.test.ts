import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  capabilitiesOf,
  describeVersion,
  parseRelease,
  refineFromShape,
  UNKNOWN_VERSION,
  versionFromBody,
} from './version.ts';

describe('version', () => {
  test('parses releases', () => {
    assert.equal(parseRelease('2025.12.1'), 202512);
    assert.equal(parseRelease('2024.2.4'), 202402);
    assert.equal(parseRelease('2026.5.0-rc1'), 202605);
    assert.equal(parseRelease('v2025.8'), 202508);
    assert.equal(parseRelease('dev'), undefined);
    assert.equal(parseRelease('2025.13.0'), undefined);
  });

  test('from the version endpoint body', () => {
    assert.deepEqual(versionFromBody({ version_current: '2025.10.3', version_latest: '2026.2.2' }), {
      text: '2025.10.3',
      release: 202510,
      exact: true,
    });
    assert.equal(versionFromBody({ detail: 'nope' }), undefined);
    assert.equal(versionFromBody(null), undefined);
  });

  test('capabilities by generation', () => {
    const at = (release: number) => capabilitiesOf({ text: undefined, release, exact: true });
    assert.deepEqual(at(202402), {
      includeFlags: false,
      includeRoles: false,
      lastUpdatedFilter: false,
      qlCandidate: false,
      qlWithoutLicence: false,
    });
    assert.deepEqual(at(202404), {
      includeFlags: true,
      includeRoles: false,
      lastUpdatedFilter: false,
      qlCandidate: false,
      qlWithoutLicence: false,
    });
    assert.deepEqual(at(202508), {
      includeFlags: true,
      includeRoles: false,
      lastUpdatedFilter: true,
      qlCandidate: true,
      qlWithoutLicence: false,
    });
    assert.deepEqual(at(202512), {
      includeFlags: true,
      includeRoles: true,
      lastUpdatedFilter: true,
      qlCandidate: true,
      qlWithoutLicence: false,
    });
    assert.deepEqual(at(202605), {
      includeFlags: true,
      includeRoles: true,
      lastUpdatedFilter: true,
      qlCandidate: true,
      qlWithoutLicence: true,
    });
    // Unknown: flags are sent (unknown parameters are ignored by authentik), nothing else assumed.
    assert.deepEqual(capabilitiesOf(UNKNOWN_VERSION), {
      includeFlags: true,
      includeRoles: false,
      lastUpdatedFilter: false,
      qlCandidate: false,
      qlWithoutLicence: false,
    });
  });

  test('without the version endpoint, response shapes raise the lower bound', () => {
    let v = refineFromShape(UNKNOWN_VERSION, 'events', { pagination: {} }, { pk: 'x', brand: {} });
    assert.equal(v.release, 202402);
    v = refineFromShape(v, 'events', { pagination: {}, autocomplete: {} }, undefined);
    assert.equal(v.release, 202508);
    v = refineFromShape(
      v,
      'users',
      { pagination: {}, autocomplete: {} },
      { pk: 1, roles: [], roles_obj: null },
    );
    assert.equal(v.release, 202512);
    assert.equal(v.exact, false);
    assert.equal(describeVersion(v), '>= 2025.12 (from response shape)');
    assert.equal(refineFromShape(UNKNOWN_VERSION, 'groups', {}, { parents: [] }).release, 202512);
    assert.equal(refineFromShape(UNKNOWN_VERSION, 'users', {}, { last_updated: 'x' }).release, 202508);
    // An exact version is never overridden.
    const exact = { text: '2024.4.1', release: 202404, exact: true };
    assert.equal(refineFromShape(exact, 'events', { autocomplete: {} }, undefined), exact);
    assert.equal(describeVersion(UNKNOWN_VERSION), 'unknown');
  });
});
