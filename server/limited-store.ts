/**
 * The frame-verifying store with the server's limits around it: a client's byte quota (checked on the declared
 * length at creation and at a deferred Upload-Length, and on the bytes as they arrive while the length is still
 * unknown), and a full disk answered 507 rather than 500. The frame verification itself is FrameVerifyingStore's,
 * expiry ExpiringSpoolStore's.
 */
import { Transform, finished, type Readable, type TransformCallback } from 'node:stream';
import type { Upload } from '@tus/utils';
import type { SnapferryError } from '../core/errors.ts';
import { TusStatusError, type SpoolHooks } from './spool-store.ts';
import { ExpiringSpoolStore, type ExpiryHooks } from './expiring-store.ts';
import type { ServerLayout } from './layout.ts';
import { DiskFullError, isDiskFull } from './disk-full.ts';

export interface UploadGuard {
  /**
   * The refusal for an upload that would reach `size` bytes (`exact`: its declared length; otherwise what it holds
   * so far), or null when it fits.
   */
  checkSize(id: string, size: number, exact: boolean): Promise<SnapferryError | null>;
  /** The most bytes the upload may hold while its length is deferred. */
  byteLimit(id: string): Promise<number>;
  /** The refusal is final or not (its `retryable`): the core records it. */
  onRefused(id: string, err: SnapferryError): Promise<void>;
}

const STATUS = { quota: 413, full: 507 } as const;

export class LimitedSpoolStore extends ExpiringSpoolStore {
  constructor(
    layout: ServerLayout,
    hooks: SpoolHooks & ExpiryHooks,
    expireAfterMs: number,
    private readonly guard: UploadGuard,
  ) {
    super(layout, hooks, expireAfterMs);
  }

  override async create(upload: Upload): Promise<Upload> {
    if (upload.size !== undefined) await this.refuseOver(upload.id, upload.size, true);
    try {
      return await super.create(upload);
    } catch (err) {
      throw diskFullOr(err, { uploadId: upload.id });
    }
  }

  override async declareUploadLength(id: string, size: number): Promise<void> {
    await this.refuseOver(id, size, true);
    try {
      await super.declareUploadLength(id, size);
    } catch (err) {
      throw diskFullOr(err, { uploadId: id });
    }
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    let limit = 0;
    let refused: SnapferryError | null = null;
    let seen = offset;
    // Bytes beyond the limit are never handed to the frame parser, so nothing over the quota reaches the disk.
    const meter = new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback) => {
        seen += chunk.length;
        if (seen <= limit) return callback(null, chunk);
        void this.guard.checkSize(id, seen, false).then((err) => {
          refused = err;
          callback(err === null ? null : new TusStatusError(STATUS.quota, err), err === null ? chunk : undefined);
        }, callback);
      },
    });
    // A request that fails or is destroyed, even before the limit below is known (the cut came while it was looked
    // up), fails the meter: pipe() alone would leave it waiting for ever, and the store's write with it, holding the
    // upload's lock (server/upload-mutex.ts) against every later request of the upload.
    finished(readable, (err) => {
      if (err) meter.destroy(err);
    });
    // The meter's errors reach super.write through its reads; when the write has already ended (it refused the
    // offset before reading), @tus/server destroys `readable` with that error, which lands here with no reader:
    // unheard, an 'error' event crashes the whole server.
    meter.on('error', () => {});
    limit = await this.guard.byteLimit(id);
    readable.pipe(meter);
    try {
      return await super.write(meter, id, offset);
    } catch (err) {
      if (refused !== null) await this.guard.onRefused(id, refused);
      throw diskFullOr(err, { uploadId: id });
    } finally {
      readable.unpipe(meter);
    }
  }

  private async refuseOver(id: string, size: number, exact: boolean): Promise<void> {
    const err = await this.guard.checkSize(id, size, exact);
    if (err === null) return;
    await this.guard.onRefused(id, err);
    throw new TusStatusError(STATUS.quota, err);
  }
}

function diskFullOr(err: unknown, details: Record<string, unknown>): unknown {
  if (!isDiskFull(err) || (err instanceof TusStatusError && err.status_code === STATUS.full)) return err;
  return new TusStatusError(STATUS.full, new DiskFullError(err, details));
}
