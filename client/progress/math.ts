/**
 * The arithmetic behind the progress line, kept pure (times are passed in) so it is tested with a fake clock:
 * a rate over a sliding window, what an earlier run left, the ETA, and how durations read.
 */

/** Long enough to ride over the pauses between PATCH requests, short enough to follow a link that changes speed. */
export const RATE_WINDOW_MS = 15_000;
/** Less than this much history gives no rate yet: the first half second of an upload says nothing. */
export const MIN_RATE_SPAN_MS = 2_000;
/** A sample closer than this to the one two back is merged into the newest: at most 2 x window / this many kept. */
const SAMPLE_GAP_MS = 250;

interface Sample {
  t: number;
  /** Bytes moved since the window was created, never decreasing. */
  moved: number;
}

/**
 * Bytes per second over the last `windowMs`, from a position that may jump back (a retry resends from the server's
 * offset) or be set without moving (a resumed upload starts at the server's offset). Only forward movement counts,
 * so bytes sent twice count twice: the rate is what the link carries, which is what an ETA needs.
 */
export class RateWindow {
  #samples: Sample[] = [];
  #position: number | null = null;
  #moved = 0;

  constructor(
    readonly windowMs = RATE_WINDOW_MS,
    readonly minSpanMs = MIN_RATE_SPAN_MS,
  ) {}

  /** Goes on from `position` at time `t` without counting the way there (a resumed upload's skipped prefix). */
  restartAt(t: number, position: number): void {
    this.#position = position;
    this.#samples.push({ t, moved: this.#moved });
    this.#prune(t);
  }

  /** The position is now `position` at time `t`. */
  observe(t: number, position: number): void {
    if (this.#position !== null && position > this.#position) this.#moved += position - this.#position;
    this.#position = position;
    const last = this.#samples.at(-1);
    const beforeLast = this.#samples.at(-2);
    // The newest sample slides forward while samples come thick, so any two samples apart are SAMPLE_GAP_MS apart.
    if (last !== undefined && beforeLast !== undefined && t - beforeLast.t < SAMPLE_GAP_MS) {
      last.t = t;
      last.moved = this.#moved;
    } else {
      this.#samples.push({ t, moved: this.#moved });
    }
    this.#prune(t);
  }

  /** Bytes per second over the window ending at `now`; null until it spans `minSpanMs`. */
  rate(now: number): number | null {
    this.#prune(now);
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined) return null;
    const span = now - first.t;
    if (span < this.minSpanMs) return null;
    return ((last.moved - first.moved) * 1000) / span;
  }

  /** Samples held, for tests of the memory bound. */
  get sampleCount(): number {
    return this.#samples.length;
  }

  /** Drops samples older than the window, keeping the newest of those as the window's start. */
  #prune(now: number): void {
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop + 1 < this.#samples.length && this.#samples[drop + 1]!.t <= cutoff) drop++;
    if (drop > 0) this.#samples.splice(0, drop);
  }
}

/**
 * What an earlier run left of a transfer (a resumed upload's server offset, a restore's spool), to show apart from what
 * this run moved: only this run's first attempt says so, since a later one resumes from what this run moved itself.
 */
export class EarlierRun {
  #wireBytes: number | null = null;

  /** An attempt of this run starts at `wireOffset`. */
  begin(wireOffset: number): void {
    this.#wireBytes ??= wireOffset;
  }

  /** Of `wireBytes` now, what an earlier run left: capped, should a later attempt start lower than the first. */
  of(wireBytes: number): number {
    return Math.min(this.#wireBytes ?? 0, wireBytes);
  }
}

/** Seconds left at `bytesPerSecond` for what remains; null when either is unknown or nothing moves. */
export function etaSeconds(remaining: number | null, bytesPerSecond: number | null): number | null {
  if (remaining === null || bytesPerSecond === null || !(bytesPerSecond > 0)) return null;
  return Math.max(0, remaining) / bytesPerSecond;
}

/** "45s", "10m32s", "3h05m", "2d04h": two units at most, which is all an ETA can honestly claim. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** Lets an event through at most once per `everyMs` (a view's redraw rate). */
export class Every {
  #last: number;

  constructor(
    readonly everyMs: number,
    /** Time of the last pass; -Infinity lets the first event through at once. */
    last = Number.NEGATIVE_INFINITY,
  ) {
    this.#last = last;
  }

  /** Whether an event at `now` may pass; it counts as passed when it may. */
  pass(now: number): boolean {
    if (now - this.#last < this.everyMs) return false;
    this.#last = now;
    return true;
  }

  restart(last = Number.NEGATIVE_INFINITY): void {
    this.#last = last;
  }
}
