/**
 * @tus/server's per-upload lock, granted in the order the requests of an upload reached our route, not the order they
 * reached the lock. Between the two a request may wait on the store (an archive PATCH asks the bucket whose lease the
 * upload is under, server/archive/archive-service.ts noteUploadRequest; a HEAD asks nothing), so with tus's
 * MemoryLocker the HEAD a client sends after a cut could take the lock first, read the offset before the cut PATCH
 * (its body still in socket buffers) had written a byte, and the PATCH then wrote its frames: the client's next PATCH
 * from the HEAD's offset crossed until offset_mismatch (test/e2e/archive-serve.test.ts, the cut case). The store's
 * own mutex (server/spool/mutex.ts) orders only requests already in it.
 *
 * A request that arrived earlier and has not yet taken the lock keeps later ones waiting until it has taken and
 * released it, or left (its route's finally: refused before tus, or tus never asked for the lock). As MemoryLocker,
 * a waiter asks the holder to let go (tus's cancel: it stops reading after lockDrainTimeout), and gives up with
 * ERR_LOCK_TIMEOUT after `timeoutMs`.
 */

/** @tus/utils's Locker, Lock and RequestRelease, as tus calls them (only tus-server.ts imports @tus/*). */
type RequestRelease = () => Promise<void> | void;
export interface Lock {
  lock(signal: AbortSignal, release: RequestRelease): Promise<void>;
  unlock(): Promise<void>;
}
export interface Locker {
  newLock(id: string): Lock;
}

interface Place {
  id: string;
  /** The tus lock is this request's now. */
  holding: boolean;
  release?: RequestRelease;
}

export class ArrivalLocker {
  /** Per upload, the requests that arrived and still go before a later one: in arrival order. */
  private readonly lines = new Map<string, Place[]>();
  private readonly places = new WeakMap<Request, Place>();
  private readonly wakers = new Map<string, Set<() => void>>();

  constructor(
    /** What a waiter that gave up throws (tus's ERR_LOCK_TIMEOUT, which tus-server.ts answers as transfer_locked). */
    private readonly timedOut: () => unknown,
    private readonly timeoutMs = 30_000,
  ) {}

  /** `req` (on upload `id`) arrived: it goes before every later request of the upload. Call the result when it ends. */
  arrive(req: Request, id: string): () => void {
    const place: Place = { id, holding: false };
    this.places.set(req, place);
    this.lineOf(id).push(place);
    return () => this.leave(place);
  }

  /** The Locker @tus/server asks for `req`'s lock (its `locker` option, a function of the request). */
  lockerFor(req: Request): Locker {
    return { newLock: (id) => this.lockOf(req, id) };
  }

  private lockOf(req: Request, id: string): Lock {
    let place: Place | undefined;
    return {
      lock: async (stop, release) => {
        const arrived = this.places.get(req);
        // A request our route did not see (a creation with its upload) queues from here.
        place = arrived?.id === id ? arrived : { id, holding: false };
        const line = this.lineOf(id);
        if (!line.includes(place)) line.push(place);
        await this.waitTurn(place, stop);
        place.holding = true;
        place.release = release;
        // The ones waiting behind it ask it to let go.
        this.wake(id);
      },
      unlock: () => {
        if (place?.holding !== true) return Promise.reject(new Error('Releasing an unlocked lock!'));
        this.leave(place);
        return Promise.resolve();
      },
    };
  }

  /** Resolves once every request before `place` has gone; asks a holder ahead to let go, as MemoryLocker does. */
  private waitTurn(place: Place, stop: AbortSignal): Promise<void> {
    const line = this.lineOf(place.id);
    if (line[0] === place) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const asked = new Set<Place>();
      const check = () => {
        const ahead = this.lines.get(place.id) ?? [];
        if (ahead[0] === place) return done(null);
        for (const p of ahead) {
          if (p === place) break;
          if (p.holding && !asked.has(p)) {
            asked.add(p);
            void Promise.resolve(p.release?.()).catch(() => undefined);
          }
        }
      };
      const wakers = this.wakersOf(place.id);
      const timer = setTimeout(() => done(this.timedOut()), this.timeoutMs);
      const onStop = () => done(this.timedOut());
      const done = (err: unknown) => {
        clearTimeout(timer);
        stop.removeEventListener('abort', onStop);
        wakers.delete(check);
        if (wakers.size === 0) this.wakers.delete(place.id);
        if (err === null) return resolve();
        // A waiter that gives up leaves no place behind to hold up the ones after it.
        this.leave(place);
        reject(err);
      };
      if (stop.aborted) return onStop();
      stop.addEventListener('abort', onStop, { once: true });
      wakers.add(check);
      check();
    });
  }

  private leave(place: Place): void {
    place.holding = false;
    const line = this.lines.get(place.id);
    if (!line) return;
    const at = line.indexOf(place);
    if (at < 0) return;
    line.splice(at, 1);
    if (line.length === 0) this.lines.delete(place.id);
    this.wake(place.id);
  }

  private wake(id: string): void {
    for (const check of [...(this.wakers.get(id) ?? [])]) check();
  }

  private lineOf(id: string): Place[] {
    let line = this.lines.get(id);
    if (!line) this.lines.set(id, (line = []));
    return line;
  }

  private wakersOf(id: string): Set<() => void> {
    let set = this.wakers.get(id);
    if (!set) this.wakers.set(id, (set = new Set()));
    return set;
  }
}
