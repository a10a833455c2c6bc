/**
 * FrameDecoder: framed bytes in, the verified raw `btrfs send` stream out (for `btrfs receive`). Built on
 * FrameParser, so every chunk is checked before a byte of it goes downstream, and a stream that stops before its
 * end frame fails with stream_truncated at the end instead of looking complete. A sealed stream is opened with
 * `sealing`, and refused at its first frame without it: nothing of it goes downstream.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { FrameParser } from './frame-parser.ts';
import type { FrameParserState, VerifiedFrame } from './frame-parser.ts';
import type { FrameSealing } from './frame-seal.ts';
import { keyRequiredError } from '../crypto/errors.ts';

export interface FrameDecoderOptions {
  /** Expected chunk size; if absent, learnt from the first frame. */
  chunkSize?: number;
  /** Called for each verified frame (also emitted as 'frame'); `raw` is not included. */
  onFrame?: (frame: VerifiedFrame) => void;
  /** The key (and stream identity) to open sealed frames with; a sealed stream without it is refused (`key_required`). */
  sealing?: FrameSealing;
}

export class FrameDecoder extends Transform {
  readonly #parser: FrameParser;
  readonly #onFrame: ((frame: VerifiedFrame) => void) | undefined;

  constructor(opts: FrameDecoderOptions = {}) {
    super();
    this.#parser = new FrameParser({
      keepRaw: true,
      ...(opts.chunkSize === undefined ? {} : { chunkSize: opts.chunkSize }),
      ...(opts.sealing === undefined ? {} : { sealing: opts.sealing }),
    });
    this.#onFrame = opts.onFrame;
  }

  state(): FrameParserState & { pendingBytes: number } {
    return this.#parser.state();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      for (const frame of this.#parser.push(chunk)) {
        const { raw, ...info } = frame;
        if (info.kind === 'data' && raw === undefined) {
          throw keyRequiredError(info.index);
        }
        for (const piece of raw ?? []) this.push(piece);
        this.#onFrame?.(info);
        this.emit('frame', info);
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.#parser.finish();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }
}
