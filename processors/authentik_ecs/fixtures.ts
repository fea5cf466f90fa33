/**
 * Access to Elastic's pipeline-test fixtures (`../shared/fixtures/elastic-authentik/` from the project
 * root) for the tests and the benchmark: input records built exactly as the `file` receiver builds them
 * (body = parsed line, `log.record.original` = raw line, `data_stream.dataset` from the receiver's
 * `attributes`), and the expected documents.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AnyValue, LogRecord } from '../../runtime/model.ts';
import { ATTR_DATASET, nowHrTime } from '../../runtime/model.ts';
import { sharedDir as sharedDataDir } from '../../test/kit/shared.ts';
import { ATTR_RECORD_ORIGINAL } from './mapper.ts';

/** The project root (two levels above this folder). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = sharedDataDir();
export const fixturesDir = resolve(sharedDir, 'fixtures/elastic-authentik');
export const cityDb = resolve(sharedDir, 'geoip/GeoLite2-City-Test.mmdb');
export const asnDb = resolve(sharedDir, 'geoip/GeoLite2-ASN-Test.mmdb');
export const countryDb = resolve(sharedDir, 'geoip/GeoLite2-Country-Test.mmdb');

export type FixtureDataset = 'event' | 'group' | 'user';
export const FIXTURE_DATASETS: readonly FixtureDataset[] = ['event', 'group', 'user'];

export interface FixtureCase {
  dataset: FixtureDataset;
  /** 1-based line number in the .log file. */
  line: number;
  raw: string;
  expected: Record<string, unknown>;
}

/** Raw input lines of one dataset's pipeline test. */
export function fixtureLines(ds: FixtureDataset): string[] {
  const text = readFileSync(resolve(fixturesDir, `${ds}/_dev/test/pipeline/test-${ds}.log`), 'utf8');
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** Every fixture case (55): input line plus expected document. */
export function fixtureCases(): FixtureCase[] {
  const out: FixtureCase[] = [];
  for (const ds of FIXTURE_DATASETS) {
    const lines = fixtureLines(ds);
    const file = resolve(fixturesDir, `${ds}/_dev/test/pipeline/test-${ds}.log-expected.json`);
    const expected = (JSON.parse(readFileSync(file, 'utf8')) as { expected: Record<string, unknown>[] })
      .expected;
    if (expected.length !== lines.length) {
      throw new Error(`${file}: ${expected.length} expected documents for ${lines.length} input lines`);
    }
    lines.forEach((raw, i) => out.push({ dataset: ds, line: i + 1, raw, expected: expected[i]! }));
  }
  return out;
}

/** A record as the file receiver emits it for `raw` with `attributes: {data_stream.dataset: authentik.<ds>}`. */
export function fileRecord(ds: string, raw: string): LogRecord {
  let body: AnyValue;
  try {
    body = JSON.parse(raw) as AnyValue;
  } catch {
    body = raw;
  }
  return {
    observedTimestamp: nowHrTime(),
    body,
    attributes: {
      [ATTR_DATASET]: ds.startsWith('authentik.') ? ds : `authentik.${ds}`,
      [ATTR_RECORD_ORIGINAL]: raw,
    },
  };
}
