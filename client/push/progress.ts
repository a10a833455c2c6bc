/**
 * The figures of one snapshot's transfer, across all its attempts: raw and wire bytes uploaded, rates over a
 * sliding window, compression ratio, the stream's total and the ETA. It is told what happens (frames encoded, the
 * upload's offset) and hands each update to the Reporter, whose views decide how often to show it.
 *
 * An attempt that resumes starts at the server's offset: the bytes before it count in the totals but not in the
 * rates, which only count what this run moved (RateWindow.restartAt).
 */
import { FRAME_HEADER_SIZE, MAX_CHUNK_SIZE, type EncodedFrameInfo } from '../../core/wire/index.ts';
import { META } from '../../core/protocol.ts';
import { WireToRaw } from './wire-to-raw.ts';
import { EarlierRun, RateWindow, etaSeconds } from '../progress/math.ts';
import type { ProgressFigures } from '../progress/figures.ts';
import type { Reporter } from '../progress/report.ts';

export interface TransferProgressOptions {
  /** Bytes per PATCH at most: a retry goes back at most that far (plus a frame) behind the furthest offset sent. */
  patchBytes: number;
  /** Milliseconds, any origin. */
  now?: () => number;
  windowMs?: number;
}

export class TransferProgress {
  readonly #now: () => number;
  readonly #keepWireBytes: number;
  readonly #rawRate: RateWindow;
  readonly #wireRate: RateWindow;
  /** undefined: not estimated yet; null: the estimate failed. */
  #estimate: number | null | undefined;
  #exactTotal: number | null = null;
  #map: WireToRaw | null = null;
  #start = { wireOffset: 0, rawOffset: 0 };
  /** What the server held from an earlier run. */
  readonly #before = new EarlierRun();

  constructor(
    private readonly report: Reporter,
    readonly snapshot: string,
    options: TransferProgressOptions,
  ) {
    this.#now = options.now ?? (() => performance.now());
    // A PATCH ends on a frame boundary but holds at least one frame, so one frame may exceed patchBytes.
    this.#keepWireBytes = options.patchBytes + 2 * (MAX_CHUNK_SIZE + FRAME_HEADER_SIZE);
    this.#rawRate = new RateWindow(options.windowMs);
    this.#wireRate = new RateWindow(options.windowMs);
  }

  /** Whether setEstimate was called (it runs once per transfer, not per attempt). */
  get estimated(): boolean {
    return this.#estimate !== undefined;
  }

  /** The raw stream's estimated length, or null when it could not be estimated. */
  setEstimate(rawBytes: number | null): void {
    this.#estimate = rawBytes;
  }

  /** The estimate as upload metadata (META.rawEstimate), so the server's status can show progress too. */
  estimateMetadata(): Record<string, string> {
    return typeof this.#estimate === 'number' ? { [META.rawEstimate]: String(this.#estimate) } : {};
  }

  /** A new framed send is about to open: the frames that follow belong to it. */
  newAttempt(): void {
    this.#map = null;
  }

  /** The encoder's onFrame. The first frame of an attempt starts where the attempt does (the resume point). */
  readonly onFrame = (frame: EncodedFrameInfo): void => {
    const wireEnd = frame.wireOffset + frame.wireLength;
    // The end frame's rawOffset is the stream's total: from here on the total is known, not estimated.
    const rawEnd = frame.kind === 'end' ? frame.rawOffset : frame.rawOffset + frame.rawLength;
    if (frame.kind === 'end') this.#exactTotal = frame.rawOffset;
    this.#map ??= new WireToRaw({ wireEnd: frame.wireOffset, rawEnd: frame.rawOffset }, this.#keepWireBytes);
    this.#map.add({ wireEnd, rawEnd });
  };

  /** The upload goes on from `start` (0 for a new upload, the server's offset for a resumed one). */
  begin(start: { wireOffset: number; rawOffset: number }): void {
    const t = this.#now();
    this.#start = { wireOffset: start.wireOffset, rawOffset: start.rawOffset };
    this.#before.begin(start.wireOffset);
    this.#rawRate.restartAt(t, start.rawOffset);
    this.#wireRate.restartAt(t, start.wireOffset);
  }

  /** The upload's wire offset (tus-js-client's onProgress); reports the figures, and returns them. */
  uploaded(wireOffset: number): ProgressFigures {
    const figures = this.figures(wireOffset);
    this.report.progress(figures);
    return figures;
  }

  figures(wireOffset: number): ProgressFigures {
    const t = this.#now();
    const rawBytes = this.#map?.rawAt(wireOffset) ?? this.#start.rawOffset;
    this.#rawRate.observe(t, rawBytes);
    this.#wireRate.observe(t, wireOffset);
    const rawTotal = this.#exactTotal ?? this.#estimate ?? null;
    const rawBytesPerSecond = this.#rawRate.rate(t);
    return {
      snapshot: this.snapshot,
      direction: 'upload',
      rawBytes,
      wireBytes: wireOffset,
      wireBytesBefore: this.#before.of(wireOffset),
      rawTotal,
      rawTotalExact: this.#exactTotal !== null,
      rawBytesPerSecond,
      wireBytesPerSecond: this.#wireRate.rate(t),
      ratio: wireOffset > 0 ? rawBytes / wireOffset : null,
      etaSeconds: etaSeconds(rawTotal === null ? null : rawTotal - rawBytes, rawBytesPerSecond),
    };
  }
}
