// Sealed frames on the wire (core/wire/frame-seal.ts, codec ids 2 and 3): they round-trip with the key, encode to the
// same bytes every time (a resumed upload regenerates them), verify on a server that holds no key, refuse any flipped
// bit, tell a wrong key apart, never carry the plaintext, and resume from a prefix hashed the way they are sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { deriveKeys } from '../../core/crypto/keys.ts';
import { SealError } from '../../core/crypto/errors.ts';
import { crc32c } from '@node-rs/crc32';
import { sha256 } from '../../core/wire/chain.ts';
import { FrameError } from '../../core/wire/frame-error.ts';
import { FRAME_HEADER_SIZE, parseFrameHeader } from '../../core/wire/frame.ts';
import { FrameDecoder } from '../../core/wire/frame-decoder.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import { hashRawPrefix } from '../../core/wire/raw-prefix.ts';
import { ChunkCompressor } from '../../core/wire/codec.ts';
import { CompressionPool } from '../../core/wire/compression-pool.ts';
import { SEALING_PREFIX_BYTES, sealFrame, sealingOfStart, streamIdentity, streamSealing, type FrameSealing } from '../../core/wire/frame-seal.ts';
import { restoreRefusal, sealingOfKey } from '../../core/sealing.ts';
import { KiB, encode, mixedBytes, parseAll, randomSizes, seededBytes, slices } from './frame-helpers.ts';

const CHUNK = 64 * KiB;
const sealing = (seed: number, parent: string | null = null): FrameSealing => ({
  key: deriveKeys(Buffer.alloc(32, seed)),
  stream: streamIdentity('7d0c2a52-9b3e-4b7f-8f7e-2f4c1d6a9e01', parent),
});
const KEY = sealing(1);

/** Runs `wire` through a FrameDecoder; returns what came out downstream and the error, if any. */
async function decodeWith(wire: Buffer, opts: ConstructorParameters<typeof FrameDecoder>[0]): Promise<{ out: Buffer; err: unknown }> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  const err = await pipeline(Readable.from(slices(wire, [10_000])), new FrameDecoder(opts), sink).then(() => null, (e: unknown) => e);
  return { out: Buffer.concat(parts), err };
}

/** The data frames of `wire`, header and payload. */
function dataFrames(wire: Buffer): { header: ReturnType<typeof parseFrameHeader>; at: number; payload: Buffer }[] {
  const out = [];
  for (let at = 0; at < wire.length; ) {
    const header = parseFrameHeader(wire.subarray(at));
    const n = header.kind === 'data' ? header.payloadLength : 0;
    if (header.kind === 'data') out.push({ header, at, payload: wire.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + n) });
    at += FRAME_HEADER_SIZE + n;
  }
  return out;
}

test('a sealed stream round-trips with its key; its frames are codec 2 (sealed raw) and 3 (sealed zstd), hashed as sent', async () => {
  const raw = mixedBytes(5 * CHUNK + 1234, CHUNK);
  const { wire } = await encode(raw, { chunkSize: CHUNK, seal: KEY });
  const frames = dataFrames(wire);
  assert.equal(frames.length, 6);
  assert.deepEqual(
    frames.map((f) => wire[f.at + 5]),
    frames.map((f) => (f.header.kind === 'data' && f.header.codec === 'zstd' ? 3 : 2)),
  );
  assert.ok(frames.some((f) => wire[f.at + 5] === 2) && frames.some((f) => wire[f.at + 5] === 3), 'both kinds of sealed frame');
  for (const f of frames) {
    assert.ok(f.header.kind === 'data' && f.header.sealed);
    // The header's hash is the sealed payload's, not the raw chunk's: a server can check it, and learns nothing.
    assert.ok(f.header.rawHash.equals(sha256(f.payload)));
  }
  const { out, err } = await decodeWith(wire, { chunkSize: CHUNK, sealing: KEY });
  assert.equal(err, null);
  assert.ok(out.equals(raw));
});

test('two encodings of the same input seal to the same bytes, whatever the data, chunk size and slicing (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 4 * CHUNK + 5000 }),
      fc.integer({ min: 1, max: 1000 }),
      fc.constantFrom(CHUNK, 80 * KiB, 128 * KiB),
      fc.constantFrom(0, 1, 3),
      fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 5 }),
      async (length, seed, chunkSize, level, sliceSizes) => {
        const raw = mixedBytes(length, 20 * KiB, seed);
        const a = await encode(raw, { chunkSize, level, seal: KEY });
        const b = await encode(raw, { chunkSize, level, seal: KEY }, sliceSizes);
        assert.ok(a.wire.equals(b.wire));
        // And the parser on the server, with no key, verifies it to the chain the encoder made.
        const verified = parseAll(a.wire, [4096]);
        assert.ok(verified.at(-1)!.chain.equals(a.frames.at(-1)!.chain));
      },
    ),
    { numRuns: 25 },
  );
});

