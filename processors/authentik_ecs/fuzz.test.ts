/**
 * Property test: thousands of randomly mutated fixture records (fields removed, retyped, nulled, nested
 * junk, huge strings, lone surrogates, broken JSON lines, non-object bodies) never make the processor
 * throw, and always yield a JSON-serialisable document carrying `event.original` or `error.message`.
 * Seeded, so a failure is reproducible: the message names the seed and the record.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LogRecord } from '../../runtime/model.ts';
import { ATTR_DOCUMENT_ID, nowHrTime } from '../../runtime/model.ts';
import { SinkConsumer, nopSettings } from '../../test/kit/index.ts';
import { needShared } from '../../test/kit/shared.ts';
import { factory } from './factory.ts';
import { FIXTURE_DATASETS, asnDb, cityDb, fileRecord, fixtureLines, repoRoot } from './fixtures.ts';
import { ATTR_RECORD_ORIGINAL } from './mapper.ts';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20240807);
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 5000);

/** mulberry32: small deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type J = unknown;

function fuzzer(rand: () => number) {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const oddStrings = [
    '',
    ' ',
    'a@b',
    '@',
    'x@',
    'not-an-ip',
    '999.1.1.1',
    '::1',
    'fe80::1%eth0',
    '2024-02-30T00:00:00Z',
    '2024-08-07T06:28:59.565191+05:30',
    'yesterday',
    'TRUE',
    'false',
    '0x1F',
    '<script>&amp;</script>',
    'line\u2028sep',
    '\ud800',
    'a\udc00b',
    '\u0000\u0001\u001f',
    '😀',
    'Ünïcødé',
    '__proto__',
    'constructor',
    '{"nested":"json"}',
    'PostmanRuntime/7.41.0',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  ];
  const keys = [
    'pk',
    'user',
    'email',
    'context',
    'client_ip',
    'created',
    'action',
    'users',
    'groups',
    '__proto__',
    'constructor',
    '10',
    '',
    'ü',
    '😀',
  ];

  function junk(depth: number): J {
    switch (int(depth > 6 ? 7 : 10)) {
      case 0:
        return null;
      case 1:
        return rand() < 0.5;
      case 2:
        return pick([0, -0, 1, -1, 1.5, 2 ** 31, 2 ** 53 + 2, 1e21, 1e-7, -2108]);
      case 3:
        return pick(oddStrings);
      case 4:
        return rand() < 0.02 ? 'x'.repeat(100_000 + int(1000)) : `s${int(1e6)}`;
      case 5:
        return String.fromCharCode(...Array.from({ length: 1 + int(20) }, () => int(0x10000)));
      case 6:
        return [];
      case 7:
        return Array.from({ length: int(4) }, () => junk(depth + 1));
      case 8: {
        const o: Record<string, J> = {};
        for (let i = int(4); i > 0; i--)
          Object.defineProperty(o, pick(keys), {
            value: junk(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        return o;
      }
      default: {
        // A deep chain of objects.
        let v: J = pick(oddStrings);
        for (let i = int(150); i > 0; i--) v = rand() < 0.5 ? { a: v } : [v];
        return v;
      }
    }
  }

  /** All (parent, key) slots of a JSON tree. */
  function slots(v: J, out: [Record<string, J> | J[], string | number][] = []): typeof out {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push([v, i]);
        slots(x, out);
      });
    } else if (v && typeof v === 'object') {
      const o = v as Record<string, J>;
      for (const k of Object.keys(o)) {
        out.push([o, k]);
        slots(o[k], out);
      }
    }
    return out;
  }

  function mutate(obj: J): J {
    const n = 1 + int(4);
    for (let i = 0; i < n; i++) {
      const all = slots(obj);
      if (all.length === 0) break;
      const [parent, key] = pick(all);
      const op = int(4);
      if (Array.isArray(parent)) {
        const idx = key as number;
        if (op === 0) parent.splice(idx, 1);
        else parent[idx] = op === 1 ? null : junk(0);
      } else {
        const p = parent;
        const k = key as string;
        if (op === 0) delete p[k];
        else if (op === 1) p[k] = null;
        else if (op === 2) p[k] = junk(0);
        else
          Object.defineProperty(p, pick(keys), {
            value: junk(0),
            enumerable: true,
            writable: true,
            configurable: true,
          });
      }
    }
    return obj;
  }

  return { int, pick, junk, mutate };
}

/** Path of the first value that is not plain JSON (symbol, undefined, function, non-finite number, class instance). */
function nonJson(v: unknown, path: string): string | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(v) ? undefined : path;
    case 'object': {
      if (v === null) return undefined;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const r = nonJson(v[i], `${path}[${i}]`);
          if (r !== undefined) return r;
        }
        return undefined;
      }
      if (Object.getPrototypeOf(v) !== Object.prototype) return path;
      for (const k of Object.keys(v)) {
        const r = nonJson((v as Record<string, unknown>)[k], `${path}.${k}`);
        if (r !== undefined) return r;
      }
      return undefined;
    }
    default:
      return path;
  }
}

interface Case {
  record: LogRecord;
  describe: string;
}

