/**
 * The figures of one verify while both sides digest: the local snapshot here, the server's copy there (its job's
 * progress, asked for once a second). The rate and ETA are those of the side that will finish last.
 */
import { RateWindow, etaSeconds } from '../progress/math.ts';

export interface SideFigures {
  bytes: number;
  total: number | null;
  done: boolean;
}

export interface VerifyFigures {
  snapshot: string;
  local: SideFigures;
  server: SideFigures;
  /** Bytes per second of the slower side still at work; null before there is a rate. */
  bytesPerSecond: number | null;
  etaSeconds: number | null;
}

export class VerifyProgress {
  readonly #local = new RateWindow();
  readonly #server = new RateWindow();
  local: SideFigures = { bytes: 0, total: null, done: false };
  server: SideFigures = { bytes: 0, total: null, done: false };

  constructor(
    readonly snapshot: string,
    private readonly now: () => number = () => performance.now(),
  ) {}

  figures(): VerifyFigures {
    const t = this.now();
    this.#local.observe(t, this.local.bytes);
    this.#server.observe(t, this.server.bytes);
    const sides = [
      { side: this.local, rate: this.#local.rate(t) },
      { side: this.server, rate: this.#server.rate(t) },
    ].filter((s) => !s.side.done);
    const etas = sides.map((s) => etaSeconds(s.side.total === null ? null : s.side.total - s.side.bytes, s.rate));
    const eta = etas.length > 0 && etas.every((e) => e !== null) ? Math.max(...(etas as number[])) : null;
    const slowest = sides.map((s) => s.rate).filter((r): r is number => r !== null);
    return {
      snapshot: this.snapshot, local: { ...this.local }, server: { ...this.server },
      bytesPerSecond: slowest.length > 0 ? Math.min(...slowest) : null,
      etaSeconds: sides.length === 0 ? 0 : eta,
    };
  }
}
