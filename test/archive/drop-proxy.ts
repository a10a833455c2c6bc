/**
 * A TCP proxy in front of the S3 server that loses conditional PUTs on the way, for the doubt a real network leaves:
 * in `answer` mode a PUT reaches the server and its answer is dropped (the connection is cut when it comes back), in
 * `request` mode the connection is cut before the PUT reaches the server. Every other request passes. It tells a PUT
 * by its request line, which our small bodies always share a first packet with.
 */
import { tcpRelay } from './tcp-relay.ts';

export type DropMode = 'none' | 'answer' | 'request';

export interface DropProxy {
  readonly endpoint: string;
  mode: DropMode;
  /** PUTs dropped so far. */
  dropped: number;
  close(): Promise<void>;
}

export async function dropProxy(target: string): Promise<DropProxy> {
  const proxy: DropProxy = { endpoint: '', mode: 'none', dropped: 0, close: async () => {} };
  const relay = await tcpRelay(target, (client, upstream) => {
    let swallow = false;
    client.on('data', (chunk: Buffer) => {
      if (proxy.mode !== 'none' && chunk.subarray(0, 4).toString('latin1') === 'PUT ') {
        proxy.dropped++;
        if (proxy.mode === 'request') return client.destroy();
        swallow = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => (swallow ? client.destroy() : client.write(chunk)));
  });
  return Object.assign(proxy, { endpoint: relay.endpoint, close: relay.close });
}
