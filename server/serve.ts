/**
 * Starts the server: the replication core, tus, the HTTP app, and a Node HTTP server tuned for uploads that last
 * hours (Node's default 300 s request timeout would kill a long PATCH with a 408).
 */
import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import { ReplicationService } from './replication.ts';
import { createTusServer } from './tus.ts';
import { createApp, DEFAULT_CLIENT } from './app.ts';
import { checkServerRoot } from './root-check.ts';
import type { Logger } from './log.ts';

export interface ServeOptions {
  root: string;
  host: string;
  port: number;
  behindProxy: boolean;
  log: Logger;
  /** Queue receives but do not run them until service.resumeReceives(). */
  holdReceives?: boolean;
  expireAfterMs?: number;
  leaseMs?: number;
}

export interface RunningServer {
  url: string;
  service: ReplicationService;
  http: HttpServer;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  await checkServerRoot(options.root);
  const service = await ReplicationService.open(options.root, options.log, {
    holdReceives: options.holdReceives ?? false,
    expireAfterMs: options.expireAfterMs ?? 0,
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
  });
  await service.start();
  const tus = createTusServer(service, options.log, { behindProxy: options.behindProxy, clientOf: () => DEFAULT_CLIENT });
  const app = createApp(service, tus, options.log);
  const server = await new Promise<HttpServer>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        hostname: options.host,
        port: options.port,
        // No overall request deadline (a PATCH may last hours on 1 Mbit/s); a stalled socket is still closed by the
        // per-socket timeout below.
        serverOptions: { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 },
      },
      () => resolve(s as HttpServer),
    ) as HttpServer;
    s.once('error', reject);
  });
  server.setTimeout(10 * 60_000);
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  options.log.info({ url: `http://${host}:${port}`, root: options.root }, 'listening');
  return {
    url: `http://${host}:${port}`,
    service,
    http: server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => service.idle()),
  };
}
