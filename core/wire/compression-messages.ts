/** The messages between the compression pool and its workers. */
import type { FrameCodec } from './codec.ts';

export interface CompressRequest {
  id: number;
  raw: Uint8Array;
  level: number;
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
      error?: undefined;
    }
  | { id: number; error: string };
