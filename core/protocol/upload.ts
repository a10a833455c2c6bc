/** What a push sends beside its frames: the tus Upload-Metadata of a transfer, its session, and how its stream is made. */
import { z } from 'zod';

/**
 * Sent by the client on every request of a push: one push process, one session. A transfer being uploaded by one
 * session is refused to another for a short lease, so two pushes of the same snapshot never interleave.
 */
export const SESSION_HEADER = 'snapferry-session';

/**
 * Sent on a PATCH by a client that keeps its bytes back to the synced offset (ACK_SYNCED_OFFSET_HEADER), not only
 * to the acknowledged one: the server may then answer once the request's frames are written, and sync them to disk
 * while the next request crosses the line. Value: ACK_WRITTEN. A client without it is answered after the sync.
 */
export const ACK_HEADER = 'snapferry-ack';
export const ACK_WRITTEN = 'written';
/**
 * On a PATCH's answer from a server that syncs after answering: the offset up to which the upload is on disk for
 * certain, which a power cut cannot take back. A server that does not send it answers after the sync.
 */
export const ACK_SYNCED_OFFSET_HEADER = 'snapferry-synced-offset';

/** The wire format this build speaks; a server refuses an upload in any other. */
export const WIRE_FORMAT = 'sfr1';

/** tus Upload-Metadata keys of one transfer (one framed send stream). */
export const META = {
  volume: 'volume',
  snapshot: 'snapshot',
  uuid: 'uuid',
  /** The UUID of the parent snapshot on the client; absent for a full send. */
  parentUuid: 'parentUuid',
  /**
   * '1' when that parent is itself a received subvolume on the client (a restore): btrfs send then gives that copy's
   * own ctransid, which says nothing of the snapshot the server received, so the server cannot tell from it whether
   * the parent changed since it was sent (server/stream-start.ts parentChangedProblem). Absent: the client's own.
   */
  parentReceived: 'parentReceived',
  /**
   * The snapshot's ctransid as its stream's first command carries it (CTRANSID), in decimal: what the snapshot was
   * when it was sent. A btrfs server keeps it as the received copy's Send transid; an archive records it with the
   * stored stream, from frame 0 for a plain stream and from this for a sealed one, which it cannot read. Absent from
   * older clients.
   */
  ctransid: 'ctransid',
  /**
   * With parentUuid: the parent's ctransid now, as the stream's first command carries it (CLONE_CTRANSID), in decimal.
   * Where it differs from the ctransid the parent was sent at, the client changed the parent since (server/stream-start.ts
   * parentChangedProblem); an archive judges a sealed stream by this. Absent from older clients.
   */
  parentCtransid: 'parentCtransid',
  format: 'format',
  chunkSize: 'chunkSize',
  /** The client's estimate of the raw stream size, for progress on the server side only. */
  rawEstimate: 'rawEstimate',
  /** How `btrfs send` made the stream (SendStream); absent means 'v1'. A resume regenerates it the same way. */
  sendStream: 'sendStream',
  /** The snapshot's btrfs Creation time (otime) on the client, ISO 8601 UTC; absent where btrfs has none. */
  createdAt: 'createdAt',
  /**
   * When the snapshot was taken (its name's time, else its creation time: client/local/taken-at.ts), ISO 8601 UTC:
   * what the server's retention and every "newest" count, never the time it arrived. Absent from older clients.
   */
  takenAt: 'takenAt',
} as const;

/**
 * How `btrfs send` makes a transfer's stream. 'v1': send stream version 1, what every btrfs receive reads.
 * 'v2-compressed': `--proto 2 --compressed-data`, extents compressed on disk travel as they are (ENCODED_WRITE).
 * Recorded with the transfer: the same snapshot sent the other way is another stream, so a resume must not switch.
 */
export const sendStreams = ['v1', 'v2-compressed'] as const;
export const SendStreamName = z.enum(sendStreams);
export type SendStream = z.infer<typeof SendStreamName>;
/** The version in the stream header that each way of sending writes. */
export const SEND_STREAM_VERSION: Readonly<Record<SendStream, number>> = { v1: 1, 'v2-compressed': 2 };

/**
 * The PATCH body a server takes best (SnapshotList.patchBytes), within these bounds on the client's side: the
 * client holds a PATCH in flight and half the next, so a server cannot make it hold more than 48 MiB.
 */
export const PATCH_BYTES_MIN = 1024 * 1024;
export const PATCH_BYTES_MAX = 32 * 1024 * 1024;
