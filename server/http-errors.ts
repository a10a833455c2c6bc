/**
 * The one place where an error code becomes an HTTP status. Everything else throws typed errors and never picks a
 * status itself; the JSON body is always `{ error: { code, message, retryable, details } }`.
 */
import { SnapferryError } from '../core/errors.ts';
import { ERROR_CODE_HEADER, type ErrorBody } from '../core/protocol.ts';
import { asDiskFull } from './disk-full.ts';

const STATUS_BY_CODE: Record<string, number> = {
  invalid_input: 400,
  // Upload requests that break tus 1.0.0 (server/upload-store/tus-refusals.ts): headers missing or malformed.
  invalid_upload_offset: 400,
  invalid_upload_length: 400,
  invalid_upload_defer_length: 400,
  invalid_upload_metadata: 400,
  invalid_content_type: 400,
  invalid_header: 400,
  invalid_request: 400,
  upload_offset_required: 400,
  upload_length_required: 400,
  tus_extension_unsupported: 400,
  // tus 1.0.0: a request without a version the server speaks is 412 Precondition Failed.
  tus_version_required: 412,
  upload_size_exceeded: 413,
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
  chain_broken: 409,
  parent_altered: 409,
  // The client's parent changed after it was sent (server/stream-start.ts): the client sends from another parent.
  parent_changed: 409,
  // Archive mode (server/archive/chains.ts): the parent's chain takes no more incrementals; the client sends a full.
  chain_full: 409,
  // Archive mode (server/archive/stream-sealing.ts): an incremental sealed otherwise than its parent; the client sends a full.
  sealing_mismatch: 409,
  // Archive mode: a stored stream is served only from the parent it was pushed on, and in its own chunk size.
  restore_parent_unavailable: 409,
  // A snapshot changed on the server after it was received (server/restore.ts): final, every try would send the same.
  snapshot_altered: 409,
  restore_source_mismatch: 409,
  chunk_size_mismatch: 409,
  // Archive mode: segments are write-once, an upload is not cut back.
  rewind_unsupported: 409,
  volume_busy: 409,
  transfer_receiving: 409,
  offset_mismatch: 409,
  partial_frame_mismatch: 409,
  stream_mismatch: 409,
  transfer_locked: 409,
  // A PATCH whose body broke off, or that a newer request of the same upload took over (server/upload-store/tus-refusals.ts).
  request_cut: 409,
  transfer_not_uploading: 409,
  // An archive upload taken over by another instance while this request wrote it: the client's retry finds the new one.
  lease_lost: 409,
  // tus 1.0.0, expiration: a server that keeps track of expired uploads SHOULD answer 410 Gone.
  upload_expired: 410,
  // An upload whose record is there and whose data is not (@tus/file-store answered this 410 too).
  upload_gone: 410,
  // Archive mode: the snapshot's chain was deleted by the server's retention policy (server/archive/archive-retention.ts).
  snapshot_retired: 410,
  quota_exceeded: 413,
  length_mismatch: 400,
  stream_metadata_mismatch: 422,
  // A sealed stream at a server that receives into btrfs: the content is well formed, and this server cannot use it.
  encryption_needs_archive: 422,
  too_many_uploads: 429,
  too_many_creations: 429,
  too_many_connections: 429,
  too_many_verifies: 429,
  too_many_restores: 429,
  verify_busy: 409,
  verify_not_ready: 409,
  // An archive server: no snapshot on disk to digest.
  verify_unavailable: 409,
  server_busy: 503,
  // The archive's S3 store is down or failing: the client waits and tries again, as for a busy server.
  store_unavailable: 503,
  // The S3 store refused this server's keys: the operator's to fix, nothing the client can change.
  store_forbidden: 500,
  archive_format_unsupported: 500,
  // The rest of the archive's faults are the server's, on the upload path too (uploadStatusOf would call an unknown
  // code the client's mistake): a bucket gone, an object short, missing or unreadable, a server-made id taken.
  store_bucket_missing: 500,
  store_refused: 500,
  store_object_short: 500,
  store_object_missing: 500,
  archive_object_corrupt: 500,
  upload_exists: 500,
  // Lost compare-and-swap races, many in a row: busy, so the client waits and tries again.
  store_contended: 503,
  // The archive's keys, missing or open to others: serve stops at start (exit 2); should one reach a request, the
  // operator's to fix.
  store_credentials_missing: 500,
  store_credentials_ambiguous: 500,
  store_credentials_open: 500,
  disk_full: 507,
  // An upload more than the server's whole filesystem holds (server/upload-room.ts): final, until it has a bigger disk.
  filesystem_too_small: 507,
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

/**
 * The status of an upload store's refusal (server/upload-store/): as statusOf, except that a code the table does not
 * know (a failed transfer's reason, a bad stream) is the client's upload refused, not a server fault.
 */
export function uploadStatusOf(raw: unknown): number {
  const err = asDiskFull(raw);
  const status = statusOf(err);
  return status >= 500 && !(err instanceof SnapferryError && err.code in STATUS_BY_CODE) ? 400 : status;
}

export function errorBody(raw: unknown): ErrorBody {
  const err = asDiskFull(raw);
  if (err instanceof SnapferryError) return { error: err.toJSON() };
  return { error: { code: 'internal', message: 'internal server error; the server log has the details', retryable: true } };
}

/**
 * The headers of an error's answer: its code (a HEAD's answer has no body to carry it), and for a refusal that heals
 * by waiting, when to come back (RFC 9110 section 10.2.3, Retry-After), from the error's `retryAfterSeconds`.
 */
export function errorHeaders(body: ErrorBody): Record<string, string> {
  const headers: Record<string, string> = { [ERROR_CODE_HEADER]: body.error.code };
  const after = body.error.details?.retryAfterSeconds;
  if (typeof after === 'number' && Number.isFinite(after) && after > 0) headers['Retry-After'] = String(Math.ceil(after));
  return headers;
}

/**
 * The reason phrase of a status Node does not know, which it would send as "unknown". 460 is tus's checksum
 * extension's (a frame that did not verify), the name a tus client or a proxy's log shows.
 */
const REASON_PHRASES: Record<number, string> = { 460: 'Checksum Mismatch' };

export function reasonPhrase(status: number): string | undefined {
  return REASON_PHRASES[status];
}

/**
 * An error's answer made outside hono's onError (@tus/server writes its own): JSON, with the headers every error
 * answer gets. `headers` are the answer's others (tus's Tus-Resumable, a Connection: close).
 */
export function errorAnswer(body: ErrorBody, status: number, headers = new Headers()): Response {
  for (const [name, value] of Object.entries(errorHeaders(body))) headers.set(name, value);
  headers.set('content-type', 'application/json');
  headers.delete('content-length');
  return new Response(status === 204 || status === 304 ? null : JSON.stringify(body), { status, statusText: reasonPhrase(status) ?? '', headers });
}
