import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import binding from 'zstd-napi/binding.js';
import { ChunkCompressor, ChunkDecompressor, PayloadDecodeError, validateZstdLevel } from '../../core/wire/codec.ts';
import { CAPPED_FROM_LEVEL } from '../../core/wire/zstd-chunk.mjs';
import { compressibleBytes, seededBytes } from './frame-helpers.ts';

describe('chunk codec', () => {
  const compressor = new ChunkCompressor(3);
  const decompressor = new ChunkDecompressor();

  it('compresses compressible chunks with zstd and decodes them back', () => {
    const raw = compressibleBytes(256 * 1024);
    const { codec, payload } = compressor.compress(raw);
    assert.equal(codec, 'zstd');
    assert.ok(payload.length < raw.length / 10, `payload ${payload.length}`);
    assert.deepEqual(decompressor.decode('zstd', payload, raw.length), raw);
  });

  it('keeps incompressible chunks raw, without a copy', () => {
    const raw = seededBytes(128 * 1024, 11);
    const { codec, payload } = compressor.compress(raw);
    assert.equal(codec, 'raw');
    assert.equal(payload, raw);
    assert.equal(decompressor.decode('raw', payload, raw.length), raw);
  });

  it('keeps a 1-byte chunk raw (zstd cannot shrink it)', () => {
    assert.equal(compressor.compress(Buffer.from([42])).codec, 'raw');
  });

  it('reuses its context: many chunks in a row stay correct', () => {
    for (let i = 0; i < 20; i++) {
      const raw = Buffer.concat([compressibleBytes(30000 + i * 997), seededBytes(1000, i + 1)]);
      const { codec, payload } = compressor.compress(raw);
      assert.equal(codec, 'zstd');
      assert.deepEqual(decompressor.decode(codec, payload, raw.length), raw);
    }
  });

  it('levels with capped match tables decode, and a lower level after them is exactly a fresh context\'s output', () => {
    // Words in a seeded random order: text whose matches depend on how large zstd's tables are.
    const words = Array.from({ length: 4096 }, (_, i) => seededBytes(4 + (i % 9), i + 100).toString('hex'));
    const order = seededBytes(2 * 80_000, 9);
    const raw = Buffer.from(Array.from({ length: 80_000 }, (_, i) => words[order.readUInt16LE(2 * i) % words.length]).join(' '));
    const fresh = new ChunkCompressor(1).compress(raw).payload;
    const changing = new ChunkCompressor(1);
    for (const level of [CAPPED_FROM_LEVEL - 1, CAPPED_FROM_LEVEL, 19]) {
      const { codec, payload } = changing.compress(raw, level);
      assert.equal(codec, 'zstd');
      assert.deepEqual(decompressor.decode(codec, payload, raw.length), raw, `level ${level}`);
    }
    // The cap set for 19 must not stay on: level 1 uses its own, smaller tables again.
    assert.deepEqual(changing.compress(raw, 1).payload, fresh);
  });

  it('output does not alias the scratch buffer: an earlier payload survives later calls', () => {
    const a = compressor.compress(compressibleBytes(100000));
    const copy = Buffer.from(a.payload);
    compressor.compress(Buffer.alloc(100000, 9));
    assert.deepEqual(a.payload, copy);
  });

  describe('decode refuses what does not decode to exactly rawLength bytes', () => {
    const raw = compressibleBytes(100000);
    const zst = compressor.compress(raw).payload;
    /** The message says what was wrong; a failure inside zstd is kept as the cause. */
    const refuses = (codec: 'raw' | 'zstd', payload: Buffer, rawLength: number, message?: RegExp, zstdCause = false): void => {
      assert.throws(
        () => decompressor.decode(codec, payload, rawLength),
        (err: unknown) => {
          assert.ok(err instanceof PayloadDecodeError, String(err));
          assert.equal(err.name, 'PayloadDecodeError');
          if (message !== undefined) assert.match(err.message, message);
          assert.equal(err.cause instanceof Error, zstdCause, 'cause');
          return true;
        },
      );
    };

    it('a truncated zstd frame', () => refuses('zstd', zst.subarray(0, zst.length - 1), raw.length, /^zstd payload is not a zstd frame: ./, true));
    it('bytes after the zstd frame', () => refuses('zstd', Buffer.concat([zst, Buffer.from([0])]), raw.length, /^zstd payload holds 1 bytes after its zstd frame$/));
    it('two zstd frames', () => refuses('zstd', Buffer.concat([zst, zst]), 2 * raw.length, new RegExp(`^zstd payload holds ${zst.length} bytes after`)));
    it('more output than rawLength (no bigger buffer is made)', () => refuses('zstd', zst, raw.length - 1, /^zstd payload does not decode to 99999 bytes: ./, true));
    it('less output than rawLength', () => refuses('zstd', zst, raw.length + 1, /^zstd payload decodes to 100000 bytes, header says 100001$/));
    it('garbage', () => refuses('zstd', seededBytes(500, 5), raw.length, /not a zstd frame/, true));
    it('a flipped bit in the compressed data', () => {
      let failures = 0;
      for (let i = 0; i < zst.length * 8; i += 13) {
        const bad = Buffer.from(zst);
        bad[i >> 3] = (bad[i >> 3] as number) ^ (1 << (i & 7));
        try {
          const out = decompressor.decode('zstd', bad, raw.length);
          // zstd has no checksum here: a flip can decode to other bytes, which the frame's SHA-256 then catches.
          assert.equal(out.length, raw.length);
        } catch (err) {
          assert.ok(err instanceof PayloadDecodeError);
          failures++;
        }
      }
      assert.ok(failures > 0);
    });
    it('a raw payload of the wrong length', () => refuses('raw', raw, raw.length - 1, /^raw payload is 100000 bytes, header says 99999$/));
  });

  it('validates the level', () => {
    assert.equal(validateZstdLevel(3), 3);
    assert.equal(validateZstdLevel(19), 19);
    assert.throws(() => validateZstdLevel(23), RangeError);
    assert.throws(() => validateZstdLevel(1.5), RangeError);
    assert.throws(() => new ChunkCompressor(100), RangeError);
    // 0 is "no compression"; every level zstd has is allowed, from its fastest (negative) to its strongest.
    assert.equal(validateZstdLevel(0), 0);
    assert.equal(validateZstdLevel(binding.minCLevel()), binding.minCLevel());
    assert.equal(validateZstdLevel(binding.maxCLevel()), binding.maxCLevel());
    assert.throws(() => validateZstdLevel(binding.minCLevel() - 1), new RegExp(`zstd level must be an integer in ${binding.minCLevel()}\\.\\.${binding.maxCLevel()}, got ${binding.minCLevel() - 1}`));
    assert.throws(() => validateZstdLevel(binding.maxCLevel() + 1), RangeError);
  });
});
