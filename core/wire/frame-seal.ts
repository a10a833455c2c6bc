/**
 * The seal step of a framed stream (client-side encryption, docs/archive.md "Client-side sealing"): between
 * compression and the frame header on the way out, and between the payload's hash check and decompression on the
 * way in. The AEAD itself is core/crypto/seal.ts; here is what a frame makes of it:
 *
 * - The sealed payload replaces the payload, and its SHA-256 replaces the raw chunk's hash in the header and in the
 *   chain. A server checks and chains what it receives with the code it has, never holding a key, and a resumed
 *   client compares chains over what it sends (hashRawPrefix with `frameHash`).
 * - Sealing is bound to the frame's index and to the stream's identity (the snapshot's and its parent's UUIDs), so a
 *   frame moved to another place or stream does not open; and it is deterministic, so a regenerated stream seals to
 *   the same bytes.
 */
import { ChunkCompressor, type FrameCodec } from './codec.ts';
import { sha256 } from './chain.ts';
import { openPayload, SEAL_HEADER_SIZE, sealedKeyId, sealPayload } from '../crypto/seal.ts';
import { FRAME_HEADER_SIZE, parseFrameHeader } from './frame.ts';
import type { SealKey } from '../crypto/keys.ts';

/** The key and the stream a push seals (or a restore opens) frames under. */
export interface FrameSealing {
  readonly key: SealKey;
  /** streamIdentity(...): the same bytes on both sides. */
  readonly stream: Buffer;
}

/**
 * What names a stream in its seals: the snapshot's UUID and its parent's (none for a full send). Both sides know them
 * (the upload's metadata, the catalog's transfer), and they name exactly one send stream.
 */
export function streamIdentity(uuid: string, parentUuid: string | null): Buffer {
  return Buffer.from(`snapferry stream v1\0${uuid}\0${parentUuid ?? ''}`, 'utf8');
}

export interface SealedParts {
  codec: FrameCodec;
  sealed: true;
  /** The sealed payload, as it travels. */
  payload: Buffer;
  /** SHA-256 of the sealed payload: the hash its header carries and the chain folds in. */
  rawHash: Buffer;
}

/** Frame `index`'s payload (raw or zstd, `codec`), sealed. */
export function sealFrame(sealing: FrameSealing, index: number, parts: { codec: FrameCodec; payload: Buffer }): SealedParts {
  const payload = sealPayload(sealing.key, { index, stream: sealing.stream }, parts.payload);
  return { codec: parts.codec, sealed: true, payload, rawHash: sha256(payload) };
}

/**
 * hashRawPrefix's `frameHash` for a sealed stream compressed at `level`: the hash of what the encoder sends for a raw
 * chunk. It matches the frames sent before only if they were compressed at this same level (a fixed one).
 */
export function sealedFrameHash(sealing: FrameSealing, level: number): (raw: Buffer, index: number) => Buffer {
  const compressor = new ChunkCompressor(level);
  return (raw, index) => sealFrame(sealing, index, compressor.compress(raw)).rawHash;
}

/** The payload inside sealed frame `index`, or SealError (`wrong_key`, `frame_corrupt`). */
export function openFrame(sealing: FrameSealing, index: number, sealed: Buffer): Buffer {
  return openPayload(sealing.key, { index, stream: sealing.stream }, sealed);
}

/** The bytes of a stream's start that say how it is sealed: its first frame's header and its payload's seal header. */
export const SEALING_PREFIX_BYTES = FRAME_HEADER_SIZE + SEAL_HEADER_SIZE;

/**
 * How a stream is sealed, from its first SEALING_PREFIX_BYTES (fewer when the stream is shorter): the id (hex) of the
 * key its first data frame is sealed under, or null when that frame is plain or there is none (an empty stream holds
 * nothing to open either way). A push seals every frame of a stream or none, under one key, so frame 0 speaks for
 * all. Throws FrameError or SealError (`frame_corrupt`) for a damaged header.
 */
export function streamSealing(start: Buffer): string | null {
  const header = parseFrameHeader(start);
  if (header.kind === 'end' || !header.sealed) return null;
  return sealedKeyId(start.subarray(FRAME_HEADER_SIZE, SEALING_PREFIX_BYTES), header.index).toString('hex');
}

/**
 * A restore's early look at the stream it downloads (core/sealing.ts restoreRefusal): its sealing from its first bytes
 * as they come, or undefined while they do not tell it yet (fewer than a header, or a sealed header without its seal
 * header) and when they never will here: an end frame first (an empty stream: nothing to open), a frame 0 that is not
 * frame 0, or a damaged header. Damage is left to the FrameParser, which says it in its own terms (and a restore
 * fetches a damaged frame again), and a seal header's key id is believed only under its CRC (sealedKeyId), as the
 * archive believes it when it records sealedBy. SEALING_PREFIX_BYTES always suffice: past them, undefined is final.
 */
export function sealingOfStart(start: Buffer): string | null | undefined {
  if (start.length < FRAME_HEADER_SIZE) return undefined;
  try {
    const header = parseFrameHeader(start);
    if (header.kind === 'end' || header.index !== 0) return undefined;
    if (!header.sealed) return null;
    if (start.length < SEALING_PREFIX_BYTES) return undefined;
    return sealedKeyId(start.subarray(FRAME_HEADER_SIZE, SEALING_PREFIX_BYTES), 0).toString('hex');
  } catch {
    return undefined;
  }
}
