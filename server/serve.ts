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
import { createTusServer } from './upload-store/tus-server.ts';
import { parsePublicUrl } from './public-url.ts';
import { createApp } from './app.ts';
import { restoreSlots, type RestoreLimits } from './restore-slots.ts';
import type { AppService } from './app-service.ts';
import { openGate, tokenGate, type Gate } from './auth.ts';
import { checkServerRoot } from './root-check.ts';
import { lockRoot } from './root-lock.ts';
import { DEFAULT_EXPIRE_AFTER_MS, startExpirySweep } from './expiry.ts';
import { connectionCaps, ConnectionLimits } from './connection-limits.ts';
import { bodyFloor, endSlowBodies } from './slow-bodies.ts';
import { endUploadsOfAbsent, endUploadsOfRevoked } from './revoked-clients.ts';
import type { Logger } from './log.ts';
import { VerifyJobs, type VerifyLimits } from './verify/jobs.ts';
import { treeDigestEngine } from './verify/tree-engine.ts';

export interface ServeOptions {
  root: string;
  host: string;
  port: number;
  behindProxy: boolean;
  /** Where clients reach the server, for upload URLs (server/public-url.ts); default: the request's host[:port]. */
  publicUrl?: string;
  log: Logger;
  /** Start no receive until service.resumeReceives(). */
  holdReceives?: boolean;
  /** Unfinished uploads that no request touched for this long are deleted (server/expiry.ts); default 7 days, 0 never. */
  expireAfterMs?: number;
  leaseMs?: number;
  /**
   * Per client: quotaBytes (413 beyond), maxOpenUploads (429 beyond), creationsPerMinute and creationBurst (429 with
   * Retry-After beyond); generous defaults (server/upload-limits.ts).
   */
  limits?: ServiceOptions['limits'];
  /** How long and how many per client the catalog keeps ended transfers (default 7 days, 1000; server/transfer-history.ts). */
  endedTransfers?: ServiceOptions['endedTransfers'];
  /** Device nodes and setuid files in received streams: 'allow' (default, warns unless nosuid,nodev), 'inert-mount', 'refuse'. */
  privilegedFiles?: ServiceOptions['privilegedFiles'];
  /** Each received volume's retention policy (server/retention.ts); default: keep everything. */
  retention?: ServiceOptions['retention'];
  /** When a receive that failed for the server's own reasons runs again; tests shorten it. */
  receiveRetry?: ServiceOptions['receiveRetry'];
  pruneRetry?: ServiceOptions['pruneRetry'];
  /** Tests only: how the catalog file is written (ServiceOptions.catalogWriter). */
  catalogWriter?: ServiceOptions['catalogWriter'];
  /** Terminate TLS here (PEM file paths: certificate chain, private key); the url becomes https://. */
  tls?: { cert: string; key: string };
  /** Require a bearer token from this file (server/tokens.ts) on every request; without it every caller is `default`. */
  tokensFile?: string;
  /**
   * An upload's request body that brings no byte for this long is ended, and a restore download whose reader takes no
   * byte for this long (default DEFAULT_IDLE_TIMEOUT_MS).
   */
  idleTimeoutMs?: number;
  /** Connection caps and request pacing; each left out takes its default (server/connection-limits.ts, slow-bodies.ts). */
  connections?: ConnectionSettings;
  /** Verify jobs per client, in total, and how long an idle one lives (server/verify/jobs.ts). */
  verify?: Partial<VerifyLimits>;
  /** Restore streams per client and in total (server/restore-slots.ts). */
  restore?: Partial<RestoreLimits>;
}

export interface ConnectionSettings {
  /** Sockets open at once in total: 503 server_busy beyond (default 1024, lowered to fit the open-file limit). */
  maxConnections?: number;
  /** Connections one token holds at once (busy or kept alive): 429 too_many_connections beyond (default 64). */
  maxPerClient?: number;
  /** A request's headers must have arrived within this (default DEFAULT_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs?: number;
  /** A request body slower than this (bytes/s), averaged over bodyRateWindowMs, is ended (default 256). */
  minBodyBytesPerSecond?: number;
  /** Default 2 minutes, or twice the idle timeout when that is longer; never less than twice the idle timeout. */
  bodyRateWindowMs?: number;
}

/**
 * A client whose line went silent (no RST, no FIN) leaves its PATCH open: without an end the server would hold the
 * request, and with it the upload's lock, until TCP gave up many minutes later. Ended, the store keeps every frame
 * that verified (and the part of the frame in flight), so the client's next try resumes from there at once.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Any other socket: a restore's answer may be slow to start while the server hashes its way to the resume point. */
