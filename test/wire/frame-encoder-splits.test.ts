/**
 * A resume regenerates frames from a new `btrfs send`, whose pipe reads split the same stream differently; the
 * server checks the regenerated chain against the one it holds. So the wire bytes must depend on the raw bytes
 * alone: however the reads fall, whichever worker hashes a chunk, and however early the upload hands frame memory
 * back to be filled again (FrameEncoder.recycle, RawChunker's spares).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { CompressionPool, FrameEncoder } from '../../core/wire/index.ts';
import { KiB, mixedBytes, slices } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

/**
 * The encoder's output, read as the upload source reads it: each buffer copied out, then its memory handed back
 * to the encoder at once (the earliest the server could acknowledge it), so a recycled chunk that were still in use
 * would show up as changed bytes.
 */
async function wireOf(raw: Buffer, reads: number[], level: number, pool?: CompressionPool): Promise<Buffer> {
  const encoder = new FrameEncoder({ chunkSize: CHUNK, level, ...(pool ? { pool } : {}) });
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(Buffer.from(chunk));
      encoder.recycle(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(slices(raw, reads)), encoder, sink);
  return Buffer.concat(parts);
}

describe('FrameEncoder output does not depend on how the input was read', () => {
  const pool = new CompressionPool(2);
  after(() => pool.close());

  it('the same frames for any split of the raw stream, level 0 and zstd, with and without workers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5 * CHUNK + 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.integer({ min: 1, max: 3 * CHUNK }), { minLength: 1, maxLength: 12 }),
        fc.constantFrom(0, 1),
        async (length, seed, reads, level) => {
          const raw = mixedBytes(length, 4 * KiB, seed);
          const whole = await wireOf(raw, [Math.max(raw.length, 1)], level);
          assert.ok(whole.equals(await wireOf(raw, reads, level)), 'split reads, this thread');
          assert.ok(whole.equals(await wireOf(raw, reads, level, pool)), 'split reads, on the pool');
        },
      ),
      { numRuns: 60 },
    );
  });
});
