/**
 * The frame-verifying store with the server's limits around it: a client's byte quota (checked on a declared length
 * at creation and at a deferred Upload-Length, and on the bytes as they arrive), and a full disk answered as such
 * rather than as a fault. What counts against the quota is the core's to say (server/spool-usage.ts: what the
 * client's uploads really hold on disk); this store meters the bytes of each write. The frame verification itself
 * is FrameVerifyingStore's, expiry ExpiringSpoolStore's.
 */
import { Transform, finished, type Readable, type TransformCallback } from 'node:stream';
import type { Upload } from '@tus/utils';
import type { SnapferryError } from '../core/errors.ts';
import { TusStatusError, type SpoolHooks } from './spool-store.ts';
import { ExpiringSpoolStore, type ExpiryHooks } from './expiring-store.ts';
import type { ServerLayout } from './layout.ts';
import { DiskFullError, isDiskFull } from './disk-full.ts';
import { INDEX_RECORD_SIZE } from './frame-index.ts';
import { statusOf } from './http-errors.ts';

export interface UploadGuard {
  /** The refusal for an upload whose whole stream is declared to be `size` bytes, or null when it fits. */
  checkSize(id: string, size: number): Promise<SnapferryError | null>;
  /** Starts metering a write of upload `id`, whose stream holds `offset` bytes when it starts. */
  openWrite(id: string, offset: number): Promise<WriteMeter>;
  /** The refusal is final or not (its `retryable`): the core records it. */
  onRefused(id: string, err: SnapferryError): Promise<void>;
}

export interface WriteMeter {
  /** The refusal once the upload would hold `bytes`, or null; at once when the meter can tell without the disk. */
  admit(bytes: number): SnapferryError | null | Promise<SnapferryError | null>;
  /** The write is over. */
  close(): void;
}

export class LimitedSpoolStore extends ExpiringSpoolStore {
  private readonly guard: UploadGuard;
  /** Frames each write in progress has indexed so far: its frame index grows by a record each, which counts too. */
  private readonly framesIndexed: Map<string, number>;

  constructor(layout: ServerLayout, hooks: SpoolHooks & ExpiryHooks, expireAfterMs: number, guard: UploadGuard) {
    const framesIndexed = new Map<string, number>();
    super(layout, {
      ...hooks,
      onFrameStored: (upload, frame) => {
        if (framesIndexed.has(upload.id)) framesIndexed.set(upload.id, framesIndexed.get(upload.id)! + 1);
        return hooks.onFrameStored(upload, frame);
      },
    }, expireAfterMs);
    this.guard = guard;
    this.framesIndexed = framesIndexed;
  }

  override async create(upload: Upload): Promise<Upload> {
    if (upload.size !== undefined) await this.refuseOver(upload.id, upload.size);
    try {
      return await super.create(upload);
    } catch (err) {
      throw diskFullOr(err, { uploadId: upload.id });
    }
  }

  override async declareUploadLength(id: string, size: number): Promise<void> {
    await this.refuseOver(id, size);
    try {
      await super.declareUploadLength(id, size);
    } catch (err) {
      throw diskFullOr(err, { uploadId: id });
    }
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    let usage: WriteMeter | null = null;
    let refused: SnapferryError | null = null;
    let seen = offset;
    const refuse = (err: SnapferryError | null) => {
      refused = err;
      return err === null ? null : new TusStatusError(statusOf(err), err);
    };
    // Bytes beyond the limit are never handed to the frame parser, so nothing over the quota reaches the disk.
    const meter = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) => {
        seen += chunk.length;
        const verdict = usage!.admit(seen + (this.framesIndexed.get(id) ?? 0) * INDEX_RECORD_SIZE);
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
    // upload's lock (server/upload-mutex.ts) against every later request of the upload.
    finished(readable, (err) => {
      if (err) meter.destroy(err);
    });
    // The meter's errors reach super.write through its reads; when the write has already ended (it refused the
    // offset before reading), @tus/server destroys `readable` with that error, which lands here with no reader:
    // unheard, an 'error' event crashes the whole server.
    meter.on('error', () => {});
    usage = await this.guard.openWrite(id, offset);
    this.framesIndexed.set(id, 0);
    readable.pipe(meter);
    try {
      return await super.write(meter, id, offset);
    } catch (err) {
      if (refused !== null) await this.guard.onRefused(id, refused);
      throw diskFullOr(err, { uploadId: id });
    } finally {
      readable.unpipe(meter);
      this.framesIndexed.delete(id);
      usage.close();
    }
  }

  private async refuseOver(id: string, size: number): Promise<void> {
    const err = await this.guard.checkSize(id, size);
    if (err === null) return;
    await this.guard.onRefused(id, err);
    throw new TusStatusError(statusOf(err), err);
  }
}

function diskFullOr(err: unknown, details: Record<string, unknown>): unknown {
  if (!isDiskFull(err) || (err instanceof TusStatusError && err.code === 'disk_full')) return err;
  const full = new DiskFullError(err, details);
  return new TusStatusError(statusOf(full), full);
}
