/**
 * The transfer owns its upload: a transfer that failed takes no more bytes (and says why, even once its spool is
 * gone), and a tus DELETE (termination) is the core's to carry out: it ends the transfer, which deletes the files.
 * Never the files alone: a transfer left `uploading` without its spool held its client's slot and its volume for good.
 */
import type { Readable } from 'node:stream';
import type { SnapferryError } from '../../core/errors.ts';
import { ForwardingStore, type UploadInfo, type UploadStore } from './store.ts';

export interface UploadOwner {
  /** Why the upload takes no more bytes (its transfer failed), or null. */
  closedError(id: string): SnapferryError | null;
  /** Ends the upload's transfer (which deletes its files). */
  terminate(id: string): Promise<void>;
}

export class OwnedUploads extends ForwardingStore {
  constructor(
    inner: UploadStore,
    private readonly owner: UploadOwner,
  ) {
    super(inner);
  }

  override async get(id: string): Promise<UploadInfo> {
    try {
      return await this.inner.get(id);
    } catch (err) {
      // A failed transfer whose spool is gone (nothing of it was worth keeping) still answers with its reason.
      throw this.owner.closedError(id) ?? err;
    }
  }

  override write(id: string, body: Readable, offset: number): Promise<number> {
    const closed = this.owner.closedError(id);
    if (closed) return Promise.reject(closed);
    return this.inner.write(id, body, offset);
  }

  override remove(id: string): Promise<void> {
    return this.owner.terminate(id);
  }
}
