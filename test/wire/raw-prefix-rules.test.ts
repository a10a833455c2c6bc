/**
 * hashRawPrefix rules that round trips cannot tell apart: what `accept` is shown and what `rest` holds when it
 * refuses the very first chunk, a source that ends exactly at a chunk boundary, `rest` never adding empty pieces of
 * its own, and sources whose iterators have no `return` or must not be asked again after they said done.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { hashRawPrefix } from '../../core/wire/raw-prefix.ts';
import type { HashedChunk } from '../../core/wire/raw-prefix.ts';
import { KiB, seededBytes, slices } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

async function pieces(rest: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of rest) out.push(b);
  return out;
}

/** An async iterable over `parts` with no `return` method, that fails the test if asked again after it said done. */
function strictSource(parts: Buffer[]): AsyncIterable<Uint8Array> & { nextCalls: number } {
  const src = {
    nextCalls: 0,
    [Symbol.asyncIterator]() {
      let i = 0;
      let done = false;
      return {
        next: async (): Promise<IteratorResult<Uint8Array>> => {
          src.nextCalls++;
          assert.equal(done, false, 'the source was asked for more after it said done');
          if (i < parts.length) return { done: false, value: parts[i++]! };
          done = true;
          return { done: true, value: undefined };
        },
      };
    },
  };
  return src;
}

describe('hashRawPrefix accept', () => {
  it('refusing the first chunk leaves the whole source in rest, byte for byte', async () => {
    const raw = seededBytes(2 * CHUNK + 10, 31);
    const prefix = await hashRawPrefix(Readable.from(slices(raw, [CHUNK / 4])), { chunkSize: CHUNK, frames: 3, accept: () => false });
    assert.deepEqual([prefix.frames, prefix.rawOffset, prefix.stopped, prefix.sourceEnded], [0, 0, true, false]);
    assert.deepEqual(Buffer.concat(await pieces(prefix.rest)), raw);
  });

  it('a source ending exactly at a chunk boundary shows accept no empty chunk', async () => {
    const raw = seededBytes(2 * CHUNK, 32);
    const seen: HashedChunk[] = [];
    const prefix = await hashRawPrefix(Readable.from(slices(raw, [CHUNK])), {
      chunkSize: CHUNK,
      frames: 5,
      accept: (c) => {
        seen.push(c);
        return true;
      },
    });
    assert.deepEqual(seen.map((c) => [c.index, c.rawLength]), [[0, CHUNK], [1, CHUNK]]);
    assert.deepEqual([prefix.frames, prefix.rawOffset, prefix.stopped, prefix.sourceEnded], [2, 2 * CHUNK, false, true]);
    assert.deepEqual(await pieces(prefix.rest), []);
  });

  it('a refusal right at the end of a source piece puts no empty piece in rest', async () => {
    const raw = seededBytes(3 * CHUNK, 33);
    const prefix = await hashRawPrefix(Readable.from(slices(raw, [CHUNK])), { chunkSize: CHUNK, frames: 3, accept: (c) => c.index < 1 });
    assert.equal(prefix.frames, 1);
    const rest = await pieces(prefix.rest);
    assert.ok(rest.every((b) => b.length > 0), `piece lengths ${rest.map((b) => b.length).join(', ')}`);
    assert.deepEqual(Buffer.concat(rest), raw.subarray(CHUNK));
  });
});

describe('hashRawPrefix sources', () => {
  it('an iterator without return: rest reads it to the end', async () => {
    const raw = seededBytes(2 * CHUNK + 10, 34);
    const source = strictSource(slices(raw, [CHUNK / 2]));
    const prefix = await hashRawPrefix(source, { chunkSize: CHUNK, frames: 1 });
    assert.equal(prefix.sourceEnded, false);
    assert.deepEqual(Buffer.concat(await pieces(prefix.rest)), raw.subarray(CHUNK));
  });

  it('a source that already said done is not asked again by rest', async () => {
    const raw = seededBytes(CHUNK + 10, 35);
    const source = strictSource([raw]);
    const prefix = await hashRawPrefix(source, { chunkSize: CHUNK, frames: 5 });
    assert.deepEqual([prefix.frames, prefix.sourceEnded], [2, true]);
    const calls = source.nextCalls;
    assert.deepEqual(await pieces(prefix.rest), []);
    assert.equal(source.nextCalls, calls);
  });
});
