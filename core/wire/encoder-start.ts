/**
 * Where a resumed FrameEncoder starts: after N data frames (hashRawPrefix gives their raw bytes and chain) at the
 * server's verified wire offset. Checked before the first byte, because an encoder started from a point no stream
 * could reach would write frames the server must refuse, far from the mistake.
 */
import { CHAIN_ZERO, HASH_SIZE } from './chain.ts';
import { FRAME_HEADER_SIZE } from './frame.ts';
import type { RawResumePoint } from './raw-prefix.ts';

export type EncoderStart = RawResumePoint & { wireOffset: number };

export interface CheckedStart extends EncoderStart {
  /** The last frame sent was short, hence the last data frame: only the end frame may follow. */
  closedToData: boolean;
}

/** `start` (the stream's beginning when absent), checked against the chunk size; throws a RangeError if no stream reaches it. */
export function checkEncoderStart(start: EncoderStart | undefined, chunkSize: number): CheckedStart {
  const s = start ?? { frames: 0, rawOffset: 0, chain: CHAIN_ZERO, wireOffset: 0 };
  const { frames, rawOffset, wireOffset } = s;
  const full = frames * chunkSize;
  // After N frames the raw offset is N full chunks, or a bit less if the last one was short (end of stream).
  const consistent = frames === 0 ? rawOffset === 0 : rawOffset > full - chunkSize && rawOffset <= full;
  if (!Number.isSafeInteger(rawOffset) || !consistent || s.chain.length !== HASH_SIZE) {
    throw new RangeError(`bad resume point: ${frames} frames of ${chunkSize} bytes and raw offset ${rawOffset}`);
  }
  if (!Number.isSafeInteger(wireOffset) || wireOffset < (frames > 0 ? frames * FRAME_HEADER_SIZE : 0)) {
    throw new RangeError(`bad resume point: wire offset ${wireOffset} for ${frames} frames`);
  }
  return { frames, rawOffset, chain: s.chain, wireOffset, closedToData: rawOffset !== full };
}
