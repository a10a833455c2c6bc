import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ByteQueue } from '../../core/wire/byte-queue.ts';

test('a piece inside one slice is a view of it; one that spans slices is joined into the given memory, or new memory if it is too small', () => {
  const data = randomBytes(300);
  const q = new ByteQueue();
  for (let i = 0; i < data.length; i += 64) q.push(data.subarray(i, i + 64));
  const scratch = Buffer.alloc(128);

  const inside = q.take(10, scratch);
  assert.deepEqual(inside, data.subarray(0, 10));
  assert.equal(inside.buffer, data.buffer, 'within one slice: a view, nothing copied');

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
