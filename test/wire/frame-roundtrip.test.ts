import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CHAIN_ZERO, ChainHasher, sha256 } from '../../core/wire/chain.ts';
import { FRAME_HEADER_SIZE, parseFrameHeader } from '../../core/wire/frame.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import { RawChunker, rawChunks } from '../../core/wire/raw-chunker.ts';
import { KiB, MiB, compressibleBytes, decode, encode, mixedBytes, parseAll, randomSizes, seededBytes } from './frame-helpers.ts';

const kinds: [string, (n: number) => Buffer][] = [
  ['random', (n) => seededBytes(n, 42)],
  ['compressible', (n) => compressibleBytes(n)],
  ['mixed', (n) => mixedBytes(n, 50 * KiB)],
];

describe('framed round trip', () => {
  for (const chunkSize of [64 * KiB, 100 * KiB, 1 * MiB]) {
    for (const [name, make] of kinds) {
      it(`${name} data, chunk size ${chunkSize}`, async () => {
        const raw = make(3 * chunkSize + 12345);
        const { wire, frames } = await encode(raw, { chunkSize }, randomSizes(50, 200 * KiB));
        assert.equal(frames.length, 5, '4 data frames and the end frame');
        assert.deepEqual(await decode(wire, chunkSize), raw);
        assert.deepEqual(await decode(wire), raw, 'a decoder not told the chunk size learns it');
      });
    }
  }

  it('frame events describe the wire exactly', async () => {
    const chunkSize = 64 * KiB;
    const raw = mixedBytes(5 * chunkSize + 7, chunkSize);
    const { wire, frames } = await encode(raw, { chunkSize });
    const chain = new ChainHasher();
    let wireAt = 0;
    for (const [i, f] of frames.entries()) {
      assert.equal(f.wireOffset, wireAt);
      const h = parseFrameHeader(wire.subarray(f.wireOffset, f.wireOffset + FRAME_HEADER_SIZE));
      if (f.kind === 'data') {
        assert.equal(f.index, i);
        assert.equal(f.rawOffset, i * chunkSize);
        assert.equal(f.wireLength, FRAME_HEADER_SIZE + f.payloadLength);
        const chunk = raw.subarray(f.rawOffset, f.rawOffset + f.rawLength);
        assert.ok(h.kind === 'data' && h.codec === f.codec && h.rawHash.equals(sha256(chunk)));
        assert.deepEqual(f.chain, chain.update(sha256(chunk)));
        // Alternating blocks of one chunk each: compressible chunks go zstd, random ones raw.
        assert.equal(f.codec, i % 2 === 0 ? 'zstd' : 'raw', `frame ${i}`);
      } else {
        assert.ok(h.kind === 'end' && h.frameCount === 6 && h.totalRaw === raw.length && h.chain.equals(f.chain));
        assert.deepEqual(f.chain, chain.digest());
      }
      wireAt += f.wireLength;
    }
    assert.equal(wireAt, wire.length);
    assert.equal(frames.at(-2)?.rawLength, 7, 'the last data frame is short');
  });

  it('an empty raw stream is one end frame with chain c_0', async () => {
    const { wire, frames } = await encode(Buffer.alloc(0), { chunkSize: 64 * KiB });
    assert.equal(wire.length, FRAME_HEADER_SIZE);
    assert.deepEqual(parseFrameHeader(wire), {
      kind: 'end', chunkSize: 64 * KiB, frameCount: 0, totalRaw: 0, chain: CHAIN_ZERO,
    });
    assert.equal(frames.length, 1);
    assert.equal((await decode(wire)).length, 0);
    assert.equal(parseAll(wire, [1]).length, 1);
  });

  it('one byte', async () => {
    const { wire, frames } = await encode(Buffer.from([7]), { chunkSize: 64 * KiB });
    assert.deepEqual(frames.map((f) => [f.kind, f.codec, f.rawLength]), [['data', 'raw', 1], ['end', 'raw', 0]]);
    assert.equal(wire.length, 2 * FRAME_HEADER_SIZE + 1);
    assert.deepEqual(await decode(wire), Buffer.from([7]));
  });

  for (const n of [1, 3]) {
    it(`exactly ${n}x the chunk size: no short frame, no empty frame`, async () => {
      const chunkSize = 64 * KiB;
      const raw = mixedBytes(n * chunkSize, 10 * KiB);
      const { wire, frames } = await encode(raw, { chunkSize }, [chunkSize]);
      assert.deepEqual(frames.map((f) => f.rawLength), [...Array<number>(n).fill(chunkSize), 0]);
      assert.deepEqual(await decode(wire, chunkSize), raw);
    });
  }

  it('output does not depend on how the input is sliced', async () => {
    const raw = mixedBytes(300 * KiB, 30 * KiB);
    const one = await encode(raw, { chunkSize: 64 * KiB }, [raw.length]);
    for (const sizes of [[1000], [7], [64 * KiB], randomSizes(40, 90 * KiB)]) {
      assert.deepEqual((await encode(raw, { chunkSize: 64 * KiB }, sizes)).wire, one.wire);
    }
  });

  it('the zstd level is used (higher level, smaller output on text)', async () => {
    const raw = Buffer.from(Array.from({ length: 20000 }, (_, i) => `line ${i % 977} ${(i * 7919) % 10007}\n`).join(''));
    const fast = await encode(raw, { chunkSize: 256 * KiB, level: 1 });
    const best = await encode(raw, { chunkSize: 256 * KiB, level: 19 });
    assert.ok(best.wire.length < fast.wire.length, `${best.wire.length} < ${fast.wire.length}`);
    assert.deepEqual(await decode(best.wire), raw);
  });

  it('rejects bad options', () => {
    assert.throws(() => new FrameEncoder({ chunkSize: 1000 }), RangeError);
    assert.throws(() => new FrameEncoder({ level: 99 }), RangeError);
  });

  it('an encoder error fails the pipeline', async () => {
    const src = Readable.from([Buffer.alloc(10)]);
    const enc = new FrameEncoder({ chunkSize: 64 * KiB, start: { frames: 1, rawOffset: 100, chain: sha256(Buffer.alloc(1)), wireOffset: 172 } });
    enc.resume();
    await assert.rejects(pipeline(src, enc), /short last chunk/);
  });
});

