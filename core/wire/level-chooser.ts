/**
 * What a FrameEncoder asks before compressing each chunk, when the level is not fixed: the level to use, and then
 * what that level cost (client/push/auto-level.ts learns from it). Only the interface lives here; core picks no level.
 */

/** Picks the zstd level frame by frame, learning from what each frame cost (client/push/auto-level.ts). */
export interface LevelChooser {
  next(): number;
  observe(sample: CompressionSample): void;
}

export interface CompressionSample {
  level: number;
  /** Where the frame's raw bytes start in the stream (frames are observed in stream order). */
  rawOffset?: number;
  rawLength: number;
  payloadLength: number;
  /** Wall time of the compression alone, on the thread that did it. */
  compressNs: number;
}
