/**
 * The snapferry frame: how one raw chunk of a `btrfs send` stream travels, and the end frame that seals a stream.
 *
 * A framed stream is: data frame 0, 1, ..., N-1, then one end frame, then nothing. Every frame starts with a fixed
 * 72-byte header, big-endian (network order):
 *
 * | offset | size | field          | data frame                                   | end frame                 |
 * |--------|------|----------------|----------------------------------------------|---------------------------|
 * | 0      | 4    | magic          | "SFR1"                                       | "SFR1"                    |
 * | 4      | 1    | kind           | 1                                            | 2                         |
 * | 5      | 1    | codec          | 0 raw, 1 zstd, 2 sealed raw, 3 sealed zstd   | 0                         |
 * | 6      | 2    | reserved       | 0                                            | 0                         |
 * | 8      | 4    | chunkSize      | the transfer's chunk size                    | same                      |
 * | 12     | 4    | rawLength      | 1..chunkSize                                 | 0                         |
 * | 16     | 4    | payloadLength  | raw: = rawLength; zstd: 1..rawLength-1;      | 0                         |
 * |        |      |                | sealed: the same + SEAL_OVERHEAD             |                           |
 * | 20     | 8    | index          | frame index i (0-based)                      | N, the data frame count   |
 * | 28     | 8    | rawOffset      | i * chunkSize                                | total raw length          |
 * | 36     | 32   | hash           | SHA-256 of the raw chunk; sealed: of the     | chain c_N (see chain.ts)  |
 * |        |      |                | sealed payload, as it travels                |                           |
 * | 68     | 4    | headerCrc      | CRC32C of bytes 0..67                        | same                      |
 *
 * then `payloadLength` payload bytes (none for the end frame).
 *
 * Why these fields: the CRC is checked before any length is trusted, so a flipped bit in a header never makes us
 * wait for or allocate a bogus length. `payloadLength <= rawLength <= chunkSize <= MAX_CHUNK_SIZE` always holds (a
 * sealed payload: `<= rawLength + SEAL_OVERHEAD`), so the largest allocation a header can cause is bounded by the
 * transfer, not by the header. The chunk size is in every header so a stream describes itself (a decoder not told the chunk size learns it from the first frame and
 * holds every later frame to it). The index and raw offset make a lost, repeated or reordered frame fail at once,
 * not only at the end frame's chain. Every data frame but the last has rawLength = chunkSize; an empty raw stream
 * is just the end frame with N = 0, total 0 and chain c_0.
 *
 * A sealed frame (client-side encryption, frame-seal.ts) carries its raw or zstd payload sealed with AES-256-GCM
 * (core/crypto/seal.ts), SEAL_OVERHEAD bytes longer. Its hash is the SHA-256 of the sealed payload, not of the raw
 * chunk: a server verifies, chains and stores it with no key (and a plaintext hash would let it confirm guessed
 * content), and only a key holder gets at the raw chunk, whose integrity the GCM tag then vouches for.
 */
import { crc32c } from '@node-rs/crc32';
import { HASH_SIZE, sha256 } from './chain.ts';
import { ChunkCompressor } from './codec.ts';
import type { FrameCodec } from './codec.ts';
import { FrameError } from './frame-error.ts';
import { SEAL_OVERHEAD } from '../crypto/seal.ts';
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, validateChunkSize } from './chunk-size.ts';

export { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, validateChunkSize } from './chunk-size.ts';

export const FRAME_MAGIC: Buffer = Buffer.from('SFR1', 'latin1');
export const FRAME_HEADER_SIZE = 72;
/** The most a frame adds to the bytes it carries: its header, and the seal's when sealed. */
export const FRAME_FRAMING_MAX = FRAME_HEADER_SIZE + SEAL_OVERHEAD;

const KIND_DATA = 1;
const KIND_END = 2;
const CODEC_IDS: Record<FrameCodec, number> = { raw: 0, zstd: 1 };
/** A sealed frame's codec id: its payload's codec's, plus this. */
const SEALED_CODEC = 2;
const CRC_OFFSET = 68;

export interface DataFrameHeader {
  kind: 'data';
  /** The codec of the payload (inside the seal, for a sealed frame). */
  codec: FrameCodec;
  /** The payload is sealed (codec ids 2, 3): payloadLength counts the seal, rawHash is the sealed payload's hash. */
  sealed: boolean;
  chunkSize: number;
  rawLength: number;
  payloadLength: number;
  index: number;
  rawOffset: number;
  rawHash: Buffer;
}

