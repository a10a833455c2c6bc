/**
 * What one client may hold on the server while uploading: bytes (its open uploads' declared lengths, or what they
 * hold where the length is still deferred) and the number of open uploads. Defaults are generous: they stop a
 * runaway or hostile client from filling the disk or the spool directory, not a first seed of a large volume.
 */
import { SnapferryError, ValidationError } from '../core/errors.ts';

export interface UploadLimits {
  /** Most bytes (on the wire) one upload, and all of one client's open uploads together, may reach. */
  quotaBytes: number;
  /** Most uploads one client may have open (created, not yet complete) at once. */
  maxOpenUploads: number;
}

export const DEFAULT_UPLOAD_LIMITS: Readonly<UploadLimits> = Object.freeze({
  quotaBytes: 16 * 1024 ** 4,
  maxOpenUploads: 32,
});

export function uploadLimits(given: Partial<UploadLimits> = {}): Readonly<UploadLimits> {
  const limits = { ...DEFAULT_UPLOAD_LIMITS, ...given };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(`${key} must be a whole number of at least 1, not ${String(value)}`, { details: { key } });
    }
  }
  return Object.freeze(limits);
}

/**
 * An upload that would not fit the client's quota. Retryable only when it would fit alone: the client's other
 * uploads may finish and free their share.
 */
export function quotaExceeded(client: string, size: number, quota: number, heldByOthers: number, sizeIsExact: boolean): SnapferryError {
  const alone = size > quota;
  const what = sizeIsExact ? `an upload of ${size} bytes` : `this upload, at ${size} bytes and still growing,`;
  const message = alone
    ? `${what} is over client ${client}'s quota of ${quota} bytes (413): ask the server's admin to raise quotaBytes`
    : `${what} does not fit client ${client}'s quota of ${quota} bytes: its other open uploads hold ${heldByOthers}; let them finish or abort them (POST /v1/transfers/ID/abort), or ask the admin to raise quotaBytes`;
  return new SnapferryError('quota_exceeded', message, { retryable: !alone, details: { client, size, quotaBytes: quota, heldByOthers } });
}

export function tooManyUploads(client: string, open: number, max: number): SnapferryError {
  return new SnapferryError(
    'too_many_uploads',
    `client ${client} already has ${open} open uploads, the limit is ${max} (429): let them finish, or abort the ones not needed (POST /v1/transfers/ID/abort), then try again`,
    { retryable: true, details: { client, open, maxOpenUploads: max } },
  );
}
