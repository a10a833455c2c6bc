/**
 * The one table of how a transfer's state may change (core/protocol.ts says what each state means). The catalog
 * refuses any other change, so a path that would, say, fail a transfer whose stream waits for space, or start
 * a second receive of a received one, is a bug found at once rather than a state nobody can explain.
 */
import type { TransferState } from '../core/protocol.ts';

const MOVES: Readonly<Record<TransferState, readonly TransferState[]>> = {
  // The end frame verified (receiving); refused, expired or failed for the stream's reasons; aborted.
  uploading: ['receiving', 'failed', 'aborted'],
  // Recorded by older versions for a stream whose receive had not started: as receiving, and abortable as it was.
  verifying: ['receiving', 'uploading', 'waiting_for_space', 'waiting_to_retry', 'failed', 'aborted'],
  // Received and checked; the spool was damaged on disk and the upload rewound (uploading); the server's own
  // trouble (waiting_*); the stream's or the snapshot's fault (failed). Never aborted: btrfs is writing.
  receiving: ['uploading', 'waiting_for_space', 'waiting_to_retry', 'failed'],
  // Received again from the spool (on freed space, a timer, a restart), or thrown away by its client.
  waiting_for_space: ['receiving', 'aborted'],
  waiting_to_retry: ['receiving', 'aborted'],
  received: [],
  failed: [],
  aborted: [],
};

/**
 * Whether a transfer in state `from` may move to `to`. Staying is always allowed. Any state may become `received`:
 * at start the server adopts a checked snapshot it finds on disk whose record a crash lost (server/reconcile.ts),
 * and the disk is the truth.
 */
export function canMove(from: TransferState, to: TransferState): boolean {
  return from === to || to === 'received' || MOVES[from].includes(to);
}

/**
 * Whether a move from `from` to `to` ends the transfer without a snapshot (failed or aborted, from any other state):
 * its stream will never be received, so whatever still receives it must stop (server/catalog.ts onTransferEnd).
 */
export function endsUnreceived(from: TransferState, to: TransferState): boolean {
  return from !== to && (to === 'failed' || to === 'aborted');
}
