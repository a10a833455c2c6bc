/**
 * Restore, the server's half (docs/design.md, "Restore"): a received snapshot goes back as the same framed stream a
 * push sends, in the other direction. The server runs its own `btrfs send` of the received subvolume, incremental
 * from the parent the client names (a snapshot of the same volume that the client holds), and frames it with the
 * same encoder. A received subvolume's stream carries its Received UUID as its UUID (and its parent's Received UUID
 * as the clone UUID); those are the client's UUIDs in its namespace on disk, mapped back to the client's own
 * (server/uuid-namespace.ts), so the client receives it as the very snapshot it once pushed.
 *
 * Resume works as the push's does, mirrored: the send of one read-only pair is byte-identical run to run, so the
 * server runs it again, hashes its way to the client's frame N (no compression, no network) and compares chains
 * before it answers; a chain that differs is a 409, not a stream that would splice two different sends.
 *
 * Everything is decided before the caller answers: the snapshot and parent exist, btrfs send started and its first
 * command names the snapshot the catalog says, the resume point matches. What fails after that (btrfs send dying
 * mid-stream) errors the body, which the client sees as a cut and resumes.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../core/btrfs/index.ts';
import { btrfsFeatures, sendOptionsFor } from '../core/btrfs/features.ts';
import { SnapferryError, ValidationError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import { FRAMED_STREAM_TYPE, RESTORE_HEADERS, type Snapshot, type SnapshotAltered } from '../core/protocol.ts';
import { DEFAULT_ZSTD_LEVEL, FRAME_HEADER_SIZE, FrameEncoder, SendStreamCheck, SendStreamUuidRewriter, hashRawPrefix, type SendStreamHeader } from '../core/wire/index.ts';
import { NotFound } from './transfers/errors.ts';
import { describeAlterations } from './alterations.ts';
import type { SendUuidMap } from '../core/wire/sendstream-uuids.ts';
import type { SnapshotList } from './views.ts';
import type { ParsedRestoreRequest } from './restore-request.ts';

export interface RestoreRequest extends ParsedRestoreRequest {
  client: SafeName;
  /** The request's: a client that goes away stops btrfs send. */
  signal?: AbortSignal;
}

export interface RestoreStream {
  snapshot: Snapshot;
  parent: Snapshot | null;
  chunkSize: number;
  fromFrame: number;
  /** Bytes of frame fromFrame left out of the body (the client holds them). */
  skip: number;
  /**
   * The framed stream from data frame `fromFrame` on, ending with the end frame. It errors when btrfs send fails;
   * destroying it stops btrfs send.
   */
  body: Readable;
}

export class RestoreError extends SnapferryError {}

/**
 * What the restore needs of the replication service: the volume's snapshots (checked on disk), where they are, and
 * the client's UUIDs for the Received UUIDs on disk.
 */
export interface RestoreSource {
  snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList>;
  snapshotPath(client: SafeName, volume: SafeName, name: SafeName): string;
  clientUuids(client: string): SendUuidMap;
  /**
   * Marks the snapshots as being sent until the returned function is called, so that retention does not delete them
   * under their btrfs send (server/sends.ts).
   */
  holdSend?(client: SafeName, volume: SafeName, uuids: string[]): () => void;
  /**
   * Compares the ctransid a snapshot's send states with the one it was received at (server/disk-truth.ts lookAtSent):
   * the snapshot's alterations when it was changed since (it is flagged), else null.
   */
  lookAtSent?(client: SafeName, volume: SafeName, uuid: string, ctransid: number): Promise<SnapshotAltered | null>;
}

