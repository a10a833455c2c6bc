/**
 * The upload store as the tus adapter sees it (server/upload-store/tus-store.ts), with no tus in it: one interface
 * that the spool's own store implements (spool-uploads.ts) and that each wrapper implements again around another
 * one, adding one concern (ownership, expiry, quota, a full disk), as restic's backend wrappers each wrap a Backend.
 * A store never chooses an HTTP status: it throws SnapferryErrors, mapped in server/http-errors.ts.
 */
import type { Readable } from 'node:stream';

export type UploadMetadata = Record<string, string | null>;

export interface NewUpload {
  id: string;
  /** The length the creation request declared, if any: it binds nothing until the end frame verified. */
  size?: number | undefined;
  metadata: UploadMetadata;
  creationDate: string;
}

export interface UploadInfo {
  id: string;
  /** Bytes the upload holds: its verified frames and what arrived of the frame in flight. */
  offset: number;
  /** The stream's length: known once its end frame verified, and shown only then. */
  size: number | undefined;
  metadata: UploadMetadata;
  /** What tus dates expiry from: the creation, or (with expiry) the last request on the upload. */
  creationDate: string;
}

export interface UploadStore {
  /** The expiry period (0: uploads never expire). */
  readonly expireAfterMs: number;
  create(upload: NewUpload): Promise<void>;
  get(id: string): Promise<UploadInfo>;
  /** Appends a request's body at `offset`; resolves with the upload's new offset. */
  write(id: string, body: Readable, offset: number): Promise<number>;
  /** A length declared after creation (tus's deferred Upload-Length). */
  declareLength(id: string, length: number): Promise<void>;
  /** tus's termination (a DELETE). */
  remove(id: string): Promise<void>;
  /** Deletes the uploads abandoned for the period; resolves with how many. */
  expire(): Promise<number>;
}

/** Forwards everything to `inner`: the base of a wrapper that changes one or two methods. */
export class ForwardingStore implements UploadStore {
  constructor(protected readonly inner: UploadStore) {}
  get expireAfterMs(): number {
    return this.inner.expireAfterMs;
  }
  create(upload: NewUpload): Promise<void> {
    return this.inner.create(upload);
  }
  get(id: string): Promise<UploadInfo> {
    return this.inner.get(id);
  }
  write(id: string, body: Readable, offset: number): Promise<number> {
    return this.inner.write(id, body, offset);
  }
  declareLength(id: string, length: number): Promise<void> {
    return this.inner.declareLength(id, length);
  }
  remove(id: string): Promise<void> {
    return this.inner.remove(id);
  }
  expire(): Promise<number> {
    return this.inner.expire();
  }
}
