/**
 * Where the next cut falls, as a position on the proxy's running count of upstream bytes (all connections
 * together, never reset): a link breaks for everything on it, whichever connection happened to be sending.
 */
import { ValidationError } from '../../core/errors.ts';
import { prng } from '../fixtures/prng.ts';

export type CutKind = 'after' | 'every' | 'random';

export interface RandomCuts {
  /** Mean distance between cuts in upstream bytes (distances are exponential: a link fails without memory). */
  meanBytes: number;
  seed: number | string;
  /** Smallest distance between cuts (default 1), so that a test can make sure each connection gets some work done. */
  minBytes?: number;
}

export class CutSchedule {
  #kind: CutKind | null = null;
  #at: number | null = null;
  #every = 0;
  #draw: (() => number) | null = null;

  /** The upstream position of the next cut, or null when none is due. */
  get nextAt(): number | null {
    return this.#at;
  }

  get kind(): CutKind | null {
    return this.#kind;
  }

  after(position: number, bytes: number): void {
    this.#set('after', position + positive(bytes, 'cutAfter'));
  }

  every(position: number, bytes: number): void {
    this.#every = positive(bytes, 'cutEvery');
    this.#set('every', position + this.#every);
  }

  random(position: number, options: RandomCuts): void {
    const mean = positive(options.meanBytes, 'cutRandomly meanBytes');
    const min = positive(options.minBytes ?? 1, 'cutRandomly minBytes');
    const random = prng(options.seed);
    // 1 - next() is in (0, 1], so the log is finite.
    this.#draw = () => Math.max(min, Math.round(-Math.log(1 - random.next()) * mean));
    this.#set('random', position + this.#draw());
  }

  clear(): void {
    this.#kind = null;
    this.#at = null;
    this.#draw = null;
  }

  /** The cut at nextAt has happened: moves to the next one (or to none, for a one-shot cut). */
  advance(): void {
    if (this.#at === null) return;
    if (this.#kind === 'every') this.#at += this.#every;
    else if (this.#kind === 'random' && this.#draw !== null) this.#at += this.#draw();
    else this.clear();
  }

  #set(kind: CutKind, at: number): void {
    this.#kind = kind;
    this.#at = at;
  }
}

function positive(bytes: number, what: string): number {
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new ValidationError(`${what} needs a whole number of bytes >= 1, not ${bytes}`, { details: { bytes } });
  }
  return bytes;
}