export async function openRestoreStream(service: RestoreSource, req: RestoreRequest): Promise<RestoreStream> {
  const { snapshots } = await service.snapshots(req.client, req.volume);
  const snapshot = snapshots.find((s) => s.name === req.snapshot);
  // Another client's snapshot is not in this client's list: it is reported exactly like a missing one.
  if (!snapshot) throw new NotFound(`snapshot ${req.volume}/${req.snapshot}`);
  // Its stream would be of the changed tree, not of the snapshot the client pushed: refused as final (409), before
  // btrfs send runs. As a 500 it was a fault the client retried for ever, every try the same.
  if (snapshot.altered) throw snapshotAltered(req.volume, snapshot, `it ${describeAlterations(snapshot.altered.what)}`);
  const parent = req.parentUuid === null ? null : (snapshots.find((s) => s.uuid === req.parentUuid) ?? null);
  if (req.parentUuid !== null && parent === null) {
    throw new RestoreError('parent_missing', `the server holds no snapshot ${req.parentUuid} in ${req.volume} to send ${req.snapshot} from; restore in full or from another parent`, {
      details: { volume: req.volume, parentUuid: req.parentUuid },
    });
  }
  if (parent?.altered) throw parentAltered(req.volume, parent, parent.altered);
  if (parent?.uuid === snapshot.uuid) {
    throw new ValidationError(`${req.snapshot} cannot be its own parent`, { details: { parentUuid: parent.uuid } });
  }
  const path = (s: Snapshot) => service.snapshotPath(req.client, req.volume, s.name as SafeName);
  // Held from the turn the snapshots were found in (no await since): a pruning pass after it passes them over.
  const release = service.holdSend?.(req.client, req.volume, parent ? [snapshot.uuid, parent.uuid] : [snapshot.uuid]) ?? (() => undefined);
  if (parent && req.parentCtransid !== undefined) {
    try {
      await refuseChangedParent(parent, path(parent), req.parentCtransid);
    } catch (err) {
      release();
      throw err;
    }
  }

  // Stream version 1, asked for by name: what every btrfs receive reads, and what a later btrfs-progs with another
  // default still regenerates for a resume.
  let send: ReturnType<typeof btrfs.send>;
  try {
    send = btrfs.send(path(snapshot), {
      ...(parent ? { parent: path(parent) } : {}),
      ...sendOptionsFor('v1', await btrfsFeatures()),
      ...(req.signal ? { signal: req.signal } : {}),
    });
  } catch (err) {
    release();
    throw err;
  }
  // Held until btrfs send has exited, whichever way: stopped, failed or done.
  send.done.then(release, release);
  // The subvolume sends its Received UUIDs on disk, in the client's namespace (server/uuid-namespace.ts): mapped
  // back to the client's, from the catalog alone, so the same send gives the same bytes for a resume to compare.
  const toClient = new SendStreamUuidRewriter(service.clientUuids(req.client));
  // The server's own send is checked too: an end frame must stand for a whole, well-formed stream.
  const check = new SendStreamCheck();
  send.stream.pipe(toClient).pipe(check);
  // pipe() carries no errors: a failed btrfs send fails the rewrite, which fails the check.
  send.stream.on('error', (err) => toClient.destroy(err));
  toClient.on('error', (err) => check.destroy(err));
  // The check's error is read from its `header` promise until the pipeline below takes it over. Without a listener
  // of its own, a request dropped in between (btrfs send cancelled by its signal: an error cascading to here) was an
  // 'error' event nobody heard, which ends the process: one client could stop the server.
  check.on('error', () => undefined);
  // A stream that is only piped keeps btrfs send blocked on a full pipe when its consumer goes: stop them all.
  const stop = () => {
    check.destroy();
    toClient.destroy();
    send.stream.destroy();
  };

  let head: Readable = check;
  let start: ConstructorParameters<typeof FrameEncoder>[0] = {};
  try {
    const header = await check.header;
    assertHeader(req.volume, header, snapshot, parent);
    await refuseChangedSinceReceived(service, req, header, snapshot, parent);
    if (req.fromFrame > 0) {
      const prefix = await hashRawPrefix(check, { chunkSize: req.chunkSize, frames: req.fromFrame });
      if (prefix.frames < req.fromFrame || !prefix.chain.equals(req.chain!)) {
        throw new RestoreError('stream_mismatch', `the server's stream of ${req.snapshot} differs from the ${req.fromFrame} frames the client holds (btrfs on the server changed?); start the restore over`, {
          details: { fromFrame: req.fromFrame, framesRegenerated: prefix.frames },
        });
      }
      head = Readable.from(prefix.rest);
      // The encoder's wire offsets only label its frame events, which no one reads here; the client keeps its own.
      start = { start: { frames: prefix.frames, rawOffset: prefix.rawOffset, chain: prefix.chain, wireOffset: prefix.frames * FRAME_HEADER_SIZE } };
    }
  } catch (err) {
    stop();
    throw err;
  }
  // Compressed on this thread: a restore runs at the pace of the link, a frame every second or more. One level,
  // always: a frame made again is the same bytes, so a client that holds part of it takes only the rest (skip).
  const encoder = new FrameEncoder({ chunkSize: req.chunkSize, level: DEFAULT_ZSTD_LEVEL, ...start });
  encoder.once('close', stop);
  const body = req.skip > 0 ? new SkipBytes(req.skip) : encoder;
  // A failure anywhere destroys the body with it: the response breaks off, never ends clean.
  (body === encoder ? pipeline(head, encoder) : pipeline(head, encoder, body)).catch(() => undefined);
  return { snapshot, parent, chunkSize: req.chunkSize, fromFrame: req.fromFrame, skip: req.skip, body };
}

/** The response headers that say what the body is (RESTORE_HEADERS). */
export function restoreHeaders(stream: RestoreStream): Record<string, string> {
  return {
    'content-type': FRAMED_STREAM_TYPE,
    'cache-control': 'no-store',
    // nginx: pass the body on as it comes instead of buffering it (the shipped config also says proxy_buffering off).
    'x-accel-buffering': 'no',
    [RESTORE_HEADERS.uuid]: stream.snapshot.uuid,
    [RESTORE_HEADERS.parentUuid]: stream.parent?.uuid ?? 'none',
    [RESTORE_HEADERS.chunkSize]: String(stream.chunkSize),
    [RESTORE_HEADERS.fromFrame]: String(stream.fromFrame),
    [RESTORE_HEADERS.skip]: String(stream.skip),
  };
}

