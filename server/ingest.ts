/**
 * Where verified frames go (docs/design.md, "The flow of a push"): the upload store hands a request's bytes here, the
 * spool appends the frames that verify (server/spool/), and each one is offered to the transfer's running receive
 * (server/live-receives.ts) as it lands. Data flows one way, store -> ingest -> receive; the receive's back-pressure
 * comes back as the promise each frame waits on. The first frame is checked against the transfer before anything is
 * kept, and the verified end frame moves the transfer on to its receive.
 */
import type { Readable } from 'node:stream';
import { SnapferryError } from '../core/errors.ts';
import { isDiskFull } from './disk-full.ts';
import type { FrameError, VerifiedFrame } from '../core/wire/index.ts';
import type { Catalog, TransferRecord } from './catalog.ts';
import type { LiveReceives } from './live-receives.ts';
import type { Logger } from './log.ts';
import type { FrameSink, Spool, SpoolProgress } from './spool/spool.ts';
import { assertStreamStart, openedFrame, parentChangedProblem, readStreamStart, type ParentAsReceived } from './stream-start.ts';
import { completedUpload } from './transfers/machine.ts';

export interface IngestDeps {
  spool: Spool;
  catalog: Catalog;
  receives: LiveReceives;
  log: Logger;
  /** The parent an incremental names, as received on disk (server/disk-truth.ts parentAsReceived). */
  parentAsReceived: (t: TransferRecord) => Promise<ParentAsReceived | null>;
  /**
   * The end frame verified but the catalog could not record `change`, the move to `receiving` (`err`: a full disk,
   * mostly): the lifecycle tries again and, once recorded, the stream waits like any whose receive found the disk
   * full (server/transfers/lifecycle.ts endNotRecorded).
   */
  endNotRecorded: (id: string, change: Partial<TransferRecord>, err: unknown) => Promise<void>;
}

export class Ingest {
  constructor(private readonly deps: IngestDeps) {}

  /** Appends a request's bytes to upload `id`'s spool at `offset`; each verified frame reaches the receive. */
  write(id: string, body: Readable, offset: number, chunkSize: number): Promise<number> {
    const sink: FrameSink = {
      start: (frame) => this.checkStreamStart(id, frame),
      stored: (frame: VerifiedFrame) => this.deps.receives.offer(id, frame),
      complete: (progress) => this.onStreamComplete(id, progress),
      endRefused: (err: FrameError) => void this.deps.receives.stop(id, `the end frame was refused: ${err.message}`),
    };
    return this.deps.spool.append(id, body, offset, chunkSize, sink).catch(async (err: unknown) => {
      // Answered 507 all the same; what is kept of the upload is as it was. The receive's room goes to the upload.
      if (isDiskFull(err)) await this.deps.receives.yieldSpace(id);
      throw err;
    });
  }

  /** Why upload `id` takes no more bytes (its transfer failed, with that reason), or null. */
  closedError(id: string): SnapferryError | null {
    const t = this.deps.catalog.transfer(id);
    if (t?.state !== 'failed' || !t.error) return null;
    return new SnapferryError(t.error.code, `transfer ${id} failed: ${t.error.message}`, { details: { transferId: id } });
  }

  /**
   * Frame 0 holds the stream's first command: refuse a stream that is not the snapshot the metadata names, or an
   * incremental from a parent the client changed after it was sent (`parent_changed`, server/stream-start.ts). That
   * verdict is final (the same bytes would come again), so the transfer fails with it, before the refusal (422, 409) is answered:
   * it no longer holds an open-upload slot or its volume, and the client's next push starts a new upload.
   */
  private async checkStreamStart(id: string, frame: VerifiedFrame): Promise<void> {
    const { catalog, log, spool } = this.deps;
    const t = catalog.transfer(id);
    if (!t) throw new SnapferryError('not_found', `transfer ${id} not found`);
    try {
      // Frame 0 only, once a stream: joining its pieces costs nothing that counts.
      const header = readStreamStart(Buffer.concat(openedFrame(frame)));
      assertStreamStart(header, t);
      // Here, where the stream first names its parent's state: btrfs receive would apply it on the server's copy
      // without comparing, and report a snapshot received that differs from the client's.
      if (header.kind === 'snapshot') {
        const changed = parentChangedProblem(header, t.parentReceived === true, await this.deps.parentAsReceived(t));
        if (changed) throw changed;
      }
    } catch (err) {
      const e = err instanceof SnapferryError ? err : new SnapferryError('sendstream_bad_command', String(err));
      log.warn({ transfer: id, code: e.code, err: e.message }, 'stream refused at its first frame');
      // Failed, its receive (if one runs) stops first (Catalog.onTransferEnd).
      await catalog.updateTransfer(id, { state: 'failed', error: { code: e.code, message: e.message, at: new Date().toISOString() } });
      // Nothing of a stream refused at its start is worth keeping: its spool goes (after the refusing request lets
      // go of it), so that it holds neither quota nor an open-upload slot.
      setImmediate(() => void spool.drop(id).catch(() => undefined));
      throw err;
    }
  }

  private onStreamComplete(id: string, progress: SpoolProgress): void {
    const { catalog, receives, log } = this.deps;
    // An end frame sent again (a retried request) changes nothing once the stream is whole: its receive runs or waits.
    const change = completedUpload(catalog.transfer(id), progress);
    if (change === null) return;
    // Shown at once; on disk a moment later, which may be after the PATCH is answered: a crash in between leaves
    // the record `uploading` beside a whole spool, which the next start moves on the same way (server/reconcile.ts).
    receives.whenDone(catalog.updateTransfer(id, change).then(
      // Only now may the receive end: the snapshot is complete once the end frame verified and that is on record.
      () => receives.advance(id, progress.wireOffset, true),
      // Not recorded, so not made (the catalog took it back): left here, the transfer stayed `uploading` (shown as
      // `receiving`, before the catalog took failed writes back) with no receive running and nothing to start one.
      (err: unknown) => this.deps.endNotRecorded(id, change, err),
    ).catch((err: unknown) => log.error({ transfer: id, err }, 'could not deal with the end of the upload that was not recorded')));
  }
}
