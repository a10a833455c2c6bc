/**
 * The send stream's first command names the subvolume it creates, its UUID and (for an incremental) the parent's
 * UUID. It must say what the upload's metadata said, or the server would receive something other than what the
 * catalog is about to record. Checked on frame 0 as it arrives, and again while receiving.
 */
import { SnapferryError } from '../core/errors.ts';
import { SendStreamParser, type SendStreamHeader, type VerifiedFrame } from '../core/wire/index.ts';
import { isSafeName } from '../core/names.ts';
import { SEND_STREAM_VERSION, type SendStream } from '../core/protocol.ts';

export interface ExpectedStart {
  uuid: string;
  parentUuid: string | null;
  /** How the upload said btrfs send made the stream: its header's version must match, or a resume could not. */
  sendStream?: SendStream;
}

/**
 * The name in the stream is the snapshot's UUID from this version's clients (core/wire/stream-naming.ts: a `mv` on
 * the client must not change the stream), the sending side's directory name from older ones (snapper calls every
 * snapshot `snapshot`); the server receives it under a staging name and renames it to the catalog's name, so the
 * name need only be a safe one. The UUIDs are what identify the snapshot and its parent.
 */
export function streamStartProblems(header: SendStreamHeader, expected: ExpectedStart): string[] {
  const problems: string[] = [];
  if (!isSafeName(header.path)) problems.push(`it creates ${JSON.stringify(header.path.slice(0, 80))}, which is not a plain name`);
  if (header.uuid !== expected.uuid) problems.push(`its UUID is ${header.uuid}, not ${expected.uuid}`);
  const clone = header.kind === 'snapshot' ? header.cloneUuid : null;
  if (clone !== expected.parentUuid) {
    problems.push(`its parent is ${clone ?? 'none (a full send)'}, not ${expected.parentUuid ?? 'none (a full send)'}`);
  }
  if (expected.sendStream !== undefined && header.version !== SEND_STREAM_VERSION[expected.sendStream]) {
    problems.push(`it is send stream version ${header.version}, not ${SEND_STREAM_VERSION[expected.sendStream]} as the upload's ${expected.sendStream} says`);
  }
  return problems;
}

export function assertStreamStart(header: SendStreamHeader, expected: ExpectedStart): void {
  const problems = streamStartProblems(header, expected);
  if (problems.length > 0) {
    throw new SnapferryError('stream_metadata_mismatch', `the send stream does not match the upload: ${problems.join('; ')}`, {
      details: { expected },
    });
  }
}

/**
 * The parent an incremental names, as the server received it: its name and its `btrfs subvolume show` Send transid
 * (an archive: the ctransid it recorded with the parent's stored stream).
 */
export interface ParentAsReceived {
  name: string;
  /**
   * The ctransid the client's parent had when it was sent (btrfs receive records the stream's CTRANSID as the
   * subvolume's stransid). 0 where btrfs recorded none: nothing to compare.
   */
  sendTransid: number;
}

/**
 * What an incremental's first command says of its parent now (a SendStreamHeader is one): its UUID and ctransid. An
 * archive makes one from a sealed stream's upload metadata, which it cannot read (server/archive/parent-ctransid.ts).
 */
export type StreamParentNow = { kind: 'subvol' } | { kind: 'snapshot'; cloneUuid: string; cloneCtransid: number };

/**
 * Whether the client's parent changed after it was sent: null when the stream may be received on the server's copy.
 *
 * An incremental describes its snapshot as changes from the client's parent as it is *now*; the server's copy is the
 * parent as it was sent. btrfs receive looks the parent up by UUID alone and never compares the two, so when the
 * client's parent was changed since (made writable, written to, made read-only again), the stream may apply
 * cleanly and leave a snapshot that differs from the client's, reported received, and every later incremental on it
 * inherits the difference. btrfs gives the evidence: the stream's first command carries the parent's ctransid now
 * (CLONE_CTRANSID; a write moves it, a `property set ro` alone does not), and the server's copy keeps the ctransid it
 * was sent with (Send transid). Where they differ the parent changed.
 *
 * Not judged: a parent that is a received copy on the client (a restore, `parentReceived`): btrfs send gives that
 * copy's own ctransid, which never equals the Send transid of the original, changed or not.
 */
export function parentChangedProblem(header: StreamParentNow, parentReceived: boolean, parent: ParentAsReceived | null): SnapferryError | null {
  if (header.kind !== 'snapshot' || parentReceived || parent === null || parent.sendTransid === 0) return null;
  if (header.cloneCtransid === parent.sendTransid) return null;
  return new SnapferryError(
    'parent_changed',
    `the client's ${parent.name}, the parent of this incremental, was changed after it was sent (transaction id ` +
      `${header.cloneCtransid}, ${parent.sendTransid} when the server received it): received on the server's copy, this ` +
      `snapshot would differ from the client's. snapferry push sends it from another parent or in full by itself. An ` +
      `older client does not, and is refused so even on a parent restored from the server: upgrade it.`,
    { details: { parent: parent.name, parentUuid: header.cloneUuid, cloneCtransid: header.cloneCtransid, sendTransid: parent.sendTransid } },
  );
}

/**
 * A verified frame's raw bytes. A sealed frame (client-side encryption) has none here: this server receives into btrfs, and
 * btrfs receive needs the plaintext, which only clients can make. An archive server (`store:`) keeps ciphertext as
 * it comes; this one refuses the stream at its first sealed frame (frame 0 for a sealed push), for good.
 */
export function openedFrame(frame: VerifiedFrame): Buffer[] {
  if (frame.sealed || frame.raw === undefined) {
    throw new SnapferryError(
      'encryption_needs_archive',
      'this stream is sealed (client-side encryption, encrypt: in the client config), and this server receives into btrfs, ' +
        'which needs the plaintext: push sealed streams to an archive server (store: in its config), or remove encrypt: to push to this one',
      { details: { frameIndex: frame.index } },
    );
  }
  return frame.raw;
}

/** Reads the first command from the start of a raw send stream (frame 0; a chunk is far larger than the command). */
export function readStreamStart(raw: Buffer): SendStreamHeader {
  const parser = new SendStreamParser();
  parser.push(raw);
  const header = parser.header;
  if (!header) {
    throw new SnapferryError('sendstream_truncated', 'the first frame does not hold the send stream\'s first command');
  }
  return header;
}