export interface EndFrameHeader {
  kind: 'end';
  chunkSize: number;
  /** N: how many data frames precede the end frame. */
  frameCount: number;
  totalRaw: number;
  chain: Buffer;
}

export type FrameHeader = DataFrameHeader | EndFrameHeader;

/** Where a frame sits, for error details: the index expected there and its first byte on the wire. */
export interface FramePosition {
  frameIndex: number;
  wireOffset: number;
}

export function encodeFrameHeader(h: FrameHeader): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_SIZE);
  FRAME_MAGIC.copy(b, 0);
  b.writeUInt8(h.kind === 'data' ? KIND_DATA : KIND_END, 4);
  b.writeUInt8(h.kind === 'data' ? CODEC_IDS[h.codec] + (h.sealed ? SEALED_CODEC : 0) : 0, 5);
  b.writeUInt32BE(h.chunkSize, 8);
  b.writeUInt32BE(h.kind === 'data' ? h.rawLength : 0, 12);
  b.writeUInt32BE(h.kind === 'data' ? h.payloadLength : 0, 16);
  b.writeBigUInt64BE(BigInt(h.kind === 'data' ? h.index : h.frameCount), 20);
  b.writeBigUInt64BE(BigInt(h.kind === 'data' ? h.rawOffset : h.totalRaw), 28);
  const hash = h.kind === 'data' ? h.rawHash : h.chain;
  if (hash.length !== HASH_SIZE) throw new RangeError(`frame hash must be ${HASH_SIZE} bytes, got ${hash.length}`);
  hash.copy(b, 36);
  b.writeUInt32BE(crc32c(b.subarray(0, CRC_OFFSET)), CRC_OFFSET);
  return b;
}

/**
 * Parses and checks one header: magic, CRC (before any other field is believed), kind, codec, reserved bits, and
 * the bounds and arithmetic a header must satisfy on its own. Sequence rules (next index, the transfer's chunk
 * size, the chain) are the parser's job. Throws FrameError.
 */
export function parseFrameHeader(buf: Uint8Array, at: FramePosition = { frameIndex: 0, wireOffset: 0 }): FrameHeader {
  const fail = (code: FrameError['code'], msg: string, extra: Record<string, unknown> = {}): never => {
    throw new FrameError(code, `frame ${at.frameIndex} at wire offset ${at.wireOffset}: ${msg}`, { ...at, ...extra });
  };
  if (buf.length < FRAME_HEADER_SIZE) fail('stream_truncated', `header needs ${FRAME_HEADER_SIZE} bytes`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, FRAME_HEADER_SIZE);
  if (!b.subarray(0, 4).equals(FRAME_MAGIC)) fail('frame_corrupt', 'bad magic, not a snapferry frame');
  const crc = b.readUInt32BE(CRC_OFFSET);
  const computed = crc32c(b.subarray(0, CRC_OFFSET));
  if (crc !== computed) fail('frame_corrupt', 'header CRC32C mismatch', { headerCrc: crc, computedCrc: computed });

  const kind = b.readUInt8(4);
  const codecId = b.readUInt8(5);
  const chunkSize = b.readUInt32BE(8);
  const rawLength = b.readUInt32BE(12);
  const payloadLength = b.readUInt32BE(16);
  const index = readU53(b, 20, fail);
  const rawOffset = readU53(b, 28, fail);
  const hash = Buffer.from(b.subarray(36, 36 + HASH_SIZE));
  const fields = { kind, codecId, chunkSize, rawLength, payloadLength, index, rawOffset };

  if (b.readUInt16BE(6) !== 0) fail('frame_corrupt', 'reserved header bits are set', fields);
  if (chunkSize > MAX_CHUNK_SIZE) fail('frame_too_large', `chunk size ${chunkSize} exceeds ${MAX_CHUNK_SIZE}`, fields);
  if (chunkSize < MIN_CHUNK_SIZE) fail('frame_corrupt', `chunk size ${chunkSize} is below ${MIN_CHUNK_SIZE}`, fields);

  if (kind === KIND_END) {
    if (codecId !== 0 || rawLength !== 0 || payloadLength !== 0) {
      fail('frame_corrupt', 'end frame with a codec or lengths set', fields);
    }
    // Every data frame but the last is full, so N frames hold more than (N-1) full chunks and at most N.
    const ok = index === 0 ? rawOffset === 0 : rawOffset > (index - 1) * chunkSize && rawOffset <= index * chunkSize;
    if (!ok) fail('frame_corrupt', `end frame: ${index} frames cannot hold ${rawOffset} raw bytes`, fields);
    return { kind: 'end', chunkSize, frameCount: index, totalRaw: rawOffset, chain: hash };
  }
  if (kind !== KIND_DATA) fail('frame_corrupt', `unknown frame kind ${kind}`, fields);
  if (codecId > 3) fail('frame_corrupt', `unknown codec ${codecId}`);
  const codec = codecId % SEALED_CODEC === 0 ? 'raw' : 'zstd';
  const sealed = codecId >= SEALED_CODEC;
  // What the seal adds; the rules below are on the payload inside it.
  const seal = sealed ? SEAL_OVERHEAD : 0;
  if (rawLength > chunkSize) fail('frame_too_large', `raw length ${rawLength} exceeds chunk size ${chunkSize}`, fields);
  if (payloadLength > rawLength + seal) fail('frame_too_large', `payload ${payloadLength} exceeds raw ${rawLength}${sealed ? ' and its seal' : ''}`, fields);
  if (rawLength === 0) fail('frame_corrupt', 'empty data frame', fields);
  const inner = payloadLength - seal;
  if (codec === 'raw' ? inner !== rawLength : inner <= 0 || inner === rawLength) {
    fail('frame_corrupt', `${sealed ? 'sealed ' : ''}${codec} payload length ${payloadLength} does not fit raw length ${rawLength}`, fields);
  }
  if (rawOffset !== index * chunkSize) fail('frame_corrupt', `raw offset ${rawOffset} is not index * chunk size`, fields);
  return { kind: 'data', codec, sealed, chunkSize, rawLength, payloadLength, index, rawOffset, rawHash: hash };
}

