/** A transfer (one framed send stream on its way to the server's btrfs receive) as the server reports it: its states, its wait, its frames. */
import { z } from 'zod';
import { SendStreamName } from './upload.ts';

/**
 * Where a transfer stands. `uploading`: frames arrive (and a receive runs beside them). `receiving`: the whole stream
 * is on the server, verified and durable, and `btrfs receive` finishes it. `waiting_for_space` (the disk was full)
 * and `waiting_to_retry` (an I/O error, or any other fault of the server's own): the whole stream is on the server
 * but its receive failed; the server keeps the spool and receives again by itself (Transfer.wait says when), so the
 * client never sends it again. `received`, `failed` (Transfer.error says why), `aborted`: over. (`verifying` is
 * kept for catalogs that recorded it; nothing sets it now.) Which move is allowed: server/transfer-moves.ts.
 */
export const transferStates = ['uploading', 'verifying', 'receiving', 'waiting_for_space', 'waiting_to_retry', 'received', 'failed', 'aborted'] as const;
export type TransferState = (typeof transferStates)[number];
/** States after which nothing more happens to a transfer. */
export const finalStates: readonly TransferState[] = ['received', 'failed', 'aborted'];
/** The whole stream is on the server, and its receive waits for the server to be able to run it. */
export const waitingStates: readonly TransferState[] = ['waiting_for_space', 'waiting_to_retry'];

/** Not over yet: the transfer holds its spool and its volume (one transfer per volume at a time). */
export function inProgress(state: TransferState): boolean {
  return !finalStates.includes(state);
}

/** Why a receive waits: `disk_full` (ENOSPC, EDQUOT), `server_fault` (an I/O error or any other fault of the server's). */
export const receiveWaitReasons = ['disk_full', 'server_fault'] as const;

/** A transfer in a waiting state: why, since when, and when the server receives it again. */
export const ReceiveWait = z.object({
  reason: z.enum(receiveWaitReasons),
  /** When the whole stream first waited. */
  since: z.string(),
  /** Receives of the whole stream that failed so far for the server's own reasons. */
  tries: z.number(),
  /** When the server tries again at the latest; for disk_full sooner, once freeBytes reaches neededBytes. */
  nextTryAt: z.string(),
  /** disk_full: the free space the receive needs, about the raw stream's size; null otherwise. */
  neededBytes: z.number().nullable(),
  /** Free space on the server's filesystem now (in the catalog: when the receive last failed). */
  freeBytes: z.number().nullable(),
  /**
   * disk_full, set when the stream cannot fit on the server's filesystem even empty (its spool and neededBytes are
   * more than this, the filesystem's whole size): freeing space cannot help, only a bigger filesystem. Absent else.
   */
  filesystemBytes: z.number().optional(),
});
export type ReceiveWait = z.infer<typeof ReceiveWait>;

export const TransferError = z.object({
  code: z.string(),
  message: z.string(),
  at: z.string(),
  /** Facts for scripts and for the client's own message (upload_expired: idleMs, expireAfterMs, wireBytes). */
  details: z.record(z.string(), z.unknown()).optional(),
});
export type TransferError = z.infer<typeof TransferError>;

export const Transfer = z.object({
  id: z.string(),
  client: z.string(),
  volume: z.string(),
  snapshot: z.string(),
  uuid: z.string(),
  parentUuid: z.string().nullable(),
  /** META.parentReceived: the parent on the client is a received copy, whose ctransid the server cannot compare. */
  parentReceived: z.boolean().optional(),
  state: z.enum(transferStates),
  createdAt: z.string(),
  updatedAt: z.string(),
  chunkSize: z.number(),
  /** Bytes of the framed stream the server holds, all of them in verified frames. */
  wireOffset: z.number(),
  framesVerified: z.number(),
  /** Bytes of the raw `btrfs send` stream inside the verified frames. */
  rawBytes: z.number(),
  rawEstimate: z.number().nullable(),
  /** Hex chain hash after the verified frames: what a resuming client compares its regenerated stream with. */
  chain: z.string(),
  error: TransferError.nullable(),
  /** How the upload was last cut short (a PATCH that ended before its body), when, and at which offset. */
  lastInterruption: z.string().nullable(),
  interruptions: z.number(),
  /** How btrfs send makes this transfer's stream; a transfer recorded before the key existed is 'v1'. */
  sendStream: SendStreamName.default('v1'),
  /**
   * Bytes of the raw stream the server's `btrfs receive` has been given so far: it receives while the upload goes
   * on, so this trails rawBytes (and starts again from 0 when a receive must start over).
   */
  rawReceived: z.number().default(0),
  /**
   * Bytes of request bodies that reached the server for this upload since it started, cut requests and the frame
   * in flight included: a counter that moves while bytes arrive. A client whose own writes went quiet (they sit in
   * socket buffers that can hold many seconds of a slow line) reads it to tell a slow line from a silent one.
   */
  wireArrived: z.number().default(0),
  /**
   * Bytes of the framed stream the server holds now: the verified frames (wireOffset) and what has arrived of the
   * next one, kept from a cut request or still arriving. What `status` shows as sent, so that the first frame on a slow
   * line shows moving (a 4 MiB frame takes 17 s at 2 Mbit/s). It vouches for nothing: the part of a frame may yet
   * fail and go; a resume goes by wireOffset and chain, and only the state says that a stream is whole. A server that
   * does not say it holds wireOffset.
   */
  wireHeld: z.number().optional(),
  /**
   * An upload a push holds right now (its lease, server/leases.ts: a request in flight, or one within the lease):
   * someone is sending it, so another push must not end it as abandoned. Absent from servers that do not say it, and
   * from an archive, which never refuses an upload as volume_busy; who holds it is never shown.
   */
  heldByPush: z.boolean().optional(),
  /** Set while the receive waits (waiting_for_space, waiting_to_retry) and while it runs again after that; else null. */
  wait: ReceiveWait.nullable().default(null),
  /**
   * Bytes the transfer's spool holds on the server's disk. Once the transfer is over (a failed one keeps its spool),
   * they are orphaned: an abort deletes them, and the server does after its expiry period.
   */
  spoolBytes: z.number().default(0),
  /** The snapshot's times from the upload's metadata (META.createdAt, META.takenAt), for its record once received. */
  snapshotCreatedAt: z.string().nullish(),
  snapshotTakenAt: z.string().nullish(),
});
export type Transfer = z.infer<typeof Transfer>;

/** One verified frame as the server's index records it. */
export const FrameRecord = z.object({ index: z.number(), wireEnd: z.number(), rawEnd: z.number(), chain: z.string() });
export type FrameRecord = z.infer<typeof FrameRecord>;
export const FrameList = z.object({ frames: z.array(FrameRecord) });
export type FrameList = z.infer<typeof FrameList>;

export const RewindRequest = z.object({ frames: z.number().int().nonnegative() });

export const TransferList = z.object({ transfers: z.array(Transfer) });
export type TransferList = z.infer<typeof TransferList>;
