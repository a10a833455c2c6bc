/**
 * Receives that failed for the server's own reasons (issue 16). A whole stream is never thrown away for them: its
 * transfer waits (waiting_for_space, waiting_to_retry) with its spool, and is received again from it by itself,
 * once the free space it needs is there, when its timer comes (server/receive-wait.ts decides which), and at the
 * server's start. A receive beside an upload that is still going on starts again with the next frame, or after a
 * delay. Nothing here fails a transfer or asks the client for a byte; a stream the server refuses is the core's
 * to fail (server/replication.ts).
 */
import type { SnapferryError } from '../core/errors.ts';
import { waitingStates, type ReceiveWait, type TransferError, type TransferState } from '../core/protocol.ts';
import { CatalogError, type Catalog, type TransferRecord } from './catalog.ts';
import type { Logger } from './log.ts';
import { runEvery, type Periodic } from './periodic.ts';
import type { FilesystemSize } from './filesystem-size.ts';
import { filesystemTooSmall, retryDelayMs, retryDue, tooSmallFor, waitAfter, waitingState, type RetrySchedule } from './receive-wait.ts';

export interface RetryDeps {
  catalog: Catalog;
  log: Logger;
  /** Free bytes on the server's filesystem, or null when they cannot be read. */
  freeBytes(): Promise<number | null>;
  /** The server's filesystem: its whole size, and whether its mount compresses; null when it cannot be read. */
  filesystem(): Promise<FilesystemSize | null>;
  /** Bytes the transfer's spool holds on the server's disk. */
  spoolBytes(id: string): Promise<number>;
  /** The server root, as messages name it. */
  root: string;
  /** Starts the transfer's receive from its spool's first byte (server/live-receives.ts). */
  startFromSpool(id: string): void;
  /** The same, after `ms`. */
  startLater(id: string, ms: number): void;
}

/** An end frame's record the catalog could not make yet, and its tries (ReceiveRetries.endNotRecorded). */
interface UnrecordedEnd {
  change: Partial<TransferRecord>;
  reason: ReceiveWait['reason'];
  error: SnapferryError;
  /** Whether its failure was logged already: once, not at every look. */
  tried: boolean;
  since: number;
  tries: number;
  lastTryMs: number;
  /**
   * The try under way, if one is: a look meanwhile waits for it. The move it writes is shown while it is written
   * (Catalog.updateTransfer), and a second try read it as the transfer having moved on, dropped the end, and the
   * refusal then took the move back: `uploading` for ever, with no wait shown.
   */
  trying: Promise<void> | null;
}

export class ReceiveRetries {
  private timer: Periodic | null = null;
  /** Receives beside an upload still going on that failed in a row, by transfer. */
  private readonly besideUpload = new Map<string, number>();
  /** Failures in a row of whole streams whose wait the catalog could not record, by transfer: their timers run here. */
  private readonly unrecorded = new Map<string, number>();
  /**
   * Whole streams whose end frame verified but whose move to `receiving` the catalog could not record (a full disk):
   * that record, tried again at every look (server/ingest.ts). The file says `uploading`, and so does memory; what
   * the API shows is the wait (unrecordedEnd), since the time it began and the tries made.
   */
  private readonly ends = new Map<string, UnrecordedEnd>();
  /** Free space when each receive of a whole stream started again: one that ran out of it anyway needs more. */
  private readonly freeAtStart = new Map<string, number | null>();

  constructor(
    private readonly deps: RetryDeps,
    readonly schedule: RetrySchedule,
  ) {}

  /** Looks at the waiting transfers every schedule.checkMs from now on. */
  start(): void {
    this.timer ??= runEvery(this.schedule.checkMs, () => this.check(), (err) => this.deps.log.error({ err }, 'could not look at the waiting receives; looking again soon'));
  }

  async stop(): Promise<void> {
    await this.timer?.stop();
    this.timer = null;
  }

