/**
 * A TCP proxy in front of the S3 server that loses conditional PUTs on the way, for the doubt a real network leaves:
 * in `answer` mode a PUT reaches the server and its answer is dropped (the connection is cut when it comes back), in
 * `request` mode the connection is cut before the PUT reaches the server. Every other request passes. It tells a PUT
 * by its request line, which our small bodies always share a first packet with.
 */
import net from 'node:net';

export type DropMode = 'none' | 'answer' | 'request';

export interface DropProxy {
  readonly endpoint: string;
  mode: DropMode;
  /** PUTs dropped so far. */
  dropped: number;
  close(): Promise<void>;
}

export async function dropProxy(target: string): Promise<DropProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const proxy: DropProxy = { endpoint: '', mode: 'none', dropped: 0, close: async () => {} };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    let swallow = false;
    client.on('data', (chunk) => {
      if (proxy.mode !== 'none' && chunk.subarray(0, 4).toString('latin1') === 'PUT ') {
        proxy.dropped++;
        if (proxy.mode === 'request') return client.destroy();
        swallow = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => (swallow ? client.destroy() : client.write(chunk)));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(proxy, {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
  return proxy;
}
