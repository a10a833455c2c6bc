/** The messages between the compression pool and its workers. */
import type { FrameCodec } from './codec.ts';

export interface CompressRequest {
  id: number;
  raw: Uint8Array;
  level: number;
}

export type CompressResponse =
  | { id: number; codec: FrameCodec; payload: Uint8Array; rawHash: Uint8Array; compressNs: number; error?: undefined }
  | { id: number; error: string };
