import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UploadRateLimit } from '../../../client/upload/rate-limit.ts';
import { patchBody } from '../../../client/upload/patch-body.ts';

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
  const stream = patchBody([body.subarray(0, 70_000), body.subarray(70_000)], limit);
  assert.equal(stream.size, body.length);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const elapsed = performance.now() - started;
  assert.ok(Buffer.concat(chunks).equals(body));
  // 200 KiB at 400 KiB/s with 100 KiB of credit: at least a quarter second. A slow machine only takes longer.
  assert.ok(elapsed >= 240, `took ${elapsed.toFixed(0)} ms`);
});

test('an unthrottled body sends views of the frames it is given, in pieces small enough for progress to move', async () => {
  const pieces = [randomBytes(100), randomBytes(4 << 20), randomBytes(0), randomBytes(70_000)];
  const stream = patchBody(pieces);
  assert.equal(stream.size, 100 + (4 << 20) + 70_000);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  assert.deepEqual(Buffer.concat(chunks), Buffer.concat(pieces));
  // The same memory, not copies: a 16 MiB PATCH used to be copied whole, then written in 16 KiB pieces.
  assert.deepEqual(
    [...new Set(chunks.map((c) => c.buffer))],
    pieces.filter((p) => p.length > 0).map((p) => p.buffer),
  );
  // tus-js-client counts progress per piece: a whole 4 MiB frame at once would move it in jumps of 4 MiB.
  assert.ok(chunks.every((c) => c.length <= 64 * 1024), `a piece of ${Math.max(...chunks.map((c) => c.length))} bytes`);
  assert.equal(chunks.length, 1 + 64 + 2);
});
