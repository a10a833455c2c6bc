/**
 * The TCP relay the S3 fault proxies (drop-proxy.ts, slow-lease-proxy.ts) share: one upstream connection per client
 * connection, either end's close or error closing both, every socket destroyed by close(). Each proxy says only what
 * it does with a connection's bytes.
 */
import net from 'node:net';

export interface Relay {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** `pipe` wires one client connection to its upstream; the relay joins their ends. */
export async function tcpRelay(target: string, pipe: (client: net.Socket, upstream: net.Socket) => void): Promise<Relay> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    pipe(client, upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
