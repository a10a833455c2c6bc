/**
 * `--compress auto`: the highest zstd level whose speed stays well ahead of the link. On 2 Mbit/s even level 19
 * outruns the line, and every byte it saves is time saved; on a LAN zstd itself becomes the bottleneck, and level 1
 * or no compression at all is faster end to end.
 *
 * It learns two things as the push goes: how fast this machine compresses this data at each level it has tried
 * (raw bytes per second per worker, from the frames themselves), and how fast the link carries bytes when it has
 * something to carry (client/upload/link-meter.ts). Untried levels are estimated from the nearest tried one with
 * zstd's usual speed ratios. Once every worker has brought back a frame at the current level, it climbs: straight to
 * the highest level the estimate puts far ahead of the line (MARGIN_JUMP: the ratios are far off on some data, random
 * data at level 19 runs several times slower than they say), else one level up if that one is ahead. A level that
 * turns out slower than the line is left at once, for the highest one whose measure or estimate keeps ahead. A seed
 * on a slow line is days long, but the bench's slow-link stream is eleven frames: climbing one level per few frames
 * (as before) left it at level 4.
 *
 * The cores: every worker, less what the rest of the push (btrfs send, the stream check, hashing, HTTP) takes at the
 * raw rate the line carries. On 2 Mbit/s that is a hundredth of a core, and the compressor gets every worker; on a LAN
 * it is most of one core.
 *
 * Keeping ahead is not enough on a fast line: there a level pays for little line time with much CPU, and on a LAN
 * the "link" is mostly the receiver's pace, which the compressor slows down when both share cores (the bench's LAN
 * push climbed to level 15 at 30 MB/s and ran at 0.4x the speed of level 1). So where the transfer
 * itself is heavy (more than a tenth of a core of other work at the line's raw rate, LIGHT_TRANSFER_CORES), a level
 * above 1 must also pay for itself: the line time it saves against level 1 must be at least the CPU time it costs
 * beyond level 1 on one core. On a slow line nothing competes for the spare cores, and the highest level that keeps
 * ahead on them is taken for the bytes it saves: on the bench's mixed data level 19 saves 3% against level 3 for 100
 * times the CPU, a trade the CPU test alone refuses, and the line then carries for days. The same test decides between level 1 and no compression at all.
 *
 * The tests above take the line's bound to be on wire bytes. On loopback, or a LAN whose receiver shares the cores,
 * it is the receiver's pace on raw bytes, and compressed frames save no time at all. So on a line faster than
 * PACE_MIN_LINK compression must also raise the rate the raw stream goes through, measured per kind of frame
 * (client/push/raw-pace.ts), with probes of the kind not in use (docs/performance.md, "`--compress auto` on a fast
 * line: compression must raise the raw rate").
 */
import type { CompressionSample, LevelChooser } from '../../core/wire/index.ts';
import { NO_COMPRESSION } from '../../core/wire/index.ts';
import type { RawPace } from './raw-pace.ts';

/** The levels auto moves between; 0 is "no compression". */
export const AUTO_LEVELS = [NO_COMPRESSION, 1, 2, 3, 4, 6, 9, 12, 15, 19] as const;

/** zstd's compression speed relative to level 3 (its own benchmarks on silesia, rounded down a little). */
const RELATIVE_SPEED: Readonly<Record<number, number>> = { 1: 1.5, 2: 1.2, 3: 1, 4: 0.8, 6: 0.45, 9: 0.3, 12: 0.12, 15: 0.06, 19: 0.012 };
/**
 * zstd's compressed size relative to level 3 (silesia; on the bench's mixed data levels 12, 15, 19 made 0.314,
 * 0.302, 0.284 of the raw size): an untried level's ratio is estimated from the nearest tried one with these, so that
 * the line time a level would save can be weighed before it is tried.
 */
const RELATIVE_SIZE: Readonly<Record<number, number>> = { 1: 1.1, 2: 1.05, 3: 1, 4: 0.99, 6: 0.95, 9: 0.92, 12: 0.9, 15: 0.87, 19: 0.83 };

/** A level is chosen only when the workers can compress this many times faster than the link carries. */
const MARGIN_UP = 2;
/** ... and kept while they stay this much ahead, so the choice does not flap on noise. */
const MARGIN_KEEP = 1.3;
/** More than one step above the current level only when its estimate is this far ahead. */
const MARGIN_JUMP = 4;
/**
 * Where the rest of the transfer keeps at most this share of one core busy (client side, at the raw rate the line
 * takes: 16 MB/s raw at 6 s/GB), compression's CPU competes with nothing and need not pay for itself: the line is
 * the bound, and the spare cores would idle. On a LAN the transfer's own work (and a receiver that may share the
 * cores) is what compression would slow down.
 */
