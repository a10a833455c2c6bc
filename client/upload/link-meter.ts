/**
 * How fast the link carries bytes when it has something to carry. The upload's own rate is not that: on a LAN the
 * upload waits for frames most of the time, and its rate is then the compressor's. So the time the upload spent
 * waiting for frames (FramedUploadSource.waitedMs) is taken out, and what is left is the link's.
 *
 * After a cut the new attempt measures afresh, and until it has, the rate is the one the attempt before measured:
 * the line is the same line. Forgetting it left `--compress auto` blind after every cut on a slow link, framing the
 * attempt's first frames at whatever level it had (in the bench's slow-link push, level 3 up to the fourth cut).
 *
 * Nor is the time the upload waits for the server the link's: from a request's answer to the next request's first
 * bytes nothing of the upload's is offered to it (a retry's delay, its HEAD), and a request the server refused (a 507
 * while its disk is full, after btrfs looked hard for the space) was waited on from its last bytes offered. Counted, a
 * push that waited out a full disk read its loopback at a few MB/s or less once the disk was freed, and `--compress
 * auto` framed what followed at level 19.
 */

/** Measure over about this much recent time, so the rate follows a link that changes. */
const WINDOW_MS = 20_000;
/**
 * No rate before the window spans this long, nor with less time than this spent sending in it: the first bytes of
 * an upload fill socket buffers at memory speed and say nothing about the link. On a LAN most of the window is
 * waiting for frames, so the busy time asked for is short.
 */
const MIN_SPAN_MS = 2_000;
const MIN_BUSY_MS = 300;
/**
 * Until then, bytes the server has acknowledged give a rate that socket buffers cannot inflate: they crossed the
 * line, in at most the time from the attempt's first bytes to the answer. It is a lower bound (the server's own work
 * and the round trip are in it: a first PATCH on a busy machine read 3-4 MB/s of a loopback that carried 30-60), so
 * it can show a line fast and never slow: it counts only at EARLY_MIN_RATE or more, from this many bytes and this
 * much busy time. On a LAN the first PATCH's answer comes a fraction of a second in, where `--compress auto`
 * otherwise framed 2 s of the stream blind (25 frames at level 3 on loopback); a slower line waits for the window.
 */
const EARLY_MIN_BYTES = 1 << 20;
const EARLY_MIN_BUSY_MS = 50;
/**
 * 20 MB/s (160 Mbit/s): five times what `--compress auto` needs to start its raw-rate test (PACE_MIN_LINK, 4 MB/s),
 * the margin against a late first answer, which read 3-4 MB/s of a 30-60 MB/s loopback. The bound chooses no level.
 */
const EARLY_MIN_RATE = 20e6;

interface Sample {
  at: number;
  sent: number;
  waited: number;
}

export class LinkMeter {
  readonly #samples: Sample[] = [];
  /** The rate an earlier attempt measured last, until this attempt's own is known. */
  #before: number | null = null;
  #sent = 0;
  #waited = 0;
  /** The attempt's own counters at the last sample; null right after restart(). */
  #last: { sent: number; waited: number } | null = null;
  /** Since when, and with how much waited for frames then, the line has had nothing offered (idle()); else null. */
  #idleSince: { at: number; waited: number } | null = null;
  /** The attempt's first sample, as `progress` was given it (its offset and waiting are the attempt's own). */
  #attemptStart: { at: number; sent: number; waited: number } | null = null;
  /** The attempt's rate from acknowledged bytes, until its window gives one. */
  #early: number | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** A new upload attempt begins: its counters start afresh, and the gap before it is not link time. */
  restart(): void {
    this.#last = null;
    this.#idleSince = null;
    this.#attemptStart = null;
    this.#early = null;
  }

  /**
   * The server has this attempt's upload up to `offset` (an accepted request's answer, in the units `progress` is
   * given), having waited `waitedMs` for frames so far.
   */
  acknowledged(offset: number, waitedMs: number): void {
    const start = this.#attemptStart;
    if (start === null) return;
    const bytes = offset - start.sent;
    const busy = this.now() - start.at - Math.max(0, waitedMs - start.waited);
    if (bytes < EARLY_MIN_BYTES || busy < EARLY_MIN_BUSY_MS) return;
    const rate = (bytes * 1000) / busy;
    if (rate >= EARLY_MIN_RATE) this.#early = rate;
  }

  /**
   * A request's answer came (`waitedMs` as progress's): until the next bytes are offered, the line carries nothing of
   * the upload's, and the time is neither busy nor waiting for frames. `refused` (an error status): the time since its
   * last bytes were offered was the server's too, not the line's; an accepted request's was the line's, draining the
   * socket buffers that a slow line holds tens of seconds of.
   */
  answered(waitedMs: number, refused: boolean): void {
    if (this.#idleSince !== null) return;
    const last = this.#samples.at(-1);
    this.#idleSince = refused && this.#last !== null && last !== undefined ? { at: last.at, waited: this.#last.waited } : { at: this.now(), waited: waitedMs };
  }

  /** `sent`: bytes the attempt has sent so far; `waitedMs`: time it has waited for frames so far. */
  progress(sent: number, waitedMs: number): void {
    const at = this.now();
    if (this.#last !== null) {
      this.#sent += Math.max(0, sent - this.#last.sent);
      this.#waited += Math.max(0, waitedMs - this.#last.waited);
      // Idle time is taken out as waiting is, less the waiting for frames within it, which is counted already.
      const idle = this.#idleSince;
      if (idle !== null) this.#waited += Math.max(0, at - idle.at - Math.max(0, waitedMs - idle.waited));
    } else if (this.#samples.length > 0) {
      // Time between attempts (a cut, a backoff) is neither busy nor waiting: start the window over.
      this.#before = this.rate();
      this.#samples.length = 0;
    }
    this.#attemptStart ??= { at, sent, waited: waitedMs };
    this.#last = { sent, waited: waitedMs };
    this.#idleSince = null;
    this.#samples.push({ at, sent: this.#sent, waited: this.#waited });
    while (this.#samples.length > 2 && at - this.#samples[1]!.at >= WINDOW_MS) this.#samples.shift();
  }

  /** Wire bytes per second while the link had something to send, or null until that is known. */
  rate(): number | null {
    return this.#measured() ?? this.#before;
  }

  /**
   * Until rate() is known, what the server's answers prove the line carries at least (wire bytes/s), or null. A
   * lower bound shows a line fast, never which level pays on it: with it taken for the rate, auto climbed to level 4
   * on loopback ("the link carries 28.2 MB/s") and started a second worker before its raw frames were measured.
   */
  atLeast(): number | null {
    return this.rate() ?? this.#early;
  }

  /** This attempt's own measure, or null until its window is long and busy enough. */
  #measured(): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || first === last) return null;
    const span = last.at - first.at;
    const busy = span - (last.waited - first.waited);
    if (span < MIN_SPAN_MS || busy < MIN_BUSY_MS) return null;
    return ((last.sent - first.sent) * 1000) / busy;
  }
}
