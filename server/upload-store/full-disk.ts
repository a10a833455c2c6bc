/**
 * A full disk answered as such (server/disk-full.ts: a pause to wait out, 507) rather than as a fault, on every way an
 * upload's bytes or records reach the disk; or, for a write whose upload could never fit on the filesystem however
 * much is freed, as that (the core's to judge: server/upload-room.ts), which waiting cannot heal.
 */
import type { Readable } from 'node:stream';
import type { SnapferryError } from '../../core/errors.ts';
import { asDiskFull, DiskFullError } from '../disk-full.ts';
import { ForwardingStore, type NewUpload, type UploadStore } from './store.ts';

/** What a full disk means for upload `id`: a refusal that replaces the pause's, or null for the pause. */
export type FullDiskJudge = (id: string, full: DiskFullError) => Promise<SnapferryError | null>;

export class DiskFullUploads extends ForwardingStore {
  constructor(
    inner: UploadStore,
    private readonly judge: FullDiskJudge = () => Promise.resolve(null),
  ) {
    super(inner);
  }

  override create(upload: NewUpload): Promise<void> {
    return this.inner.create(upload).catch(rethrowFull(upload.id));
  }

  override declareLength(id: string, length: number): Promise<void> {
    return this.inner.declareLength(id, length).catch(rethrowFull(id));
  }

  override async write(id: string, body: Readable, offset: number): Promise<number> {
    try {
      return await this.inner.write(id, body, offset);
    } catch (raw) {
      const err = asDiskFull(raw, { uploadId: id });
      if (!(err instanceof DiskFullError)) throw err;
      throw (await this.judge(id, err).catch(() => null)) ?? err;
    }
  }
}

function rethrowFull(uploadId: string): (err: unknown) => never {
  return (err) => {
    throw asDiskFull(err, { uploadId });
  };
}
