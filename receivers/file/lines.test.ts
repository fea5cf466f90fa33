import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineReader } from './lines.ts';
import type { Line } from './lines.ts';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'file-lines-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(
  content: Buffer | string,
  opts: { chunkBytes?: number; maxLineBytes?: number; offset?: number } = {},
): Promise<Line[]> {
  const file = join(dir, `f-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, content);
  const fh = await open(file, 'r');
  try {
    const r = new LineReader(fh, opts.offset ?? 0, {
      maxLineBytes: opts.maxLineBytes ?? 1 << 20,
      ...(opts.chunkBytes === undefined ? {} : { chunkBytes: opts.chunkBytes }),
    });
    const out: Line[] = [];
    for (;;) {
      const { lines, eof } = await r.read();
      out.push(...lines);
      if (eof) break;
    }
    const tail = r.flushPartial();
    if (tail) out.push(tail);
    return out;
  } finally {
    await fh.close();
  }
}

describe('LineReader', () => {
  for (const chunkBytes of [1, 3, 7, 64 * 1024]) {
    test(`LF, CRLF, BOM, multi-byte characters and a final line without newline (chunk ${chunkBytes})`, async () => {
      const content = Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from('{"a":"é"}\r\n{"b":"日本"}\n\n{"c":1}'),
      ]);
      const lines = await readAll(content, { chunkBytes });
      assert.deepEqual(
        lines.map((l) => l.text),
        ['{"a":"é"}', '{"b":"日本"}', '', '{"c":1}'],
      );
      // Offsets are byte positions just past each terminator (BOM and CRLF included).
      const first = 3 + Buffer.byteLength('{"a":"é"}\r\n');
      assert.equal(lines[0]!.start, 0);
      assert.equal(lines[0]!.end, first);
      assert.equal(lines[1]!.start, first);
      assert.equal(lines[1]!.end, first + Buffer.byteLength('{"b":"日本"}\n'));
      assert.equal(lines[3]!.end, content.length);
    });
  }

  test('a BOM is stripped only at the start of the file', async () => {
    const lines = await readAll(
      Buffer.concat([Buffer.from('x\n'), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('y\n')]),
    );
    assert.equal(lines[1]!.text, '\ufeffy');
  });

  test('reading resumes at an offset', async () => {
    const lines = await readAll('one\ntwo\nthree\n', { offset: 4 });
    assert.deepEqual(
      lines.map((l) => [l.text, l.start, l.end]),
      [
        ['two', 4, 8],
        ['three', 8, 14],
      ],
    );
  });

  for (const chunkBytes of [4, 1024]) {
    test(`an oversized line is skipped and reported with its size (chunk ${chunkBytes})`, async () => {
      const long = 'x'.repeat(50);
      const lines = await readAll(`ok\n${long}\nfine\n${long}`, { chunkBytes, maxLineBytes: 10 });
      assert.deepEqual(
        lines.map((l) => l.text),
        ['ok', '', 'fine', ''],
      );
      assert.equal(lines[0]!.oversizedBytes, undefined);
      assert.ok(lines[1]!.oversizedBytes! >= 50);
      assert.equal(lines[1]!.start, 3);
      assert.equal(lines[1]!.end, 3 + 51);
      assert.equal(lines[2]!.text, 'fine');
      assert.ok(lines[3]!.oversizedBytes! >= 11);
    });
  }

  test('an empty file yields nothing', async () => {
    assert.deepEqual(await readAll(''), []);
  });
});
