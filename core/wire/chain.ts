/**
 * The chain hash names a whole raw prefix in 32 bytes, whatever compression did to it:
 *
 *   c_0 = 32 zero bytes;  c_i = SHA-256(c_{i-1} || rawHash_i)
 *
 * where rawHash_i is the SHA-256 of raw chunk i (1-based here; frame index i-1 on the wire). The end frame carries
 * c_N. Client and server compare chains to agree on "the first N chunks are the same bytes" without moving them.
 */
import { createHash } from 'node:crypto';

export const HASH_SIZE = 32;

/** c_0: the chain of the empty prefix. */
export const CHAIN_ZERO: Buffer = Buffer.alloc(HASH_SIZE);

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** SHA-256 of the pieces' bytes in order: the same as sha256 of them joined, without joining them. */
export function sha256Pieces(pieces: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const piece of pieces) hash.update(piece);
  return hash.digest();
}

export function chainStep(prev: Uint8Array, rawHash: Uint8Array): Buffer {
  if (prev.length !== HASH_SIZE || rawHash.length !== HASH_SIZE) {
    throw new RangeError(`chainStep wants two ${HASH_SIZE}-byte hashes, got ${prev.length} and ${rawHash.length}`);
  }
  return createHash('sha256').update(prev).update(rawHash).digest();
}

/** Folds chunk hashes into the chain; can start mid-stream from a saved (chain, frames) pair. */
export class ChainHasher {
  #chain: Buffer;
  #frames: number;

  constructor(start: { chain: Uint8Array; frames: number } = { chain: CHAIN_ZERO, frames: 0 }) {
    if (start.chain.length !== HASH_SIZE) throw new RangeError(`chain must be ${HASH_SIZE} bytes`);
    if (!Number.isSafeInteger(start.frames) || start.frames < 0) throw new RangeError('frames must be an integer >= 0');
    if (start.frames === 0 && !CHAIN_ZERO.equals(start.chain)) throw new RangeError('the chain of 0 frames is c_0');
    this.#chain = Buffer.from(start.chain);
    this.#frames = start.frames;
  }

  /** Adds the next chunk's hash; returns the new chain value. */
  update(rawHash: Uint8Array): Buffer {
    this.#chain = chainStep(this.#chain, rawHash);
    this.#frames += 1;
    return this.digest();
  }

  /** The chain after the chunks seen so far (a copy: callers may keep it). */
  digest(): Buffer {
    return Buffer.from(this.#chain);
  }

  /** How many chunk hashes have been folded in, counting the start. */
  get frames(): number {
    return this.#frames;
  }
}
