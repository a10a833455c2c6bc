/**
 * A restore answer's body as @hono/node-server gets it. The answer's headers are out before the body is made, so a
 * failure while it goes out (btrfs send failing, a segment damaged in the bucket) can only break it off: the client
 * sees a cut, resumes from its last verified frame, and a failure that stays is refused then, before an answer starts.
 * Handed a stream that errors, node-server printed the raw stack on stderr (not a line of the server's log) and wrote
 * "Error: ..." after the frames already sent. So the error is logged here, the connection is destroyed, and what
 * node-server reads ends without an error, after a connection that is already gone.
 */
import type { ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';

export function restoreBody(body: Readable, response: ServerResponse | undefined, onError: (err: Error) => void): ReadableStream<Uint8Array> {
  // Without a connection of its own (app.request() in tests) the error goes on as it is: nothing else can break it off.
  if (response === undefined) return Readable.toWeb(body) as ReadableStream<Uint8Array>;
  const out = new PassThrough();
  body.on('error', (err) => {
    onError(err);
    response.destroy();
    out.end();
  });
  // The client went away (node-server cancels what it reads): stop btrfs send, or the bucket's reads.
  out.on('close', () => body.destroy());
  body.pipe(out);
  return Readable.toWeb(out) as ReadableStream<Uint8Array>;
}