test('compressed on worker threads or on this one, a sealed stream is the same bytes (a resume re-seals on this one)', async (t) => {
  const pool = new CompressionPool(2);
  t.after(() => pool.close());
  const raw = mixedBytes(6 * CHUNK + 4321, 30 * KiB, 11);
  for (const level of [1, 3]) {
    const here = await encode(raw, { chunkSize: CHUNK, level, seal: KEY });
    const there = await encode(raw, { chunkSize: CHUNK, level, seal: KEY, pool });
    assert.ok(here.wire.equals(there.wire), `level ${level}`);
  }
});

test('a server with no key verifies a sealed stream: every data frame checked and chained, and none decoded', async () => {
  const raw = mixedBytes(3 * CHUNK + 99, CHUNK);
  const { wire, frames } = await encode(raw, { chunkSize: CHUNK, seal: KEY });
  // keepRaw as the server's spool parses: a sealed frame has no raw bytes to give without the key.
  const verified = parseAll(wire, randomSizes(50, 9000), { keepRaw: true });
  assert.equal(verified.length, 5);
  assert.deepEqual(verified.map((f) => f.sealed), [true, true, true, true, false]);
  assert.ok(verified.every((f) => f.raw === undefined));
  assert.ok(verified.at(-1)!.chain.equals(frames.at(-1)!.chain));
});

test('a flipped bit anywhere in a sealed stream is refused by the keyless parser (property over positions)', async () => {
  const raw = mixedBytes(2 * CHUNK + 500, CHUNK);
  const { wire } = await encode(raw, { chunkSize: CHUNK, seal: KEY });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: wire.length - 1 }), fc.integer({ min: 0, max: 7 }), (at, bit) => {
      const bad = Buffer.from(wire);
      bad[at]! ^= 1 << bit;
      assert.throws(() => parseAll(bad, [7000]), (err: unknown) => err instanceof FrameError);
    }),
    { numRuns: 300 },
  );
  // In a payload (past every header check) it is the payload's hash that refuses it: frame_corrupt.
  const f = dataFrames(wire)[1]!;
  const bad = Buffer.from(wire);
  bad[f.at + FRAME_HEADER_SIZE + 30]! ^= 0x10;
  assert.throws(() => parseAll(bad, [7000]), (err: unknown) => err instanceof FrameError && err.code === 'frame_corrupt' && /sealed/.test(err.message));
});

test('a sealed frame whose hash was forged to match changed bytes still fails to open: frame_corrupt, nothing out', async () => {
  const raw = mixedBytes(2 * CHUNK, CHUNK);
  const { wire } = await encode(raw, { chunkSize: CHUNK, level: 0, seal: KEY });
  // A hostile store rewrites frame 0's payload and its header hash together (and the chain in the end frame would
  // then differ, but the decoder refuses at frame 0 already): only the GCM tag can tell.
  const f = dataFrames(wire)[0]!;
  const bad = Buffer.from(wire);
  bad[f.at + FRAME_HEADER_SIZE + 100]! ^= 1;
  sha256(bad.subarray(f.at + FRAME_HEADER_SIZE, f.at + FRAME_HEADER_SIZE + f.payload.length)).copy(bad, f.at + 36);
  bad.writeUInt32BE(crc32c(bad.subarray(f.at, f.at + 68)), f.at + 68);
  const { out, err } = await decodeWith(bad, { chunkSize: CHUNK, sealing: KEY });
  assert.ok(err instanceof SealError && err.code === 'frame_corrupt', String(err));
  assert.equal(out.length, 0);
});

test('opening with another key is wrong_key, at frame 0, before anything goes downstream', async () => {
  const raw = mixedBytes(3 * CHUNK, CHUNK);
  const { wire } = await encode(raw, { chunkSize: CHUNK, seal: KEY });
  const { out, err } = await decodeWith(wire, { chunkSize: CHUNK, sealing: sealing(2) });
  assert.ok(err instanceof SealError, String(err));
  assert.equal(err.code, 'wrong_key');
  assert.equal(err.details.frameIndex, 0);
  assert.match(err.message, /use the key file this archive was written with/);
  assert.equal(out.length, 0);
});

