/**
 * A PATCH body made of the frames FramedUploadSource holds, handed out as views of them: no copy of a slice (8 MiB)
 * per PATCH, and no wait for 'drain' after every 16 KiB as tus-js-client does with a Buffer body.
 *
 * The frames still go out in pieces, because tus-js-client counts progress as each piece enters the request and
 * the next enters only once the socket took the last: a 4 MiB frame in one piece would move the progress line (and
 * the link meter behind --compress auto) in 4 MiB jumps, half a minute apart on a 1 Mbit/s line. On a fast link
 * small pieces cost instead: each is a write of its own into the socket, and with TLS a round of the record layer,
 * so once the link's rate is known a piece is what it carries in about PIECE_MS. With `--limit-rate` the pieces
 * are smaller still, each let out when the push's one budget allows.
 */
import { Readable } from 'node:stream';
import { THROTTLED_PIECE, type UploadRateLimit } from './rate-limit.ts';

/** Piece size of a body on a link not measured yet or slow: half a second at 1 Mbit/s. */
export const BODY_PIECE = 64 * 1024;
/**
 * The largest piece, on a fast link. Measured with test/bench/tls-proxy-cpu.ts (docs/performance.md, session 20):
 * 1 MiB pieces cost the client about 0.1 CPU s/GiB less than 64 KiB ones over http and 0.2-0.3 less over TLS.
 */
export const LARGEST_BODY_PIECE = 1024 * 1024;
/** On a measured link, a piece is about this much of its time: progress still moves many times a second. */
const PIECE_MS = 50;

/** The piece size for a link carrying `linkRate` bytes per second (null: not measured yet). */
export function bodyPieceFor(linkRate: number | null): number {
  let piece = BODY_PIECE;
  if (linkRate === null) return piece;
  const fits = (linkRate * PIECE_MS) / 1000;
  while (piece * 2 <= LARGEST_BODY_PIECE && piece * 2 <= fits) piece *= 2;
  return piece;
}

/**
 * `pieces` in order as one stream of views of them, each at most `pieceSize` bytes (THROTTLED_PIECE under a rate
 * limit); `.size` is what tus-js-client reads for Content-Length.
 */
export function patchBody(pieces: readonly Buffer[], limit?: UploadRateLimit, pieceSize = BODY_PIECE): Readable & { size: number } {
  const queue = pieces.filter((p) => p.length > 0);
  const size = queue.reduce((n, p) => n + p.length, 0);
  const most = limit ? THROTTLED_PIECE : pieceSize;
  let next = 0;
  let waiting: NodeJS.Timeout | null = null;
  const stream = new Readable({
    highWaterMark: most,
    read() {
      if (waiting !== null) return;
      let piece = queue[next];
      if (piece === undefined) {
        this.push(null);
        return;
      }
      if (piece.length > most) {
        queue[next] = piece.subarray(most);
        piece = piece.subarray(0, most);
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
