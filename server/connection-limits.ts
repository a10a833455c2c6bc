/**
 * How many connections the server holds: in total (each is a file descriptor; a process out of them fails every
 * client's requests) and per client (so that one client token cannot crowd out the others by holding requests
 * open). The total is known when a socket is accepted; the client only once a request's token is read
 * (server/auth.ts), so the per-client cap counts the connections that carried that client's requests. Both
 * refusals are answered in the project's JSON error, with Retry-After, and the connection is closed after the answer.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { SnapferryError, ValidationError } from '../core/errors.ts';
import type { Caller } from './auth.ts';
import type { Logger } from './log.ts';

export interface ConnectionCaps {
  /** Sockets open at once, all clients and unauthenticated ones together; the next is answered 503. */
  maxConnections: number;
  /**
   * Connections one token holds at once, busy or kept alive (a push needs about two per upload: its PATCH and a
   * probe); 429 beyond.
   */
  maxPerClient: number;
}

export const DEFAULT_CONNECTION_CAPS: Readonly<ConnectionCaps> = Object.freeze({ maxConnections: 1024, maxPerClient: 64 });

/** How long a refused client should wait: its own requests end, or other sockets close, within about this. */
export const RETRY_AFTER_CLIENT_S = 10;
export const RETRY_AFTER_BUSY_S = 30;

export class TooManyConnections extends SnapferryError {
  constructor(who: string, cap: number) {
    super(
      'too_many_connections',
      `${who} already holds ${cap} connections to this server, its limit: close some (or run fewer pushes at once) ` +
        'and try again; the server admin can raise connections.perClient',
      { retryable: true, details: { limit: cap, retryAfterSeconds: RETRY_AFTER_CLIENT_S } },
    );
  }
}

export class ServerBusy extends SnapferryError {
  constructor(cap: number) {
    super(
      'server_busy',
      `the server holds ${cap} connections, its limit: try again in a little while; the server admin can raise connections.max ` +
        "(and the process's open-file limit)",
      { retryable: true, details: { limit: cap, retryAfterSeconds: RETRY_AFTER_BUSY_S } },
    );
  }
}

export interface SocketBudget {
  /** Sockets beyond this many are answered 503 at their first request. */
  maxConnections: number;
  /**
   * Node closes sockets beyond this many at accept, without a word (`server.maxConnections`): the hard ceiling that
   * holds even when sockets are opened and never send a request. Above maxConnections, so that a refusal can be
   * answered; at most half the process's open-file limit, leaving the rest for spool files and receive pipes.
   */
  ceiling: number;
  /** maxConnections had to come down to fit the open-file limit. */
  lowered: boolean;
}

/** The caps in sockets, fitted under the process's open-file limit (null: unknown, e.g. not Linux). */
export function socketBudget(maxConnections: number, fileLimit: number | null): SocketBudget {
  const headroom = (n: number) => Math.max(8, Math.ceil(n / 4));
  const wanted = maxConnections + headroom(maxConnections);
  const room = fileLimit === null ? Infinity : Math.floor(fileLimit / 2);
  if (wanted <= room) return { maxConnections, ceiling: wanted, lowered: false };
  // The largest cap whose ceiling still fits; at least one socket, so that the server answers at all.
  let fitted = Math.max(1, Math.floor(room * 0.8));
  while (fitted > 1 && fitted + headroom(fitted) > room) fitted--;
  return { maxConnections: fitted, ceiling: Math.max(fitted + 1, Math.min(room, fitted + headroom(fitted))), lowered: true };
}

/** The soft RLIMIT_NOFILE of this process, from /proc (Node has no API for it); null where unreadable. */
export function readFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m?.[1] === undefined || m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    return null;
  }
}

export function connectionCaps(given: Partial<ConnectionCaps> = {}): Readonly<ConnectionCaps> {
  const caps = { ...DEFAULT_CONNECTION_CAPS, ...given };
  for (const [key, value] of Object.entries(caps)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(`${key} must be a whole number of at least 1, not ${String(value)}`, { details: { key } });
    }
  }
  return Object.freeze(caps);
}

