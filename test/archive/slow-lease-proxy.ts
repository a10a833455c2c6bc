/**
 * A TCP proxy in front of the S3 server that holds every read of an upload's lease object (lease.json) for `delayMs`
 * before passing it on: a bucket slow to answer the one read an archive PATCH makes before tus sees it
 * (archive-service.ts noteUploadRequest), as a loaded RGW is. Everything else passes at once, in order. It tells a
 * read by its request line, which our requests always send in their first packet.
 */
import { tcpRelay } from './tcp-relay.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SlowLeaseProxy {
  readonly endpoint: string;
  delayMs: number;
  /** Lease reads held so far. */
  held: number;
  close(): Promise<void>;
}

export async function slowLeaseProxy(target: string): Promise<SlowLeaseProxy> {
  const proxy: SlowLeaseProxy = { endpoint: '', delayMs: 0, held: 0, close: async () => {} };
  const relay = await tcpRelay(target, (client, upstream) => {
    // A connection's bytes go on in order: a held request holds what follows it on the same connection.
    let queue = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const line = chunk.subarray(0, chunk.indexOf(0x0a) + 1 || chunk.length).toString('latin1');
      const slow = proxy.delayMs > 0 && /^(GET|HEAD) \S*\/lease\.json[ ?]/.test(line);
      if (slow) proxy.held++;
      const delay = slow ? proxy.delayMs : 0;
      queue = queue.then(async () => {
        if (delay > 0) await sleep(delay);
        if (!upstream.destroyed) upstream.write(chunk);
      });
    });
    upstream.on('data', (chunk) => client.write(chunk));
  });
  return Object.assign(proxy, { endpoint: relay.endpoint, close: relay.close });
}
