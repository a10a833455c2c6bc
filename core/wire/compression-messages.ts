/** The messages between the compression pool and its workers. */
import type { FrameCodec } from './codec.ts';

export interface CompressRequest {
  id: number;
  raw: Uint8Array;
  level: number;
  /** Payload memory the server has acknowledged, for the worker to copy later payloads into (payload-shelf.mjs). */
  reuse?: ArrayBuffer[];
}

export type CompressResponse =
  | {
      id: number;
      codec: FrameCodec;
      payload: Uint8Array;
      rawHash: Uint8Array;
      compressNs: number;
      /** The raw chunk's memory, sent back for reuse when the payload is not the chunk itself. */
      spare?: Uint8Array;
      /** Whether a zstd payload's memory was made new, not used again. */
      freshPayload: boolean;
      error?: undefined;
    }
  | { id: number; error: string };