  /** `t`'s receive failed for the server's own reasons (`reason`, `err`): it starts again later, or its stream waits. */
  async failed(t: TransferRecord, reason: ReceiveWait['reason'], err: SnapferryError): Promise<void> {
    const { log } = this.deps;
    if (t.state === 'uploading') {
      // The upload goes on (or waits out the same full disk); its next frame starts a receive too, whichever is first.
      const tries = (this.besideUpload.get(t.id) ?? 0) + 1;
      this.besideUpload.set(t.id, tries);
      const waitMs = retryDelayMs(tries, this.schedule);
      log.warn({ transfer: t.id, code: err.code, err: err.message, tries, waitMs }, 'the receive beside the upload failed; starting it again from the spool');
      this.deps.startLater(t.id, waitMs);
      return;
    }
    this.besideUpload.delete(t.id);
    const wait = waitAfter(
      { reason, before: t.wait, rawBytes: t.rawBytes ?? 0, freeAtStart: this.freeAtStart.get(t.id) ?? null, freeBytes: await this.deps.freeBytes(), nowMs: Date.now() },
      this.schedule,
    );
    this.freeAtStart.delete(t.id);
    const state = waitingState(reason);
    const spool = reason === 'disk_full' ? await this.deps.spoolBytes(t.id) : 0;
    const disk = reason === 'disk_full' ? await this.deps.filesystem() : null;
    if (disk !== null && tooSmallFor(wait, spool, disk)) {
      // Waiting for freed space would be for ever: said as such, and the spool kept for a bigger filesystem.
      wait.filesystemBytes = disk.totalBytes;
      err = filesystemTooSmall(this.deps.root, wait, spool, disk.totalBytes, err);
    }
    if (!(await this.record(t.id, { state, wait, error: { code: err.code, message: err.message, at: new Date().toISOString() } }))) {
      // The file still says receiving and no receive runs: the wait lives here, in memory, as a timer (a restart
      // receives the stream again from its spool all the same). Left so, the stream waited for nothing, for ever.
      const tries = (this.unrecorded.get(t.id) ?? 0) + 1;
      this.unrecorded.set(t.id, tries);
      log.warn({ transfer: t.id, code: err.code, err: err.message, tries }, 'the receive failed and its wait could not be recorded; receiving again from the spool later');
      this.deps.startLater(t.id, retryDelayMs(tries, this.schedule));
      return;
    }
    this.unrecorded.delete(t.id);
    log.warn(
      { transfer: t.id, state, code: err.code, err: err.message, tries: wait.tries, nextTryAt: wait.nextTryAt, neededBytes: wait.neededBytes, freeBytes: wait.freeBytes, filesystemBytes: wait.filesystemBytes },
      wait.filesystemBytes === undefined ? 'the receive failed for the server\'s own reasons; the whole stream waits in its spool to be received again' : err.message,
    );
  }

  /** One look at the waiting transfers: each whose time has come, or whose free space is there, is received again. */
  async check(): Promise<void> {
    for (const id of [...this.ends.keys()]) await this.recordEnd(id);
    const waiting = this.deps.catalog.transfers().filter((t) => waitingStates.includes(t.state));
    if (waiting.length === 0) return;
    const free = await this.deps.freeBytes();
    for (const t of waiting) {
      const why = t.wait === null ? 'it waits without a schedule' : retryDue(t.wait, Date.now(), free);
      if (why !== null) await this.receiveAgain(t.id, why, free);
    }
  }

  /** Receives a whole stream again from its spool: a waiting one, or (at start) one whose receive a stop cut short. */
  async receiveAgain(id: string, why: string, free?: number | null): Promise<void> {
    const t = this.deps.catalog.transfer(id);
    if (!t) return;
    this.freeAtStart.set(id, free === undefined ? await this.deps.freeBytes() : free);
    // Not recorded (a full disk): it stays waiting, and the next look tries again.
    if (t.state !== 'receiving' && !(await this.record(id, { state: 'receiving' }))) return;
    this.deps.log.info({ transfer: id, why }, 'receiving the whole stream from the spool');
    this.deps.startFromSpool(id);
  }

  /**
   * The end frame of `id` verified, but the catalog could not record its move to `receiving` (`change`) for the
   * server's own reasons (`reason`, `error`: a full disk, mostly). Its receive has been stopped (its room goes to the
   * record); the move is tried again now and at every look, and once recorded the stream waits as any whose receive
   * failed so (waiting_for_space, with its wait), so that a push is told and freed space starts its receive.
   */
  async endNotRecorded(id: string, change: Partial<TransferRecord>, reason: ReceiveWait['reason'], error: SnapferryError): Promise<void> {
    // The same end again (a spool rewound and completed again): after the try under way, not beside it; that try's
    // own failure is its caller's to report.
    await this.ends.get(id)?.trying?.catch(() => undefined);
    const now = Date.now();
    this.ends.set(id, { change, reason, error, tried: false, since: now, tries: 1, lastTryMs: now, trying: null });
    await this.recordEnd(id);
  }

