/**
 * The one adapter between @tus/server and the upload store (store.ts): tus's DataStore over an UploadStore, with
 * @tus/file-store's extensions. Upload objects become plain records here, and a store's SnapferryError becomes the
 * `{ status_code, body }` @tus/server answers with, its status chosen by server/http-errors.ts.
 */
import type { Readable } from 'node:stream';
import { DataStore, Upload } from '@tus/utils';
import { SnapferryError } from '../../core/errors.ts';
import { asDiskFull } from '../disk-full.ts';
import { uploadStatusOf } from '../http-errors.ts';
import type { UploadMetadata, UploadStore } from './store.ts';

/** A store's error as @tus/server understands it: thrown from a store, answered with this status and body. */
export class TusStatusError extends SnapferryError {
  readonly status_code: number;
  readonly body: string;
  constructor(status: number, inner: SnapferryError) {
    super(inner.code, inner.message, { retryable: inner.retryable, cause: inner, details: inner.details });
    this.status_code = status;
    this.body = JSON.stringify({ error: inner.toJSON() });
  }
}

export class TusStore extends DataStore {
  constructor(private readonly uploads: UploadStore) {
    super();
    this.extensions = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'expiration'];
  }

  override async create(upload: Upload): Promise<Upload> {
    const metadata: UploadMetadata = { ...(upload.metadata ?? {}) };
    await tus(this.uploads.create({ id: upload.id, size: upload.size, metadata, creationDate: upload.creation_date ?? new Date().toISOString() }));
    return upload;
  }

  override async getUpload(id: string): Promise<Upload> {
    const got = await tus(this.uploads.get(id));
    return new Upload({ id, size: got.size, offset: got.offset, metadata: got.metadata, creation_date: got.creationDate });
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    return tus(this.uploads.write(id, readable, offset));
  }

  override declareUploadLength(id: string, length: number): Promise<void> {
    return tus(this.uploads.declareLength(id, length));
  }

  override remove(id: string): Promise<void> {
    return tus(this.uploads.remove(id));
  }

  override deleteExpired(): Promise<number> {
    return tus(this.uploads.expire());
  }

  override getExpiration(): number {
    return this.uploads.expireAfterMs;
  }
}

/** `p`, its SnapferryError (a full disk among them) carrying the status @tus/server answers with. */
function tus<T>(p: Promise<T>): Promise<T> {
  return p.catch((raw: unknown) => {
    const err = asDiskFull(raw);
    if (err instanceof TusStatusError || !(err instanceof SnapferryError)) throw err;
    throw new TusStatusError(uploadStatusOf(err), err);
  });
}