function readU53(b: Buffer, offset: number, fail: (code: 'frame_too_large', msg: string) => never): number {
  const v = b.readBigUInt64BE(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail('frame_too_large', `u64 field at byte ${offset} is ${v}, beyond 2^53`);
  return Number(v);
}

export interface EncodedDataFrame {
  header: Buffer;
  /** Written right after the header; for a raw frame this is the caller's chunk itself, not a copy. */
  payload: Buffer;
  rawHash: Buffer;
  codec: FrameCodec;
}

/**
 * Frames one raw chunk (1..chunkSize bytes) as data frame `index`. Pass the stream's `compressor` to reuse one
 * zstd context for all frames; `level` (default: the compressor's, or 3) applies to this frame.
 */
export function encodeDataFrame(
  raw: Buffer,
  opts: { chunkSize: number; index: number; compressor?: ChunkCompressor; level?: number },
): EncodedDataFrame {
  checkDataFrame(raw.length, opts);
  const compressor = opts.compressor ?? new ChunkCompressor(opts.level);
  const rawHash = sha256(raw);
  const { codec, payload } = compressor.compress(raw, opts.level ?? compressor.level);
  return { header: dataFrameHeader(raw.length, { codec, payload, rawHash }, opts), payload, rawHash, codec };
}

/**
 * The header of data frame `index`, for a chunk hashed and compressed elsewhere (a compression worker), and sealed
 * (frame-seal.ts: then `rawHash` is the sealed payload's hash).
 */
export function dataFrameHeader(
  rawLength: number,
  parts: { codec: FrameCodec; payload: Buffer; rawHash: Buffer; sealed?: boolean },
  opts: { chunkSize: number; index: number },
): Buffer {
  checkDataFrame(rawLength, opts);
  const { chunkSize, index } = opts;
  return encodeFrameHeader({
    kind: 'data',
    codec: parts.codec,
    sealed: parts.sealed ?? false,
    chunkSize,
    rawLength,
    payloadLength: parts.payload.length,
    index,
    rawOffset: index * chunkSize,
    rawHash: parts.rawHash,
  });
}

function checkDataFrame(rawLength: number, opts: { chunkSize: number; index: number }): void {
  const { chunkSize, index } = opts;
  validateChunkSize(chunkSize);
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`frame index must be >= 0, got ${index}`);
  if (rawLength === 0 || rawLength > chunkSize) {
    throw new RangeError(`a data frame holds 1..${chunkSize} raw bytes, got ${rawLength}`);
  }
}

export function encodeEndFrame(end: { chunkSize: number; frameCount: number; totalRaw: number; chain: Buffer }): Buffer {
  validateChunkSize(end.chunkSize);
  return encodeFrameHeader({ kind: 'end', ...end });
}
