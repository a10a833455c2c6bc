/**
 * What happens to a transfer when something happens to it, as pure decisions: an event and the transfer's record go
 * in, the steps to take come out, in order (changes to the record, which server/transfer-moves.ts allows, and the
 * effects around them). The service (server/replication.ts) runs the steps (server/transfers/steps.ts); nothing here
 * reads the disk, the clock or the catalog, so every decision is unit-tested without root
 * (test/server/transfer-machine.test.ts).
 */
import { SnapferryError } from '../../core/errors.ts';
import { inProgress, waitingStates, type ReceiveWait, type TransferState } from '../../core/protocol.ts';
import { FrameError } from '../../core/wire/index.ts';
import type { SnapshotRecord, TransferRecord } from '../catalog.ts';
import { parentAltered } from '../alterations.ts';
import { classifyReceiveFailure } from '../receive-wait.ts';
import type { ReceivedSnapshot } from '../receiver.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import { NotFound, TransferConflict } from './errors.ts';

type LogLevel = 'info' | 'warn' | 'error';

/** One thing to do for a transfer, in the order given. */
export type Step =
  /** Change the transfer's record (its state only as server/transfer-moves.ts allows). */
  | { kind: 'record'; change: Partial<TransferRecord> }
  | { kind: 'addSnapshot'; snapshot: SnapshotRecord }
  /** Stop the transfer's running receive, if one runs; `of`: another transfer's than the one the steps are for. */
  | { kind: 'stopReceive'; why: string; of?: string }
  /** Start the transfer's receive again from its spool's first byte. */
  | { kind: 'restartReceive'; why: string }
  /** Cut the spool back to its first `frames` frames. */
  | { kind: 'rewindSpool'; frames: number }
  /**
   * Delete the spool; `report`: log the bytes freed, if any, with the transfer's state and what happened (`why`,
   * default "deleted on request"); `of`: another transfer's spool than the one the steps are for.
   */
  | { kind: 'dropSpool'; report?: { state: TransferState; why?: string }; of?: string }
  /** Nothing about the transfer's receive retries is to be remembered. */
  | { kind: 'forgetRetries' }
  /** The receive failed for the server's own reasons: server/receive-retries.ts runs it again later, or it waits. */
  | { kind: 'retryLater'; transfer: TransferRecord; fault: ReceiveWait['reason']; error: SnapferryError }
  /** Apply the volume's retention policy. */
  | { kind: 'prune'; client: string; volume: string }
  | { kind: 'log'; level: LogLevel; fields: Record<string, unknown>; message: string };

const log = (level: LogLevel, fields: Record<string, unknown>, message: string): Step => ({ kind: 'log', level, fields, message });

/** The error a failed transfer keeps, at `now`. */
function failure(e: SnapferryError, now: string): Partial<TransferRecord> {
  return { state: 'failed', error: { code: e.code, message: e.message, at: now } };
}

/**
 * The spool's end frame verified and is durable (`progress`): the stream is whole, so the transfer moves on to its
 * receive with the spool's final figures, which the catalog keeps once the spool is gone (the API, `push`'s received
 * line and /metrics read them there). Decided the same when the end frame lands (server/ingest.ts) and at start for
 * a record a crash left `uploading` (server/reconcile.ts): the end frame's save may not have reached the disk. Null
 * when there is nothing to record: not a whole stream, or a transfer already past its upload (an end frame sent again).
 */
export function completedUpload(t: TransferRecord | undefined, progress: SpoolProgress): Partial<TransferRecord> | null {
  if (!t || !(t.state === 'uploading' || t.state === 'verifying') || !progress.complete) return null;
  return { state: 'receiving', wireBytes: progress.wireOffset, rawBytes: progress.rawBytes, framesVerified: progress.framesVerified };
}

/**
 * The stream was received and checked: the snapshot is on record, the transfer received, its spool gone. So are the
 * spools of the same snapshot's transfers that ended before (failed or aborted; `all`: the catalog's transfers): kept
 * for a retry of the receive or for a look, they have nothing left to give once the snapshot is here, and were kept
 * their whole expiry period, counted against the client's quota and listed by `status` as spools of ended transfers.
 */
