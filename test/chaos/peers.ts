/**
 * Plain TCP ends for the chaos proxy's tests: a sink server that counts what each connection delivered and how it
 * ended, and a client that sends a buffer and records what came back and how it ended.
 */
import net from 'node:net';
import type { Socket } from 'node:net';

/** 'end' for an orderly close, else the error code the socket saw (ECONNRESET, EPIPE). */
export type Outcome = string;

export interface SinkConnection {
  socket: Socket;
  bytes: number;
  done: Promise<Outcome>;
}

export interface Sink {
  port: number;
  connections: SinkConnection[];
  /** Resolves when `n` connections have been accepted. */
  accepted(n: number): Promise<void>;
  close(): Promise<void>;
}

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

/** A server that reads everything; `greet` is written to each new connection (for downstream tests). */
export async function startSink(t: AfterHook, options: { greet?: Buffer; echo?: boolean } = {}): Promise<Sink> {
  const connections: SinkConnection[] = [];
  const waiters: Array<() => void> = [];
  const server = net.createServer((socket) => {
    const entry: SinkConnection = { socket, bytes: 0, done: Promise.resolve('') };
    entry.done = settle(socket);
    socket.on('data', (chunk: Buffer) => {
      entry.bytes += chunk.length;
      if (options.echo === true) socket.write(chunk);
    });
    if (options.greet !== undefined) socket.write(options.greet);
    connections.push(entry);
    for (const wake of waiters.splice(0)) wake();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async (): Promise<void> => {
    for (const c of connections) c.socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.after(close);
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    async accepted(n) {
      while (connections.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    close,
  };
}

export interface Sent {
  socket: Socket;
  /** What came back, and how the connection ended. */
  done: Promise<{ outcome: Outcome; received: Buffer }>;
}

/** Connects, writes `data` (then FIN when `end`), and collects whatever comes back until the socket closes. */
export function send(port: number, data: Buffer, options: { end?: boolean } = {}): Sent {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const outcome = settle(socket);
  if (data.length > 0) socket.write(data);
  if (options.end === true) socket.end();
  return { socket, done: outcome.then((o) => ({ outcome: o, received: Buffer.concat(chunks) })) };
}

function settle(socket: Socket): Promise<Outcome> {
  let outcome: Outcome = 'end';
  socket.on('error', (err: NodeJS.ErrnoException) => {
    outcome = err.code ?? err.message;
  });
  return new Promise((resolve) => socket.once('close', () => resolve(outcome)));
}

/** Polls `check` until it holds; a counter that never gets there fails with the last value seen. */
export async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
