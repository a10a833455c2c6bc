/**
 * tus-js-client's Node stack (node_modules/tus-js-client/lib/node/httpStack.js) pipes a PATCH body into node:http's
 * request and resolves once the answer has ended, but it never stops the body: an answer that comes before the body
 * was read (409 transfer_locked while another instance holds the upload's lease, 423, 429 with Retry-After, a proxy's
 * 413) leaves the rest of the body flowing into the socket, and the proxy in front reads and discards it. On a slow
 * line that is the line's time spent on bytes nobody keeps (about 2 MB in test/e2e/archive-instances.test.ts), while
 * the push already waits to try again on another connection.
 *
 * So this wrapper watches each request: once an answer's head arrives that did not read the body (a refusal, or any
 * answer while the body is still going out), it stops feeding the body, and once the answer has ended (tus-js-client
 * has it whole) it resets the connection. The reset matters more than the stop: the kernel takes a body into the
 * socket's send buffer (megabytes on a fast first hop) long before a slow line carries it, and a plain close would
 * still send all of it before the FIN; a TCP reset drops it (test/e2e/refused-patch-body.test.ts: a 4 MB body had
 * gone whole into the kernels before a 409 sent at once, 3-3.7 MB of it still in the client's send buffer). A connection whose body was cut short can never carry another request (its
 * framing is broken), so nothing reusable is lost; a refusal that did read the whole body costs one keep-alive
 * connection. A success (the server read the body whole) is left alone.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { HttpRequest, HttpResponse, HttpStack } from 'tus-js-client';

export function stopBodyOnAnswer(inner: HttpStack): HttpStack {
  return {
    createRequest: (method, url) => new StoppingRequest(inner.createRequest(method, url)),
    getName: () => `${inner.getName()}+stopBodyOnAnswer`,
  };
}

class StoppingRequest implements HttpRequest {
  constructor(private readonly inner: HttpRequest) {}

  getMethod(): string {
    return this.inner.getMethod();
  }

  getURL(): string {
    return this.inner.getURL();
  }

  setHeader(header: string, value: string): void {
    this.inner.setHeader(header, value);
  }

  getHeader(header: string): string | undefined {
    return this.inner.getHeader(header);
  }

  setProgressHandler(handler: (bytesSent: number) => void): void {
    this.inner.setProgressHandler(handler);
  }

  send(body?: unknown): Promise<HttpResponse> {
    const answered = this.inner.send(body);
    // The stack creates its node:http request synchronously inside send().
    const req = this.inner.getUnderlyingObject() as ClientRequest | null;
    if (req !== null && body instanceof Readable) {
      req.once('response', (res: IncomingMessage) => {
        // A success means the server read the body whole; so did a refusal that came after end() was called
        // and after the socket flushed it (writableFinished is not enough: the kernel may still hold it).
        if ((res.statusCode ?? 0) < 300 && req.writableEnded) return;
        body.unpipe();
        body.destroy();
        res.once('end', () => resetConnection(req));
      });
    }
    return answered;
  }

  abort(): Promise<void> {
    return this.inner.abort();
  }

  getUnderlyingObject(): unknown {
    return this.inner.getUnderlyingObject();
  }
}

/**
 * Closes the request's connection with a TCP reset, so the kernel drops the unsent bytes of its send buffer instead
 * of sending them before a FIN. Over TLS the socket's handle is the TLS layer, which cannot reset: it is destroyed
 * (those bytes still go out, at most one send buffer).
 */
function resetConnection(req: ClientRequest): void {
  const socket = req.socket as Socket | null;
  if (socket === null || socket.destroyed) return;
  // An answer with `Connection: close` has the agent end the socket first. libuv refuses to reset a handle that is
  // shutting down, and Node 20 then never closes it: the process spun at exit for ever (its cleanup waits for every
  // handle). A plain destroy still makes the kernel answer with RST if unread bytes remain.
  if (socket.writableEnded || socket.connecting) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
