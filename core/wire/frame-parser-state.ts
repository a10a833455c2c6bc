/**
 * What a FrameParser is, at a frame boundary: a handful of numbers and the chain. A server saves it with every
 * verified frame and builds a new parser from it after a restart; a restore keeps it in its spool's index. Whatever
 * comes back from disk is checked against the frame rules before a parser trusts it.
 */
import { CHAIN_ZERO, HASH_SIZE } from './chain.ts';
import { FRAME_HEADER_SIZE } from './frame.ts';

export interface FrameParserState {
  /** The transfer's chunk size; null until told or learnt from the first frame. */
  chunkSize: number | null;
  /** Data frames verified (the end frame is not counted). */
  framesVerified: number;
  /** Wire offset just past the last verified frame: where a restored parser takes up the stream. */
  wireOffsetVerified: number;
  /** Raw bytes in the verified data frames. */
  rawOffset: number;
  /** Chain after the verified data frames. */
  chain: Buffer;
  /** The end frame has been verified: the stream is complete. */
  ended: boolean;
}

/** The state before the first frame. */
export function streamStart(chunkSize: number | null): FrameParserState {
  return { chunkSize, framesVerified: 0, wireOffsetVerified: 0, rawOffset: 0, chain: CHAIN_ZERO, ended: false };
}

/**
 * Throws a RangeError unless `s` is a state the frame rules can reach: n frames of the chunk size hold more than
 * n-1 full chunks and at most n, and each frame takes at least its header on the wire.
 */
export function checkState(s: FrameParserState): void {
  const { chunkSize, framesVerified: n, rawOffset, wireOffsetVerified: wire } = s;
  const ints = [n, rawOffset, wire].every((v) => Number.isSafeInteger(v) && v >= 0);
  const size = chunkSize ?? 0;
  const rawOk = n === 0 ? rawOffset === 0 : chunkSize !== null && rawOffset > (n - 1) * size && rawOffset <= n * size;
  const wireOk = wire >= n * FRAME_HEADER_SIZE + (s.ended ? FRAME_HEADER_SIZE : 0);
  if (!ints || !rawOk || !wireOk || s.chain.length !== HASH_SIZE) {
    throw new RangeError(`inconsistent frame parser state: ${JSON.stringify({ ...s, chain: undefined })}`);
  }
}
