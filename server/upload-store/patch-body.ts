/**
 * A PATCH body as the web stream @tus/server reads (it turns it back into a Node stream for the store), made
 * straight from Node's IncomingMessage without copying a byte. @hono/node-server makes the request's body with
 * `Readable.toWeb`, which copies every chunk "to detach it from the pool"; but an HTTP body chunk is memory of its
 * own already (Node's HTTP parser copies it out of the socket's read), so that was a second copy of every byte
 * uploaded and a short-lived buffer per 64 KiB read (docs/performance.md, issue 22).
 *
 * Otherwise it behaves as `Readable.toWeb` (Node 20's adapter): the same back-pressure (the body pauses while the
 * web stream holds its high-water mark of bytes), a premature close becomes an AbortError, and a cancel destroys the
 * body.
 */
import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream';

export function uncopiedBody(body: IncomingMessage): ReadableStream<Uint8Array> {
  if (body.destroyed || !body.readable) {
    const gone = new ReadableStream<Uint8Array>();
    void gone.cancel();
    return gone;
  }
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let canceled = false;
  body.pause();
  const stopWatching = finished(body, (err) => {
    stopWatching();
    // A stream may emit 'error' again after finished() called back: it must not become an uncaught exception.
    body.on('error', () => undefined);
    if (err) {
      const premature = (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
      controller.error(premature ? new DOMException('The operation was aborted', 'AbortError') : err);
      return;
    }
    if (!canceled) controller.close();
  });
  body.on('data', (chunk: Buffer) => {
    controller.enqueue(chunk);
    if ((controller.desiredSize ?? 0) <= 0) body.pause();
  });
  return new ReadableStream<Uint8Array>(
    {
      start: (c) => {
        controller = c;
      },
      pull: () => {
        body.resume();
      },
      cancel: (reason) => {
        canceled = true;
        body.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: body.readableHighWaterMark }),
  );
}
