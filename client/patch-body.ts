/**
 * A PATCH body made of the frames FramedUploadSource holds, sent as they are: no copy of a 16 MiB slice per PATCH,
 * and a 4 MiB frame goes to the socket in one write instead of tus-js-client's 16 KiB pieces of a Buffer body.
 * With `--limit-rate` the pieces are cut to 16 KiB, each let out when the push's one budget allows.
 */
import { Readable } from 'node:stream';
import type { UploadRateLimit } from './rate-limit.ts';

/** Piece size of a throttled body: small enough that the rate is smooth on a 1 Mbit/s line. */
export const THROTTLED_PIECE = 16 * 1024;

/** `pieces` in order as one stream; `.size` is what tus-js-client reads for Content-Length. */
export function patchBody(pieces: readonly Buffer[], limit?: UploadRateLimit): Readable & { size: number } {
  const queue = pieces.filter((p) => p.length > 0);
  const size = queue.reduce((n, p) => n + p.length, 0);
  let next = 0;
  let waiting: NodeJS.Timeout | null = null;
  const stream = new Readable({
    highWaterMark: THROTTLED_PIECE,
    read() {
      if (waiting !== null) return;
      let piece = queue[next];
      if (piece === undefined) {
        this.push(null);
        return;
      }
      if (limit && piece.length > THROTTLED_PIECE) {
        queue[next] = piece.subarray(THROTTLED_PIECE);
        piece = piece.subarray(0, THROTTLED_PIECE);
      } else {
        next++;
      }
      const delay = limit ? limit.reserve(piece.length) : 0;
      if (delay === 0) {
        this.push(piece);
        return;
      }
      const held = piece;
      waiting = setTimeout(() => {
        waiting = null;
        this.push(held);
      }, delay);
    },
    destroy(err, callback) {
      if (waiting !== null) clearTimeout(waiting);
      callback(err);
    },
  });
  return Object.assign(stream, { size });
}
