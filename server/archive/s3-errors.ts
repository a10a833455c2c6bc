/**
 * What an S3 failure means for the archive: the few answers the store's callers act on (412: a condition failed; 404:
 * absent) are told apart by status, and everything else becomes one of two typed errors, so that an HTTP status is
 * chosen for them in server/http-errors.ts like for any other error, and the client knows whether to wait.
 */
import { SnapferryError, StoreForbidden, StoreUnavailable } from '../../core/errors.ts';

/** The HTTP status of an S3 SDK error, or undefined when no answer came (refused connection, timeout, cut socket). */
export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** S3's error name (`NoSuchKey`, `AccessDenied`, `SignatureDoesNotMatch`...), for the message. */
function s3Name(err: unknown): string {
  const e = err as { Code?: unknown; name?: unknown; code?: unknown } | null;
  return String(e?.Code ?? e?.code ?? e?.name ?? 'error');
}

export interface StoreWhere {
  endpoint: string;
  bucket: string;
}

/**
 * Any failure that is not an answer the caller expects, as a SnapferryError. 403 (bad keys, a signature refused, no
 * right on the bucket) cannot heal by waiting; a missing bucket neither; every other failure, with or without an
 * answer, is the store being unavailable, which is what a 5xx, a "slow down" or a dead endpoint is from here.
 */
export function storeError(err: unknown, op: string, key: string, where: StoreWhere): SnapferryError {
  if (err instanceof SnapferryError) return err;
  const status = s3Status(err);
  const name = s3Name(err);
  const details = { endpoint: where.endpoint, bucket: where.bucket, key, op, s3Status: status ?? null, s3Error: name };
  if (status === 403 || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return new StoreForbidden(
      `the archive's S3 store ${where.endpoint} refused this server's credentials for bucket ${where.bucket} (${status ?? ''} ${name} on ${op} ${key}): check the store's accessKeyId and secretAccessKey in the server's config, and that they may read, write, list and delete in that bucket`,
      { cause: err, details },
    );
  }
  if (status === 404 && name === 'NoSuchBucket') {
    return new SnapferryError(
      'store_bucket_missing',
      `the archive's S3 store ${where.endpoint} has no bucket ${where.bucket}: create it, or correct the bucket in the server's config`,
      { cause: err, details },
    );
  }
  const what = status === undefined ? `could not be reached (${describe(err)})` : `failed (${status} ${name})`;
  return new StoreUnavailable(`the archive's S3 store ${where.endpoint} ${what} on ${op} ${key}; try again later`, { cause: err, details });
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