test('opened as another stream (another parent), a sealed frame does not open: frame_corrupt', async () => {
  const { wire } = await encode(mixedBytes(CHUNK, CHUNK), { chunkSize: CHUNK, seal: KEY });
  const { out, err } = await decodeWith(wire, { chunkSize: CHUNK, sealing: sealing(1, 'another-parent') });
  assert.ok(err instanceof SealError && err.code === 'frame_corrupt', String(err));
  assert.equal(out.length, 0);
});

test('with a key configured, a plain frame is refused (not_sealed): whoever stores the archive could forge one', async () => {
  const raw = mixedBytes(2 * CHUNK, CHUNK);
  const { wire } = await encode(raw, { chunkSize: CHUNK });
  const { out, err } = await decodeWith(wire, { chunkSize: CHUNK, sealing: KEY });
  assert.ok(err instanceof SealError, String(err));
  assert.equal(err.code, 'not_sealed');
  assert.match(err.message, /run the restore without encrypt:/);
  assert.equal(out.length, 0);
  // A sealed frame 0 and then a plain frame 1 (same index and offset, hash right): refused at frame 1.
  const sealed = await encode(raw, { chunkSize: CHUNK, seal: KEY });
  const plain = await encode(raw, { chunkSize: CHUNK });
  const mixed = Buffer.concat([sealed.wire.subarray(0, sealed.frames[1]!.wireOffset), plain.wire.subarray(plain.frames[1]!.wireOffset)]);
  const spliced = await decodeWith(mixed, { chunkSize: CHUNK, sealing: KEY });
  assert.ok(spliced.err instanceof SealError && spliced.err.code === 'not_sealed' && spliced.err.details.frameIndex === 1, String(spliced.err));
  assert.ok(spliced.out.equals(raw.subarray(0, CHUNK)), 'only the sealed frame 0 went downstream');
});

test('a sealed stream without a key configured is refused at frame 0 with what to set, nothing downstream', async () => {
  const { wire } = await encode(mixedBytes(2 * CHUNK, CHUNK), { chunkSize: CHUNK, seal: KEY });
  const { out, err } = await decodeWith(wire, { chunkSize: CHUNK });
  assert.ok(err instanceof SealError, String(err));
  assert.equal(err.code, 'key_required');
  assert.equal(err.retryable, false);
  assert.match(err.message, /set encrypt: in the client config to the key file it was sealed with/);
  assert.equal(out.length, 0);
});

test('a marker string in the data never appears in the sealed frames, raw or compressed', async () => {
  const marker = Buffer.from('SNAPFERRY-MARKER-7f3a9c');
  // The marker between random bytes (frames that go raw) and repeated (frames zstd shrinks).
  const raw = Buffer.concat([seededBytes(CHUNK, 5), marker, seededBytes(CHUNK, 6), Buffer.concat(Array(4000).fill(marker)), seededBytes(1000, 7)]);
  for (const level of [0, 3]) {
    const plain = await encode(raw, { chunkSize: CHUNK, level });
    assert.ok(plain.wire.includes(marker), 'the marker is visible without sealing: the check can fail');
    const sealed = await encode(raw, { chunkSize: CHUNK, level, seal: KEY });
    assert.ok(!sealed.wire.includes(marker), `level ${level}`);
    // Nor its compressed form: the zstd payload of the plain stream is not in the sealed one either.
    for (const f of dataFrames(plain.wire)) assert.ok(!sealed.wire.includes(f.payload.subarray(0, 32)));
  }
});

