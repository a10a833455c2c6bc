/**
 * A full disk answered as such (server/disk-full.ts: a pause to wait out, 507) rather than as a fault, on every way an
 * upload's bytes or records reach the disk.
 */
import type { Readable } from 'node:stream';
import { asDiskFull } from '../disk-full.ts';
import { ForwardingStore, type NewUpload } from './store.ts';

export class DiskFullUploads extends ForwardingStore {
  override create(upload: NewUpload): Promise<void> {
    return this.inner.create(upload).catch(rethrowFull(upload.id));
  }

  override declareLength(id: string, length: number): Promise<void> {
    return this.inner.declareLength(id, length).catch(rethrowFull(id));
  }

  override write(id: string, body: Readable, offset: number): Promise<number> {
    return this.inner.write(id, body, offset).catch(rethrowFull(id));
  }
}

function rethrowFull(uploadId: string): (err: unknown) => never {
  return (err) => {
    throw asDiskFull(err, { uploadId });
  };
}
