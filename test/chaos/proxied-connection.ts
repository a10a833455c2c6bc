/**
 * One client connection through the proxy and its own connection to the target, joined by two lanes. Any error
 * on either side breaks both (an abort at one end reaches the other as a reset), and a cut resets both sockets so
 * the client sees ECONNRESET/EPIPE and the server sees its request aborted, as on a real broken link.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import { Lane } from './lane.ts';
import type { LaneLink } from './lane.ts';

export interface Target {
  host: string;
  port: number;
}

export class ProxiedConnection {
  readonly #client: Socket;
  readonly #server: Socket;
  readonly #up: Lane;
  readonly #down: Lane;
  #broken = false;
  /** Settles when both sockets are closed, however that came about. */
  readonly closed: Promise<void>;

  /** `onClientReset` is called if the client breaks the connection with a reset (not the proxy's own cut). */
  constructor(client: Socket, target: Target, links: { up: LaneLink; down: LaneLink }, onClientReset: () => void) {
    this.#client = client;
    this.#server = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    // Pacing sends small slices on purpose; Nagle would glue them back together.
    this.#client.setNoDelay(true);
    this.#server.setNoDelay(true);
    this.#up = new Lane(this.#client, this.#server, links.up);
    this.#down = new Lane(this.#server, this.#client, links.down);
    this.#server.once('connect', () => {
      this.#up.start();
      this.#down.start();
    });
    const whenClosed = (s: Socket): Promise<void> => new Promise((resolve) => s.once('close', () => resolve()));
    this.closed = Promise.all([whenClosed(this.#client), whenClosed(this.#server)]).then(() => undefined);
    for (const socket of [this.#client, this.#server]) {
      // A refused target, a peer's reset or a write into a closed socket: pass the break on to the other end.
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (socket === client && !this.#broken && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) onClientReset();
        this.reset();
      });
      socket.once('close', (hadError) => {
        if (hadError) this.reset();
      });
    }
  }

  /** True once reset or destroyed by the proxy or by an error: a later cut has nothing left to break here. */
  get broken(): boolean {
    return this.#broken;
  }

  /** Bytes held in the proxy for this connection, both directions. */
  get queued(): number {
    return this.#up.queued + this.#down.queued;
  }

  /** Breaks the connection the way a dead link does: a reset to both ends, whatever was in flight is lost. */
  reset(): void {
    this.#stopLanes();
    resetSocket(this.#client);
    resetSocket(this.#server);
  }

  /** Ends the connection for good without pretending it was a network fault (used when the proxy closes). */
  destroy(): void {
    this.#stopLanes();
    this.#client.destroy();
    this.#server.destroy();
  }

  #stopLanes(): void {
    this.#broken = true;
    this.#up.stop();
    this.#down.stop();
  }
}

/**
 * RST where the socket has a live TCP handle; a plain destroy for one still connecting or already gone. A socket
 * whose write side was already ended cannot be reset (libuv refuses to reset a handle that is shutting down, and
 * Node 20 then never emits 'close' and leaks the descriptor, leaving the peer in CLOSE-WAIT for ever): destroy it,
 * which still makes the kernel answer with RST if unread bytes remain.
 */
export function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  if (socket.connecting || socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
