/**
 * The sequence rules of a framed stream, judged on a frame's header alone (so a bad frame is refused before its
 * payload is awaited): every data frame is the next index at the next raw offset, with the transfer's chunk size;
 * only the last data frame may be short; the end frame counts exactly the frames and raw bytes before it.
 */
import type { FrameHeader } from './frame.ts';
import type { FrameErrorCode } from './frame-error.ts';

/** Where the stream stands before the frame: its chunk size, data frames and raw bytes so far. */
export interface SequencePosition {
  chunkSize: number;
  frames: number;
  rawOffset: number;
}

export interface SequenceFault {
  code: FrameErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/** Why `h` cannot come next at `at`, or undefined when it can. */
export function sequenceFault(h: FrameHeader, at: SequencePosition): SequenceFault | undefined {
  const { chunkSize, frames, rawOffset } = at;
  if (h.chunkSize !== chunkSize) {
    return { code: 'frame_chunk_size_mismatch', message: `chunk size ${h.chunkSize}, the transfer's is ${chunkSize}` };
  }
  const afterShort = rawOffset !== frames * chunkSize;
  if (h.kind === 'data') {
    if (afterShort) return { code: 'frame_chunk_size_mismatch', message: 'a data frame follows a short data frame' };
    if (h.index !== frames || h.rawOffset !== rawOffset) {
      return { code: 'frame_out_of_order', message: `got frame ${h.index} at raw offset ${h.rawOffset}`, details: { got: h.index } };
    }
  } else if (h.frameCount !== frames || h.totalRaw !== rawOffset) {
    return {
      code: 'frame_out_of_order',
      message: `end frame counts ${h.frameCount} frames and ${h.totalRaw} raw bytes, verified ${frames} and ${rawOffset}`,
      details: { endFrameCount: h.frameCount, endTotalRaw: h.totalRaw },
    };
  }
  return undefined;
}
