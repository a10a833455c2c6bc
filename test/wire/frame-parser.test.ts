import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import { sha256 } from '../../core/wire/chain.ts';
import { ChunkCompressor } from '../../core/wire/codec.ts';
import { FRAME_HEADER_SIZE, MAX_CHUNK_SIZE, encodeDataFrame, encodeEndFrame, encodeFrameHeader } from '../../core/wire/frame.ts';
import { FrameError } from '../../core/wire/frame-error.ts';
import type { FrameErrorCode } from '../../core/wire/frame-error.ts';
import type { EncodedFrameInfo } from '../../core/wire/frame-encoder.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import type { VerifiedFrame } from '../../core/wire/frame-parser.ts';
import { KiB, compressibleBytes, decode, encode, mixedBytes, parseAll, randomSizes } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

function expectFrameError(fn: () => unknown, code: FrameErrorCode, at?: { frameIndex: number; wireOffset: number }): FrameError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FrameError, `expected FrameError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (at !== undefined) {
    assert.equal(caught.details.frameIndex, at.frameIndex, caught.message);
    assert.equal(caught.details.wireOffset, at.wireOffset, caught.message);
  }
  return caught;
}

function flipBit(buf: Buffer, bit: number): Buffer {
  const b = Buffer.from(buf);
  b[bit >> 3] = (b[bit >> 3] as number) ^ (1 << (bit & 7));
  return b;
}

/** Frames 0 zstd, 1 raw, 2 zstd, 3 short raw (1000 bytes), then the end frame. */
let raw: Buffer;
let wire: Buffer;
let events: EncodedFrameInfo[];
const frameBytes = (i: number): Buffer => {
  const f = events[i] as EncodedFrameInfo;
  return wire.subarray(f.wireOffset, f.wireOffset + f.wireLength);
};
const at = (i: number): { frameIndex: number; wireOffset: number } => ({
  frameIndex: i,
  wireOffset: (events[i] as EncodedFrameInfo).wireOffset,
});

before(async () => {
  raw = mixedBytes(3 * CHUNK + 1000, CHUNK);
  ({ wire, frames: events } = await encode(raw, { chunkSize: CHUNK }));
  assert.deepEqual(events.map((f) => f.codec), ['zstd', 'raw', 'zstd', 'raw', 'raw']);
});

describe('FrameParser: good streams', () => {
  it('verifies the same frames whatever the slicing: whole, 1 byte, 7 bytes, random', () => {
    const whole = parseAll(wire, [wire.length], { keepRaw: true });
    assert.deepEqual(Buffer.concat(whole.map((f) => f.raw ?? Buffer.alloc(0))), raw);
    for (const sizes of [[1], [7], randomSizes(100, 3000), randomSizes(20, 100 * KiB, 5)]) {
      assert.deepEqual(parseAll(wire, sizes, { keepRaw: true }), whole);
    }
  });

  it('reports frames that match the encoder events', () => {
    const frames = parseAll(wire, [10000], { chunkSize: CHUNK });
    assert.equal(frames.length, events.length);
    for (const [i, f] of frames.entries()) {
      const e = events[i] as EncodedFrameInfo;
      assert.deepEqual(
        [f.kind, f.index, f.codec, f.wireStart, f.wireEnd, f.rawOffset, f.rawLength, f.chain],
        [e.kind, e.index, e.codec, e.wireOffset, e.wireOffset + e.wireLength, e.rawOffset, e.rawLength, e.chain],
      );
      assert.equal(f.raw, undefined, 'raw is only kept when asked');
      if (f.kind === 'data') assert.deepEqual(f.rawHash, sha256(raw.subarray(f.rawOffset, f.rawOffset + f.rawLength)));
    }
  });

  it('tracks state as frames complete, and learns the chunk size', () => {
    const parser = new FrameParser();
    assert.equal(parser.state().chunkSize, null);
    parser.push(wire.subarray(0, events[1]!.wireOffset + 10));
    const s = parser.state();
    assert.equal(s.chunkSize, CHUNK);
    assert.equal(s.framesVerified, 1);
    assert.equal(s.wireOffsetVerified, events[1]!.wireOffset);
    assert.equal(s.rawOffset, CHUNK);
    assert.deepEqual(s.chain, events[0]!.chain);
    assert.equal(s.pendingBytes, 10);
    assert.equal(s.ended, false);
    parser.push(wire.subarray(events[1]!.wireOffset + 10));
    parser.finish();
    assert.equal(parser.state().ended, true);
    assert.equal(parser.state().wireOffsetVerified, wire.length);
    assert.equal(parser.state().rawOffset, raw.length);
  });

  it('calls onFrame for each frame, in order', () => {
    const seen: number[] = [];
    parseAll(wire, [333], { onFrame: (f) => seen.push(f.wireEnd) });
    assert.deepEqual(seen, events.map((e) => e.wireOffset + e.wireLength));
  });
});

describe('FrameParser: truncation never looks complete', () => {
  it('at every byte offset of a small stream', async () => {
    const { wire: small } = await encode(compressibleBytes(3 * CHUNK + 5), { chunkSize: CHUNK });
    assert.ok(small.length < 2000, `${small.length}`);
    for (let cut = 0; cut < small.length; cut++) {
      expectFrameError(() => parseAll(small.subarray(0, cut), [cut === 0 ? 1 : cut]), 'stream_truncated');
    }
  });

  it('mid-header, mid-payload and before the end frame of a mixed stream', async () => {
    const cuts = new Set<number>();
    for (const e of events) for (const d of [0, 1, 40, 71, 72, 73, e.wireLength - 1]) cuts.add(e.wireOffset + d);
    cuts.add(wire.length - FRAME_HEADER_SIZE);
    cuts.add(wire.length - 1);
    for (const cut of [...cuts].filter((c) => c < wire.length)) {
      const err = expectFrameError(() => parseAll(wire.subarray(0, cut), [4096]), 'stream_truncated');
      assert.equal(err.retryable, true);
      const verified = events.filter((e) => e.wireOffset + e.wireLength <= cut);
      assert.equal(err.details.frameIndex, verified.length, `cut ${cut}`);
    }
    // The decoder used by `btrfs receive` fails too, instead of ending the raw stream early.
    await assert.rejects(decode(wire.subarray(0, wire.length - FRAME_HEADER_SIZE)), { code: 'stream_truncated' });
    await assert.rejects(decode(Buffer.alloc(0)), { code: 'stream_truncated' });
  });
});

describe('FrameParser: damage is caught', () => {
  it('any flipped bit in a data header, before its payload is awaited', () => {
    for (let bit = 0; bit < FRAME_HEADER_SIZE * 8; bit++) {
      const parser = new FrameParser();
      parser.push(frameBytes(0));
      expectFrameError(() => parser.push(flipBit(frameBytes(1), bit).subarray(0, FRAME_HEADER_SIZE)), 'frame_corrupt', at(1));
    }
  });

  it('a flipped bit in a raw payload', () => {
    for (const bit of [0, 5000, frameBytes(1).length * 8 - 1]) {
      const bad = Buffer.concat([frameBytes(0), flipBit(frameBytes(1), FRAME_HEADER_SIZE * 8 + (bit % ((frameBytes(1).length - FRAME_HEADER_SIZE) * 8)))]);
      expectFrameError(() => new FrameParser().push(bad), 'frame_corrupt', at(1));
    }
  });

  it('every flipped bit in a zstd payload: refused, or it decodes to the very same chunk', () => {
    const f = frameBytes(2);
    const prefix = wire.subarray(0, events[2]!.wireOffset);
    const chunk = raw.subarray(2 * CHUNK, 3 * CHUNK);
    let refused = 0;
    let harmless = 0;
    for (let bit = FRAME_HEADER_SIZE * 8; bit < f.length * 8; bit++) {
      const parser = new FrameParser({ keepRaw: true });
      let frames: VerifiedFrame[];
      try {
        frames = parser.push(Buffer.concat([prefix, flipBit(f, bit)]));
      } catch (err) {
        assert.ok(err instanceof FrameError && err.code === 'frame_corrupt', String(err));
        assert.deepEqual(err.details, { ...err.details, ...at(2) });
        refused++;
        continue;
      }
      // zstd ignores a few bits (e.g. the frame header's unused flag); what matters is that no other bytes pass.
      assert.deepEqual(frames[2]?.raw, chunk, `bit ${bit}`);
      harmless++;
    }
    assert.ok(refused > 0.9 * (refused + harmless), `${refused} refused, ${harmless} harmless`);
  });

  it('every flipped bit in the end frame', () => {
    const end = frameBytes(4);
    const prefix = wire.subarray(0, events[4]!.wireOffset);
    for (let bit = 0; bit < end.length * 8; bit++) {
      expectFrameError(() => parseAll(Buffer.concat([prefix, flipBit(end, bit)]), [wire.length]), 'frame_corrupt', at(4));
    }
  });

  it('a well-formed end frame with the wrong chain', () => {
    const forged = encodeEndFrame({ chunkSize: CHUNK, frameCount: 4, totalRaw: raw.length, chain: sha256(Buffer.from('no')) });
    const bad = Buffer.concat([wire.subarray(0, events[4]!.wireOffset), forged]);
    const err = expectFrameError(() => parseAll(bad, [wire.length]), 'frame_chain_mismatch', at(4));
    assert.equal(err.retryable, false);
  });

  it('frames reordered, duplicated or lost', () => {
    const f = [0, 1, 2, 3, 4].map(frameBytes);
    const [f0, f1, f2, f3, f4] = f as [Buffer, Buffer, Buffer, Buffer, Buffer];
    expectFrameError(() => parseAll(Buffer.concat([f2, f1, f0, f3, f4]), [999]), 'frame_out_of_order', at(0));
    expectFrameError(() => parseAll(Buffer.concat([f0, f2, f1, f3, f4]), [999]), 'frame_out_of_order', at(1));
    expectFrameError(() => parseAll(Buffer.concat([f0, f1, f1, f2, f3, f4]), [999]), 'frame_out_of_order');
    expectFrameError(() => parseAll(Buffer.concat([f0, f2, f3, f4]), [999]), 'frame_out_of_order', at(1));
    expectFrameError(() => parseAll(Buffer.concat([f0, f1, f2, f4]), [999]), 'frame_out_of_order', at(3));
    const noLast = Buffer.concat([f0, f1, f2, encodeEndFrame({ chunkSize: CHUNK, frameCount: 4, totalRaw: raw.length, chain: events[3]!.chain })]);
    expectFrameError(() => parseAll(noLast, [999]), 'frame_out_of_order', at(3));
  });

  it('a reorder disguised by rewritten headers is caught by the chain', () => {
    const compressor = new ChunkCompressor();
    const chunks = [1, 0, 2].map((i) => raw.subarray(i * CHUNK, (i + 1) * CHUNK));
    const parts = chunks.flatMap((c, index) => {
      const fr = encodeDataFrame(c, { chunkSize: CHUNK, index, compressor });
      return [fr.header, fr.payload];
    });
    const bad = Buffer.concat([...parts, frameBytes(3), frameBytes(4)]);
    expectFrameError(() => parseAll(bad, [999]), 'frame_chain_mismatch', at(4));
  });

  it('a header that claims a huge length is refused on its own, without allocating', () => {
    for (const [rawLength, chunkSize, code] of [
      [0xffffffff, CHUNK, 'frame_too_large'],
      [0xffffffff, 0xffffffff, 'frame_too_large'],
      [MAX_CHUNK_SIZE, MAX_CHUNK_SIZE, 'frame_chunk_size_mismatch'],
    ] as const) {
      const header = Buffer.from(frameBytes(1).subarray(0, FRAME_HEADER_SIZE));
      header.writeUInt32BE(chunkSize, 8);
      header.writeUInt32BE(rawLength, 12);
      header.writeUInt32BE(rawLength, 16);
      header.writeBigUInt64BE(BigInt(chunkSize), 28);
      header.writeUInt32BE(crc32c(header.subarray(0, 68)), 68);
      const parser = new FrameParser({ chunkSize: CHUNK });
      parser.push(frameBytes(0));
      const before = process.memoryUsage().arrayBuffers;
      expectFrameError(() => parser.push(header), code, at(1));
      assert.ok(process.memoryUsage().arrayBuffers - before < 1024 * KiB);
      assert.equal(parser.state().framesVerified, 1);
    }
  });

  it('data after the end frame, in the same slice or later', () => {
    expectFrameError(() => parseAll(Buffer.concat([wire, Buffer.from([0])]), [wire.length + 1]), 'frame_after_end', {
      frameIndex: 4,
      wireOffset: wire.length,
    });
    const parser = new FrameParser();
    parser.push(wire);
    parser.finish();
    expectFrameError(() => parser.push(wire.subarray(0, 1)), 'frame_after_end');
    assert.equal(parser.state().ended, true);
    expectFrameError(() => parser.finish(), 'frame_after_end');
  });

  it('a short data frame followed by another data frame', () => {
    const compressor = new ChunkCompressor();
    const a = encodeDataFrame(raw.subarray(0, 1000), { chunkSize: CHUNK, index: 0, compressor });
    const b = encodeDataFrame(raw.subarray(CHUNK, 2 * CHUNK), { chunkSize: CHUNK, index: 1, compressor });
    const bad = Buffer.concat([a.header, a.payload, b.header, b.payload]);
    expectFrameError(() => new FrameParser().push(bad), 'frame_chunk_size_mismatch', { frameIndex: 1, wireOffset: FRAME_HEADER_SIZE + a.payload.length });
  });

  it('a chunk size other than the transfer\'s, told or learnt', async () => {
    expectFrameError(() => new FrameParser({ chunkSize: 2 * CHUNK }).push(wire), 'frame_chunk_size_mismatch', at(0));
    const { wire: other } = await encode(raw, { chunkSize: 2 * CHUNK });
    const otherSecond = other.subarray(0, FRAME_HEADER_SIZE);
    const forged = Buffer.from(otherSecond);
    forged.writeBigUInt64BE(1n, 20);
    forged.writeBigUInt64BE(BigInt(2 * CHUNK), 28);
    forged.writeUInt32BE(crc32c(forged.subarray(0, 68)), 68);
    expectFrameError(() => new FrameParser().push(Buffer.concat([frameBytes(0), forged])), 'frame_chunk_size_mismatch', at(1));
  });

  it('stays failed, having delivered the frames before the error', () => {
    const seen: VerifiedFrame[] = [];
    const parser = new FrameParser({ onFrame: (f) => seen.push(f) });
    const bad = Buffer.concat([frameBytes(0), frameBytes(1), flipBit(frameBytes(2), FRAME_HEADER_SIZE * 8 + 3)]);
    expectFrameError(() => parser.push(bad), 'frame_corrupt', at(2));
    assert.deepEqual(seen.map((f) => f.index), [0, 1]);
    assert.equal(parser.state().framesVerified, 2);
    assert.equal(parser.state().wireOffsetVerified, events[2]!.wireOffset);
    expectFrameError(() => parser.push(frameBytes(3)), 'frame_corrupt', at(2));
    expectFrameError(() => parser.finish(), 'frame_corrupt', at(2));
  });
});

describe('FrameParser: restored from a saved state', () => {
  it('accepts the rest of the stream from every point', () => {
    for (let cut = 0; cut < wire.length; cut += 1777) {
      const first = new FrameParser();
      first.push(wire.subarray(0, cut));
      const saved = JSON.parse(JSON.stringify({ ...first.state(), chain: first.state().chain.toString('hex') })) as Record<string, unknown>;
      const state = {
        chunkSize: saved.chunkSize as number | null,
        framesVerified: saved.framesVerified as number,
        wireOffsetVerified: saved.wireOffsetVerified as number,
        rawOffset: saved.rawOffset as number,
        chain: Buffer.from(saved.chain as string, 'hex'),
        ended: saved.ended as boolean,
      };
      const restored = new FrameParser({ state, keepRaw: true });
      const rest = parseAll(wire.subarray(state.wireOffsetVerified), [5000], { state, keepRaw: true });
      assert.equal(rest[0]?.index, state.framesVerified, `cut ${cut}`);
      assert.equal(rest[0]?.wireStart, state.wireOffsetVerified);
      assert.deepEqual(Buffer.concat(rest.map((f) => f.raw ?? Buffer.alloc(0))), raw.subarray(state.rawOffset));
      restored.push(wire.subarray(state.wireOffsetVerified));
      restored.finish();
    }
  });

  it('a saved chain that is wrong fails at the end frame', () => {
    const state = { chunkSize: CHUNK, framesVerified: 2, wireOffsetVerified: events[2]!.wireOffset, rawOffset: 2 * CHUNK, chain: events[0]!.chain, ended: false };
    expectFrameError(() => parseAll(wire.subarray(state.wireOffsetVerified), [5000], { state }), 'frame_chain_mismatch', at(4));
  });

  it('refuses inconsistent states', () => {
    const good = { chunkSize: CHUNK, framesVerified: 2, wireOffsetVerified: events[2]!.wireOffset, rawOffset: 2 * CHUNK, chain: events[1]!.chain, ended: false };
    assert.doesNotThrow(() => new FrameParser({ state: good }));
    for (const bad of [
      { ...good, rawOffset: 2 * CHUNK + 1 },
      { ...good, rawOffset: CHUNK },
      { ...good, chunkSize: null },
      { ...good, chunkSize: 1000 },
      { ...good, wireOffsetVerified: 100 },
      { ...good, chain: Buffer.alloc(3) },
      { ...good, framesVerified: -1 },
    ]) {
      assert.throws(() => new FrameParser({ state: bad }), RangeError, JSON.stringify(bad));
    }
    assert.throws(() => new FrameParser({ state: good, chunkSize: 2 * CHUNK }), RangeError);
  });

  it('a state with the header CRC of frame N in a forged header is still caught', () => {
    // Restored mid-stream, the parser still checks each header's index against its state.
    const state = { chunkSize: CHUNK, framesVerified: 1, wireOffsetVerified: events[1]!.wireOffset, rawOffset: CHUNK, chain: events[0]!.chain, ended: false };
    const h = encodeFrameHeader({ kind: 'data', codec: 'raw', sealed: false, chunkSize: CHUNK, rawLength: 10, payloadLength: 10, index: 2, rawOffset: 2 * CHUNK, rawHash: sha256(Buffer.alloc(10)) });
    expectFrameError(() => new FrameParser({ state }).push(h), 'frame_out_of_order', at(1));
  });
});