export function onReceived(t: TransferRecord | undefined, got: ReceivedSnapshot, now: string, all: readonly TransferRecord[] = []): Step[] {
  if (!t) return [];
  const superseded = all.filter((o) => o.id !== t.id && (o.state === 'failed' || o.state === 'aborted') && o.client === t.client && o.volume === t.volume && o.uuid === t.uuid);
  const snapshot: SnapshotRecord = {
    client: t.client, volume: t.volume, name: t.snapshot, uuid: t.uuid, receivedUuid: got.receivedUuid, serverUuid: got.serverUuid,
    ...(got.ctransid !== null ? { ctransid: got.ctransid } : {}), parentUuid: t.parentUuid, receivedAt: now, rawBytes: got.rawBytes,
    wireBytes: got.wireBytes, transferId: t.id, createdAt: t.snapshotCreatedAt ?? null, takenAt: t.snapshotTakenAt ?? null,
    altered: null,
  };
  return [
    { kind: 'addSnapshot', snapshot },
    { kind: 'record', change: { state: 'received', error: null, wait: null } },
    { kind: 'forgetRetries' },
    { kind: 'dropSpool' },
    log('info', { transfer: t.id, volume: t.volume, snapshot: t.snapshot, path: got.path }, 'snapshot received'),
    ...superseded.flatMap((o): Step[] => [
      { kind: 'stopReceive', why: `${t.snapshot} was received by transfer ${t.id}`, of: o.id },
      { kind: 'dropSpool', of: o.id, report: { state: o.state, why: `deleted: its snapshot was received since, by transfer ${t.id}` } },
    ]),
    { kind: 'prune', client: t.client, volume: t.volume },
  ];
}

/**
 * A receive failed; its partial subvolume is gone. Damaged spool bytes: the upload is cut back there and the
 * client sends them again. The server's own trouble (a full disk, an I/O error): the receive runs again later,
 * and a whole stream waits for it with its spool (server/receive-retries.ts), however long that takes. A stream
 * the server refuses: the transfer fails, and keeps its spool.
 */
export function onReceiveFailed(t: TransferRecord | undefined, err: unknown, now: string): Step[] {
  if (!t || !inProgress(t.state)) return [];
  const damaged = spoolDamage(err);
  if (damaged !== null) {
    return [
      { kind: 'rewindSpool', frames: damaged },
      {
        kind: 'record',
        change: {
          state: 'uploading', wireBytes: null, rawBytes: null, framesVerified: null,
          interruptions: t.interruptions + 1,
          lastInterruption: `${now}: the spool was damaged at frame ${damaged}; rewound there for the client to send again`,
        },
      },
      log('error', { transfer: t.id, frame: damaged }, 'spool damaged on disk; upload rewound to the last good frame'),
      { kind: 'restartReceive', why: 'the spool was rewound' },
    ];
  }
  const e = err instanceof SnapferryError ? err : new SnapferryError('receive_failed', String(err));
  const fault = classifyReceiveFailure(e);
  if (fault !== 'refused') return [{ kind: 'retryLater', transfer: t, fault, error: e }];
  return [
    { kind: 'forgetRetries' },
    { kind: 'record', change: failure(e, now) },
    log('warn', { transfer: t.id, code: e.code, err: e.message }, 'receive failed; the spool is kept'),
  ];
}

/**
 * The transfer is thrown away on its client's request (the API's abort, a tus DELETE): one that is being received
 * refuses (btrfs is writing); one in progress (an upload, or a stream waiting for its receive) is aborted, spool and
 * all; one that is over only loses the spool it kept, and any receive still running (a failed one stays failed, with
 * its reason).
 */
export function endTransfer(id: string, t: TransferRecord | undefined): Step[] {
  if (!t) throw new NotFound(`transfer ${id}`);
  if (t.state === 'receiving') {
    throw new TransferConflict('transfer_receiving', `transfer ${id} is being received and can no longer be aborted`);
  }
  if (inProgress(t.state)) {
    return [
      { kind: 'stopReceive', why: 'the upload was aborted' },
      { kind: 'dropSpool' },
      { kind: 'forgetRetries' },
      { kind: 'record', change: { state: 'aborted' } },
    ];
  }
  if (t.state === 'received') return [];
  // Its receive ended as it failed (Catalog.onTransferEnd); one that ran on all the same stops here, before the spool
  // it reads goes, and deletes its partial subvolume.
  return [{ kind: 'stopReceive', why: `the ${t.state} transfer was aborted` }, { kind: 'dropSpool', report: { state: t.state } }];
}

/**
 * A creation refused after its upload began (a creation-with-upload whose bytes were refused: tus answers it without
 * a Location, server/upload-store/tus-server.ts), so no client can ever resume or end the upload. An upload still in
 * progress fails with that refusal, spool and all: the client was refused, not aborted, and `status` and the
 * transfer listing must say with what. One failed already (frame 0 refused, server/ingest.ts)
 * keeps its own error and loses the spool, as an abort of it would; a whole stream goes on to its receive.
 */
