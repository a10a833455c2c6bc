import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import { CHAIN_ZERO, sha256 } from '../../core/wire/chain.ts';
import { ChunkCompressor } from '../../core/wire/codec.ts';
import {
  DEFAULT_CHUNK_SIZE,
  FRAME_HEADER_SIZE,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  encodeDataFrame,
  encodeEndFrame,
  encodeFrameHeader,
  parseFrameHeader,
  validateChunkSize,
} from '../../core/wire/frame.ts';
import type { DataFrameHeader } from '../../core/wire/frame.ts';
import { FrameError } from '../../core/wire/frame-error.ts';
import type { FrameErrorCode } from '../../core/wire/frame-error.ts';
import { compressibleBytes, seededBytes } from './frame-helpers.ts';

const CHUNK = 64 * 1024;
const dataHeader: DataFrameHeader = {
  kind: 'data',
  codec: 'zstd',
  sealed: false,
  chunkSize: CHUNK,
  rawLength: CHUNK,
  payloadLength: 1000,
  index: 3,
  rawOffset: 3 * CHUNK,
  rawHash: sha256(Buffer.from('x')),
};

/** Sets a field and recomputes the CRC: a header a buggy or hostile sender could really produce. */
function forge(header: Buffer, edit: (b: Buffer) => void): Buffer {
  const b = Buffer.from(header);
  edit(b);
  b.writeUInt32BE(crc32c(b.subarray(0, 68)), 68);
  return b;
}

function rejects(buf: Buffer, code: FrameErrorCode, message?: RegExp): void {
  assert.throws(
    () => parseFrameHeader(buf, { frameIndex: 3, wireOffset: 12345 }),
    (err: unknown) => {
      assert.ok(err instanceof FrameError, String(err));
      assert.equal(err.code, code, err.message);
      assert.match(err.message, /^frame 3 at wire offset 12345: /);
      if (message !== undefined) assert.match(err.message, message);
      assert.equal(err.details.frameIndex, 3);
      assert.equal(err.details.wireOffset, 12345);
      return true;
    },
  );
}