const LIGHT_TRANSFER_CORES = 0.1;
/**
 * CPU seconds per raw byte the rest of a push takes on the client (btrfs send, the stream check, SHA-256, framing,
 * HTTP): about 6 s/GB without compression (docs/performance.md, "Client CPU per GB"). At most one core of it is
 * taken from the workers.
 */
const OTHER_CPU_PER_RAW_BYTE = 6e-9;
const START_LEVEL = 3;
/**
 * The raw-rate test (RawPace) runs only on lines measured faster than this (wire bytes/s, 32 Mbit/s). Below it the
 * line is the bound by far (compression raises the raw rate by 1/ratio there) and a probe of raw frames would cost
 * seconds of line time each: on 2 Mbit/s eight raw 4 MiB frames take 45 s more than compressed ones.
 */
const PACE_MIN_LINK = 4e6;
/** Compressing pays on a fast line only where it raises the raw rate by more than this (the noise of the measure). */
const PACE_GAIN = 1.2;
/**
 * A probe of the other kind of frames lasts until RawPace has measured it (its frames went out for MIN_MEASURE_MS
 * there; the pipeline's buffers lie in between, so more frames are framed than that), and at most this many frames.
 * A probe of a fixed number of frames was either unmeasured (8 frames went through loopback in 0.35 s) or followed
 * by as many frames of the old kind while its measure was still on the way (about half the stream, on loopback).
 */
const PROBE_MAX_FRAMES = 64;
/** The kind not in use is probed again after this many probes' worth of frames; doubled each time, up to the max. */
const PROBE_GAP_FIRST = 4;
const PROBE_GAP_MAX = 64;
/** EWMA weight of the newest frame. */
const ALPHA = 0.2;
/** Frames at the current level, per worker, before a step up is considered. */
const FRAMES_BEFORE_STEP_UP = 1;
/**
 * At or above this ratio at the current level (zstd kept the frames raw, or all but), the data has nothing a higher
 * level would find: random, encrypted or already compressed bytes. zstd's usual ratios, which the estimate of an
 * untried level scales by, hold for data that compresses; on these bytes a climb to level 19 on a slow line made the
 * same bytes with every spare core busy (an explorer's push of random data at 4 MB/s: level 19, ratio 1.00).
 */
const NOTHING_TO_FIND = 0.995;

interface LevelStats {
  /** Raw bytes per second on one worker. */
  speed: number;
  /** Wire payload bytes per raw byte. */
  ratio: number;
}

export interface AutoLevelOptions {
  /** Compression workers (the pool's size). */
  workers: number;
  /** The link's rate in wire bytes per second while it had something to send, or null before it is known. */
  linkRate: () => number | null;
  /**
   * Before linkRate is known, what the line carries at least (LinkMeter.atLeast), or null: a line shown fast this way
   * gets the raw-rate test at once, at the level it has; no level is chosen on a lower bound.
   */
  linkAtLeast?: () => number | null;
  /** Called when the level changes, for the push's log. */
  onChange?: (level: number, why: string) => void;
  /**
   * The raw rate with and without compression (client/push/raw-pace.ts). Without it, the wire rate alone decides;
   * with it, on a fast line, compression must also raise the raw rate to be used.
   */
  pace?: RawPace;
}

export class AutoLevel implements LevelChooser {
  readonly #stats = new Map<number, LevelStats>();
  readonly #options: AutoLevelOptions;
  #level = START_LEVEL;
  /** Frames that came back at the current level since it was chosen. */
  #seenAtLevel = 0;
  /** The raw-rate test's verdict: raw frames deliver as many raw bytes per second as compressed ones. */
  #rawWins = false;
  /** The probe under way: which kind, from which raw offset its span starts, frames framed so far. */
  #probe: { compressed: boolean; from: number; frames: number } | null = null;
  /** Where the span of compressed frames last judged against the raw frames beside it starts. */
  #judged: number | null = null;
  /** Raw bytes the last probe took. */
  #probeBytes = 0;
  #probeGap = PROBE_GAP_FIRST;
  /** Raw bytes of the latest frame observed (the chunk size). */
  #chunk = 0;

  constructor(options: AutoLevelOptions) {
    this.#options = options;
  }

  get level(): number {
    return this.#level;
  }

