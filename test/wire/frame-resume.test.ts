import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { CHAIN_ZERO } from '../../core/wire/chain.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import type { EncodedFrameInfo } from '../../core/wire/frame-encoder.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import { hashRawPrefix } from '../../core/wire/raw-prefix.ts';
import type { HashedChunk } from '../../core/wire/raw-prefix.ts';
import { KiB, encode, mixedBytes, randomSizes, seededBytes, slices } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

async function encodeFrom(source: AsyncIterable<Buffer>, opts: ConstructorParameters<typeof FrameEncoder>[0]) {
  const encoder = new FrameEncoder(opts);
  const frames: EncodedFrameInfo[] = [];
  encoder.on('frame', (f: EncodedFrameInfo) => frames.push(f));
  const parts: Buffer[] = [];
  const done = (async () => {
    for await (const p of encoder) parts.push(p as Buffer);
  })();
  for await (const b of source) if (!encoder.write(b)) await new Promise((r) => encoder.once('drain', r));
  encoder.end();
  await done;
  return { wire: Buffer.concat(parts), frames };
}

async function concat(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of source) parts.push(b);
  return Buffer.concat(parts);
}

describe('resume: hash the first N chunks, frame the rest', () => {
  for (const [name, raw] of [
    ['ending in a short chunk', mixedBytes(3 * CHUNK + 1000, CHUNK)],
    ['an exact multiple of the chunk size', mixedBytes(3 * CHUNK, CHUNK)],
  ] as const) {
    const dataFrames = Math.ceil(raw.length / CHUNK);
    for (let n = 0; n <= dataFrames; n++) {
      it(`${name}: resuming at frame ${n} gives the same bytes as one encoder`, async () => {
        const single = await encode(raw, { chunkSize: CHUNK });
        const resumeAt = single.frames[n] as EncodedFrameInfo;

        // The first run framed chunks 0..n-1 (its end frame never got sent: the link broke).
        const firstRun = await encode(raw.subarray(0, Math.min(n * CHUNK, raw.length)), { chunkSize: CHUNK });
        const sent = firstRun.wire.subarray(0, firstRun.wire.length - FRAME_HEADER_SIZE);
        assert.equal(sent.length, resumeAt.wireOffset);

        // The second run: the same stream again, hashed up to frame n in odd slices, then framed from there.
        const prefix = await hashRawPrefix(Readable.from(slices(raw, randomSizes(60, 20 * KiB, n + 1))), {
          chunkSize: CHUNK,
          frames: n,
        });
        assert.equal(prefix.frames, n);
        assert.equal(prefix.rawOffset, resumeAt.rawOffset);
        assert.deepEqual(prefix.chain, n === 0 ? CHAIN_ZERO : single.frames[n - 1]?.chain);
        assert.equal(prefix.stopped, false);
        const second = await encodeFrom(prefix.rest, {
          chunkSize: CHUNK,
          start: { ...prefix, wireOffset: sent.length },
        });
        assert.deepEqual(Buffer.concat([sent, second.wire]), single.wire);
        assert.deepEqual(second.frames, single.frames.slice(n));
      });
    }
  }

  it('server and client agree end to end: restored parser, hashed prefix, resumed encoder', async () => {
    const raw = mixedBytes(5 * CHUNK + 333, 40 * KiB);
    const single = await encode(raw, { chunkSize: CHUNK });
    for (const cut of [0, 100, single.frames[2]!.wireOffset + 5000, single.wire.length - 1]) {
      const server = new FrameParser({ chunkSize: CHUNK });
      server.push(single.wire.subarray(0, cut));
      const saved = server.state();
      const prefix = await hashRawPrefix(Readable.from([raw]), { chunkSize: CHUNK, frames: saved.framesVerified });
      assert.deepEqual(prefix.chain, saved.chain);
      assert.equal(prefix.rawOffset, saved.rawOffset);
      const resumed = await encodeFrom(prefix.rest, { chunkSize: CHUNK, start: { ...prefix, wireOffset: saved.wireOffsetVerified } });
      const restored = new FrameParser({ chunkSize: CHUNK, state: saved });
      restored.push(resumed.wire);
      restored.finish();
      assert.equal(restored.state().rawOffset, raw.length);
    }
  });

  it('accept() can stop before the first chunk that differs; rest starts with that chunk', async () => {
    const raw = seededBytes(4 * CHUNK + 10, 21);
    const single = await encode(raw, { chunkSize: CHUNK });
    const seen: HashedChunk[] = [];
    const prefix = await hashRawPrefix(Readable.from(slices(raw, randomSizes(30, 50 * KiB))), {
      chunkSize: CHUNK,
      frames: 5,
      accept: (c) => {
        seen.push(c);
        return c.index < 2;
      },
    });
    assert.deepEqual(seen.map((c) => c.index), [0, 1, 2]);
    assert.deepEqual(seen.map((c) => c.chain), single.frames.slice(0, 3).map((f) => f.chain));
    assert.deepEqual([prefix.frames, prefix.rawOffset, prefix.stopped, prefix.sourceEnded], [2, 2 * CHUNK, true, false]);
    assert.deepEqual(prefix.chain, single.frames[1]?.chain);
    assert.deepEqual(await concat(prefix.rest), raw.subarray(2 * CHUNK));
  });

  it('accept() refusing the short last chunk leaves it in rest', async () => {
    const raw = seededBytes(CHUNK + 10, 22);
    const prefix = await hashRawPrefix(Readable.from([raw]), { chunkSize: CHUNK, frames: 2, accept: (c) => c.index === 0 });
    assert.deepEqual([prefix.frames, prefix.rawOffset, prefix.stopped, prefix.sourceEnded], [1, CHUNK, true, true]);
    assert.deepEqual(await concat(prefix.rest), raw.subarray(CHUNK));
  });

  it('a source shorter than asked: stops at its end, and the encoder then sends just the end frame', async () => {
    const raw = seededBytes(2 * CHUNK + 10, 23);
    const single = await encode(raw, { chunkSize: CHUNK });
    const prefix = await hashRawPrefix(Readable.from(slices(raw, [999])), { chunkSize: CHUNK, frames: 10 });
    assert.deepEqual([prefix.frames, prefix.rawOffset, prefix.sourceEnded], [3, raw.length, true]);
    const end = single.frames[3] as EncodedFrameInfo;
    const tail = await encodeFrom(prefix.rest, { chunkSize: CHUNK, start: { ...prefix, wireOffset: end.wireOffset } });
    assert.deepEqual(tail.wire, single.wire.subarray(end.wireOffset));
  });

  it('the encoder refuses raw data after a short last chunk', async () => {
    const enc = new FrameEncoder({ chunkSize: CHUNK, start: { frames: 1, rawOffset: 10, chain: Buffer.alloc(32, 1), wireOffset: 82 } });
    const failed = new Promise((resolve) => enc.once('error', resolve));
    enc.write(Buffer.from([1]));
    assert.match(String(await failed), /short last chunk/);
  });

  it('the encoder refuses impossible resume points', () => {
    const chain = Buffer.alloc(32, 1);
    for (const start of [
      { frames: 2, rawOffset: CHUNK, chain, wireOffset: 1000 },
      { frames: 2, rawOffset: 2 * CHUNK + 1, chain, wireOffset: 1000 },
      { frames: 0, rawOffset: 5, chain: CHAIN_ZERO, wireOffset: 0 },
      { frames: 2, rawOffset: 2 * CHUNK, chain, wireOffset: 100 },
      { frames: 2, rawOffset: 2 * CHUNK, chain: Buffer.alloc(5), wireOffset: 1000 },
      { frames: 0, rawOffset: 0, chain, wireOffset: 0 },
    ]) {
      assert.throws(() => new FrameEncoder({ chunkSize: CHUNK, start }), RangeError, JSON.stringify(start));
    }
  });

  it('reading only part of rest and stopping closes the source', async () => {
    const source = Readable.from(slices(seededBytes(3 * CHUNK, 24), [CHUNK / 2]));
    const prefix = await hashRawPrefix(source, { chunkSize: CHUNK, frames: 1 });
    for await (const b of prefix.rest) {
      assert.equal(b.length, CHUNK / 2);
      break;
    }
    assert.equal(source.destroyed, true);
  });

  it('refuses bad arguments', async () => {
    await assert.rejects(hashRawPrefix(Readable.from([]), { chunkSize: 10, frames: 1 }), RangeError);
    await assert.rejects(hashRawPrefix(Readable.from([]), { chunkSize: CHUNK, frames: -1 }), /frames must be >= 0, got -1/);
  });
});
