/**
 * A client's byte quota around the upload store: checked on a declared length at creation and at a deferred
 * Upload-Length, and on the bytes as they arrive. What counts against the quota is the core's to say
 * (server/upload-quota.ts: what the client's uploads really hold on disk); this wrapper meters each write's bytes,
 * and what the frame index grows by, before any of them reach the spool.
 */
import { Transform, finished, type Readable, type TransformCallback } from 'node:stream';
import type { SnapferryError } from '../../core/errors.ts';
import { INDEX_RECORD_SIZE } from '../spool/frame-index.ts';
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
  /** The refusal once the upload would hold `bytes`, or null; at once when the meter can tell without the disk. */
  admit(bytes: number): SnapferryError | null | Promise<SnapferryError | null>;
  /** The write is over. */
  close(): void;
}

export class QuotaUploads extends ForwardingStore {
  constructor(
    inner: UploadStore,
    private readonly guard: UploadGuard,
    /** Frames the write in progress of an upload has indexed so far (server/spool/spool.ts indexedByAppend). */
    private readonly framesIndexed: (id: string) => number,
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
    let refused: SnapferryError | null = null;
    let seen = offset;
    const refuse = (err: SnapferryError | null) => {
      refused = err;
      return err;
    };
    // Bytes beyond the limit are never handed to the spool, so nothing over the quota reaches the disk.
    const meter = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) => {
        seen += chunk.length;
        const verdict = usage!.admit(seen + this.framesIndexed(id) * INDEX_RECORD_SIZE);
        if (verdict === null) return callback(null, chunk);
        if (!(verdict instanceof Promise)) return callback(refuse(verdict));
        verdict.then((err) => {
          const failure = refuse(err);
          callback(failure, failure === null ? chunk : undefined);
        }, callback);
      },
    });
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
    readable.pipe(meter);
    try {
      return await this.inner.write(id, meter, offset);
    } catch (err) {
      if (refused !== null) await this.guard.onRefused(id, refused);
      throw err;
    } finally {
      readable.unpipe(meter);
      usage.close();
    }
  }

  private async refuseOver(id: string, size: number, kept: boolean): Promise<void> {
    const err = await this.guard.checkSize(id, size, kept);
    if (err === null) return;
    await this.guard.onRefused(id, err);
    throw err;
  }
}
