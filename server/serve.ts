/**
 * Starts the server: the replication core, tus, the HTTP app, and a Node HTTP server tuned for uploads that last
 * hours (Node's default 300 s request timeout would kill a long PATCH with a 408).
 */
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { serve } from '@hono/node-server';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { ValidationError } from '../core/errors.ts';
import { ReplicationService, type ServiceOptions } from './replication.ts';
import { createTusServer } from './tus.ts';
import { createApp } from './app.ts';
import { openGate, tokenGate } from './auth.ts';
import { checkServerRoot } from './root-check.ts';
import { DEFAULT_EXPIRE_AFTER_MS, startExpirySweep } from './expiry.ts';
import type { Logger } from './log.ts';

export interface ServeOptions {
  root: string;
  host: string;
  port: number;
  behindProxy: boolean;
  log: Logger;
  /** Start no receive until service.resumeReceives(). */
  holdReceives?: boolean;
  /** Unfinished uploads that no request touched for this long are deleted (server/expiry.ts); default 7 days, 0 never. */
  expireAfterMs?: number;
  leaseMs?: number;
  /** Per client: quotaBytes (413 beyond) and maxOpenUploads (429 beyond); generous defaults (server/upload-limits.ts). */
  limits?: ServiceOptions['limits'];
  /** Device nodes and setuid files in received streams: 'allow' (default, warns unless nosuid,nodev), 'inert-mount', 'refuse'. */
  privilegedFiles?: ServiceOptions['privilegedFiles'];
  /** Each received volume's retention policy (server/retention.ts); default: keep everything. */
  retention?: ServiceOptions['retention'];
  /** When a receive that failed for the server's own reasons runs again; tests shorten it. */
  receiveRetry?: ServiceOptions['receiveRetry'];
  /** Terminate TLS here (PEM file paths: certificate chain, private key); the url becomes https://. */
  tls?: { cert: string; key: string };
  /** Require a bearer token from this file (server/tokens.ts) on every request; without it every caller is `default`. */
  tokensFile?: string;
}

export interface RunningServer {
  url: string;
  service: ReplicationService;
  http: HttpServer;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  await checkServerRoot(options.root);
  const tlsFiles = options.tls ? await readTlsFiles(options.tls) : null;
  const gate = options.tokensFile ? await tokenGate(options.tokensFile, options.log) : openGate();
  const expireAfterMs = options.expireAfterMs ?? DEFAULT_EXPIRE_AFTER_MS;
  const service = await ReplicationService.open(options.root, options.log, {
    holdReceives: options.holdReceives ?? false,
    expireAfterMs,
    ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
    ...(options.limits !== undefined ? { limits: options.limits } : {}),
    ...(options.privilegedFiles !== undefined ? { privilegedFiles: options.privilegedFiles } : {}),
    ...(options.retention !== undefined ? { retention: options.retention } : {}),
    ...(options.receiveRetry !== undefined ? { receiveRetry: options.receiveRetry } : {}),
  });
  await service.start();
  const tus = createTusServer(service, options.log, { behindProxy: options.behindProxy, clientOf: gate.clientOf });
  const app = createApp(service, tus, options.log, gate);
  const server = await new Promise<HttpServer>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        hostname: options.host,
        port: options.port,
        // No overall request deadline (a PATCH may last hours on 1 Mbit/s); a stalled socket is still closed by the
        // per-socket timeout below.
        serverOptions: { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000, ...tlsFiles },
        ...(tlsFiles ? { createServer: https.createServer } : {}),
      },
      () => resolve(s as HttpServer),
    ) as HttpServer;
    s.once('error', reject);
  });
  server.setTimeout(10 * 60_000);
  // A client that goes away mid-body is daily life here. Node emits a request's 'aborted' error only when it has an
  // 'error' listener, and @hono/node-server adds and removes its own (draining a body it did not read): one removed
  // between Node's check and the emit made an uncaught exception that killed the server (seen in the e2e tests). A
  // listener that stays closes that gap; whoever reads the body still sees the error through its own stream.
  server.prependListener('request', (req: IncomingMessage) => req.on('error', () => undefined));
  // Started once listening: a server that failed to start leaves no timer behind.
  const expiry = startExpirySweep(() => tus.cleanUpExpiredUploads(), expireAfterMs, options.log);
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `${tlsFiles ? 'https' : 'http'}://${host}:${port}`;
  options.log.info({ url, root: options.root }, 'listening');
  return {
    url,
    service,
    http: server,
    close: () => {
      const swept = expiry.stop();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => Promise.all([swept, service.close()]).then(() => undefined));
    },
  };
}

async function readTlsFiles(files: { cert: string; key: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (file: string, flag: string) =>
    readFile(file).catch((err: unknown) => {
      throw new ValidationError(`cannot read ${flag} ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
    });
  return { cert: await read(files.cert, '--tls-cert'), key: await read(files.key, '--tls-key') };
}
