/**
 * The chaos proxy's engine, in-process: a TCP proxy that throttles, cuts and counts. Tests use it through
 * chaos-proxy.ts, which runs it in a worker thread (its socket writes on loopback can take the kernel hundreds of
 * milliseconds under load, which would stall the event loop of a client and server in the same process); the
 * proxy's own unit tests drive it directly. API and semantics: see chaos-proxy.ts.
 */
import net from 'node:net';
import type { Server, Socket } from 'node:net';
import { ValidationError } from '../../core/errors.ts';
import { CutSchedule } from './cut-schedule.ts';
import type { CutKind, RandomCuts } from './cut-schedule.ts';
import { RateLimiter } from './rate-limiter.ts';
import type { LaneLink } from './lane.ts';
import { ProxiedConnection, resetSocket } from './proxied-connection.ts';
import type { Target } from './proxied-connection.ts';

export type { RandomCuts } from './cut-schedule.ts';

export interface ChaosProxyOptions {
  target: Target;
  /** Default 127.0.0.1. */
  listenHost?: string;
  /** Default 0: a free port. */
  listenPort?: number;
}

export interface ChaosStats {
  /** Client-to-server bytes handed to the kernel for the server since start or resetStats(). */
  upstreamBytes: number;
  downstreamBytes: number;
  /** Connections accepted and passed on (refused ones not included). */
  connections: number;
  refused: number;
  /** Cuts that broke at least one connection. */
  cuts: number;
  /** Connections the client broke off with a reset (a cut by the proxy not included). */
  clientResets: number;
  /** Open now (a gauge, not reset). */
  live: number;
  /** Bytes waiting inside the proxy now (a gauge): stays small when backpressure works. */
  queuedBytes: number;
}

export interface CutEvent {
  kind: CutKind | 'now';
  /** Where on the running count of upstream bytes (since start, never reset) the cut fell. */
  position: number;
  /** How many connections it broke. */
  connections: number;
}

export type RateSetting = number | null | { upstream?: number | null; downstream?: number | null };

type Counters = Pick<ChaosStats, 'upstreamBytes' | 'downstreamBytes' | 'connections' | 'refused' | 'cuts' | 'clientResets'>;
const zeroCounters = (): Counters => ({ upstreamBytes: 0, downstreamBytes: 0, connections: 0, refused: 0, cuts: 0, clientResets: 0 });

export class ChaosProxyCore {
  readonly host: string;
  readonly port: number;
  readonly #listener: Server;
  readonly #target: Target;
  /** Every connection whose sockets are not both closed yet, broken or not. */
  readonly #connections = new Set<ProxiedConnection>();
  readonly #upLimiter = new RateLimiter();
  readonly #downLimiter = new RateLimiter();
  readonly #schedule = new CutSchedule();
  readonly #cutListeners = new Set<(event: CutEvent) => void>();
  readonly #changeListeners = new Set<() => void>();
  #counters = zeroCounters();
  /** Upstream bytes handed on since start; cut positions are measured on it. */
  #position = 0;
  /** Set between the write that reaches a cut point and the cut itself: nothing else may cross meanwhile. */
  #pendingCut: { kind: CutKind; position: number } | null = null;
  #refusing = false;
  #dribble: number | null = null;
  #closing: Promise<void> | null = null;
  readonly #up: LaneLink;
  readonly #down: LaneLink;