test('resume: a prefix hashed as it is sent (compressed and sealed) gives the chain, and the rest framed from it is the same tail', async () => {
  const raw = mixedBytes(5 * CHUNK + 777, CHUNK);
  const full = await encode(raw, { chunkSize: CHUNK, level: 3, seal: KEY });
  const compressor = new ChunkCompressor(3);
  const frameHash = (chunk: Buffer, index: number) => sealFrame(KEY, index, compressor.compress(chunk)).rawHash;
  for (const n of [1, 3, 5]) {
    const prefix = await hashRawPrefix(Readable.from(slices(raw, [5000, 70_000])), { chunkSize: CHUNK, frames: n, frameHash });
    assert.ok(prefix.chain.equals(full.frames[n - 1]!.chain), `frame ${n}`);
    // Without frameHash the prefix's chain is the raw one: it cannot match a sealed stream's.
    const rawPrefix = await hashRawPrefix(Readable.from([raw]), { chunkSize: CHUNK, frames: n });
    assert.ok(!rawPrefix.chain.equals(prefix.chain));
    const wireOffset = full.frames[n]!.wireOffset;
    const encoder = new FrameEncoder({ chunkSize: CHUNK, level: 3, seal: KEY, start: { ...prefix, wireOffset } });
    const parts: Buffer[] = [];
    await pipeline(Readable.from(prefix.rest), encoder, new Writable({ write: (c: Buffer, _e, cb) => (parts.push(c), cb()) }));
    assert.ok(Buffer.concat(parts).equals(full.wire.subarray(wireOffset)), `resumed at frame ${n}`);
  }
});

test('a sealed header is bounded by its seal: a sealed raw frame is exactly raw + overhead, a longer one is frame_too_large', async () => {
  const { wire } = await encode(seededBytes(CHUNK, 9), { chunkSize: CHUNK, level: 0, seal: KEY });
  const f = dataFrames(wire)[0]!;
  const forged = Buffer.from(wire.subarray(f.at, f.at + FRAME_HEADER_SIZE));
  forged.writeUInt32BE(f.payload.length + 1, 16);
  forged.writeUInt32BE(crc32c(forged.subarray(0, 68)), 68);
  assert.throws(() => parseFrameHeader(forged), (err: unknown) => err instanceof FrameError && err.code === 'frame_too_large');
  assert.throws(() => new FrameParser().push(Buffer.concat([forged, Buffer.alloc(f.payload.length + 1)])), FrameError);
});

test('sealed header lengths: exactly raw + overhead for sealed raw, strictly between overhead and raw + overhead for sealed zstd', async () => {
  const { wire } = await encode(seededBytes(CHUNK, 9), { chunkSize: CHUNK, level: 0, seal: KEY });
  const base = wire.subarray(0, FRAME_HEADER_SIZE);
  const withCodec = (codec: number, payloadLength: number) => {
    const b = Buffer.from(base);
    b.writeUInt8(codec, 5);
    b.writeUInt32BE(payloadLength, 16);
    b.writeUInt32BE(crc32c(b.subarray(0, 68)), 68);
    return b;
  };
  const verdict = (b: Buffer) => {
    try {
      const h = parseFrameHeader(b);
      return h.kind === 'data' ? `${h.sealed ? 'sealed ' : ''}${h.codec}` : 'end';
    } catch (err) {
      assert.ok(err instanceof FrameError, String(err));
      return err.code;
    }
  };
  const overhead = 41;
  assert.equal(verdict(withCodec(2, CHUNK + overhead)), 'sealed raw');
  assert.equal(verdict(withCodec(2, CHUNK + overhead - 1)), 'frame_corrupt');
  assert.equal(verdict(withCodec(2, CHUNK)), 'frame_corrupt');
  assert.equal(verdict(withCodec(2, CHUNK + overhead + 1)), 'frame_too_large');
  assert.equal(verdict(withCodec(3, overhead + 1)), 'sealed zstd');
  assert.equal(verdict(withCodec(3, CHUNK + overhead - 1)), 'sealed zstd');
  assert.equal(verdict(withCodec(3, overhead)), 'frame_corrupt', 'nothing inside the seal');
  assert.equal(verdict(withCodec(3, CHUNK + overhead)), 'frame_corrupt', 'a zstd payload as long as its raw chunk');
  assert.equal(verdict(withCodec(3, 0)), 'frame_corrupt');
  assert.equal(verdict(withCodec(4, CHUNK + overhead)), 'frame_corrupt');
  // Unsealed, the seal's allowance is not given.
  assert.equal(verdict(withCodec(0, CHUNK + 1)), 'frame_too_large');
  assert.equal(verdict(withCodec(1, CHUNK - 1)), 'zstd');
});

