/**
 * The resume path on the client: run `btrfs send` again, hash the first N chunks (SHA-256 only: no compression,
 * no copies, no network), compare the chain with the server's, then hand the rest of the same stream to a
 * FrameEncoder started at frame N. The stream of a read-only snapshot pair is byte-identical run to run, so the
 * chain after N chunks matches the server's unless the sending kernel or btrfs-progs changed.
 *
 *   const prefix = await hashRawPrefix(send.stdout, { chunkSize, frames: server.framesVerified });
 *   if (!prefix.chain.equals(server.chain)) ...rewind...
 *   await pipeline(Readable.from(prefix.rest), new FrameEncoder({ chunkSize, start: { ...prefix, wireOffset } }), up);
 *
 * `accept` lets the caller check each chunk against the server's per-frame index as it goes, and stop before the
 * first chunk that differs: `rest` then starts with that chunk's bytes, so the upload can be rewound to it and go on
 * from the same run of `btrfs send`.
 *
 * The chain is over the hashes the frames carry. For plain frames that is the raw chunk's SHA-256, taken as the bytes
 * stream by; a sealed stream's frames carry their sealed payload's hash, so `frameHash` gets each whole chunk and
 * returns the hash of what the encoder would send for it (compressed and sealed: frame-seal.ts).
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { ChainHasher, chainStep } from './chain.ts';
import { validateChunkSize } from './frame.ts';
import { asBuffer } from './raw-chunker.ts';

export interface HashedChunk {
  index: number;
  rawOffset: number;
  rawLength: number;
  /** The hash frame `index` carries: the raw chunk's SHA-256, or `frameHash`'s. */
  rawHash: Buffer;
  /** The chain including this chunk, c_{index+1}. */
  chain: Buffer;
}

/** Where framing resumes: data frames already covered, the raw bytes they hold, and their chain. */
export interface RawResumePoint {
  frames: number;
  rawOffset: number;
  chain: Buffer;
}

export interface RawPrefix extends RawResumePoint {
  /** The source ended before or at this point (then `frames` may be below the number asked for). */
  sourceEnded: boolean;
  /** `accept` refused chunk `frames`; `rest` starts with it. */
  stopped: boolean;
  /**
   * The source from `rawOffset` on, starting with the bytes already read past that point. Consume it (or destroy
   * the source yourself): until it is read, the source stays paused.
   */
  rest: AsyncIterable<Buffer>;
}

export async function hashRawPrefix(
  source: AsyncIterable<Uint8Array>,
  opts: {
    chunkSize: number;
    frames: number;
    accept?: (chunk: HashedChunk) => boolean;
    /** The hash frame `index` carries for this whole raw chunk, when it is not the chunk's SHA-256 (a sealed stream). */
    frameHash?: (raw: Buffer, index: number) => Buffer;
  },
): Promise<RawPrefix> {
  const chunkSize = validateChunkSize(opts.chunkSize);
  const target = opts.frames;
  if (!Number.isSafeInteger(target) || target < 0) throw new RangeError(`frames must be >= 0, got ${target}`);
  const it = source[Symbol.asyncIterator]();
  const chain = new ChainHasher();
  let rawOffset = 0;
  let hash: Hash = createHash('sha256');
  let fill = 0;
  // Views of the current chunk's bytes, kept until `accept` decides on it so that we can stop before it.
  let held: Buffer[] = [];
  let leftover: Buffer[] = [];
  let sourceEnded = false;
  let stopped = false;

  const frameHash = opts.frameHash;
  // The chunk's pieces are held when someone needs them whole: to stop before it, or to hash it whole.
  const hold = opts.accept !== undefined || frameHash !== undefined;
  const decide = (rawLength: number): boolean => {
    const rawHash = frameHash ? frameHash(Buffer.concat(held), chain.frames) : hash.digest();
    const next = chainStep(chain.digest(), rawHash);
    const info = { index: chain.frames, rawOffset, rawLength, rawHash, chain: next };
    if (opts.accept !== undefined && !opts.accept(info)) return false;
    chain.update(rawHash);
    rawOffset += rawLength;
    hash = createHash('sha256');
    fill = 0;
    held = [];
    return true;
  };

  outer: while (chain.frames < target) {
    const r = await it.next();
    if (r.done === true) {
      sourceEnded = true;
      if (fill > 0 && !decide(fill)) {
        stopped = true;
        leftover = held;
      }
      break;
    }
    let b = asBuffer(r.value);
    while (b.length > 0 && chain.frames < target) {
      const n = Math.min(chunkSize - fill, b.length);
      const piece = b.subarray(0, n);
      if (frameHash === undefined) hash.update(piece);
      if (hold) held.push(piece);
      fill += n;
      b = b.subarray(n);
      if (fill === chunkSize && !decide(chunkSize)) {
        stopped = true;
        leftover = [...held, b];
        break outer;
      }
    }
    if (b.length > 0) leftover = [b];
  }

  async function* rest(): AsyncGenerator<Buffer> {
    for (const b of leftover) if (b.length > 0) yield b;
    if (sourceEnded) return;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        yield asBuffer(r.value);
      }
    } finally {
      await it.return?.();
    }
  }

  return { frames: chain.frames, rawOffset, chain: chain.digest(), sourceEnded, stopped, rest: rest() };
}