  private constructor(listener: Server, host: string, port: number, target: Target) {
    this.#listener = listener;
    this.host = host;
    this.port = port;
    this.#target = target;
    this.#up = {
      limiter: this.#upLimiter,
      frozen: () => this.#pendingCut !== null,
      untilCut: () => (this.#schedule.nextAt === null ? Infinity : this.#schedule.nextAt - this.#position),
      issued: (n) => {
        this.#position += n;
        const kind = this.#schedule.kind;
        if (kind === null || this.#schedule.nextAt === null || this.#position < this.#schedule.nextAt) return false;
        this.#pendingCut = { kind, position: this.#position };
        this.#schedule.advance();
        return true;
      },
      crossed: (n) => {
        this.#counters.upstreamBytes += n;
        this.#changed();
      },
      cut: () => {
        const pending = this.#pendingCut;
        this.#pendingCut = null;
        if (pending !== null) this.#cut(pending.kind, pending.position);
      },
      dribble: () => this.#dribble,
    };
    this.#down = {
      limiter: this.#downLimiter,
      frozen: () => this.#pendingCut !== null,
      untilCut: () => Infinity,
      issued: () => false,
      crossed: (n) => {
        this.#counters.downstreamBytes += n;
        this.#changed();
      },
      cut: () => undefined,
      dribble: () => null,
    };
    listener.on('connection', (socket) => this.#accept(socket));
  }

  static async start(options: ChaosProxyOptions): Promise<ChaosProxyCore> {
    const host = options.listenHost ?? '127.0.0.1';
    const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(options.listenPort ?? 0, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    const address = listener.address() as net.AddressInfo;
    return new ChaosProxyCore(listener, host, address.port, { ...options.target });
  }

  /** `http://HOST:PORT`; for TLS through the proxy use `https://` with the same host and port. */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** A number (or null) sets the upstream rate only; an object sets each direction it names. In bytes per second. */
  setRate(rate: RateSetting): void {
    if (rate === null || typeof rate === 'number') return this.#upLimiter.setRate(rate);
    if (rate.upstream !== undefined) this.#upLimiter.setRate(rate.upstream);
    if (rate.downstream !== undefined) this.#downLimiter.setRate(rate.downstream);
  }

  /** Upstream bytes go in writes of at most `bytes`, one per turn of the event loop (null: as the rate allows). */
  dribble(bytes: number | null): void {
    if (bytes !== null && !(Number.isSafeInteger(bytes) && bytes > 0)) {
      throw new ValidationError(`dribble takes a whole number of bytes above 0 or null, not ${bytes}`, { details: { bytes } });
    }
    this.#dribble = bytes;
  }

  /** One cut, once `bytes` more have gone upstream (null: cancel). Replaces any other cut schedule. */
  cutAfter(bytes: number | null): void {
    if (bytes === null) this.#schedule.clear();
    else this.#schedule.after(this.#position, bytes);
  }

  /** A cut every `bytes` upstream bytes from now, until cutEvery(null). Replaces any other cut schedule. */
  cutEvery(bytes: number | null): void {
    if (bytes === null) this.#schedule.clear();
    else this.#schedule.every(this.#position, bytes);
  }

  /** Cuts at seeded random distances (same seed, same positions) until cutRandomly(null). Replaces others. */
  cutRandomly(options: RandomCuts | null): void {
    if (options === null) this.#schedule.clear();
    else this.#schedule.random(this.#position, options);
  }

  /** Resets every live connection now; returns how many it broke. */
  cutNow(): number {
    return this.#cut('now', this.#position);
  }

  /** While on, new connections are reset as soon as they are accepted (live ones are left alone: see cutNow). */
  refuse(on: boolean): void {
    this.#refusing = on;
  }

  stats(): ChaosStats {
    let queuedBytes = 0;
    for (const c of this.#connections) queuedBytes += c.queued;
    return { ...this.#counters, live: this.#live().length, queuedBytes };
  }

  resetStats(): void {
    this.#counters = zeroCounters();
  }

  /** Calls `listener` after each cut; returns a function that unsubscribes it. */
  onCut(listener: (event: CutEvent) => void): () => void {
    this.#cutListeners.add(listener);
    return () => this.#cutListeners.delete(listener);
  }

  /** Stops listening and ends every connection; resolves when every socket and timer of the proxy is gone. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const listening = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
      const connections = [...this.#connections];
      for (const c of connections) c.destroy();
      this.#upLimiter.stop();
      this.#downLimiter.stop();
      await Promise.all([listening, ...connections.map((c) => c.closed)]);
    })();
    return this.#closing;
  }

  #accept(client: Socket): void {
    if (this.#refusing || this.#closing !== null) {
      this.#counters.refused++;
      this.#changed();
      client.on('error', () => undefined);
      resetSocket(client);
      return;
    }
    this.#counters.connections++;
    const connection = new ProxiedConnection(client, this.#target, { up: this.#up, down: this.#down }, () => {
      this.#counters.clientResets++;
      this.#changed();
    });
    this.#connections.add(connection);
    this.#changed();
    void connection.closed.then(() => {
      this.#connections.delete(connection);
      this.#changed();
    });
  }

  /** Calls `listener` after every change of the counts (the worker mirrors them into shared memory). */
  onChange(listener: () => void): void {
    this.#changeListeners.add(listener);
  }

  #changed(): void {
    for (const listener of this.#changeListeners) listener();
  }

  #live(): ProxiedConnection[] {
    return [...this.#connections].filter((c) => !c.broken);
  }

  #cut(kind: CutEvent['kind'], position: number): number {
    const victims = this.#live();
    for (const c of victims) c.reset();
    if (victims.length === 0) return 0;
    this.#counters.cuts++;
    this.#changed();
    const event: CutEvent = { kind, position, connections: victims.length };
    for (const listener of this.#cutListeners) listener(event);
    return victims.length;
  }
}

/** Refuses options that cannot work, before any thread or socket is made. */
export function checkProxyOptions(options: ChaosProxyOptions): void {
  if (!Number.isInteger(options.target.port) || options.target.port < 1 || options.target.port > 65535) {
    throw new ValidationError(`the chaos proxy's target port must be 1-65535, not ${options.target.port}`, {
      details: { target: options.target },
    });
  }
}

export async function startChaosProxyCore(options: ChaosProxyOptions): Promise<ChaosProxyCore> {
  checkProxyOptions(options);
  return ChaosProxyCore.start(options);
}
