import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UploadRateLimit, throttledBody } from '../../client/rate-limit.ts';

test('the bucket lets a quarter second through at once, then makes each byte wait its turn', () => {
  let now = 0;
  const limit = new UploadRateLimit(100_000, () => now);
  assert.equal(limit.reserve(25_000), 0, 'the first quarter second of credit');
  assert.equal(limit.reserve(50_000), 500, '50 KB more at 100 KB/s: half a second');
  now = 500;
  assert.equal(limit.reserve(10_000), 100, 'the debt was paid by waiting; the next 10 KB waits its own 100 ms');
  now = 10_000;
  assert.equal(limit.reserve(25_000), 0, 'idle time refills no more than the burst');
  assert.ok(limit.reserve(1) > 0);
  assert.throws(() => new UploadRateLimit(0), /above 0/);
});

test('a throttled body carries the same bytes, says its size, and cannot go faster than the limit', async () => {
  const body = randomBytes(200 * 1024);
  const limit = new UploadRateLimit(400 * 1024);
  const started = performance.now();
  const stream = throttledBody(body, limit);
  assert.equal(stream.size, body.length);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const elapsed = performance.now() - started;
  assert.ok(Buffer.concat(chunks).equals(body));
  // 200 KiB at 400 KiB/s with 100 KiB of credit: at least a quarter second. A slow machine only takes longer.
  assert.ok(elapsed >= 240, `took ${elapsed.toFixed(0)} ms`);
});
