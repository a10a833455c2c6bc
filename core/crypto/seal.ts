/**
 * Sealing of frame payloads on the client: AES-256-GCM over each frame's payload (what the frame carries: raw or
 * compressed bytes) before it leaves the client, so that the server and the bucket hold ciphertext only.
 *
 * Sealing is deterministic, because a resumed upload regenerates the stream from `btrfs send` and the server compares
 * what it gets with what it holds: the same frame must seal to the same bytes. The nonce is therefore synthetic
 * (SIV-like, after RFC 5297's idea): a keyed PRF of everything the frame is about,
 *
 *   nonce = HMAC-SHA256(nonceKey, AD || payload)[0..12]
 *   AD    = "snapferry seal v1\0" || version || keyId || u32(len(stream)) || stream || u64(index)
 *
 * so a nonce repeats only where the whole input repeats (same stream, same position, same payload), and then the
 * ciphertext repeats too, which is the point. Two different payloads share a nonce only by a 96-bit PRF collision:
 * about 2^-48 after 2^24 frames (64 TiB at 4 MiB) under one key, far below GCM's own limits.
 *
 * Why not the nonce from the index and the raw chunk's hash, as the frame header has it: the payload is the
 * compressed chunk, and zstd does not promise the same output for the same input across versions or levels. A
 * client upgraded mid-resume would then seal different plaintexts under one nonce, which in GCM gives away their XOR
 * and the authentication key. Hashing what is actually encrypted cannot go wrong that way; it costs one HMAC pass.
 *
 * The AD binds a sealed frame to its stream (`stream`: what names it, e.g. the snapshot's and its parent's UUIDs)
 * and its index, so a frame moved to another place or another stream does not open. Sealed payload, big-endian:
 *
 * | offset | size | field                                   |
 * |--------|------|-----------------------------------------|
 * | 0      | 1    | seal version (1)                        |
 * | 1      | 8    | key id (keys.ts)                        |
 * | 9      | 12   | nonce                                   |
 * | 21     | 4    | CRC32C of bytes 0..20                   |
 * | 25     | n    | ciphertext (n = payload length)         |
 * | 25 + n | 16   | GCM tag                                 |
 *
 * The CRC is what lets a restore tell `wrong_key` from `frame_corrupt`: a key id is believed only when the header
 * around it is intact, so a damaged id is reported as damage, not as a key the user does not have.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { SealError, wrongKeyError } from './errors.ts';
import { KEY_ID_SIZE, type SealKey } from './keys.ts';

export const SEAL_VERSION = 1;
const NONCE_SIZE = 12;
const TAG_SIZE = 16;
const CRC_OFFSET = 1 + KEY_ID_SIZE + NONCE_SIZE;
export const SEAL_HEADER_SIZE = CRC_OFFSET + 4;
/** Bytes a sealed payload has beyond its plaintext. */
export const SEAL_OVERHEAD = SEAL_HEADER_SIZE + TAG_SIZE;
const AD_LABEL = Buffer.from('snapferry seal v1\0', 'latin1');

/** Where a frame sits: what it is bound to. */
export interface SealPosition {
  /** The frame's index in its stream (0-based). */
  index: number;
  /** What names the stream; the same bytes on sealing and opening. */
  stream: Uint8Array;
}