/** What the app needs from a request to count it: @hono/node-server's bindings (absent under app.request()). */
export interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

export class ConnectionLimits {
  private readonly budget: SocketBudget;
  private open = 0;
  /** Sockets accepted while `maxConnections` were already open: their request is answered 503. */
  private readonly overCap = new WeakSet<Socket>();
  /** Whose request each connection carried last, and how many connections each caller holds so. */
  private readonly owner = new WeakMap<Socket, string>();
  private readonly held = new Map<string, number>();
  private lastWarning = 0;

  constructor(
    readonly caps: Readonly<ConnectionCaps>,
    private readonly log: Logger,
    fileLimit: number | null = readFileLimit(),
  ) {
    this.budget = socketBudget(caps.maxConnections, fileLimit);
    if (this.budget.lowered) {
      log.warn(
        { maxConnections: caps.maxConnections, fileLimit, lowered: this.budget.maxConnections },
        "connections.max does not fit the process's open-file limit; lowered (raise LimitNOFILE= or ulimit -n to allow more)",
      );
    }
  }

  /** Counts the sockets `server` accepts; call before it listens. */
  watch(server: HttpServer, tls: boolean): void {
    server.maxConnections = this.budget.ceiling;
    server.on('drop', () => this.warn('a connection was dropped at accept: the server holds its most sockets'));
    // Under TLS the HTTP layer gets the socket once the handshake is done; sockets still shaking hands count only
    // against the ceiling above (and end at the handshake timeout).
    server.prependListener(tls ? 'secureConnection' : 'connection', (socket: Socket | TLSSocket) => {
      this.open++;
      if (this.open > this.budget.maxConnections) this.overCap.add(socket);
      socket.once('close', () => this.open--);
    });
  }

  /**
   * A request refused before its caller is known (no token, a wrong one): its connection ends with the answer. Kept
   * alive, sockets that nobody may use would hold the total cap against every client's requests.
   */
  refusedUnknown(env: NodeBindings | undefined): void {
    closeAfterAnswer(env);
  }

  /** Before anything else about a request: 503 server_busy if its socket came beyond the total cap. */
  checkAccepted(env: NodeBindings | undefined): void {
    const socket = env?.incoming?.socket;
    if (!socket || !this.overCap.has(socket)) return;
    closeAfterAnswer(env);
    this.warn('a request was refused 503: the server holds its most connections');
    throw new ServerBusy(this.budget.maxConnections);
  }

  /**
   * Counts the connection an admitted request came on against its caller, from now until it closes or carries
   * another caller's request (behind a proxy, upstream connections are shared); 429 too_many_connections when the
   * caller holds its most already. Idle kept-alive connections count too: a token that keeps sockets alive with a
   * request now and then holds them as surely as one that trickles a body.
   */
  enter(caller: Caller, env: NodeBindings | undefined): void {
    const socket = env?.incoming?.socket;
    if (!socket) return;
    const key = caller.role === 'client' ? `client:${caller.client}` : `admin:${caller.name}`;
    const current = this.owner.get(socket);
    if (current === key) return;
    if ((this.held.get(key) ?? 0) >= this.caps.maxPerClient) {
      closeAfterAnswer(env);
      throw new TooManyConnections(caller.role === 'client' ? caller.client : caller.name, this.caps.maxPerClient);
    }
    if (current === undefined) socket.once('close', () => this.release(this.owner.get(socket)));
    else this.release(current);
    this.owner.set(socket, key);
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
  }

  private release(key: string | undefined): void {
    if (key === undefined) return;
    const left = (this.held.get(key) ?? 1) - 1;
    if (left > 0) this.held.set(key, left);
    else this.held.delete(key);
  }

  /** A flood would log a line per socket: one line per minute says enough. */
  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 60_000) return;
    this.lastWarning = now;
    this.log.warn({ open: this.open, maxConnections: this.budget.maxConnections, ceiling: this.budget.ceiling }, message);
  }
}

/** The refused request's body is never read: the connection ends with the answer instead of waiting for it. */
function closeAfterAnswer(env: NodeBindings | undefined): void {
  if (env?.outgoing) env.outgoing.shouldKeepAlive = false;
}