test('how a stream is sealed, from its first bytes and no key: the key id of frame 0, or null for a plain or empty stream', async () => {
  const raw = mixedBytes(3 * CHUNK, CHUNK);
  const sealedWire = (await encode(raw, { chunkSize: CHUNK, seal: KEY })).wire;
  assert.equal(streamSealing(sealedWire.subarray(0, SEALING_PREFIX_BYTES)), KEY.key.id.toString('hex'));
  assert.equal(streamSealing((await encode(raw, { chunkSize: CHUNK, seal: sealing(2) })).wire.subarray(0, SEALING_PREFIX_BYTES)), sealing(2).key.id.toString('hex'));
  assert.equal(streamSealing((await encode(raw, { chunkSize: CHUNK })).wire.subarray(0, SEALING_PREFIX_BYTES)), null);
  // An empty stream is its end frame alone, shorter than the prefix: nothing in it is sealed.
  const empty = (await encode(Buffer.alloc(0), { chunkSize: CHUNK })).wire;
  assert.equal(empty.length, FRAME_HEADER_SIZE);
  assert.equal(streamSealing(empty), null);
  // A flipped bit in the seal header's key id is damage, never taken for another key.
  const damaged = Buffer.from(sealedWire.subarray(0, SEALING_PREFIX_BYTES));
  damaged[FRAME_HEADER_SIZE + 3]! ^= 1;
  assert.throws(() => streamSealing(damaged), (err: unknown) => err instanceof SealError && err.code === 'frame_corrupt');
});

test("a restore's look at a stream's first bytes refuses it as the receive does at frame 0: same code, words and details", async () => {
  const raw = mixedBytes(2 * CHUNK, CHUNK);
  const streams = { plain: (await encode(raw, { chunkSize: CHUNK })).wire, sealed: (await encode(raw, { chunkSize: CHUNK, seal: KEY })).wire };
  const configs = { none: undefined, key: KEY, other: sealing(2) };
  for (const [streamName, wire] of Object.entries(streams)) {
    for (const [configName, config] of Object.entries(configs)) {
      const received = await decodeWith(wire, { chunkSize: CHUNK, ...(config ? { sealing: config } : {}) });
      const found = sealingOfStart(wire.subarray(0, SEALING_PREFIX_BYTES));
      assert.equal(found, streamSealing(wire.subarray(0, SEALING_PREFIX_BYTES)), `${streamName}: what the archive lists as sealedBy`);
      const early = restoreRefusal(found!, sealingOfKey(config?.key));
      const what = `${streamName} stream, ${configName} key`;
      if (received.err === null) {
        assert.equal(early, null, what);
        continue;
      }
      assert.ok(received.err instanceof SealError && early instanceof SealError, `${what}: ${String(received.err)}`);
      assert.deepEqual([early.code, early.message, early.details, early.retryable], [received.err.code, received.err.message, received.err.details, received.err.retryable], what);
    }
  }
});

test("a stream's first bytes tell its sealing once they hold frame 0's header (plain) or its seal header (sealed), and only then", async () => {
  const raw = mixedBytes(2 * CHUNK, CHUNK);
  const plain = (await encode(raw, { chunkSize: CHUNK })).wire;
  const sealed = (await encode(raw, { chunkSize: CHUNK, seal: KEY })).wire;
  const keyId = KEY.key.id.toString('hex');
  assert.equal(sealingOfStart(plain.subarray(0, FRAME_HEADER_SIZE - 1)), undefined);
  assert.equal(sealingOfStart(plain.subarray(0, FRAME_HEADER_SIZE)), null, 'a plain header says it all');
  assert.equal(sealingOfStart(sealed.subarray(0, FRAME_HEADER_SIZE)), undefined, 'a sealed header without its seal header');
  assert.equal(sealingOfStart(sealed.subarray(0, SEALING_PREFIX_BYTES - 1)), undefined);
  assert.equal(sealingOfStart(sealed.subarray(0, SEALING_PREFIX_BYTES)), keyId);
  assert.equal(sealingOfStart(sealed), keyId, 'more bytes change nothing');
  // Never from damage (the parser says that, and a restore fetches the frame again), nor from an empty stream.
  const flipped = (wire: Buffer, at: number) => Buffer.from(wire.subarray(0, SEALING_PREFIX_BYTES)).fill(wire[at]! ^ 1, at, at + 1);
  assert.equal(sealingOfStart(flipped(sealed, 10)), undefined, 'a damaged frame header');
  assert.equal(sealingOfStart(flipped(sealed, FRAME_HEADER_SIZE + 3)), undefined, "a damaged key id (the seal header's CRC)");
  const empty = (await encode(Buffer.alloc(0), { chunkSize: CHUNK, seal: KEY })).wire;
  assert.equal(parseFrameHeader(empty).kind, 'end');
  assert.equal(sealingOfStart(empty), undefined, 'an end frame first: nothing to open');
});