describe('frame header', () => {
  it('is 72 bytes, starts with SFR1, and round-trips a data header', () => {
    const b = encodeFrameHeader(dataHeader);
    assert.equal(b.length, FRAME_HEADER_SIZE);
    assert.equal(b.subarray(0, 4).toString('latin1'), 'SFR1');
    assert.equal(b.readUInt32BE(12), CHUNK, 'big-endian raw length at byte 12');
    assert.deepEqual(parseFrameHeader(b), dataHeader);
  });

  it('round-trips an end header, including the empty stream', () => {
    const chain = sha256(Buffer.from('c'));
    const end = { kind: 'end' as const, chunkSize: CHUNK, frameCount: 3, totalRaw: 2 * CHUNK + 1, chain };
    assert.deepEqual(parseFrameHeader(encodeFrameHeader(end)), end);
    const empty = { kind: 'end' as const, chunkSize: CHUNK, frameCount: 0, totalRaw: 0, chain: CHAIN_ZERO };
    assert.deepEqual(parseFrameHeader(encodeEndFrame(empty)), empty);
  });

  it('round-trips offsets beyond 32 bits', () => {
    const index = 2 ** 20 + 3;
    const h = { ...dataHeader, chunkSize: MAX_CHUNK_SIZE, index, rawOffset: index * MAX_CHUNK_SIZE };
    assert.deepEqual(parseFrameHeader(encodeFrameHeader(h)), h);
  });

  it('catches every single flipped bit, in data and end headers', () => {
    const end = encodeEndFrame({ chunkSize: CHUNK, frameCount: 1, totalRaw: 5, chain: sha256(Buffer.from('y')) });
    for (const good of [encodeFrameHeader(dataHeader), end]) {
      for (let bit = 0; bit < FRAME_HEADER_SIZE * 8; bit++) {
        const bad = Buffer.from(good);
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        rejects(bad, 'frame_corrupt');
      }
    }
  });

  it('refuses a short buffer', () => rejects(encodeFrameHeader(dataHeader).subarray(0, 71), 'stream_truncated', /header needs 72 bytes/));

  it('names a CRC mismatch as such', () => {
    const bad = encodeFrameHeader(dataHeader);
    bad[70] = (bad[70] as number) ^ 1;
    rejects(bad, 'frame_corrupt', /header CRC32C mismatch/);
  });

  describe('refuses CRC-valid headers that break the rules', () => {
    const good = encodeFrameHeader(dataHeader);
    const cases: [string, (b: Buffer) => void, FrameErrorCode, RegExp][] = [
      ['a wrong magic', (b) => b.write('SFR2', 0, 'latin1'), 'frame_corrupt', /bad magic, not a snapferry frame/],
      ['a raw length of 4 GiB', (b) => b.writeUInt32BE(0xffffffff, 12), 'frame_too_large', /raw length 4294967295 exceeds chunk size 65536/],
      ['a raw length over the chunk size', (b) => b.writeUInt32BE(CHUNK + 1, 12), 'frame_too_large', /raw length 65537 exceeds/],
      ['a payload longer than the raw chunk', (b) => b.writeUInt32BE(CHUNK + 1, 16), 'frame_too_large', /payload 65537 exceeds raw 65536/],
      ['a chunk size over 16 MiB', (b) => b.writeUInt32BE(MAX_CHUNK_SIZE + 1, 8), 'frame_too_large', /chunk size 16777217 exceeds 16777216/],
      ['a chunk size under 64 KiB', (b) => b.writeUInt32BE(MIN_CHUNK_SIZE - 1, 8), 'frame_corrupt', /chunk size 65535 is below 65536/],
      ['an index beyond 2^53', (b) => b.writeBigUInt64BE(2n ** 60n, 20), 'frame_too_large', /u64 field at byte 20 is 1152921504606846976, beyond 2\^53/],
      ['a raw offset beyond 2^53', (b) => b.writeBigUInt64BE(2n ** 63n, 28), 'frame_too_large', /u64 field at byte 28/],
      // 2^53 - 1 is still a number: refused for not being index * chunk size, not for its size.
      ['a raw offset of 2^53 - 1', (b) => b.writeBigUInt64BE(2n ** 53n - 1n, 28), 'frame_corrupt', /raw offset 9007199254740991 is not index \* chunk size/],
      ['reserved bits', (b) => b.writeUInt16BE(1, 6), 'frame_corrupt', /reserved header bits are set/],
      ['an unknown kind', (b) => b.writeUInt8(3, 4), 'frame_corrupt', /unknown frame kind 3/],
      ['an unknown codec', (b) => b.writeUInt8(4, 5), 'frame_corrupt', /unknown codec 4/],
      ['an empty data frame', (b) => (b.writeUInt32BE(0, 12), b.writeUInt32BE(0, 16)), 'frame_corrupt', /./],
      ['an empty raw data frame', (b) => (b.writeUInt8(0, 5), b.writeUInt32BE(0, 12), b.writeUInt32BE(0, 16)), 'frame_corrupt', /empty data frame/],
      ['a zstd payload as long as the raw chunk', (b) => b.writeUInt32BE(CHUNK, 16), 'frame_corrupt', /zstd payload length 65536 does not fit raw length 65536/],
      ['an empty zstd payload', (b) => b.writeUInt32BE(0, 16), 'frame_corrupt', /zstd payload length 0 does not fit/],
      ['a raw payload shorter than the chunk', (b) => b.writeUInt8(0, 5), 'frame_corrupt', /raw payload length 1000 does not fit raw length 65536/],
      ['a raw offset that is not index * chunk size', (b) => b.writeBigUInt64BE(7n, 28), 'frame_corrupt', /raw offset 7 is not/],
      ['an end frame with a payload', (b) => b.writeUInt8(2, 4), 'frame_corrupt', /end frame with a codec or lengths set/],
    ];
    for (const [name, edit, code, message] of cases) it(name, () => rejects(forge(good, edit), code, message));

    it('the error names the header fields it judged', () => {
      assert.throws(
        () => parseFrameHeader(forge(good, (b) => b.writeUInt32BE(CHUNK + 1, 12))),
        (err: unknown) => err instanceof FrameError && err.details.rawLength === CHUNK + 1 && err.details.chunkSize === CHUNK && err.details.index === 3,
      );
      const bad = Buffer.from(good);
      bad[40] = (bad[40] as number) ^ 1;
      assert.throws(() => parseFrameHeader(bad), (err: unknown) => err instanceof FrameError && err.details.headerCrc === good.readUInt32BE(68) && typeof err.details.computedCrc === 'number' && err.details.frameIndex === 0 && err.details.wireOffset === 0);
    });

    const end = encodeEndFrame({ chunkSize: CHUNK, frameCount: 2, totalRaw: CHUNK + 1, chain: CHAIN_ZERO });
    it('an end frame whose total cannot fit its frame count', () => {
      rejects(forge(end, (b) => b.writeBigUInt64BE(BigInt(2 * CHUNK + 1), 28)), 'frame_corrupt');
      rejects(forge(end, (b) => b.writeBigUInt64BE(BigInt(CHUNK), 28)), 'frame_corrupt');
      rejects(forge(end, (b) => b.writeBigUInt64BE(0n, 20)), 'frame_corrupt');
    });
    it('an end frame with a codec', () => rejects(forge(end, (b) => b.writeUInt8(1, 5)), 'frame_corrupt'));
    it('an end frame with a raw length alone, or a payload length alone', () => {
      rejects(forge(end, (b) => b.writeUInt32BE(1, 12)), 'frame_corrupt', /end frame with a codec or lengths set/);
      rejects(forge(end, (b) => b.writeUInt32BE(1, 16)), 'frame_corrupt', /end frame with a codec or lengths set/);
    });
    it('an end frame whose total fills its frames exactly', () => {
      const exact = { kind: 'end' as const, chunkSize: CHUNK, frameCount: 2, totalRaw: 2 * CHUNK, chain: CHAIN_ZERO };
      assert.deepEqual(parseFrameHeader(encodeEndFrame(exact)), exact);
      rejects(forge(end, (b) => b.writeBigUInt64BE(BigInt(CHUNK), 28)), 'frame_corrupt', /end frame: 2 frames cannot hold 65536 raw bytes/);
    });
  });

  it('parses a header at the front of a larger buffer (a view, e.g. a network slice)', () => {
    const b = Buffer.concat([Buffer.alloc(5), encodeFrameHeader(dataHeader), Buffer.alloc(9)]);
    assert.deepEqual(parseFrameHeader(b.subarray(5)), dataHeader);
  });
});