/**
 * The client's parent changed after it was sent, as a push's (server/stream-start.ts): its ctransid now differs from
 * the one the server's copy was received at (its Send transid). The stream would be the difference from the copy as it
 * was sent, applied there to the parent as it is now: a tree that exists nowhere. 0: btrfs recorded none, nothing to
 * compare.
 */
async function refuseChangedParent(parent: Snapshot, copy: string, ctransidNow: number): Promise<void> {
  const { sendTransid } = await btrfs.subvolumeShow(copy);
  if (sendTransid === 0 || sendTransid === ctransidNow) return;
  throw new RestoreError('parent_changed', `the client's ${parent.name}, the parent asked for, was changed after it was sent (transaction id ${ctransidNow}, ${sendTransid} when the server received it): a restore on it would differ from the server's copy; restore in full or from another parent`, {
    details: { parent: parent.name, parentUuid: parent.uuid, parentCtransid: ctransidNow, sendTransid },
  });
}

/**
 * The subvolume on disk must be the snapshot the catalog names, sent from the parent asked for. One that is not was
 * changed on the server since it was received (its Received UUID cleared by `btrfs property set -f ... ro false`)
 * before a restart could flag it: refused as final, like a flagged one, since every try sends the same.
 */
function assertHeader(volume: string, header: SendStreamHeader, snapshot: Snapshot, parent: Snapshot | null): void {
  const clone = header.kind === 'snapshot' ? header.cloneUuid : null;
  if (header.uuid === snapshot.uuid && clone === (parent?.uuid ?? null)) return;
  const found = `it sends as ${header.uuid} from ${clone ?? 'nothing'}, not as ${snapshot.uuid} from ${parent?.uuid ?? 'nothing'}`;
  throw snapshotAltered(volume, snapshot, found, { code: 'restore_source_mismatch', details: { expected: snapshot.uuid, found: header.uuid, expectedParent: parent?.uuid ?? null, foundParent: clone } });
}

/**
 * The copies this send reads, changed since they were received though their flags and Received UUIDs are as they
 * were (server/alterations.ts): refused as final, as flagged ones are. Their send states their ctransids, so this is
 * known before the answer starts.
 */
async function refuseChangedSinceReceived(service: RestoreSource, req: RestoreRequest, header: SendStreamHeader, snapshot: Snapshot, parent: Snapshot | null): Promise<void> {
  if (!service.lookAtSent) return;
  const altered = await service.lookAtSent(req.client, req.volume, snapshot.uuid, header.ctransid);
  if (altered) throw snapshotAltered(req.volume, { ...snapshot, altered }, `it ${describeAlterations(altered.what)}`);
  if (parent === null || header.kind !== 'snapshot') return;
  const parentChanged = await service.lookAtSent(req.client, req.volume, parent.uuid, header.cloneCtransid);
  if (parentChanged) throw parentAltered(req.volume, parent, parentChanged);
}

/**
 * The stream would carry the difference from the changed copy, and the client would apply it to its own, unchanged
 * one: a tree that exists nowhere (server/alterations.ts).
 */
function parentAltered(volume: string, parent: Snapshot, altered: SnapshotAltered): RestoreError {
  return new RestoreError('parent_altered', `the server's copy of ${volume}/${parent.name} was changed by hand on the server (${altered.what.join(', ')}), so a restore cannot be sent from it; restore in full or from another parent`, {
    details: { volume, parentUuid: parent.uuid, altered },
  });
}

/** The refusal of a restore of a snapshot whose copy on the server was changed there (server/alterations.ts). */
function snapshotAltered(volume: string, snapshot: Snapshot, what: string, extra: { code?: string; details?: Record<string, unknown> } = {}): RestoreError {
  return new RestoreError(
    extra.code ?? 'snapshot_altered',
    `the server's copy of ${volume}/${snapshot.name} was changed on the server after it was received (${what}), so it is no longer the ` +
      'snapshot that was pushed and cannot be restored as it. Restore another snapshot; or the server\'s admin can copy its files out of the ' +
      'subvolume by hand, or delete it there (btrfs subvolume delete) and push it again from a client that still holds it',
    { details: { volume, snapshot: snapshot.name, uuid: snapshot.uuid, altered: snapshot.altered ?? null, ...extra.details } },
  );
}

/** Passes a byte stream on without its first `n` bytes. */
class SkipBytes extends Transform {
  constructor(private left: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.left >= chunk.length) {
      this.left -= chunk.length;
      return callback();
    }
    const rest = chunk.subarray(this.left);
    this.left = 0;
    callback(null, rest);
  }
}
