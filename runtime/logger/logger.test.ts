import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PermanentError } from '../errors.ts';
import { Secret } from '../config/types.ts';
import { createLogger } from './logger.ts';
import type { LoggerOptions } from './logger.ts';

function capture(opts: Omit<LoggerOptions, 'sink'> & { tty?: boolean } = {}) {
  const lines: string[] = [];
  const logger = createLogger({
    now: () => new Date('2026-01-02T03:04:05.678Z'),
    ...opts,
    sink: { write: (s: string) => lines.push(s), isTTY: opts.tty ?? false },
  });
  return { logger, lines };
}

describe('logger', () => {
  test('JSON lines when not a TTY, with child fields and levels filtered', () => {
    const { logger, lines } = capture();
    const child = logger.child({ kind: 'exporter', id: 'file' });
    child.debug('hidden');
    child.info('wrote batch', { records: 3, nested: { a: [1, 2n] } });
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.endsWith('\n'));
    assert.deepEqual(JSON.parse(lines[0]!), {
      time: '2026-01-02T03:04:05.678Z',
      level: 'info',
      msg: 'wrote batch',
      kind: 'exporter',
      id: 'file',
      records: 3,
      nested: { a: [1, '2'] },
    });
    logger.setLevel('debug');
    child.debug('visible now');
    assert.equal(lines.length, 2);
    assert.equal(child.debugEnabled, true, 'children follow the root level');
  });

  test('human-readable text on a TTY', () => {
    const { logger, lines } = capture({ tty: true, color: false });
    logger
      .child({ kind: 'receiver', id: 'authentik' })
      .warn('poll failed', { status: 503, url: 'http://x/a b' });
    assert.equal(
      lines[0],
      '2026-01-02T03:04:05.678Z WARN  [receiver authentik] poll failed status=503 url="http://x/a b"\n',
    );
  });

  test('errors render as messages with code and cause, without stack', () => {
    const { logger, lines } = capture();
    logger.error('send failed', {
      error: new PermanentError('mapping error', { cause: new Error('field x') }),
    });
    const line = JSON.parse(lines[0]!) as { error: string };
    assert.equal(line.error, 'mapping error [CONSUME_PERMANENT]: field x');
    assert.doesNotMatch(lines[0]!, /at .*\.ts:\d+/);
  });

  test('secrets: Secret objects print as [REDACTED]; known secret values are scrubbed everywhere', () => {
    const s = new Secret('sk-live-abc"def');
    for (const format of ['json', 'text'] as const) {
      const { logger, lines } = capture({ format });
      logger.info(`connecting with sk-live-abc"def`, {
        token: s,
        url: 'https://u:sk-live-abc"def@host',
        list: [s],
      });
      assert.equal(lines.length, 1);
      assert.doesNotMatch(lines[0]!, /sk-live-abc/, `${format}: ${lines[0]}`);
      assert.match(lines[0]!, /\[REDACTED\]/);
    }
  });

  test('a field that cannot be serialised does not break logging', () => {
    const { logger, lines } = capture();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    logger.info('still logs', { cyclic });
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /still logs/);
  });
});
