/**
 * The one place where an error code becomes an HTTP status. Everything else throws typed errors and never picks a
 * status itself; the JSON body is always `{ error: { code, message, retryable, details } }`.
 */
import { SnapferryError } from '../core/errors.ts';
import type { ErrorBody } from '../core/protocol.ts';
import { asDiskFull } from './disk-full.ts';

const STATUS_BY_CODE: Record<string, number> = {
  invalid_input: 400,
  unsupported_format: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  transfer_not_found: 404,
  method_not_allowed: 405,
  snapshot_present: 409,
  snapshot_name_taken: 409,
  snapshot_uuid_taken: 409,
  parent_missing: 409,
  volume_busy: 409,
  transfer_receiving: 409,
  offset_mismatch: 409,
  partial_frame_mismatch: 409,
  stream_mismatch: 409,
  transfer_locked: 409,
  transfer_not_uploading: 409,
  quota_exceeded: 413,
  stream_metadata_mismatch: 422,
  too_many_uploads: 429,
  too_many_connections: 429,
  server_busy: 503,
  disk_full: 507,
};

export function statusOf(raw: unknown): number {
  // Any write (the catalog, tus's upload record) may find the disk full: that is a 507 to wait out, not a 500.
  const err = asDiskFull(raw);
  if (!(err instanceof SnapferryError)) return 500;
  const direct = STATUS_BY_CODE[err.code];
  if (direct) return direct;
  // 460 is tus's "checksum mismatch": a frame that did not verify is never acknowledged.
  if (err.code.startsWith('frame_')) return 460;
  if (err.code.startsWith('sendstream_')) return 422;
  return err.retryable ? 503 : 500;
}

export function errorBody(raw: unknown): ErrorBody {
  const err = asDiskFull(raw);
  if (err instanceof SnapferryError) return { error: err.toJSON() };
  return { error: { code: 'internal', message: 'internal server error; the server log has the details', retryable: true } };
}

/** RFC 9110 section 10.2.3: how many seconds a refused client should wait, for the errors that know it (429, 503). */
export function retryAfterOf(raw: unknown): number | undefined {
  const seconds = raw instanceof SnapferryError ? raw.details.retryAfterSeconds : undefined;
  return typeof seconds === 'number' && Number.isSafeInteger(seconds) && seconds >= 0 ? seconds : undefined;
}