function makeCase(rand: () => number, f: ReturnType<typeof fuzzer>, i: number): Case {
  const ds = f.pick(FIXTURE_DATASETS);
  const lines = fixtureLines(ds);
  const line = f.pick(lines);
  const kind = f.int(10);
  const attrs = { 'data_stream.dataset': `authentik.${ds}` };
  if (kind === 0) {
    // A broken line: truncated or with junk inserted.
    const cut = f.int(line.length);
    const raw =
      rand() < 0.5 ? line.slice(0, cut) : `${line.slice(0, cut)}${String(f.junk(5))}${line.slice(cut)}`;
    return { record: fileRecord(ds, raw), describe: `#${i} broken ${ds} line` };
  }
  if (kind === 1) {
    // A non-object record.
    const body = f.pick<J>([
      null,
      42,
      'text',
      [1, 2],
      true,
      { error: { message: 'GET:403' } },
      { error: 'x' },
      f.junk(0),
    ]);
    const rec: LogRecord = {
      observedTimestamp: nowHrTime(),
      body: body as LogRecord['body'],
      attributes: { ...attrs },
    };
    return { record: rec, describe: `#${i} body ${JSON.stringify(body)?.slice(0, 80)}` };
  }
  const obj = f.mutate(JSON.parse(line));
  if (kind < 6) {
    const raw = JSON.stringify(obj) ?? 'null';
    return { record: fileRecord(ds, raw), describe: `#${i} file ${ds} ${raw.slice(0, 200)}` };
  }
  const rec: LogRecord = {
    observedTimestamp: nowHrTime(),
    body: obj as LogRecord['body'],
    attributes: { ...attrs },
  };
  return { record: rec, describe: `#${i} api ${ds} ${(JSON.stringify(obj) ?? '').slice(0, 200)}` };
}

describe(`fuzz: ${COUNT} mutated records (seed ${SEED})`, () => {
  test(
    'never throws; every document is JSON and carries event.original or error.message',
    { skip: needShared('fixtures/elastic-authentik', 'geoip') },
    async () => {
      const rand = prng(SEED);
      const f = fuzzer(rand);
      const settings = nopSettings('authentik_ecs', 'processor', repoRoot);
      const sink = new SinkConsumer();
      const cfg = factory.configSchema.parse({
        geoip: {
          city_database: cityDb,
          asn_database: asnDb,
        },
        tags: rand() < 0.5 ? ['preserve_duplicate_custom_fields'] : [],
        categorize_all_actions: true,
        user_agent: { cache_size: 50 },
      });
      const proc = await factory.create(settings, cfg, sink);
      const started = Date.now();
      for (let i = 0; i < COUNT; i += 100) {
        const cases = Array.from({ length: Math.min(100, COUNT - i) }, (_, j) => makeCase(rand, f, i + j));
        sink.reset();
        await proc.consume(cases.map((c) => c.record));
        const out = sink.all();
        assert.equal(out.length, cases.length, 'every record is forwarded');
        out.forEach((rec, j) => {
          const what = `seed ${SEED} ${cases[j]!.describe}`;
          const doc = rec.body as Record<string, unknown>;
          assert.ok(doc && typeof doc === 'object' && !Array.isArray(doc), `${what}: body is not an object`);
          let text: string;
          try {
            text = JSON.stringify(doc);
          } catch (e) {
            assert.fail(`${what}: document is not JSON-serialisable: ${String(e)}`);
          }
          assert.equal(typeof JSON.parse(text), 'object');
          const bad = nonJson(doc, '');
          assert.equal(bad, undefined, `${what}: not a plain JSON value at ${bad}`);
          const event = doc['event'] as Record<string, unknown> | undefined;
          const error = doc['error'] as Record<string, unknown> | undefined;
          const hasOriginal = typeof event?.['original'] === 'string';
          const hasError = error !== undefined && error['message'] !== undefined;
          assert.ok(hasOriginal || hasError, `${what}: neither event.original nor error.message`);
          if (hasOriginal)
            assert.equal(typeof rec.attributes[ATTR_DOCUMENT_ID], 'string', `${what}: no document id`);
          if (Array.isArray(error?.['message'])) {
            for (const m of error['message'] as unknown[])
              assert.match(
                String(m),
                /^Processor \S+ with tag \S* in pipeline logs-authentik\.(event|group|user)-1\.10\.0 failed with message: /s,
                what,
              );
            assert.equal(event?.['kind'], 'pipeline_error', what);
            assert.ok((doc['tags'] as string[]).includes('preserve_original_event'), what);
          }
          assert.equal(rec.attributes[ATTR_RECORD_ORIGINAL], undefined, what);
        });
      }
      const internal = settings.logger.lines.filter((l) => l.msg.includes('unexpected mapping failure'));
      assert.deepEqual(internal, [], 'the last-resort path was needed (a mapping bug)');
      assert.ok(Date.now() - started < 20_000, 'fuzz run took too long');
    },
  );

  test('pathological nesting is still delivered as an error document', async () => {
    const settings = nopSettings('authentik_ecs', 'processor', repoRoot);
    const sink = new SinkConsumer();
    const proc = await factory.create(settings, factory.configSchema.parse({}), sink);
    let deep: unknown = 'x';
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    const rec: LogRecord = {
      observedTimestamp: nowHrTime(),
      body: deep as LogRecord['body'],
      attributes: { 'data_stream.dataset': 'authentik.event' },
    };
    await proc.consume([rec]);
    const doc = sink.all()[0]!.body as Record<string, Record<string, unknown>>;
    assert.ok(Array.isArray(doc['error']!['message']));
    assert.equal(doc['event']!['kind'], 'pipeline_error');
    assert.equal(typeof doc['event']!['original'], 'string');
  });
});
