/**
 * A restore answer's body as @hono/node-server gets it. The answer's headers are out before the body is made, so a
 * failure while it goes out (btrfs send failing, a segment damaged in the bucket) can only break it off: the client
 * sees a cut, resumes from its last verified frame, and a failure that stays is refused then, before an answer starts.
 * Handed a stream that errors, node-server printed the raw stack on stderr (not a line of the server's log) and wrote
 * "Error: ..." after the frames already sent. So the error is logged here, the connection is destroyed, and what
 * node-server reads ends without an error, after a connection that is already gone.
 *
 * Pulled, one piece at a time: node-server reads the next piece only once the socket took the last one, and a piece
 * is taken from the framed stream only then. Through a PassThrough and Readable.toWeb, each stage held a whole frame
 * besides the one in the socket (the PassThrough's two sides, the web stream's queue), and a reader that did not read
 * kept about 5 frames of the server's memory (88 MB at 16 MiB chunks; 20 such readers took serve to 1.6 GB). Now
 * it holds the frame going out and the one the encoder makes ahead. Pieces, not whole frames, so that a frame written
 * to a slow reader shows progress piece by piece (the idle timeout of a download, server/serve.ts).
 */
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';

/**
 * 16 KiB: one TLS record; a reader at 1 KiB/s still takes a piece well within the idle timeout (a piece's write must
 * end within it). 64 KiB saved no CPU that could be measured on a LAN restore, and held no less memory per stuck
 * reader (docs/performance.md, "Restore's piece size"), while it would cut readers slower than 1.1 KB/s.
 */
export const RESTORE_PIECE_BYTES = 16 * 1024;

/**
 * `idle`: a download whose socket takes no byte for `ms` is ended (its btrfs send stopped with it), and `ended` told. Set
 * once the answer starts, not for the request: before it, the server may hash its way to a resume point for minutes.
 */
export function restoreBody(body: Readable, response: ServerResponse | undefined, onError: (err: Error) => void, idle?: { ms: number; ended: () => void }): ReadableStream<Uint8Array> {
  // Without a connection of its own (app.request() in tests) the error goes on as it is: nothing else can break it off.
  if (response === undefined) return Readable.toWeb(body) as ReadableStream<Uint8Array>;
  if (idle !== undefined) {
    // Node's socket timeout counts from the last write handed to the socket or read from it: a reader that stops
    // reading fills the kernel's buffers, node-server waits for 'drain', and no piece is written after that.
    response.setTimeout(idle.ms);
    response.once('timeout', () => {
      idle.ended();
      response.destroy();
    });
  }
  const chunks = new ChunkTaker(body);
  body.on('error', (err) => {
    onError(err);
    response.destroy();
  });
  let current: Buffer | null = null;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (current === null || current.length === 0) current = await chunks.next();
        // The end, or a failure (logged above, the connection destroyed): either way nothing more to read.
        if (current === null) return controller.close();
        controller.enqueue(current.subarray(0, RESTORE_PIECE_BYTES));
        current = current.subarray(RESTORE_PIECE_BYTES);
      },
      // The client went away (node-server cancels what it reads): stop btrfs send, or the bucket's reads.
      cancel() {
        body.destroy();
      },
    },
    // Nothing read ahead of node-server's own reads.
    { highWaterMark: 0 },
  );
}

/**
 * The chunks of a stream one at a time, as they were pushed: read() without a size would join everything buffered
 * into one new buffer (a frame's header and payload copied), so the stream flows for one 'data' event and is paused.
 */
class ChunkTaker {
  private waiter: ((chunk: Buffer | null) => void) | null = null;
  /** A chunk that came with no one waiting (a 'data' event before the pause took): handed on next. */
  private early: Buffer[] = [];
  private over = false;

  constructor(private readonly body: Readable) {
    body.pause();
    body.on('data', (chunk: Buffer) => {
      body.pause();
      this.hand(chunk);
    });
    const end = () => {
      this.over = true;
      this.hand(null);
    };
    body.once('end', end);
    body.once('close', end);
    body.once('error', end);
  }

  next(): Promise<Buffer | null> {
    const early = this.early.shift();
    if (early !== undefined) return Promise.resolve(early);
    if (this.over) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.body.resume();
    });
  }

  private hand(chunk: Buffer | null): void {
    if (this.waiter === null && chunk !== null) return void this.early.push(chunk);
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.(chunk);
  }
}