export function sealPayload(key: SealKey, at: SealPosition, payload: Uint8Array): Buffer {
  const ad = associatedData(SEAL_VERSION, key.id, at);
  const nonce = createHmac('sha256', key.nonceKey).update(ad).update(payload).digest().subarray(0, NONCE_SIZE);
  const header = Buffer.alloc(SEAL_HEADER_SIZE);
  header.writeUInt8(SEAL_VERSION, 0);
  key.id.copy(header, 1);
  nonce.copy(header, 1 + KEY_ID_SIZE);
  header.writeUInt32BE(crc32c(header.subarray(0, CRC_OFFSET)), CRC_OFFSET);
  const cipher = createCipheriv('aes-256-gcm', key.sealKey, nonce, { authTagLength: TAG_SIZE });
  cipher.setAAD(ad);
  const body = cipher.update(payload);
  cipher.final();
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/** The payload back, or SealError: `wrong_key` when the frame names another key, `frame_corrupt` for any damage. */
export function openPayload(key: SealKey, at: SealPosition, sealed: Uint8Array): Buffer {
  const frameIndex = at.index;
  const corrupt = (msg: string, extra: Record<string, unknown> = {}, cause?: unknown): never => {
    throw new SealError('frame_corrupt', `sealed frame ${frameIndex}: ${msg}; fetch it again, or the archive copy is damaged`, { frameIndex, ...extra }, cause);
  };
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (b.length < SEAL_OVERHEAD) corrupt(`${b.length} bytes is shorter than a seal's ${SEAL_OVERHEAD}`);
  if (b.readUInt32BE(CRC_OFFSET) !== crc32c(b.subarray(0, CRC_OFFSET))) corrupt('seal header CRC32C mismatch');
  const version = b.readUInt8(0);
  if (version !== SEAL_VERSION) corrupt(`seal version ${version} is not one this snapferry opens (${SEAL_VERSION})`, { sealVersion: version });
  const frameKeyId = b.subarray(1, 1 + KEY_ID_SIZE);
  if (!frameKeyId.equals(key.id)) {
    throw wrongKeyError(frameIndex, frameKeyId.toString('hex'), key.id.toString('hex'));
  }
  const nonce = b.subarray(1 + KEY_ID_SIZE, CRC_OFFSET);
  const decipher = createDecipheriv('aes-256-gcm', key.sealKey, nonce, { authTagLength: TAG_SIZE });
  decipher.setAAD(associatedData(version, key.id, at));
  decipher.setAuthTag(b.subarray(b.length - TAG_SIZE));
  const body = decipher.update(b.subarray(SEAL_HEADER_SIZE, b.length - TAG_SIZE));
  try {
    decipher.final();
  } catch (err) {
    corrupt('authentication failed (the bytes changed, or the frame belongs to another position or stream)', { keyId: key.id.toString('hex') }, err);
  }
  return body;
}

/**
 * The id of the key a sealed payload was sealed under, from its seal header (its first SEAL_HEADER_SIZE bytes), with
 * no key: an id is not secret (keys.ts). A server learns from it how a stored stream is sealed (core/sealing.ts).
 * SealError `frame_corrupt` when the header's CRC or version does not hold: a damaged id is not believed.
 */
export function sealedKeyId(sealed: Uint8Array, frameIndex: number): Buffer {
  const b = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  const corrupt = (msg: string): never => {
    throw new SealError('frame_corrupt', `sealed frame ${frameIndex}: ${msg}`, { frameIndex });
  };
  if (b.length < SEAL_HEADER_SIZE) corrupt(`${b.length} bytes is shorter than a seal header's ${SEAL_HEADER_SIZE}`);
  if (b.readUInt32BE(CRC_OFFSET) !== crc32c(b.subarray(0, CRC_OFFSET))) corrupt('seal header CRC32C mismatch');
  if (b.readUInt8(0) !== SEAL_VERSION) corrupt(`seal version ${b.readUInt8(0)} is not one this snapferry reads (${SEAL_VERSION})`);
  return Buffer.from(b.subarray(1, 1 + KEY_ID_SIZE));
}

function associatedData(version: number, keyId: Buffer, at: SealPosition): Buffer {
  if (!Number.isSafeInteger(at.index) || at.index < 0) throw new RangeError(`a frame index is a safe integer >= 0, got ${at.index}`);
  const fixed = Buffer.alloc(1 + KEY_ID_SIZE + 4);
  fixed.writeUInt8(version, 0);
  keyId.copy(fixed, 1);
  fixed.writeUInt32BE(at.stream.length, 1 + KEY_ID_SIZE);
  const index = Buffer.alloc(8);
  index.writeBigUInt64BE(BigInt(at.index));
  return Buffer.concat([AD_LABEL, fixed, at.stream, index]);
}
