/**
 * FrameParser rules one by one, each with the message and details a person or a server acts on: which frame, where,
 * and what was expected. (frame-parser.test.ts holds the parser against damage of every kind; this file pins down
 * the rules that damage alone does not tell apart.)
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256 } from '../../core/wire/chain.ts';
import { ChunkCompressor } from '../../core/wire/codec.ts';
import { FRAME_HEADER_SIZE, encodeDataFrame, encodeEndFrame } from '../../core/wire/frame.ts';
import { FrameError } from '../../core/wire/frame-error.ts';
import type { EncodedFrameInfo } from '../../core/wire/frame-encoder.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import { FrameDecoder } from '../../core/wire/frame-decoder.ts';
import { KiB, decode, encode, mixedBytes } from './frame-helpers.ts';

const CHUNK = 64 * KiB;
let raw: Buffer;
let wire: Buffer;
let events: EncodedFrameInfo[];
const frame = (i: number): Buffer => wire.subarray(events[i]!.wireOffset, events[i]!.wireOffset + events[i]!.wireLength);

before(async () => {
  // Frames 0 zstd, 1 raw, 2 zstd, 3 short raw (1000 bytes), 4 end.
  raw = mixedBytes(3 * CHUNK + 1000, CHUNK);
  ({ wire, frames: events } = await encode(raw, { chunkSize: CHUNK }));
});

function fails(fn: () => unknown, code: string, message: RegExp): FrameError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FrameError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  assert.equal(caught.retryable, code === 'stream_truncated', 'only a truncated stream is worth sending again');
  return caught;
}

describe('FrameParser rules', () => {
  it('an end frame with the right count and chain but another total is out of order', () => {
    const chain = events[4]!.chain;
    const forged = encodeEndFrame({ chunkSize: CHUNK, frameCount: 4, totalRaw: raw.length - 1, chain });
    const err = fails(() => new FrameParser().push(Buffer.concat([wire.subarray(0, events[4]!.wireOffset), forged])), 'frame_out_of_order', new RegExp(`^frame 4 at wire offset ${events[4]!.wireOffset}: end frame counts 4 frames and ${raw.length - 1} raw bytes, verified 4 and ${raw.length}$`));
    assert.equal(err.details.endFrameCount, 4);
    assert.equal(err.details.endTotalRaw, raw.length - 1);
  });

  it('a data frame out of place names the index it got', () => {
    const err = fails(() => new FrameParser().push(Buffer.concat([frame(0), frame(2)])), 'frame_out_of_order', /^frame 1 at wire offset \d+: got frame 2 at raw offset 131072$/);
    assert.equal(err.details.got, 2);
  });

  it('a chain mismatch shows both chains', () => {
    const other = sha256(Buffer.from('other'));
    const forged = encodeEndFrame({ chunkSize: CHUNK, frameCount: 4, totalRaw: raw.length, chain: other });
    const err = fails(() => new FrameParser().push(Buffer.concat([wire.subarray(0, events[4]!.wireOffset), forged])), 'frame_chain_mismatch', /end frame chain differs from the chain of the frames verified/);
    assert.equal(err.details.expectedChain, events[4]!.chain.toString('hex'));
    assert.equal(err.details.endFrameChain, other.toString('hex'));
  });

  it('a payload whose hash differs, and one that does not decode, name the codec', () => {
    const bad = Buffer.from(frame(1));
    bad[FRAME_HEADER_SIZE + 5] = (bad[FRAME_HEADER_SIZE + 5] as number) ^ 1;
    fails(() => new FrameParser().push(Buffer.concat([frame(0), bad])), 'frame_corrupt', /SHA-256 of the raw chunk differs from header/);
    const zstd = Buffer.from(frame(0));
    zstd[FRAME_HEADER_SIZE + 1] = (zstd[FRAME_HEADER_SIZE + 1] as number) ^ 0xff;
    const err = fails(() => new FrameParser().push(zstd), 'frame_corrupt', /zstd/);
    assert.equal(err.details.codec, 'zstd');
  });

  it('a chunk size other than the transfer\'s, and a data frame after a short one, say which', () => {
    fails(() => new FrameParser({ chunkSize: 2 * CHUNK }).push(frame(0)), 'frame_chunk_size_mismatch', /chunk size 65536, the transfer's is 131072/);
    const compressor = new ChunkCompressor();
    const a = encodeDataFrame(raw.subarray(0, 1000), { chunkSize: CHUNK, index: 0, compressor });
    const b = encodeDataFrame(raw.subarray(0, 1000), { chunkSize: CHUNK, index: 1, compressor });
    fails(() => new FrameParser().push(Buffer.concat([a.header, a.payload, b.header, b.payload])), 'frame_chunk_size_mismatch', /a data frame follows a short data frame/);
  });

  it('bytes after the end frame are counted', () => {
    fails(() => new FrameParser().push(Buffer.concat([wire, Buffer.alloc(3)])), 'frame_after_end', /3 bytes follow the end frame/);
  });

  it('a truncated stream says whether it stopped inside a frame, and how far in', () => {
    const inside = new FrameParser();
    inside.push(wire.subarray(0, events[1]!.wireOffset + 100));
    assert.equal(inside.state().pendingBytes, 100, 'a header taken but not yet its payload still counts as pending');
    fails(() => inside.finish(), 'stream_truncated', /stream ended inside frame 1 \(100 bytes of it\)/);
    const between = new FrameParser();
    between.push(wire.subarray(0, events[1]!.wireOffset));
    assert.equal(between.state().pendingBytes, 0);
    fails(() => between.finish(), 'stream_truncated', /stream ended before the end frame/);
    const oneByte = new FrameParser();
    oneByte.push(wire.subarray(0, events[1]!.wireOffset + 1));
    fails(() => oneByte.finish(), 'stream_truncated', /inside frame 1 \(1 bytes of it\)/);
  });

  it('refuses saved states that no stream could reach', () => {
    const good = { chunkSize: CHUNK, framesVerified: 2, wireOffsetVerified: events[2]!.wireOffset, rawOffset: 2 * CHUNK, chain: events[1]!.chain, ended: false };
    assert.doesNotThrow(() => new FrameParser({ state: good }));
    assert.doesNotThrow(() => new FrameParser({ state: { ...good, rawOffset: 2 * CHUNK - 1 } }), 'a short last frame');
    assert.doesNotThrow(() => new FrameParser({ state: { ...good, wireOffsetVerified: 2 * FRAME_HEADER_SIZE } }), 'two frames of empty payload at least');
    const start = { chunkSize: null, framesVerified: 0, wireOffsetVerified: 0, rawOffset: 0, chain: Buffer.alloc(32), ended: false };
    assert.doesNotThrow(() => new FrameParser({ state: start }));
    for (const [why, bad] of [
      ['frames not an integer', { ...good, framesVerified: 1.5 }],
      ['raw offset negative', { ...good, framesVerified: 0, rawOffset: -1 }],
      ['raw offset not an integer', { ...good, rawOffset: 2 * CHUNK - 0.5 }],
      ['wire offset negative', { ...start, wireOffsetVerified: -1 }],
      ['wire offset too small for the frames', { ...good, wireOffsetVerified: 2 * FRAME_HEADER_SIZE - 1 }],
      ['ended without room for the end frame', { ...good, wireOffsetVerified: 2 * FRAME_HEADER_SIZE, ended: true }],
      ['raw bytes without frames', { ...start, rawOffset: 5 }],
      ['frames without a chunk size', { ...good, chunkSize: null }],
    ] as const) {
      assert.throws(() => new FrameParser({ state: bad }), /inconsistent frame parser state: \{"chunkSize"/, why);
    }
    assert.throws(() => new FrameParser({ state: good, chunkSize: 2 * CHUNK }), /saved state has chunk size 65536, options say 131072/);
  });
});

describe('FrameDecoder', () => {
  it('holds the stream to the chunk size it is told, and learns it when not told', async () => {
    assert.deepEqual(await decode(wire, CHUNK), raw);
    assert.deepEqual(await decode(wire), raw);
    await assert.rejects(decode(wire, 2 * CHUNK), { code: 'frame_chunk_size_mismatch' });
  });

  it('fails the pipeline on a corrupt frame, and reports each frame and its state', async () => {
    const bad = Buffer.from(wire);
    const at = events[1]!.wireOffset + FRAME_HEADER_SIZE + 3;
    bad[at] = (bad[at] as number) ^ 1;
    await assert.rejects(decode(bad), { code: 'frame_corrupt' });
    const seen: number[] = [];
    const decoder = new FrameDecoder({ onFrame: (f) => seen.push(f.index) });
    const emitted: unknown[] = [];
    decoder.on('frame', (f: { index: number; raw?: Buffer }) => emitted.push([f.index, f.raw]));
    const out: Buffer[] = [];
    await pipeline(Readable.from([wire]), decoder, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
    assert.deepEqual(Buffer.concat(out), raw);
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.deepEqual(emitted, [[0, undefined], [1, undefined], [2, undefined], [3, undefined], [4, undefined]], 'frame events carry no raw bytes');
    assert.equal(decoder.state().ended, true);
    assert.equal(decoder.state().wireOffsetVerified, wire.length);
  });
});

describe('FrameParser after an error', () => {
  it('throws the very same error again, whatever comes next', () => {
    const parser = new FrameParser();
    const bad = Buffer.from(frame(1));
    bad[FRAME_HEADER_SIZE] = (bad[FRAME_HEADER_SIZE] as number) ^ 1;
    let first: unknown;
    try {
      parser.push(Buffer.concat([frame(0), bad]));
    } catch (err) {
      first = err;
    }
    assert.ok(first instanceof FrameError);
    assert.throws(() => parser.push(frame(2)), (err: unknown) => err === first);
    assert.throws(() => parser.finish(), (err: unknown) => err === first);
  });
});
