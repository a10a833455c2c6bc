/**
 * One direction of one proxied connection: reads from `source`, holds at most about HIGH_WATER bytes, and writes
 * them to `dest` as fast as the link's rate limiter and the next cut allow. Backpressure goes all the way back: when
 * the queue is full or `dest` is slow the source socket is paused, so the kernel buffers fill and the sender's own
 * writes start to wait, as they would on a slow link.
 *
 * A sender's reset must reach the far end at once, and what had not crossed yet is lost: on a real slow link those
 * bytes would still be in the sender's own send buffer, which its reset drops. Here the proxy's kernel has taken
 * them (its receive buffer, hundreds of KB on loopback and more when the machine is busy) and reports the reset only
 * after every one of them was read, so the proxy carried them all across first (0.2-1.3 MB at 1 MB/s in
 * test/e2e/refused-patch-body.test.ts). A zero-length write does see it at once (Linux checks the socket's error
 * before it copies anything), so the lane probes its paused source with one every PROBE_MS.
 */
import type { Socket } from 'node:net';
import { ByteQueue } from '../../core/wire/byte-queue.ts';
import type { RateLimiter } from './rate-limiter.ts';

const HIGH_WATER = 64 * 1024;
/** Largest single write: keeps one connection's slice small when several share a slow link. */
const MAX_SLICE = 16 * 1024;
/** How often a paused source is checked for a reset: about one tick of the rate limiter. */
const PROBE_MS = 10;
const NOTHING = Buffer.alloc(0);

/** What a lane needs from the proxy: the shared limit, the cut position, and where to report what crossed. */
export interface LaneLink {
  readonly limiter: RateLimiter;
  /** True while a cut is being carried out: nothing may cross until it is done. */
  frozen(): boolean;
  /** Bytes that may still cross before the next cut (Infinity when none is due or for downstream). */
  untilCut(): number;
  /** `n` bytes are handed to `dest`; returns true when they end exactly at the cut point. */
  issued(n: number): boolean;
  /** `n` bytes were accepted by the kernel for the other side. */
  crossed(n: number): void;
  /** The bytes before the cut point have gone out: break the link now. */
  cut(): void;
  /** Null, or the most bytes per write, one write per turn of the event loop (ChaosProxy.dribble). */
  dribble(): number | null;
}

export class Lane {
  readonly #source: Socket;
  readonly #dest: Socket;
  readonly #link: LaneLink;
  readonly #queue = new ByteQueue();
  #blocked = false;
  #ended = false;
  #stopped = false;
  /** When the last sliver went (ms, performance.now()), in dribble mode. */
  #lastSliver = 0;
  #probe: NodeJS.Timeout | null = null;

  constructor(source: Socket, dest: Socket, link: LaneLink) {
    this.#source = source;
    this.#dest = dest;
    this.#link = link;
  }

  get queued(): number {
    return this.#queue.length;
  }

  start(): void {
    this.#source.on('data', (chunk: Buffer) => {
      this.#queue.push(chunk);
      if (this.#queue.length >= HIGH_WATER) this.#pause();
      this.pump();
    });
    this.#source.on('end', () => {
      this.#ended = true;
      this.pump();
    });
    this.#source.resume();
  }

  /** Forgets queued bytes and ignores later wake-ups; the sockets themselves are the connection's to destroy. */
  stop(): void {
    this.#stopped = true;
    this.#stopProbing();
  }

  #pause(): void {
    this.#source.pause();
    this.#probe ??= setInterval(() => this.#probeSource(), PROBE_MS);
  }

  #stopProbing(): void {
    if (this.#probe !== null) clearInterval(this.#probe);
    this.#probe = null;
  }

  /** A reset fails the write, and the socket's 'error' breaks the connection (ProxiedConnection). */
  #probeSource(): void {
    // A socket whose write side is shut or still busy cannot be probed; its reset shows on the next read.
    if (this.#source.destroyed || this.#source.writableEnded || this.#source.writableLength > 0) return;
    this.#source.write(NOTHING);
  }

  pump(): void {
    if (this.#stopped) return;
    if (!this.#blocked) this.#forward();
    if (this.#stopped) return;
    if (this.#ended && this.#queue.length === 0 && !this.#blocked) {
      this.#dest.end();
      this.stop();
    } else if (!this.#ended && this.#queue.length < HIGH_WATER && this.#source.isPaused()) {
      this.#stopProbing();
      this.#source.resume();
    }
  }

  #forward(): void {
    while (this.#queue.length > 0) {
      if (this.#link.frozen()) return;
      const dribble = this.#link.dribble();
      if (dribble !== null && !this.#sliverDue(dribble)) return;
      const n = this.#link.limiter.grant(Math.min(this.#queue.length, dribble ?? MAX_SLICE, this.#link.untilCut()));
      if (n === 0) {
        this.#blocked = true;
        this.#link.limiter.wait(() => this.#unblock());
        return;
      }
      const atCut = this.#link.issued(n);
      const written = this.#dest.write(this.#queue.take(n), (err) => {
        if (err === undefined || err === null) this.#link.crossed(n);
        if (atCut) this.#link.cut();
      });
      if (atCut) {
        // The cut destroys this lane once the write is out; nothing after the cut point may follow it.
        this.stop();
        return;
      }
      if (!written) {
        this.#blocked = true;
        this.#dest.once('drain', () => this.#unblock());
        return;
      }
      if (dribble !== null) {
        this.#lastSliver = performance.now();
        this.#blocked = true;
        setImmediate(() => this.#unblock());
        return;
      }
    }
  }

  /**
   * Slivers go evenly spaced at the link's rate, one per turn of the event loop at most: written back to back, or in
   * a burst after a tick of the limiter, the kernel would join them and the server would read them as one. True
   * when the next one is due; otherwise it tries again on the next turn (the proxy's thread spins, as a line
   * delivering tiny segments keeps its receiver busy too).
   */
  #sliverDue(bytes: number): boolean {
    const rate = this.#link.limiter.rate;
    if (rate === null || performance.now() - this.#lastSliver >= (bytes / rate) * 1000) return true;
    this.#blocked = true;
    setImmediate(() => this.#unblock());
    return false;
  }

  #unblock(): void {
    this.#blocked = false;
    this.pump();
  }
}
