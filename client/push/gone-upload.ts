/**
 * What a push does when the server no longer has the upload it was sending (tus 404/410, `upload_gone`). The upload's
 * answer cannot say why it went; the transfer's state on the server can (GET /v1/transfers/ID), and the causes call
 * for opposite answers:
 * - `aborted`: someone ended it (`snapferry abort ID`, a tus DELETE): a person's decision, which sending everything
 *   again from byte 0 as a new upload would undo while only throwing away what had crossed the line. The push stops
 *   that snapshot. (The push's own aborts, of another transfer of the snapshot that it can never resume, and those of
 *   client/push/busy-volume.ts, which end transfers of dead pushes, never end the upload a push is sending; nor does
 *   the server's end of a removed client's uploads reach a push, whose requests are refused from then on.)
 * - `failed` (expired, or refused by the server) or unknown to the server (lost, or forgotten): nothing anyone meant
 *   to stop; a new upload starts over, as before, saying why.
 */
import { SnapferryError } from '../../core/errors.ts';
import type { Transfer } from '../../core/protocol.ts';

export const TRANSFER_ABORTED = 'transfer_aborted';

export class TransferAborted extends SnapferryError {}

export type GoneVerdict =
  /** Stop this snapshot: the upload was ended on purpose. */
  | { kind: 'stop'; error: TransferAborted }
  /** Start a new upload from zero; `note` says why (null: the next attempt says it, as for an expired upload). */
  | { kind: 'startOver'; note: string | null };

/**
 * Pure: what to do about the gone upload of transfer `id` of `snapshot`, from its transfer as the server reports it
 * now (null: the server knows no such transfer).
 */
export function judgeGoneUpload(snapshot: string, id: string, transfer: Transfer | null): GoneVerdict {
  if (transfer === null) {
    return { kind: 'startOver', note: `${snapshot}: the server has no upload or record of transfer ${id} any more (lost, or forgotten since); starting over with a new upload` };
  }
  if (transfer.state === 'aborted') return { kind: 'stop', error: abortedError(snapshot, transfer) };
  // Expired: the next attempt finds the transfer failed with upload_expired and says how long it sat idle (expiredNote).
  if (transfer.state === 'failed' && transfer.error?.code === 'upload_expired') return { kind: 'startOver', note: null };
  if (transfer.state === 'failed') {
    const why = transfer.error ? `${transfer.error.message} (${transfer.error.code})` : 'no reason given';
    return { kind: 'startOver', note: `${snapshot}: the server ended transfer ${id} as failed: ${why}; starting over with a new upload` };
  }
  // Listed as in progress (or received) while its upload is gone: the next attempt asks the server's list again and
  // resumes, waits or starts over on what it says.
  return { kind: 'startOver', note: `${snapshot}: the server no longer has the upload of transfer ${id}, which it lists as ${transfer.state}; asking it again` };
}

/** The push's error for a transfer someone aborted on the server: not retryable, nothing is sent again. */
export function abortedError(snapshot: string, transfer: Pick<Transfer, 'id' | 'wireOffset'>): TransferAborted {
  return new TransferAborted(
    TRANSFER_ABORTED,
    `transfer ${transfer.id} of ${snapshot} was aborted on the server (snapferry abort); not sent again: push it again to start over`,
    { retryable: false, details: { transferId: transfer.id } },
  );
}
