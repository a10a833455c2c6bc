/**
 * A TCP proxy for tests that throttles, cuts and counts, between a client and a server:
 *
 *   const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: server.port } });
 *   t.after(() => proxy.close());
 *   proxy.setRate({ upstream: 200_000, downstream: 1_000_000 });   // bytes/s, shared by all connections; null = free
 *   proxy.cutEvery(4 << 20);          // reset every connection each time 4 MiB more have gone upstream
 *   proxy.onCut((cut) => t.diagnostic(`cut #${proxy.stats().cuts} at ${cut.position}`));
 *   await push({ server: proxy.url });                              // https: `https://127.0.0.1:${proxy.port}`
 *   assert.ok(proxy.stats().upstreamBytes <= streamBytes + proxy.stats().cuts * frameBytes + overhead);
 * cutAfter(n) is one-shot, cutRandomly({ meanBytes, seed }) repeats at seeded random points, await cutNow() breaks
 * all now, refuse(true) resets new connections at once (the link is down), dribble(16) delivers upstream bytes a few at a time. Byte counts are what the kernel took for
 * the far end.
 *
 * The proxy runs in a worker thread, like a link that is not part of the program under test: on loopback a socket
 * write can keep the kernel busy for hundreds of milliseconds when the receiver lags, and in the test's own thread
 * that would stall the client and the server it is testing. Settings are messages (applied in order, before any
 * later connection's bytes); stats() reads shared memory the worker updates on every change.
 */
import { Worker } from 'node:worker_threads';
import { checkProxyOptions, type ChaosProxyOptions, type ChaosStats, type CutEvent, type RandomCuts, type RateSetting } from './proxy-core.ts';
import { STAT_FIELDS, type ProxyCommand, type ProxyEvent, type WorkerSetup } from './proxy-messages.ts';

export type { ChaosProxyOptions, ChaosStats, CutEvent, RandomCuts, RateSetting } from './proxy-core.ts';

type Counter = 'upstreamBytes' | 'downstreamBytes' | 'connections' | 'refused' | 'cuts' | 'clientResets';
const COUNTERS: readonly Counter[] = ['upstreamBytes', 'downstreamBytes', 'connections', 'refused', 'cuts', 'clientResets'];

export class ChaosProxy {
  readonly #worker: Worker;
  readonly #shared: Float64Array;
  readonly #cutListeners = new Set<(event: CutEvent) => void>();
  readonly #replies = new Map<number, (value: number) => void>();
  #nextId = 0;
  #baseline: Record<Counter, number> = { upstreamBytes: 0, downstreamBytes: 0, connections: 0, refused: 0, cuts: 0, clientResets: 0 };
  #closing: Promise<void> | null = null;

  private constructor(worker: Worker, shared: Float64Array, readonly host: string, readonly port: number) {
    this.#worker = worker;
    this.#shared = shared;
    worker.on('message', (event: ProxyEvent) => {
      if (event.type === 'cut') for (const listener of this.#cutListeners) listener(event.event);
      if (event.type === 'reply') {
        this.#replies.get(event.id)?.(event.value);
        this.#replies.delete(event.id);
      }
    });
  }

  static async start(options: ChaosProxyOptions): Promise<ChaosProxy> {
    const stats = new SharedArrayBuffer(STAT_FIELDS.length * Float64Array.BYTES_PER_ELEMENT);
    const setup: WorkerSetup = { options, stats };
    const worker = new Worker(new URL('./proxy-worker-boot.mjs', import.meta.url), { workerData: setup });
    const ready = await new Promise<ProxyEvent>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    if (ready.type !== 'listening') {
      await worker.terminate();
      throw new Error(`the chaos proxy did not start: ${ready.type === 'failed' ? ready.message : ready.type}`);
    }
    return new ChaosProxy(worker, new Float64Array(stats), ready.host, ready.port);
  }

  /** `http://HOST:PORT`; for TLS through the proxy use `https://` with the same host and port. */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** A number (or null) sets the upstream rate only; an object sets each direction it names. In bytes per second. */
  setRate(rate: RateSetting): void {
    this.#send({ type: 'setRate', rate });
  }

  /**
   * Upstream bytes go in writes of at most `bytes`, one per turn of the proxy's event loop, so the server reads them
   * a few bytes at a time: a line that delivers tiny segments (the rate limiter once did so by accident, and a frame
   * then reached the server in 220,000 pieces). Null: writes as large as the rate allows.
   */
  dribble(bytes: number | null): void {
    this.#send({ type: 'dribble', bytes });
  }

  /** One cut, once `bytes` more have gone upstream (null: cancel). Replaces any other cut schedule. */
  cutAfter(bytes: number | null): void {
    this.#send({ type: 'cutAfter', bytes });
  }

  /** A cut every `bytes` upstream bytes from now, until cutEvery(null). Replaces any other cut schedule. */
  cutEvery(bytes: number | null): void {
    this.#send({ type: 'cutEvery', bytes });
  }

  /** Cuts at seeded random distances (same seed, same positions) until cutRandomly(null). Replaces others. */
  cutRandomly(options: RandomCuts | null): void {
    this.#send({ type: 'cutRandomly', options });
  }

  /** Resets every live connection now; resolves to how many it broke. */
  cutNow(): Promise<number> {
    return this.#ask('cutNow');
  }

  /** While on, new connections are reset as soon as they are accepted (live ones are left alone: see cutNow). */
  refuse(on: boolean): void {
    this.#send({ type: 'refuse', on });
  }

  /** Resolves once the worker has applied every setting sent before. */
  async settled(): Promise<void> {
    await this.#ask('sync');
  }

  stats(): ChaosStats {
    const now = Object.fromEntries(STAT_FIELDS.map((field, i) => [field, this.#shared[i]!])) as unknown as ChaosStats;
    for (const counter of COUNTERS) now[counter] -= this.#baseline[counter];
    return now;
  }

  /** Counts from zero again (the gauges live and queuedBytes are not counts and stay). */
  resetStats(): void {
    STAT_FIELDS.forEach((field, i) => {
      if ((COUNTERS as readonly string[]).includes(field)) this.#baseline[field as Counter] = this.#shared[i]!;
    });
  }

  /** Calls `listener` after each cut; returns a function that unsubscribes it. */
  onCut(listener: (event: CutEvent) => void): () => void {
    this.#cutListeners.add(listener);
    return () => this.#cutListeners.delete(listener);
  }

  /** Stops listening, ends every connection and the worker. */
  close(): Promise<void> {
    this.#closing ??= this.#ask('close').then(async () => {
      await this.#worker.terminate();
    });
    return this.#closing;
  }

  #send(command: ProxyCommand): void {
    if (this.#closing === null) this.#worker.postMessage(command);
  }

  #ask(type: 'cutNow' | 'sync' | 'close'): Promise<number> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#replies.set(id, resolve);
      this.#worker.postMessage({ type, id } satisfies ProxyCommand);
    });
  }
}

export async function startChaosProxy(options: ChaosProxyOptions): Promise<ChaosProxy> {
  checkProxyOptions(options);
  return ChaosProxy.start(options);
}
