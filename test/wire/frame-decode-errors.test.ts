/**
 * FrameParser tells a corrupt payload (PayloadDecodeError: the sender's fault, frame_corrupt) from the decompressor
 * failing for reasons of its own (out of memory, a broken binding): those are rethrown as they are, never reported
 * as a corrupt frame, so that a receiver does not blame and rewind a sender for its own failure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkDecompressor } from '../../core/wire/codec.ts';
import { FrameError } from '../../core/wire/frame-error.ts';
import { KiB, compressibleBytes, encode, parseAll } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

describe('FrameParser and decompressor failures', () => {
  it('an error from zstd that is not a PayloadDecodeError comes out as is', async (t) => {
    const { wire, frames } = await encode(compressibleBytes(CHUNK), { chunkSize: CHUNK });
    assert.equal(frames[0]?.codec, 'zstd');
    const ownFault = new RangeError('Array buffer allocation failed');
    // The zstd binding cannot be made to fail this way on demand: stand in for it at the decompressor.
    t.mock.method(ChunkDecompressor.prototype, 'decode', () => {
      throw ownFault;
    });
    assert.throws(() => parseAll(wire, [CHUNK]), (err) => err === ownFault && !(err instanceof FrameError));
  });
});