export function onCreationRefused(t: TransferRecord | undefined, refusal: SnapferryError, now: string): Step[] {
  if (!t) return [];
  if (t.state === 'uploading') {
    return [
      { kind: 'stopReceive', why: `its creation was refused: ${refusal.message}` },
      { kind: 'dropSpool' },
      { kind: 'forgetRetries' },
      { kind: 'record', change: failure(refusal, now) },
      log('warn', { transfer: t.id, volume: t.volume, snapshot: t.snapshot, code: refusal.code }, 'creation refused after its upload began; the upload failed'),
    ];
  }
  return inProgress(t.state) ? [] : endTransfer(t.id, t);
}

/**
 * At start, once reconcile has flagged what was changed by hand: a transfer in progress whose parent (`parent`, as
 * the catalog has it) is flagged would be received onto changed content (or fail late, once btrfs receive finds no
 * parent), so it fails now, with the reason. The client's next push picks another parent.
 */
export function failOnAlteredParent(t: TransferRecord, parent: SnapshotRecord | undefined, now: string): Step[] {
  if (!inProgress(t.state) || t.parentUuid === null || !parent?.altered) return [];
  const e = parentAltered(parent);
  return [
    // A waiting stream may not fail directly (server/transfer-moves.ts): it goes back to receiving, which may.
    ...(waitingStates.includes(t.state) ? [{ kind: 'record', change: { state: 'receiving' } } satisfies Step] : []),
    { kind: 'record', change: failure(e, now) },
    log('warn', { transfer: t.id, volume: t.volume, snapshot: t.snapshot, parent: parent.name }, e.message),
  ];
}

/**
 * An upload whose parent the server no longer holds (deleted there by hand, found by a look at the disk) can never be
 * received: btrfs receive finds no parent. Left `uploading`, it held its volume (volume_busy) until it expired, and
 * every push of the volume waited for it; it fails now, with the reason, and the next push plans again. `held` is the
 * volume's snapshots in the catalog; retention never deletes an upload's parent (server/retention.ts).
 */
export function failOnMissingParent(t: TransferRecord, held: readonly SnapshotRecord[], now: string): Partial<TransferRecord> | null {
  if (t.state !== 'uploading' || t.parentUuid === null || held.some((s) => s.uuid === t.parentUuid)) return null;
  const e = new TransferConflict(
    'parent_missing',
    `the parent ${t.parentUuid} of ${t.snapshot} is gone from the server (deleted there), so this upload can never be received; push again to send it on another parent`,
    { details: { parentUuid: t.parentUuid } },
  );
  return failure(e, now);
}

/**
 * How a PATCH that ended before its body did is told in the transfer's status: a cut of the line, or the server's
 * refusal by its code. A full disk said "cut" in `snapferry status`, where the operator looks for what to fix.
 */
function interruptionOf(refusedWith: string | null): string {
  if (refusedWith === null) return 'cut';
  return refusedWith === 'disk_full' ? 'refused, the server\'s disk full,' : `refused (${refusedWith})`;
}

/**
 * A PATCH ended before its body did: the link was cut at `offset`, after `framesVerified` verified frames. Kept so
 * status can say when and where, and logged. Only an upload in progress takes note.
 */
export function noteInterruption(t: TransferRecord | undefined, offset: number, framesVerified: number, now: string, refusedWith: string | null = null): Step[] {
  if (!t || t.state !== 'uploading') return [];
  const what = interruptionOf(refusedWith);
  return [
    { kind: 'record', change: { interruptions: t.interruptions + 1, lastInterruption: `${now}: ${what} at byte ${offset} (after ${framesVerified} verified frames)` } },
    log('info', { transfer: t.id, volume: t.volume, snapshot: t.snapshot, wireOffset: offset, framesVerified }, 'upload cut; its verified frames are kept'),
  ];
}

/** A rewind may cut back only an upload in progress. */
export function assertRewindable(t: TransferRecord): void {
  if (t.state !== 'uploading') {
    throw new TransferConflict('transfer_not_uploading', `transfer ${t.id} is ${t.state}; only an upload in progress can be rewound`);
  }
}

/**
 * The client found that its regenerated stream differs from frame `to` on (docs/design.md, "Resume"): the spool is
 * cut back to its first `to` frames (from `from`), and the receive, which may have read past the new end, starts
 * again from the spool's first byte.
 */
export function rewind(t: TransferRecord, from: number, to: number, now: string): Step[] {
  assertRewindable(t);
  return [
    { kind: 'rewindSpool', frames: to },
    { kind: 'restartReceive', why: 'the upload was rewound' },
    { kind: 'record', change: { lastInterruption: `${now}: rewound from frame ${from} to ${to}: the client's stream differs from there` } },
    log('warn', { transfer: t.id, from, to }, 'upload rewound'),
  ];
}

/** The frame index where a spool failed verification during the receive, or null for any other failure. */
export function spoolDamage(err: unknown): number | null {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    if (e instanceof FrameError) return typeof e.details.frameIndex === 'number' ? e.details.frameIndex : 0;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
