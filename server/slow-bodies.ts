/**
 * A request body that keeps trickling (a byte now and then, never quiet long enough for the idle timeout) would hold
 * its connection, and an upload's lock, for as long as its sender likes. Bodies slower than a floor, averaged over a
 * window, are ended the way the idle timeout ends a silent one: the socket is destroyed, the body's reader sees the
 * request aborted, and the store keeps every frame that verified and the part of the frame in flight
 * (server/spool/append.ts), so an honest client on a bad line resumes from there.
 *
 * The floor is far below any real line: 256 B/s is 2 kbit/s, a 48 kbit/s modem is over 20 times faster. The window
 * is at least twice the idle timeout, so one pause the idle timeout allows costs at most half the window: a line
 * that moves at twice the floor around such a pause is never cut.
 *
 * Both clocks, the floor's and the idle timeout's, count only the client's time. While the server holds bytes of the
 * body it has not read (the store waits for a receive behind on a slow disk, a loaded machine's write or sync), the
 * socket stops reading and no byte arrives, through no fault of the client's: that time restarts the floor's window
 * and the socket's idle timer instead of counting against them.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { ValidationError } from '../core/errors.ts';
import type { Logger } from './log.ts';

export interface BodyFloor {
  /** Slower than this, averaged over `windowMs`, a body is ended. */
  minBytesPerSecond: number;
  windowMs: number;
}

export const DEFAULT_MIN_BODY_RATE = 256;
export const DEFAULT_BODY_RATE_WINDOW_MS = 120_000;

/** The floor from config; a window left out grows to twice the idle timeout when that is longer than the default. */
export function bodyFloor(given: { minBytesPerSecond?: number; windowMs?: number }, idleTimeoutMs: number): Readonly<BodyFloor> {
  const minBytesPerSecond = given.minBytesPerSecond ?? DEFAULT_MIN_BODY_RATE;
  const windowMs = given.windowMs ?? Math.max(DEFAULT_BODY_RATE_WINDOW_MS, 2 * idleTimeoutMs);
  if (!Number.isSafeInteger(minBytesPerSecond) || minBytesPerSecond < 1) {
    throw new ValidationError(`connections.minBodyRate must be at least 1 byte per second, not ${minBytesPerSecond}`);
  }
  if (windowMs < 2 * idleTimeoutMs) {
    throw new ValidationError(
      `connections.bodyRateWindow (${windowMs / 1000}s) must be at least twice idleTimeout (${idleTimeoutMs / 1000}s): ` +
        'a shorter window would cut a body for a pause the idle timeout allows',
      { details: { windowMs, idleTimeoutMs } },
    );
  }
  return Object.freeze({ minBytesPerSecond, windowMs });
}

/**
 * The pure rule, on a clock and a byte counter that the caller reads: too slow once the body has run a whole window
 * and brought fewer than the floor's bytes over the last one.
 */
export class RateFloor {
  /** (time, bytes so far): the newest sample at least a window old, and all samples after it. */
  private readonly samples: { at: number; bytes: number }[];

  constructor(
    private readonly floor: BodyFloor,
    start: number,
  ) {
    this.samples = [{ at: start, bytes: 0 }];
  }

  /** `bytes`: all the body has brought since `start`. */
  tooSlow(now: number, bytes: number): boolean {
    this.samples.push({ at: now, bytes });
    const edge = now - this.floor.windowMs;
    while (this.samples.length > 1 && this.samples[1]!.at <= edge) this.samples.shift();
    const ref = this.samples[0]!;
    if (ref.at > edge) return false;
    return ((bytes - ref.bytes) * 1000) / (now - ref.at) < this.floor.minBytesPerSecond;
  }

  /** The server held the body back until `now` (bytes so far: `bytes`): only what comes after counts, a window of it. */
  heldUntil(now: number, bytes: number): void {
    this.samples.splice(0, this.samples.length, { at: now, bytes });
  }
}

/**
 * Whether the server holds bytes of `req`'s body that it has not read: buffered in the request (nobody reads yet, or
 * the reader is behind), or the reader paused it (server/upload-store/patch-body.ts pauses while its queue is full).
 * Then the socket reads nothing more, and a client that sends is not the one being slow.
 */
export function serverHoldsBody(req: IncomingMessage): boolean {
  return req.readableLength > 0 || req.readableFlowing === false;
}

/**
 * Watches the body of every request that has one, on one timer for all; a body below the floor is ended. Ticks at
 * least four times an idle timeout, so that a hold the server started is seen before the socket's timer runs out.
 */
export function endSlowBodies(server: HttpServer, floor: BodyFloor, idleMs: number, log: Logger): { stop(): void } {
  const reading = new Map<IncomingMessage, { rule: RateFloor; base: number }>();
  const tickMs = Math.max(50, Math.floor(Math.min(floor.windowMs / 10, idleMs / 4)));
  const timer = setInterval(() => {
    const now = Date.now();
    for (const [req, watch] of reading) {
      // bytesRead counts the socket's bytes, headers of this request included: a few hundred bytes, once.
      const bytes = req.socket.bytesRead - watch.base;
      if (serverHoldsBody(req)) {
        watch.rule.heldUntil(now, bytes);
        // Setting the timeout again starts its count again (the socket's own, whatever this request set it to).
        if (req.socket.timeout) req.socket.setTimeout(req.socket.timeout);
        continue;
      }
      if (!watch.rule.tooSlow(now, bytes)) continue;
      reading.delete(req);
      log.info({ method: req.method, url: req.url, minBytesPerSecond: floor.minBytesPerSecond, windowMs: floor.windowMs }, 'request body slower than the floor; ended');
      // As the idle timeout does (Node destroys a socket that timed out): the body's reader sees it aborted.
      req.socket.destroy();
    }
  }, tickMs);
  timer.unref();
  server.prependListener('request', (req: IncomingMessage) => {
    if (!hasBody(req)) return;
    reading.set(req, { rule: new RateFloor(floor, Date.now()), base: req.socket.bytesRead });
    const done = () => reading.delete(req);
    req.once('end', done);
    req.once('close', done);
  });
  return { stop: () => clearInterval(timer) };
}

function hasBody(req: IncomingMessage): boolean {
  const length = Number(req.headers['content-length'] ?? 0);
  return req.headers['transfer-encoding'] !== undefined || length > 0;
}
