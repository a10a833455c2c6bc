/**
 * FrameEncoder and RawChunker rules that round trips cannot tell apart: which resume points are refused and with
 * what message, what a level chooser is told, and which buffers the chunker takes back for reuse.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CHAIN_ZERO } from '../../core/wire/chain.ts';
import type { CompressionSample } from '../../core/wire/frame-encoder.ts';
import { RawChunker } from '../../core/wire/raw-chunker.ts';
import { KiB, compressibleBytes, encode } from './frame-helpers.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';

const CHUNK = 64 * KiB;

describe('FrameEncoder resume points', () => {
  const chain = Buffer.alloc(32, 1);
  it('each impossible one is refused for what it is', () => {
    for (const [start, message] of [
      [{ frames: 0, rawOffset: 5, chain: CHAIN_ZERO, wireOffset: 0 }, /bad resume point: 0 frames of 65536 bytes and raw offset 5/],
      [{ frames: 2, rawOffset: 2 * CHUNK, chain: Buffer.alloc(31), wireOffset: 1000 }, /bad resume point: 2 frames/],
      [{ frames: 2, rawOffset: 2 * CHUNK, chain, wireOffset: 143 }, /bad resume point: wire offset 143 for 2 frames/],
      [{ frames: 2, rawOffset: 2 * CHUNK, chain, wireOffset: 1.5 }, /wire offset 1.5/],
    ] as const) {
      assert.throws(() => new FrameEncoder({ chunkSize: CHUNK, start }), message);
    }
    assert.doesNotThrow(() => new FrameEncoder({ chunkSize: CHUNK, start: { frames: 2, rawOffset: 2 * CHUNK, chain, wireOffset: 144 } }));
    assert.doesNotThrow(() => new FrameEncoder({ chunkSize: CHUNK, start: { frames: 2, rawOffset: CHUNK + 1, chain, wireOffset: 144 } }));
  });
});

describe('FrameEncoder level chooser', () => {
  it('is told the level, the sizes and how long compression took', async () => {
    const seen: CompressionSample[] = [];
    const levels = [1, 5];
    let i = 0;
    const raw = compressibleBytes(2 * CHUNK + 10);
    await encode(raw, { chunkSize: CHUNK, level: { next: () => levels[i++ % 2]!, observe: (s) => seen.push(s) } });
    assert.deepEqual(seen.map((s) => [s.level, s.rawLength]), [[1, CHUNK], [5, CHUNK], [1, 10]]);
    for (const s of seen) {
      assert.ok(s.payloadLength > 0 && s.payloadLength <= s.rawLength);
      assert.ok(s.compressNs >= 0 && s.compressNs < 10e9, `compressNs ${s.compressNs}`);
    }
  });
});

describe('RawChunker recycling', () => {
  /** The memory the next chunk that straddles two pushes is filled in. */
  const nextStraddling = (chunker: RawChunker): Buffer => {
    const [chunk] = chunker.push(Buffer.alloc(1)).concat(chunker.push(Buffer.alloc(CHUNK - 1)));
    assert.ok(chunk);
    return chunk;
  };

  it('takes back only buffers that own exactly a chunk of memory', () => {
    for (const [why, buffer] of [
      ['the front of a bigger buffer', Buffer.alloc(2 * CHUNK).subarray(0, CHUNK)],
      ['less than all of a chunk-sized buffer', Buffer.alloc(CHUNK).subarray(0, CHUNK - 1)],
      ['the back of a bigger buffer', Buffer.alloc(2 * CHUNK).subarray(CHUNK)],
    ] as const) {
      const chunker = new RawChunker(CHUNK);
      chunker.recycle(buffer);
      assert.notEqual(nextStraddling(chunker).buffer, buffer.buffer, why);
    }
    const chunker = new RawChunker(CHUNK);
    const owned = Buffer.alloc(CHUNK);
    chunker.recycle(owned);
    assert.equal(nextStraddling(chunker).buffer, owned.buffer);
  });

  it('keeps at most 4 spares (what one acknowledged PATCH gives back)', () => {
    const chunker = new RawChunker(CHUNK);
    const spares = Array.from({ length: 5 }, () => Buffer.alloc(CHUNK));
    for (const s of spares) chunker.recycle(s);
    assert.equal(nextStraddling(chunker).buffer, spares[3]!.buffer, 'the fifth was not kept');
  });
});

describe('FrameEncoder resumed after a short last chunk', () => {
  it('takes an empty write and ends with the end frame alone', async () => {
    const chain = Buffer.alloc(32, 1);
    const enc = new FrameEncoder({ chunkSize: CHUNK, start: { frames: 1, rawOffset: 10, chain, wireOffset: 82 } });
    const out: Buffer[] = [];
    enc.on('data', (b: Buffer) => out.push(b));
    const ended = new Promise((resolve, reject) => (enc.on('end', resolve), enc.on('error', reject)));
    enc.write(Buffer.alloc(0));
    enc.end();
    await ended;
    const wire = Buffer.concat(out);
    assert.equal(wire.length, 72, 'only the end frame');
    assert.equal(wire.readBigUInt64BE(20), 1n);
    assert.equal(wire.readBigUInt64BE(28), 10n);
  });
});
