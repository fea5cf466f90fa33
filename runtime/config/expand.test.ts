import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expandString } from './expand.ts';
import type { ExpandContext } from './expand.ts';

describe('expandString', () => {
  let dir: string;
  let ctx: ExpandContext;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'expand-'));
    writeFileSync(join(dir, 'token.txt'), 's3cr3t-token\n');
    writeFileSync(join(dir, 'port.txt'), '9200');
    ctx = { env: { HOST: 'es.local', PORT: '9200', EMPTY: '', FLAG: 'true', WORDS: 'a: b' }, baseDir: dir };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('${env:VAR} and ${VAR} expand; a whole-value reference is typed as a YAML scalar', () => {
    assert.equal(expandString('${env:HOST}', ctx).value, 'es.local');
    assert.equal(expandString('${HOST}', ctx).value, 'es.local');
    const port = expandString('${env:PORT}', ctx);
    assert.equal(port.value, 9200);
    assert.equal(port.rawString, '9200');
    assert.equal(expandString('${FLAG}', ctx).value, true);
    // Text YAML would read as a map stays text.
    assert.equal(expandString('${WORDS}', ctx).value, 'a: b');
  });

  test('a reference embedded in a longer string stays a string', () => {
    assert.equal(expandString('http://${HOST}:${env:PORT}/x', ctx).value, 'http://es.local:9200/x');
    assert.equal(expandString('${PORT}0', ctx).value, '92000');
  });

  test('quoted scalars keep whole-value references as strings', () => {
    const r = expandString('${PORT}', ctx, true);
    assert.equal(r.value, '9200');
    assert.equal(r.rawString, undefined);
  });

  test('defaults apply only when the variable is unset; set-but-empty stays empty', () => {
    assert.equal(expandString('${env:NOPE:-fallback}', ctx).value, 'fallback');
    assert.equal(expandString('${NOPE:-http://127.0.0.1:9080}', ctx).value, 'http://127.0.0.1:9080');
    assert.equal(expandString('${env:HOST:-fallback}', ctx).value, 'es.local');
    assert.equal(expandString('${env:EMPTY:-fallback}', ctx).value, '');
    assert.equal(expandString('${env:EMPTY}', ctx).value, '');
    assert.equal(expandString('${env:NOPE:-}', ctx).value, '');
    assert.equal(expandString('${env:NOPE:-42}', ctx).value, 42);
  });

  test('an unset variable without default is a problem naming the variable, not an empty string', () => {
    const r = expandString('Bearer ${env:MISSING_TOKEN}', ctx);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0]!, /environment variable MISSING_TOKEN is not set/);
    assert.match(r.problems[0]!, /\$\{env:MISSING_TOKEN\}/);
  });

  test('${file:path} reads a file relative to the config folder, without its trailing newline', () => {
    const r = expandString('${file:token.txt}', ctx);
    assert.equal(r.value, 's3cr3t-token');
    assert.deepEqual(r.expansions, [{ ref: '${file:token.txt}', value: 's3cr3t-token' }]);
    assert.equal(expandString(`\${file:${join(dir, 'port.txt')}}`, ctx).value, 9200);
    const missing = expandString('${file:nope.txt}', ctx);
    assert.match(missing.problems[0]!, /cannot read file .*nope\.txt.* \(ENOENT\)/);
  });

  test('$${ escapes a reference; $ elsewhere is literal', () => {
    assert.equal(expandString('$${env:HOST}', ctx).value, '${env:HOST}');
    assert.equal(expandString('pa$$word $5', ctx).value, 'pa$$word $5');
    assert.equal(expandString('$$${HOST}', ctx).value, '$es.local');
    assert.equal(expandString('$$$${HOST}', ctx).value, '$${HOST}');
    assert.deepEqual(expandString('$${HOST}', ctx).expansions, []);
  });

  test('bad references are problems', () => {
    assert.match(expandString('${env:HOST', ctx).problems[0]!, /unterminated/);
    assert.match(expandString('${http:x}', ctx).problems[0]!, /unsupported reference scheme "http"/);
    assert.match(expandString('${1BAD}', ctx).problems[0]!, /not a valid environment variable name/);
    assert.match(expandString('${env:}', ctx).problems[0]!, /not a valid environment variable name/);
  });

  test('problems never contain expanded values', () => {
    const r = expandString('${env:HOST}-${env:MISSING}', ctx);
    assert.equal(r.problems.length, 1);
    assert.doesNotMatch(r.problems[0]!, /es\.local/);
  });
});
