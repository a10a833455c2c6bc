/**
 * Decoded chunks' memory (core/wire/chunk-memory.ts): used again only once every byte of it was taken by the pipe,
 * never while a byte of it is still on its way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkMemory, chunkMemoryCounts, chunkDone } from '../../core/wire/chunk-memory.ts';

const SIZE = 3 * 1024 + 17;

test('memory the pipe took whole, in pieces, is what the next chunk of its size decodes into', () => {
  const first = chunkMemory(SIZE);
  for (let at = 0; at < SIZE; at += 1000) chunkDone(first.subarray(at, at + 1000));
  const before = chunkMemoryCounts();
  const next = chunkMemory(SIZE);
  assert.equal(next.buffer, first.buffer);
  assert.equal(next.length, SIZE);
  assert.deepEqual(chunkMemoryCounts(), { fresh: before.fresh, reused: before.reused + 1 });
});

test('memory with a byte not yet taken is not used again', () => {
  const first = chunkMemory(SIZE + 1);
  chunkDone(first.subarray(0, SIZE));
  const next = chunkMemory(SIZE + 1);
  assert.notEqual(next.buffer, first.buffer);
  // The last byte comes: now it is free, and the one handed out meanwhile is still its caller's.
  chunkDone(first.subarray(SIZE));
  const third = chunkMemory(SIZE + 1);
  assert.equal(third.buffer, first.buffer);
  assert.notEqual(third.buffer, next.buffer);
});

test('memory handed out again is owed whole again: taking the old use twice over does not free it', () => {
  const first = chunkMemory(SIZE + 2);
  chunkDone(first);
  const again = chunkMemory(SIZE + 2);
  assert.equal(again.buffer, first.buffer);
  chunkDone(again.subarray(0, 10));
  assert.notEqual(chunkMemory(SIZE + 2).buffer, first.buffer);
});

test('pieces of memory that is not a decoded chunk, and chunks of another size, are not taken for it', () => {
  const other = Buffer.allocUnsafeSlow(SIZE + 3);
  chunkDone(other);
  assert.notEqual(chunkMemory(SIZE + 3).buffer, other.buffer);
  const small = chunkMemory(SIZE + 4);
  chunkDone(small);
  assert.notEqual(chunkMemory(SIZE + 5).buffer, small.buffer);
  assert.equal(chunkMemory(SIZE + 4).buffer, small.buffer);
});

test('at most 16 MiB of memory of a size is kept for later', () => {
  const chunks = Array.from({ length: 10 }, () => chunkMemory(4 * 1024 * 1024));
  for (const c of chunks) chunkDone(c);
  const kept = new Set(chunks.map((c) => c.buffer));
  const before = chunkMemoryCounts();
  const again = Array.from({ length: 10 }, () => chunkMemory(4 * 1024 * 1024));
  const reused = again.filter((c) => kept.has(c.buffer)).length;
  assert.equal(reused, 4);
  assert.equal(chunkMemoryCounts().reused - before.reused, 4);
});
