/**
 * Errors of the snapferry frame layer. Every one names the frame (index) and where it starts on the wire, so a
 * server can truncate to the last verified frame and a person can find the bad bytes in a spool file.
 */
import { SnapferryError } from '../errors.ts';

export type FrameErrorCode =
  /** Bad magic, header CRC, unknown kind or codec, non-zero reserved bits, or a payload that fails to decode/hash. */
  | 'frame_corrupt'
  /** A header (with a valid CRC) claims lengths beyond the transfer's bounds; rejected before any allocation. */
  | 'frame_too_large'
  /** A frame's index or raw offset is not the next one expected: frames lost, duplicated or reordered. */
  | 'frame_out_of_order'
  /** A frame's chunk size differs from the transfer's, or a short data frame was not the last data frame. */
  | 'frame_chunk_size_mismatch'
  /** The end frame's chain hash differs from the chain of the frames verified. */
  | 'frame_chain_mismatch'
  /** Bytes arrived after the end frame. */
  | 'frame_after_end'
  /** The input ended before the end frame (or inside a frame). */
  | 'stream_truncated';

export interface FrameErrorDetails extends Record<string, unknown> {
  /** Index of the frame at fault (for the end frame: the number of data frames before it). */
  frameIndex: number;
  /** Wire offset of the first byte of the frame at fault. */
  wireOffset: number;
}

export class FrameError extends SnapferryError {
  declare readonly code: FrameErrorCode;
  declare readonly details: FrameErrorDetails;

  /**
   * Only a truncated stream is retryable: sending the rest completes it. Corrupt or misordered frames stay wrong
   * however often the same bytes are checked; the sender has to resend from the last verified frame.
   */
  constructor(code: FrameErrorCode, message: string, details: FrameErrorDetails, cause?: unknown) {
    super(code, message, { retryable: code === 'stream_truncated', details, cause });
  }
}