describe('RawChunker', () => {
  const size = 64 * KiB;

  it('cuts exact chunks from any slicing, the last one short', () => {
    const raw = seededBytes(3 * size + 100, 9);
    for (const sizes of [[1], [7], [size], [size + 1], randomSizes(30, 3 * size)]) {
      const chunker = new RawChunker(size);
      const out: Buffer[] = [];
      let at = 0;
      for (let i = 0; at < raw.length; i++) {
        const n = sizes[i % sizes.length] as number;
        out.push(...chunker.push(raw.subarray(at, at + n)));
        at += n;
        assert.equal(chunker.pendingBytes, Math.min(at, raw.length) % size);
      }
      assert.deepEqual(out.map((c) => c.length), [size, size, size]);
      const last = chunker.flush();
      assert.equal(last?.length, 100);
      assert.deepEqual(Buffer.concat([...out, last as Buffer]), raw);
      assert.equal(chunker.flush(), null);
    }
  });

  it('does not copy chunks that lie whole inside one input buffer', () => {
    const raw = seededBytes(2 * size, 1);
    const [a, b] = new RawChunker(size).push(raw);
    assert.equal(a?.buffer, raw.buffer);
    assert.equal(b?.byteOffset, raw.byteOffset + size);
  });

  it('fills a recycled buffer with the next chunk instead of allocating one; other sizes and views are not kept', () => {
    const raw = seededBytes(3 * size, 2);
    const chunker = new RawChunker(size);
    const [first] = chunker.push(raw.subarray(0, 1)).concat(chunker.push(raw.subarray(1, size)));
    assert.ok(first);
    chunker.recycle(Buffer.alloc(size - 1));
    chunker.recycle(first);
    chunker.recycle(Buffer.alloc(2 * size).subarray(size));
    const [second] = chunker.push(raw.subarray(size, size + 1)).concat(chunker.push(raw.subarray(size + 1, 2 * size)));
    assert.equal(second?.buffer, first.buffer, 'the recycled memory');
    assert.deepEqual(second, raw.subarray(size, 2 * size));
    const [third] = chunker.push(raw.subarray(2 * size, 2 * size + 1)).concat(chunker.push(raw.subarray(2 * size + 1)));
    assert.notEqual(third?.buffer, first.buffer, 'nothing spare left: a fresh buffer (the short one and the view were refused)');
    assert.equal(third?.length, size);
  });

  it('rawChunks yields the same chunks from an async source', async () => {
    const raw = seededBytes(2 * size + 1, 4);
    const chunks: Buffer[] = [];
    for await (const c of rawChunks(Readable.from([raw.subarray(0, 5), raw.subarray(5)]), size)) chunks.push(c);
    assert.deepEqual(chunks.map((c) => c.length), [size, size, 1]);
    assert.deepEqual(Buffer.concat(chunks), raw);
  });

  it('an empty source yields nothing', async () => {
    const chunks: Buffer[] = [];
    for await (const c of rawChunks(Readable.from([]), size)) chunks.push(c);
    assert.equal(chunks.length, 0);
  });
});
