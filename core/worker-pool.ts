/**
 * Worker threads that answer requests by id, shared by the frame compressor (core/wire/compression-pool.ts) and the
 * tree digest's hasher (core/tree-digest/hash-pool.ts). A job goes to an idle worker, or a new one while the pool is
 * below its size, else the least busy; answers come back in any order. Workers are unref'd while idle, so an open
 * pool never keeps a finished process alive. One worker's error or unasked exit fails every job in flight and every
 * later one: the pool's owner sees the cause instead of a job that never settles.
 */
import { Worker, type Transferable } from 'node:worker_threads';

interface Slot {
  worker: Worker;
  busy: number;
}

interface Pending<T, C> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
  slot: Slot;
  context: C;
}

export interface WorkerPoolOptions<Res, T, C> {
  /** The worker's module: plain JavaScript, started without the main thread's loaders. */
  url: URL;
  size: number;
  /** What a worker is called when it exits unasked ("a hashing worker exited with code 1"). */
  name: string;
  /** Turns a worker's answer into the job's result, or throws the job's error. */
  settle: (res: Res, context: C) => T;
}

export class WorkerPool<Req extends { id: number }, Res extends { id: number }, T, C = undefined> {
  readonly size: number;
  readonly #options: WorkerPoolOptions<Res, T, C>;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending<T, C>>();
  #nextId = 0;
  #failure: Error | null = null;

  constructor(options: WorkerPoolOptions<Res, T, C>) {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`pool size must be >= 1, got ${options.size}`);
    this.size = options.size;
    this.#options = options;
  }

  /**
   * Sends `request` (its id added here) to a worker; `transfer` moves memory to it instead of copying. `spread` is how
   * many workers the job may go to (default: all of the pool's size): a worker is started only when a job may use it.
   */
  run(request: Omit<Req, 'id'>, context: C, transfer: readonly Transferable[] = [], spread = this.size): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    const slot = this.#leastBusy(Math.max(1, Math.min(spread, this.size)));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, slot, context });
      if (slot.busy++ === 0) slot.worker.ref();
      slot.worker.postMessage({ ...request, id }, transfer);
    });
  }

  /** Workers running now (at most size; fewer where no job was let spread to more). */
  get started(): number {
    return this.#slots.length;
  }

  /**
   * Stops the idle workers beyond the first `keep`, so their memory goes back; a later job that may go to them starts
   * them again. A busy one is left running (a later call stops it).
   */
  retireBeyond(keep: number): void {
    for (const slot of this.#slots.slice(keep)) {
      if (slot.busy > 0) continue;
      // Out of the list first: its exit is asked for, not a failure (see #spawn).
      this.#slots.splice(this.#slots.indexOf(slot), 1);
      void slot.worker.terminate();
    }
  }

  /** Stops the workers; jobs still running, and later ones, reject with `reason`. */
  async close(reason: Error): Promise<void> {
    this.#fail(reason);
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }

  /** The least busy of the first `spread` workers, started if it is not yet running and none of them is idle. */
  #leastBusy(spread: number): Slot {
    const slots = this.#slots.slice(0, spread);
    if (slots.length < spread) {
      const idle = slots.find((s) => s.busy === 0);
      if (idle) return idle;
      return this.#spawn();
    }
    return slots.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  #spawn(): Slot {
    // Plain JavaScript, without the main thread's loaders: a worker that loads tsx costs a second and 30 MB.
    const worker = new Worker(this.#options.url, { execArgv: [] });
    const slot: Slot = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (res: Res) => this.#settle(res));
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => {
      if (this.#slots.includes(slot)) this.#fail(new Error(`${this.#options.name} exited with code ${code}`));
    });
    this.#slots.push(slot);
    return slot;
  }

  #settle(res: Res): void {
    const job = this.#pending.get(res.id);
    if (!job) return;
    this.#pending.delete(res.id);
    if (--job.slot.busy === 0) job.slot.worker.unref();
    let value: T;
    try {
      value = this.#options.settle(res, job.context);
    } catch (err) {
      job.reject(err as Error);
      return;
    }
    job.resolve(value);
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const [id, job] of this.#pending) {
      this.#pending.delete(id);
      job.reject(err);
    }
  }
}
