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

  constructor(private readonly now: () => number = Date.now) {}

  /** A new upload attempt begins: its counters start afresh, and the gap before it is not link time. */
  restart(): void {
    this.#last = null;
    this.#idleSince = null;
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
    this.#last = { sent, waited: waitedMs };
    this.#idleSince = null;
    this.#samples.push({ at, sent: this.#sent, waited: this.#waited });
    while (this.#samples.length > 2 && at - this.#samples[1]!.at >= WINDOW_MS) this.#samples.shift();
  }

  /** Wire bytes per second while the link had something to send, or null until that is known. */
  rate(): number | null {
    return this.#measured() ?? this.#before;
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
