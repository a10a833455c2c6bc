/**
 * `btrfs send` -> send-stream check -> frame encoder, ready for tus. The check fails the pipeline on a bad stream
 * (truncated, a second stream appended, wrong first command) before the end frame could be made, and the send
 * handle's stream only ends once btrfs send exited 0, so an end frame always stands for a whole, good stream.
 */
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../core/btrfs/index.ts';
import { FrameEncoder, SendStreamCheck, type EncodedFrameInfo, type SendStreamHeader } from '../core/wire/index.ts';
import { FramedUploadSource } from './upload-source.ts';

export interface FramedSendOptions {
  snapshotPath: string;
  parentPath: string | null;
  chunkSize: number;
  level: number;
  maxSlice: number;
  signal?: AbortSignal;
  onFrame?: (frame: EncodedFrameInfo) => void;
}

export interface FramedSend {
  source: FramedUploadSource;
  /** The stream's first command, once seen. */
  header: Promise<SendStreamHeader>;
  /** Settles when the whole pipeline has: rejects with the first failure (btrfs send, check, encoder). */
  done: Promise<void>;
}

export function startFramedSend(options: FramedSendOptions): FramedSend {
  const send = btrfs.send(options.snapshotPath, {
    ...(options.parentPath ? { parent: options.parentPath } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const check = new SendStreamCheck();
  const out = new PassThrough({ highWaterMark: options.chunkSize });
  const source = new FramedUploadSource({ stream: out, startOffset: 0 }, options.maxSlice);
  const encoder = new FrameEncoder({
    chunkSize: options.chunkSize,
    level: options.level,
    onFrame: (frame) => {
      source.frameEnded(frame.wireOffset + frame.wireLength, frame.kind === 'end');
      options.onFrame?.(frame);
    },
  });
  const done = pipeline(send.stream, check, encoder, out);
  done.catch(() => undefined);
  return { source, header: check.header, done };
}