  next(): number {
    const link = this.#options.linkRate();
    if (link === null || link <= 0 || this.#stats.size === 0) {
      const atLeast = this.#options.linkAtLeast?.() ?? null;
      return atLeast !== null && atLeast >= PACE_MIN_LINK ? this.#paced(atLeast) : this.#level;
    }
    const chosen = this.#choose(link);
    if (chosen !== this.#level) {
      this.#seenAtLevel = 0;
      const why =
        chosen === NO_COMPRESSION
          ? `compression would cost more time than it saves on a link that carries ${formatRate(link)}`
          : `the link carries ${formatRate(link)}`;
      this.#level = chosen;
      if (!this.#rawWins) this.#options.onChange?.(chosen, why);
    }
    return this.#paced(link);
  }

  /**
   * The level to frame with, once the raw-rate test has had its say: on a fast line the chosen level only where the
   * raw rate measured while compressing beats the one measured while sending raw frames by PACE_GAIN; raw frames
   * otherwise. Each kind is measured again now and then (a probe, until it is measured), further apart each time, so that
   * a verdict made under a passing load is not kept for the whole push, and probes cost little once it holds.
   */
  #paced(link: number): number {
    const pace = this.#options.pace;
    if (!pace || link < PACE_MIN_LINK || this.#level === NO_COMPRESSION) {
      this.#probe = null;
      return this.#level;
    }
    if (this.#probe) {
      const probe = this.#probe;
      // Unmeasured yet, unless the stream started over (the next snapshot, a resume) under it.
      if (pace.rate(probe.compressed, probe.from) === null && probe.frames < PROBE_MAX_FRAMES && pace.framedEnd() >= probe.from) {
        probe.frames++;
        return probe.compressed ? this.#level : NO_COMPRESSION;
      }
      this.#probeBytes = probe.frames * this.#chunk;
      this.#probe = null;
    }
    if (!this.#rawWins) {
      const raw = pace.rate(false);
      const compressed = pace.rate(true);
      if (raw !== null && compressed !== null && compressed < raw * PACE_GAIN) this.#verdict(true, raw, compressed);
    } else {
      // Back to compressed frames, the dearer kind, only where they beat the raw frames next to them on both sides,
      // judged once per span of them: the machine's load comes and goes, and a probe that fell in a quick spell beat
      // raw frames measured in a slow one, or raw frames in a slow spell beat compressed ones measured long before
      // (the bench's LAN push under load flipped six times in 1 GB, compressing each time for nothing). Raw frames, the
      // cheaper kind, win at once (above).
      const probe = pace.compressedBetween();
      if (probe !== null && probe.start !== this.#judged && probe.after !== null) {
        this.#judged = probe.start;
        const beats = (raw: number | null) => raw === null || probe.rate >= raw * PACE_GAIN;
        if (beats(probe.before) && beats(probe.after)) this.#verdict(false, probe.after, probe.rate);
        // Beaten on one side only: the load moved, or the line did. Look again soon, not after a doubled gap: a line
        // that became the bound is then compressed a probe later.
        else if (probe.before !== null && beats(probe.before) !== beats(probe.after)) this.#probeGap = PROBE_GAP_FIRST;
      }
    }
    // The kind not in use, measured long enough ago (or never): probe it.
    const other = this.#rawWins;
    if (pace.framedSince(other) >= Math.max(this.#probeBytes, this.#chunk) * this.#probeGap) {
      this.#probeGap = Math.min(this.#probeGap * 2, PROBE_GAP_MAX);
      this.#probe = { compressed: other, from: pace.framedEnd(), frames: 1 };
      return other ? this.#level : NO_COMPRESSION;
    }
    return this.#rawWins ? NO_COMPRESSION : this.#level;
  }

  #verdict(rawWins: boolean, raw: number, compressed: number): void {
    this.#rawWins = rawWins;
    this.#probeGap = PROBE_GAP_FIRST;
    const rates = `${formatRate(raw)} of raw stream with raw frames, ${formatRate(compressed)} compressed`;
    this.#options.onChange?.(
      rawWins ? NO_COMPRESSION : this.#level,
      rawWins ? `compressing does not raise the rate the stream goes through (${rates})` : `compressing raises the rate the stream goes through (${rates})`,
    );
  }

  observe(sample: CompressionSample): void {
    if (sample.rawLength > 0) this.#chunk = sample.rawLength;
    if (sample.rawOffset !== undefined) this.#options.pace?.framed(sample.rawOffset, sample.rawLength, sample.level !== NO_COMPRESSION);
    if (sample.level === this.#level) this.#seenAtLevel++;
    if (sample.level === NO_COMPRESSION || sample.rawLength === 0) return;
    const speed = sample.rawLength / Math.max(sample.compressNs / 1e9, 1e-6);
    const ratio = sample.payloadLength / sample.rawLength;
    const old = this.#stats.get(sample.level);
    this.#stats.set(
      sample.level,
      old ? { speed: old.speed + ALPHA * (speed - old.speed), ratio: old.ratio + ALPHA * (ratio - old.ratio) } : { speed, ratio },
    );
  }

  /** What the workers can compress at `level`, raw bytes/s, and the wire bytes per raw byte it makes. */
  estimate(level: number): LevelStats {
    const known = this.#stats.get(level);
    if (known) return known;
    // The nearest tried level, scaled by zstd's usual speed ratio; its ratio stands in until this level is tried.
    const tried = [...this.#stats.keys()].sort((a, b) => Math.abs(a - level) - Math.abs(b - level))[0];
    const base = tried === undefined ? undefined : this.#stats.get(tried);
    if (tried === undefined || base === undefined) return { speed: 0, ratio: 1 };
    return {
      speed: (base.speed * (RELATIVE_SPEED[level] ?? 1)) / (RELATIVE_SPEED[tried] ?? 1),
      ratio: Math.min(1, (base.ratio * (RELATIVE_SIZE[level] ?? 1)) / (RELATIVE_SIZE[tried] ?? 1)),
    };
  }

  /**
   * Whether `level` saves at least as much line time as it costs CPU time, both per raw byte, against `cheaper`
   * (level 1, or none: a raw frame costs no compression and goes at ratio 1).
   */
  #pays(level: number, cheaper: number, link: number): boolean {
    const cost = (l: number) => (l === NO_COMPRESSION ? { cpu: 0, ratio: 1 } : { cpu: 1 / Math.max(this.estimate(l).speed, 1), ratio: this.estimate(l).ratio });
    const hi = cost(level);
    const lo = cost(cheaper);
    return (lo.ratio - hi.ratio) / link >= hi.cpu - lo.cpu;
  }

  /**
   * The cores compression may use while the line carries `rawRate` raw bytes per second: every worker, less what the
   * rest of the push takes at that rate (at most one core), and never less than a tenth of one.
   */
  #spareCores(rawRate: number): number {
    return Math.max(0.1, this.#options.workers - Math.min(1, rawRate * OTHER_CPU_PER_RAW_BYTE));
  }

  #choose(link: number): number {
    // How many times faster than the line takes raw bytes (its wire rate / the level's ratio) the spare cores make them.
    const rawRate = (level: number) => link / Math.max(this.estimate(level).ratio, 0.01);
    const ahead = (level: number) => (this.#spareCores(rawRate(level)) * this.estimate(level).speed) / rawRate(level);
    const levels = AUTO_LEVELS.filter((l) => l !== NO_COMPRESSION);
    const fastest = levels[0]!;
    // Up only once the current level has been measured on every worker: one step where it is ahead, further where
    // the estimate puts it far ahead; down as far as needed at once.
    const settled = this.#seenAtLevel >= FRAMES_BEFORE_STEP_UP * this.#options.workers;
    // Up only while the frames at this level compress: the first frame that does lets the climb go on.
    const nothingToFind = (this.#stats.get(this.#level)?.ratio ?? 0) >= NOTHING_TO_FIND;
    const oneUp = levels.find((l) => l > this.#level);
    let best: number | null = null;
    for (const level of levels) {
      if (level > this.#level && (!settled || nothingToFind)) continue;
      const light = rawRate(level) * OTHER_CPU_PER_RAW_BYTE <= LIGHT_TRANSFER_CORES;
      // Beyond one step only where the transfer is light. Elsewhere a level must pay for itself, and the estimate of
      // an untried level cannot say whether it does: scaled from a level measured on data that barely compresses
      // (zstd skims it at GB/s), it promised level 12 both cheap and smaller at 30 MB/s, and the push started its
      // second worker for frames that came back neither (docs/performance.md, session 15).
      if (level > this.#level && level !== oneUp && !light) continue;
      const margin = level <= this.#level ? MARGIN_KEEP : level === oneUp ? MARGIN_UP : MARGIN_JUMP;
      if (ahead(level) >= margin && (light || this.#pays(level, fastest, link))) best = level;
    }
    if (best !== null && best !== fastest) return best;
    // Level 1 or raw. Level 1 where it pays for itself and, should it not stay ahead, still carries more than raw
    // would: the link takes raw bytes at its rate.
    const { speed, ratio } = this.estimate(fastest);
    const compressed = Math.min(this.#spareCores(link / Math.max(ratio, 0.01)) * speed, link / Math.max(ratio, 0.01));
    return compressed >= link && this.#pays(fastest, NO_COMPRESSION, link) ? fastest : NO_COMPRESSION;
  }
}

function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond >= 1e6) return `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;
  // A link that barely moves (a server answering 507) carries bytes, not kilobytes: "0 kB/s" read as none at all.
  return bytesPerSecond >= 1e4 ? `${(bytesPerSecond / 1e3).toFixed(0)} kB/s` : `${Math.round(bytesPerSecond)} B/s`;
}
