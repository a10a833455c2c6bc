/**
 * The figures of one restore's download for the Reporter (client/progress/report.ts), across all its attempts. Raw bytes are
 * those of verified frames; wire bytes include what has come of the frame in flight, so a slow link's long frames
 * still move the line. Bytes already spooled before this run count in the totals, not in the rates.
 */
import type { FrameParserState } from '../../core/wire/index.ts';
import { EarlierRun, RateWindow, etaSeconds } from '../progress/math.ts';
import type { ProgressFigures } from '../progress/figures.ts';
import type { Reporter } from '../progress/report.ts';

export class RestoreProgress {
  readonly #now: () => number;
  readonly #rawRate = new RateWindow();
  readonly #wireRate = new RateWindow();
  /** The spool's verified bytes downloaded by an earlier run. */
  readonly #before = new EarlierRun();

  constructor(
    private readonly report: Reporter,
    readonly snapshot: string,
    /** The raw stream's expected length, or null when unknown. */
    private readonly estimate: number | null,
    now: () => number = () => performance.now(),
  ) {
    this.#now = now;
  }

  /** An attempt starts from `state` (the spool's verified frames): the way there is not counted as moved. */
  begin(state: FrameParserState): void {
    const t = this.#now();
    this.#rawRate.restartAt(t, state.rawOffset);
    this.#wireRate.restartAt(t, state.wireOffsetVerified);
    this.#before.begin(state.wireOffsetVerified);
  }

  update(state: FrameParserState, pendingBytes: number): void {
    this.report.progress(this.figures(state, pendingBytes));
  }

  figures(state: FrameParserState, pendingBytes: number): ProgressFigures {
    const t = this.#now();
    const rawBytes = state.rawOffset;
    const wireBytes = state.wireOffsetVerified + pendingBytes;
    this.#rawRate.observe(t, rawBytes);
    this.#wireRate.observe(t, wireBytes);
    // The end frame carries the total: from there on it is exact.
    const rawTotal = state.ended ? state.rawOffset : this.estimate;
    const rawBytesPerSecond = this.#rawRate.rate(t);
    return {
      snapshot: this.snapshot,
      direction: 'download',
      rawBytes,
      wireBytes,
      wireBytesBefore: this.#before.of(wireBytes),
      rawTotal,
      rawTotalExact: state.ended,
      rawBytesPerSecond,
      wireBytesPerSecond: this.#wireRate.rate(t),
      ratio: state.wireOffsetVerified > 0 ? rawBytes / state.wireOffsetVerified : null,
      etaSeconds: etaSeconds(rawTotal === null ? null : rawTotal - rawBytes, rawBytesPerSecond),
    };
  }
}
