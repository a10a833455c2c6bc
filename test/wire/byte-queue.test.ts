import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ByteQueue } from '../../core/wire/byte-queue.ts';

test('a piece inside one slice is a view of it; one that spans slices is joined into the given memory, or new memory if it is too small', () => {
  const data = randomBytes(300);
  const q = new ByteQueue();
  // Each slice its own memory, as network reads are (views that continue each other would be joined: below).
  for (let i = 0; i < data.length; i += 64) q.push(ownCopy(data.subarray(i, i + 64)));
  const scratch = Buffer.alloc(128);

  const inside = q.take(10, scratch);
  assert.deepEqual(inside, data.subarray(0, 10));
  assert.notEqual(inside.buffer, scratch.buffer, 'within one slice: a view, nothing copied');

  const spanning = q.take(100, scratch);
  assert.deepEqual(spanning, data.subarray(10, 110));
  assert.equal(spanning.buffer, scratch.buffer, 'joined into the memory given');
  assert.equal(spanning.byteOffset, scratch.byteOffset);

  const tooBig = q.take(150, scratch);
  assert.deepEqual(tooBig, data.subarray(110, 260));
  assert.notEqual(tooBig.buffer, scratch.buffer, 'the memory given is too small: a new buffer');

  assert.deepEqual(q.take(40), data.subarray(260));
  assert.equal(q.length, 0);
});

function ownCopy(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

test('slices that continue each other in memory are joined: a piece across them is a view, nothing copied', () => {
  const data = randomBytes(300);
  const q = new ByteQueue();
  for (let i = 0; i < data.length; i += 1) q.push(data.subarray(i, i + 1));
  const scratch = Buffer.alloc(128);
  const piece = q.take(100, scratch);
  assert.deepEqual(piece, data.subarray(0, 100));
  assert.equal(piece.buffer, data.buffer, 'a view of the joined slices');
  assert.deepEqual(q.take(200), data.subarray(100));
});

test('a piece exactly one slice long is that slice, and the next piece a view of the next slice', () => {
  const [a, b] = [randomBytes(64), randomBytes(64)];
  const q = new ByteQueue();
  q.push(a);
  q.push(Buffer.alloc(0));
  q.push(b);
  assert.equal(q.length, 128);
  const first = q.take(64, Buffer.alloc(64));
  assert.equal(first.buffer, a.buffer, 'a view of the slice, not joined');
  const next = q.take(10);
  assert.equal(next.buffer, b.buffer);
  assert.deepEqual(next, b.subarray(0, 10));
});

test('memory given exactly as large as the piece is used', () => {
  const q = new ByteQueue();
  q.push(randomBytes(5));
  q.push(randomBytes(5));
  const into = Buffer.alloc(8);
  assert.equal(q.take(8, into).buffer, into.buffer);
});

test('taking more than the queue holds is a RangeError that says how much', () => {
  const q = new ByteQueue();
  q.push(randomBytes(5));
  assert.throws(() => q.take(6), /take\(6\) from a queue of 5 bytes/);
});

test('compactTail copies a small last slice out of a big buffer, and leaves any other', () => {
  const big = randomBytes(1024 * 1024);
  const q = new ByteQueue();
  q.push(randomBytes(10));
  q.push(randomBytes(10));
  q.push(big.subarray(0, 3));
  q.compactTail();
  q.take(20);
  const tail = q.take(3);
  assert.deepEqual(tail, big.subarray(0, 3));
  assert.notEqual(tail.buffer, big.buffer, 'copied: the megabyte behind it can go');

  // Kept as a view while the buffer is at most twice the slice plus 64 KiB: copying would save little.
  for (const [bufferLength, sliceLength] of [[66_000, 1000], [2 * 10_000 + 65_536, 10_000]] as const) {
    const owner = randomBytes(bufferLength);
    const view = new ByteQueue();
    view.push(randomBytes(4));
    view.push(owner.subarray(0, sliceLength));
    view.compactTail();
    view.take(4);
    assert.equal(view.take(sliceLength).buffer, owner.buffer, `${sliceLength} of ${bufferLength}`);
  }
});