describe('encodeDataFrame / encodeEndFrame', () => {
  const compressor = new ChunkCompressor();

  it('frames a compressible chunk as zstd and an incompressible one as raw', () => {
    const z = encodeDataFrame(compressibleBytes(CHUNK), { chunkSize: CHUNK, index: 0, compressor });
    assert.equal(z.codec, 'zstd');
    const zh = parseFrameHeader(z.header);
    assert.ok(zh.kind === 'data' && zh.payloadLength === z.payload.length && zh.rawLength === CHUNK);
    assert.deepEqual(z.rawHash, sha256(compressibleBytes(CHUNK)));

    const raw = seededBytes(1000, 2);
    const r = encodeDataFrame(raw, { chunkSize: CHUNK, index: 5, level: 1 });
    assert.equal(r.codec, 'raw');
    assert.equal(r.payload, raw);
    assert.deepEqual(parseFrameHeader(r.header), {
      kind: 'data', codec: 'raw', sealed: false, chunkSize: CHUNK, rawLength: 1000, payloadLength: 1000,
      index: 5, rawOffset: 5 * CHUNK, rawHash: sha256(raw),
    });
  });

  it('refuses empty and oversized chunks, bad indices and chunk sizes', () => {
    assert.throws(() => encodeDataFrame(Buffer.alloc(0), { chunkSize: CHUNK, index: 0, compressor }), /a data frame holds 1\.\.65536 raw bytes, got 0/);
    assert.throws(() => encodeDataFrame(Buffer.alloc(CHUNK + 1), { chunkSize: CHUNK, index: 0, compressor }), /got 65537/);
    assert.throws(() => encodeDataFrame(Buffer.alloc(1), { chunkSize: CHUNK, index: -1, compressor }), /frame index must be >= 0, got -1/);
    assert.throws(() => encodeDataFrame(Buffer.alloc(1), { chunkSize: CHUNK, index: 0.5, compressor }), /frame index must be >= 0, got 0\.5/);
    assert.throws(() => encodeDataFrame(Buffer.alloc(1), { chunkSize: CHUNK, index: 2 ** 53, compressor }), /frame index must be >= 0/);
    assert.throws(() => encodeEndFrame({ chunkSize: 1000, frameCount: 0, totalRaw: 0, chain: CHAIN_ZERO }), /chunk size must be an integer in 65536\.\.16777216 \(64K\.\.16M\), got 1000/);
    assert.throws(() => encodeEndFrame({ chunkSize: CHUNK, frameCount: 0, totalRaw: 0, chain: Buffer.alloc(31) }), /frame hash must be 32 bytes, got 31/);
  });

  it('the default chunk size is 4 MiB', () => assert.equal(DEFAULT_CHUNK_SIZE, 4 * 1024 * 1024));

  it('validates chunk sizes: 64 KiB..16 MiB, any integer', () => {
    assert.equal(validateChunkSize(MIN_CHUNK_SIZE), MIN_CHUNK_SIZE);
    assert.equal(validateChunkSize(MAX_CHUNK_SIZE), MAX_CHUNK_SIZE);
    assert.equal(validateChunkSize(100_000), 100_000);
    for (const bad of [MIN_CHUNK_SIZE - 1, MAX_CHUNK_SIZE + 1, 65536.5, NaN]) {
      assert.throws(() => validateChunkSize(bad), RangeError);
    }
  });
});
