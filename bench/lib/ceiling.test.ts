import assert from 'node:assert/strict';
import { test } from 'node:test';
import { optimalRowsPerRequest } from './ceiling.ts';

test('optimal rows per request: never more than a page, more with the weaker overlap rule', () => {
  for (const rows of [1, 99, 100, 101, 1000]) {
    const total = optimalRowsPerRequest(rows, 100, 0);
    const strict = optimalRowsPerRequest(rows, 100, 1);
    assert.ok(total > 0 && total <= 100 && strict > 0 && strict <= total, `${rows}: ${total} ${strict}`);
  }
});

test('optimal rows per request: overlapping page-number slices stay well below a page', () => {
  const total = optimalRowsPerRequest(100_000, 100, 0);
  const strict = optimalRowsPerRequest(100_000, 100, 1);
  assert.ok(total > 80 && total < 95, String(total));
  assert.ok(strict > 80 && strict <= total, `${strict} vs ${total}`);
});

test('optimal rows per request: a brute-force walk never beats it', () => {
  // Greedy walk (largest new-row count each step) over 5,000 rows at page size 10.
  const rows = 5000;
  const P = 10;
  let t = rows;
  let n = 0;
  while (t > 0) {
    let bestS = t - 1;
    for (let q = P; q >= 5; q--) {
      const s = (Math.ceil((t + 2) / q) - 1) * q;
      if (s < t && s < bestS) bestS = s;
    }
    n++;
    t = bestS;
  }
  assert.ok(optimalRowsPerRequest(rows, P, 1) >= rows / n);
});