  /**
   * What the API shows of a whole stream whose end is not on record yet: the wait it is in, from memory. The file
   * says `uploading` until the record is made, which took a disk that stays full (the catalog's reserve used up) for
   * as long as it stayed full; shown so, `status` said `uploading` at 100% and the push waited without a word of the
   * disk. Null for any other transfer. `t` is the record as a reader took it, which says `receiving` while a try of
   * the record is being written (or was, when the reader took it): the wait is shown then too, since a refused try is
   * taken back and a recorded one waits all the same (the end is remembered until its wait is recorded). Status said
   * `receiving` for that moment at every try, for as long as the disk stayed full.
   */
  unrecordedEnd(t: Pick<TransferRecord, 'id' | 'state'>, freeBytes: number | null): { state: TransferState; wait: ReceiveWait; error: TransferError } | null {
    const end = this.ends.get(t.id);
    if (!end || !(t.state === 'uploading' || t.state === 'receiving')) return null;
    const wait: ReceiveWait = {
      reason: end.reason,
      since: new Date(end.since).toISOString(),
      tries: end.tries,
      // The record is tried again at the next look; once made, the receive waits as after a first failure (failed()),
      // unless the space it needs is there by then. What a push weighs is the receive's next try, not the record's.
      nextTryAt: new Date(end.lastTryMs + this.schedule.checkMs + retryDelayMs(1, this.schedule)).toISOString(),
      // Once recorded, the receive needs about the raw stream (receive-wait.ts); the record itself, a catalog's worth.
      neededBytes: end.reason === 'disk_full' ? (end.change.rawBytes ?? 0) : null,
      freeBytes,
    };
    return { state: waitingState(end.reason), wait, error: { code: end.error.code, message: end.error.message, at: wait.since } };
  }

  /** Tries the end's record again, unless a try is under way: then it waits for that one. */
  private recordEnd(id: string): Promise<void> {
    const end = this.ends.get(id);
    if (!end) return Promise.resolve();
    end.trying ??= this.tryEnd(id, end).finally(() => {
      end.trying = null;
    });
    return end.trying;
  }

  private async tryEnd(id: string, end: UnrecordedEnd): Promise<void> {
    // Aborted, expired or otherwise ended meanwhile: nothing to record.
    if (this.deps.catalog.transfer(id)?.state !== 'uploading') {
      this.dropEnd(id, end);
      return;
    }
    if (!(await this.record(id, end.change, end.tried))) {
      end.tried = true;
      end.tries++;
      end.lastTryMs = Date.now();
      return;
    }
    // Kept until its wait is recorded, so that the API shows the wait meanwhile, not the `receiving` in between.
    try {
      const t = this.deps.catalog.transfer(id);
      if (t) await this.failed(t, end.reason, end.error);
    } finally {
      this.dropEnd(id, end);
    }
  }

  /** Drops `end`, unless a later end of the same transfer took its place meanwhile. */
  private dropEnd(id: string, end: UnrecordedEnd): void {
    if (this.ends.get(id) === end) this.ends.delete(id);
  }

  /** The transfer was received, or is over: nothing to remember about it. */
  forget(id: string): void {
    this.besideUpload.delete(id);
    this.freeAtStart.delete(id);
    this.unrecorded.delete(id);
    this.ends.delete(id);
  }

  /**
   * Records a change; false when the catalog could not save it (a full disk): the change is then not made, in
   * memory either (Catalog.updateTransfer), and the caller keeps the wait going by its own timer. `quiet`: a try
   * again, not logged.
   */
  private async record(id: string, change: Partial<TransferRecord>, quiet = false): Promise<boolean> {
    try {
      await this.deps.catalog.updateTransfer(id, change);
      return true;
    } catch (err) {
      if (err instanceof CatalogError) throw err;
      // Said once for a record tried again at every look, not every 5 s for as long as the disk stays full.
      if (!quiet) this.deps.log.warn({ transfer: id, err, state: change.state }, 'could not save the catalog; the change is not made');
      return false;
    }
  }
}
