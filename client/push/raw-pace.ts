/**
 * How fast the push delivers raw stream bytes while it sends raw frames, and while it sends compressed ones: the test
 * of whether compressing pays on a fast line.
 *
 * The link meter (client/upload/link-meter.ts) measures wire bytes per second, which is the line's rate where the
 * line is the bound. On loopback or a LAN whose receiver shares the cores, the bound is the receiver's pace on raw
 * bytes, and a frame compressed to 0.68 does not go through any faster: the wire rate falls with the ratio and the
 * raw rate stays. Only the raw rate (raw stream bytes the server has, per second of wall time) says whether
 * compression gained anything, and it must be measured per kind of frame: the frames go out seconds after they are
 * framed, so the time a level was chosen says nothing about when its bytes crossed.
 *
 * So the frames are told here by raw offset (the chooser's `framed`, in stream order), and the upload's progress by
 * the raw offset the server has reached (`sent`, from the progress's wire-to-raw map). A kind's rate is taken over
 * the samples that fall inside its latest span that has been sent for long enough; a sample never spans two kinds.
 */

/** A kind's rate needs samples inside one span this far apart: less is socket buffers and timer noise. */
const MIN_MEASURE_MS = 500;
/**
 * Samples kept at most: beyond it every other one is dropped. A rate needs only the first and the last sample inside
 * a span, and a push that never changes kind would otherwise keep one per progress event (16 per MiB).
 */
const MAX_SAMPLES = 4096;
/** Spans kept (the latest of each kind is what counts). */
const KEEP_SPANS = 8;

interface Span {
  start: number;
  end: number;
  compressed: boolean;
}

interface Sample {
  at: number;
  raw: number;
}

export class RawPace {
  #spans: Span[] = [];
  #samples: Sample[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A frame the encoder made, in stream order: raw bytes [rawOffset, rawOffset + rawLength), compressed or not. */
  framed(rawOffset: number, rawLength: number, compressed: boolean): void {
    const last = this.#spans.at(-1);
    // A new stream, or a resumed attempt that frames again from the server's offset: what came before is another run.
    if (last && rawOffset < last.end) this.#spans = [];
    const tail = this.#spans.at(-1);
    if (tail && tail.compressed === compressed && tail.end === rawOffset) tail.end = rawOffset + rawLength;
    else this.#spans.push({ start: rawOffset, end: rawOffset + rawLength, compressed });
    if (this.#spans.length > KEEP_SPANS) this.#spans.shift();
  }

  /** The upload has reached raw offset `raw` of the stream. */
  sent(raw: number): void {
    const last = this.#samples.at(-1);
    if (last && raw < last.raw) this.#samples = [];
    this.#samples.push({ at: this.now(), raw });
    // Samples before the oldest span kept can no longer count.
    const oldest = this.#spans[0]?.start ?? 0;
    let drop = 0;
    while (drop < this.#samples.length - 1 && this.#samples[drop + 1]!.raw <= oldest) drop++;
    if (drop > 64) this.#samples = this.#samples.slice(drop);
    if (this.#samples.length > MAX_SAMPLES) this.#samples = this.#samples.filter((_, i, all) => i % 2 === 0 || i === all.length - 1);
  }

  /** A new upload attempt: the gap before it (a cut, a backoff) is no part of any rate. */
  restart(): void {
    this.#samples = [];
  }

  /**
   * Raw bytes per second delivered while frames of this kind went out (the latest span measured, among those that
   * start at `from` or later), or null.
   */
  rate(compressed: boolean, from = 0): number | null {
    for (let i = this.#spans.length - 1; i >= 0; i--) {
      const span = this.#spans[i]!;
      if (span.compressed !== compressed || span.start < from) continue;
      const rate = this.#over(this.#inside(span), 'whole');
      if (rate !== null) return rate;
    }
    return null;
  }

  /**
   * The latest span of compressed frames measured, beside the raw rate just before it and just after it: over the last
   * and the first MIN_MEASURE_MS of the raw frames on either side, each null while unmeasured or where no raw frames
   * adjoin it. Whole-span rates drift with the machine's load over a long span; these compare like with like.
   */
  compressedBetween(): { start: number; rate: number; before: number | null; after: number | null } | null {
    for (let i = this.#spans.length - 1; i >= 0; i--) {
      const span = this.#spans[i]!;
      if (!span.compressed) continue;
      const rate = this.#over(this.#inside(span), 'whole');
      if (rate === null) continue;
      const prev = this.#spans[i - 1];
      const next = this.#spans[i + 1];
      return {
        start: span.start,
        rate,
        before: prev && !prev.compressed && prev.end === span.start ? this.#over(this.#inside(prev), 'tail') : null,
        after: next && !next.compressed && next.start === span.end ? this.#over(this.#inside(next), 'head') : null,
      };
    }
    return null;
  }

  #inside(span: Span): Sample[] {
    return this.#samples.filter((s) => s.raw >= span.start && s.raw <= span.end);
  }

  /** The rate over all the samples, or over the first or the last MIN_MEASURE_MS of them; null with less time than that. */
  #over(inside: Sample[], part: 'whole' | 'head' | 'tail'): number | null {
    let first = inside[0];
    let last = inside.at(-1);
    if (!first || !last) return null;
    if (part === 'head') last = inside.find((s) => s.at - first!.at >= MIN_MEASURE_MS);
    if (part === 'tail') first = inside.findLast((s) => last!.at - s.at >= MIN_MEASURE_MS);
    if (!first || !last || last.at - first.at < MIN_MEASURE_MS) return null;
    return ((last.raw - first.raw) * 1000) / (last.at - first.at);
  }

  /** Samples kept, for tests of the memory bound. */
  get kept(): number {
    return this.#samples.length;
  }

  /** Where the frames told so far end: a span that starts later was framed after this call. */
  framedEnd(): number {
    return this.#spans.at(-1)?.end ?? 0;
  }

  /** Raw bytes framed after the latest span of this kind ended (all of them if there was none): how long ago it was. */
  framedSince(compressed: boolean): number {
    const end = this.#spans.at(-1)?.end ?? 0;
    for (let i = this.#spans.length - 1; i >= 0; i--) if (this.#spans[i]!.compressed === compressed) return end - this.#spans[i]!.end;
    return Infinity;
  }
}
