/**
 * A client's byte quota around the upload store: checked on a declared length at creation and at a deferred
 * Upload-Length, and on the bytes as they arrive. What counts against the quota is the core's to say
 * (server/upload-quota.ts: what the client's uploads really hold on disk); this wrapper meters each write's bytes,
 * and what the frame index grows by, before any of them reach the spool.
 */
import { Transform, finished, type Readable, type TransformCallback } from 'node:stream';
import type { SnapferryError } from '../../core/errors.ts';
import { INDEX_RECORD_SIZE } from '../spool/frame-index.ts';
import type { IndexGate } from '../spool/spool.ts';
import type { QuotaExceeded } from '../upload-limits.ts';
import { ForwardingStore, type NewUpload, type UploadStore } from './store.ts';

export interface UploadGuard {
  /**
   * The refusal for an upload whose whole stream is declared to be `size` bytes, or null when it fits; `kept`: the
   * upload exists and keeps what it holds when refused (a deferred length declared), not a creation, which is ended.
   */
  checkSize(id: string, size: number, kept: boolean): Promise<SnapferryError | null>;
  /** Starts metering a write of upload `id`, whose stream holds `offset` bytes when it starts. */
  openWrite(id: string, offset: number): Promise<WriteMeter>;
  /**
   * Upload `id` was refused with `err`, final or not (its `retryable`): the core logs it. The upload keeps what it
   * holds either way, to be resumed once it fits (server/upload-quota.ts says why); a refused creation is ended by
   * the tus server (server/upload-store/tus-server.ts), as any refused creation.
   */
  onRefused(id: string, err: SnapferryError): Promise<void>;
}

export interface WriteMeter {
  /**
   * The refusal once the upload would hold `bytes`, or null; at once when the meter can tell without the disk. Its
   * `over` says how many of `bytes` lie past the quota's line.
   */
  admit(bytes: number): QuotaExceeded | null | Promise<QuotaExceeded | null>;
  /** The write is over. */
  close(): void;
}

export class QuotaUploads extends ForwardingStore {
  constructor(
    inner: UploadStore,
    private readonly guard: UploadGuard,
    /**
     * Makes the writes of upload `id` ask `admit` before each record they add to its frame index, until the returned
     * function is called (server/spool/spool.ts gateIndex).
     */
    private readonly gateIndex: (id: string, admit: IndexGate) => () => void,
  ) {
    super(inner);
  }

  override async create(upload: NewUpload): Promise<void> {
    if (upload.size !== undefined) await this.refuseOver(upload.id, upload.size, false);
    await this.inner.create(upload);
  }

  override async declareLength(id: string, size: number): Promise<void> {
    await this.refuseOver(id, size, true);
    await this.inner.declareLength(id, size);
  }

  override async write(id: string, readable: Readable, offset: number): Promise<number> {
    let usage: WriteMeter | null = null;
    let refused: QuotaExceeded | null = null;
    // What the upload may hold by now: its stream's bytes handed to the spool, and the index records let through.
    // Each claim is added before it is judged, so that a chunk and a record judged at once each count the other.
    let claimed = offset;
    const claim = (bytes: number) => usage!.admit((claimed += bytes));
    // Bytes beyond the limit are never handed to the spool, so nothing over the quota reaches the disk. Those before
    // it are, and then the body ends there, as a request cut at the line would: the spool keeps the frame in flight's
    // part as it keeps a cut one's (server/spool/append.ts), and the refusal is answered once they are stored. Failed
    // with the refusal instead, the write kept none of the frame in flight, and the next push sent it again (up to a
    // frame, 4 MiB by default, for each refusal: each retry of one that waiting can heal).
    const meter = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) => {
        if (refused !== null) return callback();
        const admitted = (err: QuotaExceeded | null) => {
          // A record refused while this chunk was judged has ended the write: nothing more goes to the spool.
          if (refused !== null) return callback();
          if (err === null) return callback(null, chunk);
          refused = err;
          if (err.over < chunk.length) meter.push(chunk.subarray(0, chunk.length - err.over));
          meter.push(null);
          callback();
        };
        const verdict = claim(chunk.length);
        if (!(verdict instanceof Promise)) return admitted(verdict);
        verdict.then(admitted, callback);
      },
    });
    // Each frame a chunk completes adds a record to the frame index after the chunk was admitted; the last chunk's
    // records were followed by no admission, and a body of tiny frames took the index tens of KB past the quota.
    // So each record is admitted on its own, before it is written; refused, its frame stays as the spool's tail.
    const admitRecord: IndexGate = () => {
      if (refused !== null) return false;
      const judged = (err: QuotaExceeded | null) => {
        if (err === null) return true;
        refused ??= err;
        return false;
      };
      const verdict = claim(INDEX_RECORD_SIZE);
      return verdict instanceof Promise ? verdict.then(judged) : judged(verdict);
    };
    // A request that fails or is destroyed, even before the meter is ready (the cut came while it looked at the
    // disk), fails the meter: pipe() alone would leave it waiting for ever, and the store's write with it, holding the
    // upload's lock (server/spool/mutex.ts) against every later request of the upload.
    finished(readable, (err) => {
      if (err) meter.destroy(err);
    });
    // The meter's errors reach the inner write through its reads; when the write has already ended (it refused the
    // offset before reading), @tus/server destroys `readable` with that error, which lands here with no reader:
    // unheard, an 'error' event crashes the whole server.
    meter.on('error', () => {});
    usage = await this.guard.openWrite(id, offset);
    const ungate = this.gateIndex(id, admitRecord);
    readable.pipe(meter);
    try {
      const end = await this.inner.write(id, meter, offset);
      if (refused === null) return end;
    } catch (err) {
      if (refused !== null) await this.guard.onRefused(id, refused);
      throw err;
    } finally {
      ungate();
      readable.unpipe(meter);
      usage.close();
    }
    await this.guard.onRefused(id, refused);
    throw refused;
  }

  private async refuseOver(id: string, size: number, kept: boolean): Promise<void> {
    const err = await this.guard.checkSize(id, size, kept);
    if (err === null) return;
    await this.guard.onRefused(id, err);
    throw err;
  }
}
