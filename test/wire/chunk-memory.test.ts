/**
 * Decoded chunks' memory (core/wire/chunk-memory.ts): used again only once every byte of it was taken by the pipe,
 * never while a byte of it is still on its way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkMemory, chunkMemoryCounts, chunkTaken } from '../../core/wire/chunk-memory.ts';

const SIZE = 3 * 1024 + 17;

test('memory the pipe took whole, in pieces, is what the next chunk of its size decodes into', () => {
  const first = chunkMemory(SIZE);
  for (let at = 0; at < SIZE; at += 1000) chunkTaken(first.subarray(at, at + 1000));
  const before = chunkMemoryCounts();
  const next = chunkMemory(SIZE);
  assert.equal(next.buffer, first.buffer);
  assert.equal(next.length, SIZE);
  assert.deepEqual(chunkMemoryCounts(), { fresh: before.fresh, reused: before.reused + 1 });
});

test('memory with a byte not yet taken is not used again', () => {
  const first = chunkMemory(SIZE + 1);
  chunkTaken(first.subarray(0, SIZE));
  const next = chunkMemory(SIZE + 1);
  assert.notEqual(next.buffer, first.buffer);
  // The last byte comes: now it is free, and the one handed out meanwhile is still its caller's.
  chunkTaken(first.subarray(SIZE));
  const third = chunkMemory(SIZE + 1);
  assert.equal(third.buffer, first.buffer);
  assert.notEqual(third.buffer, next.buffer);
});

test('memory handed out again is owed whole again: taking the old use twice over does not free it', () => {
  const first = chunkMemory(SIZE + 2);
  chunkTaken(first);
  const again = chunkMemory(SIZE + 2);
  assert.equal(again.buffer, first.buffer);
  chunkTaken(again.subarray(0, 10));
  assert.notEqual(chunkMemory(SIZE + 2).buffer, first.buffer);
});

test('pieces of memory that is not a decoded chunk, and chunks of another size, are not taken for it', () => {
  const other = Buffer.allocUnsafeSlow(SIZE + 3);
  chunkTaken(other);
  assert.notEqual(chunkMemory(SIZE + 3).buffer, other.buffer);
  const small = chunkMemory(SIZE + 4);
  chunkTaken(small);
  assert.notEqual(chunkMemory(SIZE + 5).buffer, small.buffer);
  assert.equal(chunkMemory(SIZE + 4).buffer, small.buffer);
});

test('at most a few chunks of memory are kept for later', () => {
  const chunks = Array.from({ length: 10 }, () => chunkMemory(SIZE + 6));
  for (const c of chunks) chunkTaken(c);
  const kept = new Set(chunks.map((c) => c.buffer));
  const before = chunkMemoryCounts();
  const again = Array.from({ length: 10 }, () => chunkMemory(SIZE + 6));
  const reused = again.filter((c) => kept.has(c.buffer)).length;
  assert.equal(reused, 4);
  assert.equal(chunkMemoryCounts().reused - before.reused, 4);
});
