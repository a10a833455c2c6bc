/**
 * One `btrfs receive` per upload, running beside it (issue 9): started at the upload's first verified frame (or at
 * server start for an upload that has some), fed from the spool as frames verify, waiting while the link is down.
 * What a finished or failed receive means for the transfer is the core's business (server/replication.ts, through
 * the hooks); this keeps the runs: which are live, how far each got, stopping and starting them again.
 */
import type { Logger } from './log.ts';
import type { ServerLayout } from './layout.ts';
import { receiveStream, type ReceiveJob, type ReceiveRun, type ReceivedSnapshot } from './receiver.ts';
import { LiveStreamSource } from './live-source.ts';
import type { VerifiedFrame } from '../core/wire/index.ts';
import type { SpoolProgress } from './spool/spool.ts';

/**
 * How long the upload waits for a receive that holds frames it has not taken yet. A receive that takes a frame
 * within this keeps every frame in memory; one stalled longer falls behind and reads the spool back.
 */
const RECEIVE_PACE_MS = 2000;

export interface LiveReceiveHooks {
  /** What to receive for this transfer, or null when it is not to be received (no longer uploading, say). */
  jobFor(id: string): ReceiveJob | null;
  /** The verified spool as it stands (for a receive started, or started again, between two frames). */
  progressOf(id: string): Promise<SpoolProgress>;
  /** The whole stream arrived, verified, and was received and checked. */
  received(id: string, got: ReceivedSnapshot): Promise<void>;
  /** The receive failed, and its partial subvolume is gone; not called for a receive that was stopped. */
  failed(id: string, err: unknown): Promise<void>;
}

interface LiveRun {
  source: LiveStreamSource;
  run: ReceiveRun;
  stopped: boolean;
  /** Settles once the run's outcome has been handed to the hooks (or the run was stopped and cleaned up). */
  settled: Promise<void>;
}

/** Why a receive that was stopped on purpose ended (never handed to the core as a failure). */
class StoppedReceive extends Error {}

export class LiveReceives {
  private readonly runs = new Map<string, LiveRun>();
  /** Hook calls and delayed starts under way, so that idle() can wait for what they start. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly heldIds = new Set<string>();
  /** Receives whose failure the core is dealing with: frames that verify meanwhile start nothing. */
  private readonly failing = new Set<string>();
  /** Receives being stopped that frames (or the end) arrived for meanwhile: started again once the stop is done. */
  private readonly wantedAfterStop = new Set<string>();
  /** Uploads whose receive gave its room to the spool (yieldSpace): none runs until the stream is whole. */
  private readonly untilWhole = new Set<string>();
  /** Transfers whose `btrfs receive` runs, or whose stopped or failed run still cleans up in the volume's folder. */
  private readonly inFolder = new Set<string>();
  /** Set by close(): no receive starts from then on (the next server start catches each up from its spool). */
  private closing = false;
  /** Cuts short each restartLater() still waiting. */
  private readonly delays = new Set<() => void>();

  constructor(
    private readonly layout: ServerLayout,
    private readonly hooks: LiveReceiveHooks,
    private readonly log: Logger,
    /** Start nothing until resume() (tests of a crash before the receive; a server that must not receive yet). */
    private held = false,
  ) {}

  /** The spool of `id` holds verified frames up to `wireEnd` (`complete`: the end frame is one): its receive reads on. */
  advance(id: string, wireEnd: number, complete: boolean): void {
    if (complete) this.untilWhole.delete(id);
    this.runFor(id, false)?.source.advance(wireEnd, complete);
  }

  /**
   * The spool of `id` found the disk full: its receive, if one runs beside the upload, stops and deletes what it
   * wrote, and none starts again until the stream is whole (then from the spool, waiting for space like any other).
   * A receive beside the upload writes the snapshot as its frames come, and a compressed stream's snapshot is many
   * times its spool: on a disk near full it took the room the rest of the upload needed, then waited for frames that
   * could never arrive, and every PATCH was answered 507 for ever.
   */
  async yieldSpace(id: string): Promise<void> {
    const live = this.runs.get(id);
    if (live === undefined || live.stopped || live.source.complete) return;
    this.untilWhole.add(id);
    this.log.warn({ transfer: id }, 'disk full: the receive beside the upload stops and gives its room to the upload; it runs once the stream is whole');
    await this.halt(id, 'the disk is full: the upload needs the room its receive took');
  }

  /**
   * A data frame of `id` just verified and written: its receive runs, and takes the frame's bytes if it keeps up.
   * Resolves when the store may go on with the upload: at once, or once the receive has room for the frame (up to
   * RECEIVE_PACE_MS; see LiveStreamSource.roomFor); true when the receive took the frame's decoded bytes.
   */
  async offer(id: string, frame: VerifiedFrame): Promise<boolean> {
    const live = this.runFor(id, false);
    if (live === null) return false;
    await live.source.roomFor(frame, RECEIVE_PACE_MS);
    // A run stopped meanwhile takes nothing; whatever runs next catches up from the spool.
    return live.source.offer(frame);
  }

  /**
   * The run that takes `id`'s frames, started if none runs; null while receives are held, while the core deals with
   * its failure (unless `recovering`: the core itself starts it again), or while its last run is being stopped (it
   * starts again once that is done).
   */
  private runFor(id: string, recovering: boolean): LiveRun | null {
    if (this.held) {
      this.heldIds.add(id);
      return null;
    }
    if (this.untilWhole.has(id)) return null;
    if (this.failing.has(id) && !recovering) return null;
    const live = this.runs.get(id);
    if (live?.stopped) {
      this.wantedAfterStop.add(id);
      return null;
    }
    if (live === undefined && this.closing) return null;
    return live ?? this.start(id);
  }