const SOCKET_TIMEOUT_MS = 10 * 60_000;
/**
 * A request's headers are a few hundred bytes: even a 9.6 kbit/s line sends them in under a second. Twenty seconds
 * is kind to any real line, and ends a connection that sends its headers a byte at a time to hold a socket
 * (Node's default, 60 s checked every 30 s, let them live 60 to 90 s).
 */
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;

export interface RunningServer<S extends AppService = ReplicationService> {
  url: string;
  service: S;
  http: HttpServer;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  // The files and figures first: a refused start (a missing tokens file) must not leave a new, empty root behind.
  const http = await prepareHttp(options);
  await checkServerRoot(options.root);
  // Before anything reads or changes the root (reconcile would take a running server's receive for a crash's
  // leftover), and for the server's whole life (server/root-lock.ts).
  const lock = await lockRoot(options.root, 'snapferry serve');
  if (lock.noteError) {
    // Started all the same: reads (status, snapshots, restore) are what a full backup disk needs, and uploads get the
    // usual 507 disk_full.
    options.log.warn({ file: lock.file, err: lock.noteError.message }, `could not write who holds the root's lock into ${lock.file}; the lock holds all the same (a second server is still refused, without a name)`);
  }
  try {
    const server = await startLocked(options, http);
    return { ...server, close: () => server.close().finally(() => lock.release()) };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function startLocked(options: ServeOptions, http: PreparedHttp): Promise<RunningServer> {
  return listenWith(options, http, async () => {
    const expireAfterMs = options.expireAfterMs ?? DEFAULT_EXPIRE_AFTER_MS;
    const service = await ReplicationService.open(options.root, options.log, {
      holdReceives: options.holdReceives ?? false,
      expireAfterMs,
      ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      ...(options.limits !== undefined ? { limits: options.limits } : {}),
      ...(options.endedTransfers !== undefined ? { endedTransfers: options.endedTransfers } : {}),
      ...(options.privilegedFiles !== undefined ? { privilegedFiles: options.privilegedFiles } : {}),
      ...(options.retention !== undefined ? { retention: options.retention } : {}),
      ...(options.receiveRetry !== undefined ? { receiveRetry: options.receiveRetry } : {}),
      ...(options.pruneRetry !== undefined ? { pruneRetry: options.pruneRetry } : {}),
      ...(options.catalogWriter !== undefined ? { catalogWriter: options.catalogWriter } : {}),
    });
    await service.start();
    const verify = new VerifyJobs(service, treeDigestEngine(options.log), options.log, options.verify);
    const dropped = await verify.saved.sweep({ allSnapshots: () => service.snapshotRecords(), learnUuids: (client, uuids) => service.learnUuids(client, uuids) });
    if (dropped > 0) options.log.info({ dropped }, 'dropped the saved digests of snapshots the server no longer holds');
    return { service, verify, where: { root: options.root }, close: () => service.close() };
  });
}

/** A server's core, as the HTTP layer starts and stops it: the service, and verify where the server has btrfs. */
export interface ServerCore<S extends AppService> {
  service: S;
  verify?: VerifyJobs;
  /** Where the server keeps what it receives, for the `listening` line ({root} or {store}). */
  where: Record<string, string>;
  close(): Promise<void>;
}

/** What the HTTP layer needs of the options: everything but what opens the core. */
export type HttpOptions = Omit<ServeOptions, 'root' | 'holdReceives' | 'leaseMs' | 'limits' | 'endedTransfers' | 'privilegedFiles' | 'retention' | 'receiveRetry' | 'pruneRetry' | 'verify' | 'catalogWriter'>;

/**
 * The HTTP side of any server: the gate, the connection caps, tus over the core's upload store, the app, the Node
 * server and its timeouts, and the expiry sweep. `open` makes the core once the figures are checked.
 */
export async function startHttp<S extends AppService>(options: HttpOptions, open: () => Promise<ServerCore<S>>): Promise<RunningServer<S>> {
  return listenWith(options, await prepareHttp(options), open);
}

/** What the HTTP side reads and checks before it opens the core: the TLS files, the tokens, the figures. */
interface PreparedHttp {
  tlsFiles: { cert: Buffer; key: Buffer } | null;
  gate: Gate;
  publicUrl: ReturnType<typeof parsePublicUrl> | undefined;
  idleTimeoutMs: number;
  headersTimeout: number;
  floor: ReturnType<typeof bodyFloor>;
  limits: ConnectionLimits;
}

/** Checked before anything starts: a missing file or a bad figure stops the server here, with nothing made or to close. */
async function prepareHttp(options: HttpOptions): Promise<PreparedHttp> {
  const tlsFiles = options.tls ? await readTlsFiles(options.tls) : null;
  // The gate looks at its file on a timer only once listening (tokenGate's onRevoked): nothing to stop if a later step fails.
  const gate = options.tokensFile ? await tokenGate(options.tokensFile, options.log) : openGate();
  const connections = options.connections ?? {};
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const headersTimeout = connections.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const floor = bodyFloor({ minBytesPerSecond: connections.minBodyBytesPerSecond, windowMs: connections.bodyRateWindowMs }, idleTimeoutMs);
  const limits = new ConnectionLimits(
    connectionCaps({
      ...(connections.maxConnections !== undefined ? { maxConnections: connections.maxConnections } : {}),
      ...(connections.maxPerClient !== undefined ? { maxPerClient: connections.maxPerClient } : {}),
    }),
    options.log,
  );
  const publicUrl = options.publicUrl === undefined ? undefined : parsePublicUrl(options.publicUrl);
  return { tlsFiles, gate, publicUrl, idleTimeoutMs, headersTimeout, floor, limits };
}

async function listenWith<S extends AppService>(options: HttpOptions, prepared: PreparedHttp, open: () => Promise<ServerCore<S>>): Promise<RunningServer<S>> {
  const { tlsFiles, gate, publicUrl, idleTimeoutMs, headersTimeout, floor, limits } = prepared;
  const expireAfterMs = options.expireAfterMs ?? DEFAULT_EXPIRE_AFTER_MS;
  const { service, verify, where, close: closeCore } = await open();
  await endUploadsOfAbsent(gate, service, options.log);
  endUploadsOfRevoked(gate, service, options.log);
  const tus = createTusServer(service, options.log, { behindProxy: options.behindProxy, publicUrl, clientOf: gate.clientOf });
  const app = createApp(service, tus, options.log, gate, limits, verify, { slots: restoreSlots(options.restore), idleMs: idleTimeoutMs });
  const server = await new Promise<HttpServer>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        hostname: options.host,
        port: options.port,
        // No overall request deadline (a PATCH may last hours on 1 Mbit/s); a stalled socket is still closed by the
        // per-socket timeout below.
        // TCP keepalive: an idle connection whose peer vanished is found and closed by the kernel.
        // Headers that trickle in are ended after headersTimeout (Node answers 408 and closes), checked often enough
        // that the timeout is what it says; a TLS handshake gets as long.
        serverOptions: {
          requestTimeout: 0, headersTimeout, connectionsCheckingInterval: Math.min(5_000, Math.max(100, headersTimeout / 4)),
          keepAliveTimeout: 65_000, keepAlive: true, keepAliveInitialDelay: 30_000,
          ...(tlsFiles ? { ...tlsFiles, handshakeTimeout: headersTimeout } : {}),
        },
        ...(tlsFiles ? { createServer: https.createServer } : {}),
      },
      () => resolve(s as HttpServer),
    ) as HttpServer;
    // Counted from the first socket: serve() has called listen(), but no socket is accepted before this tick ends.
    limits.watch(s, tlsFiles !== null);
    s.once('error', reject);
  });
  server.setTimeout(SOCKET_TIMEOUT_MS);
  endIdleBodies(server, idleTimeoutMs);
  const slowBodies = endSlowBodies(server, floor, idleTimeoutMs, options.log);
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
  options.log.info({ url, ...where }, 'listening');
  return {
    url,
    service,
    http: server,
    close: () => {
      const swept = expiry.stop();
      gate.close();
      slowBodies.stop();
      verify?.close();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => Promise.all([swept, closeCore()]).then(() => undefined));
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

/**
 * While a PATCH body is being read, its socket times out after `idleMs` without a byte (Node then destroys it: no
 * 'timeout' listener is installed, so the body's reader sees the request aborted and ends); once the body is read,
 * the socket gets the general timeout back, for the server's own work before it answers.
 */
function endIdleBodies(server: HttpServer, idleMs: number): void {
  server.prependListener('request', (req: IncomingMessage) => {
    // A kept-alive socket may carry another request after a PATCH whose body nobody read to its end (refused early).
    if (req.method !== 'PATCH') return void req.socket.setTimeout(SOCKET_TIMEOUT_MS);
    req.socket.setTimeout(idleMs);
    req.once('end', () => req.socket.setTimeout(SOCKET_TIMEOUT_MS));
  });
}
