/**
 * What a checked stream writes into `btrfs receive`'s input. `btrfs receive -e` exits at the stream's END command,
 * and core/btrfs/receive.ts then destroys its input; but END comes before the end frame, which the stream behind it is
 * still verifying. Written straight into that input, the stream would break off with "Premature close" (whenever
 * btrfs exits before the end frame is through: about one small restore in eight, under load). The feed goes on to
 * the stream's end whether or not btrfs still reads, so the stream succeeds or fails for reasons of its own.
 */
import { Writable, type PassThrough } from 'node:stream';

/** Writes into `raw` (btrfs receive's input) while it is open; once btrfs has stopped reading, takes bytes and drops them. */
export function feed(raw: PassThrough): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (raw.destroyed || raw.writableEnded) return callback();
      if (raw.write(chunk)) return callback();
      const go = () => {
        raw.off('drain', go);
        raw.off('close', go);
        callback();
      };
      raw.on('drain', go);
      raw.on('close', go);
    },
    final(callback) {
      if (!raw.destroyed && !raw.writableEnded) raw.end();
      callback();
    },
  });
}