  /**
   * Whether a receive of `id` still works in its volume's folder: btrfs receive runs, or its partial subvolume and
   * what it added are being deleted. A transfer that ended is final in the catalog before its receive has stopped
   * (the stop takes a while); the volume is not free for another receive until this says false.
   */
  isReceiving(id: string): boolean {
    return this.inFolder.has(id);
  }

  /** Raw bytes of `id`'s stream handed to btrfs receive so far (0 when none runs). */
  rawFed(id: string): number {
    return this.runs.get(id)?.run.rawFed ?? 0;
  }

  /**
   * Kills the receive of `id`, if one runs, and resolves once its partial subvolume is deleted. Whoever stops it
   * (an expiry, a refusal, an abort, a restart) also ends a wait for the whole stream (yieldSpace).
   */
  async stop(id: string, why: string): Promise<void> {
    this.untilWhole.delete(id);
    await this.halt(id, why);
  }

  private async halt(id: string, why: string): Promise<void> {
    const live = this.runs.get(id);
    if (!live) return;
    live.stopped = true;
    live.run.stop(new StoppedReceive(why));
    await live.settled;
  }

  /** Starts the receive of `id` again from the spool's first byte (after a rewind, or a failure worth retrying). */
  async restart(id: string, why: string): Promise<void> {
    await this.stop(id, why);
    await this.catchUp(id);
  }

  /**
   * Starts `id`'s receive after `ms` (a failure for the server's own reasons: a full disk may be freed). A close cuts
   * the wait short, and the start then starts nothing: a stop waited up to the longest retry delay (5 minutes).
   */
  restartLater(id: string, ms: number): void {
    let cut!: () => void;
    const waited = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms).unref();
      cut = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.delays.add(cut);
    this.track(waited.then(() => {
      this.delays.delete(cut);
      return this.catchUp(id);
    }));
  }

  /**
   * Work under way that ends in advance() or a start (the record of an upload's end, which its receive waits for):
   * idle() and close() wait for it, so that a close cannot come between it and the run it reaches.
   */
  whenDone(work: Promise<unknown>): void {
    this.track(work);
  }

  /** Starts `id`'s receive from its spool, as far as it holds verified frames (the server's start). */
  startFromSpool(id: string): void {
    this.track(this.catchUp(id));
  }

  resume(): void {
    if (!this.held) return;
    this.held = false;
    for (const id of this.heldIds) this.track(this.catchUp(id));
    this.heldIds.clear();
  }

  /**
   * Resolves once no receive of a complete upload runs, nor any hook call or start that may lead to one (tests and
   * a graceful shutdown); receives of uploads still in progress go on waiting for their frames.
   */
  async idle(): Promise<void> {
    if (this.held) return;
    for (;;) {
      const waits = [...this.pending, ...[...this.runs.values()].filter((l) => l.source.complete).map((l) => l.settled)];
      if (waits.length === 0) return;
      await Promise.allSettled(waits);
    }
  }

  /**
   * A server shutting down: starts nothing more, lets work under way that ends in a receive (an upload's end being
   * recorded) reach its run, stops every receive whose upload is still in progress, and waits for the rest.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const cut of this.delays) cut();
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    const open = [...this.runs.entries()].filter(([, l]) => !l.source.complete).map(([id]) => this.stop(id, 'the server is shutting down'));
    await Promise.all(open);
    await this.idle();
  }

  /** Starts `id`'s receive, if it is to run, and brings it up to the spool's verified end. */
  private async catchUp(id: string): Promise<void> {
    const progress = await this.hooks.progressOf(id).catch(() => null);
    if (progress === null || progress.wireOffset === 0) return;
    this.runFor(id, true)?.source.advance(progress.wireOffset, progress.complete);
  }

  private start(id: string): LiveRun | null {
    const job = this.hooks.jobFor(id);
    if (job === null) return null;
    const source = new LiveStreamSource(this.layout.spoolFile(id), job.chunkSize);
    const run = receiveStream(this.layout, job, source);
    const live: LiveRun = { source, run, stopped: false, settled: Promise.resolve() };
    this.inFolder.add(id);
    // Out of the folder once the run's cleanup is done (checkedReceive settles after it), before the hooks: a received
    // snapshot is in place and the transfer still in progress until the core records it.
    live.settled = run.done.finally(() => this.inFolder.delete(id)).then(
      async (got) => {
        // Read back: the part of the stream btrfs receive could not take as it verified (it fell behind, or restarted).
        this.log.debug({ transfer: id, spoolBytesRead: source.spoolBytesRead, wireBytes: source.wireRead }, 'receive finished');
        // Still listed while the core records it, so that a late frame event cannot start a second receive.
        try {
          await this.hooks.received(id, got);
        } finally {
          this.runs.delete(id);
        }
      },
      async (err: unknown) => {
        this.runs.delete(id);
        if (live.stopped) {
          // Its staging subvolume is gone now, so a new receive may take the name.
          if (this.wantedAfterStop.delete(id)) this.track(this.catchUp(id));
          return;
        }
        this.failing.add(id);
        try {
          await this.hooks.failed(id, err);
        } finally {
          this.failing.delete(id);
        }
      },
    ).catch((err: unknown) => this.log.error({ transfer: id, err }, 'handling the end of a receive failed'));
    this.runs.set(id, live);
    this.log.debug({ transfer: id }, 'receive started beside the upload');
    return live;
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.log.error({ err }, 'starting a receive failed')).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}
