/**
 * One snapshot to the server, whatever happens on the way (docs/design.md, "Resume"). Each attempt asks the server where
 * the transfer stands (the server is the truth: a client that lost all its state, or was killed, resumes), runs
 * `btrfs send` again, hashes its way to the server's offset and uploads the rest; a retryable failure waits with
 * backoff and tries again. It returns once the server has received and checked the snapshot.
 */
import path from 'node:path';
import { SnapferryError, describeError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import type { LocalSnapshot, PlanStep } from '../../core/plan.ts';
import { UPLOADS_PATH, finalStates, waitingStates, type SendStream, type Transfer } from '../../core/protocol.ts';
import { btrfsFeatures, canSend } from '../../core/btrfs/features.ts';
import type { ServerApi } from '../http/api.ts';
import { openFramedSend, StreamMismatch, type FramedSend, type ResumeFrom } from './framed-send.ts';
import { uploadFramed } from '../upload/tus.ts';
import type { UploadRateLimit } from '../upload/rate-limit.ts';
import type { Compression } from './compression.ts';
import { RetryNotes } from './retry-notes.ts';
import { Backoff, type BackoffOptions } from '../http/retry.ts';
import { chooseWait } from '../http/retry-after.ts';
import { formatBytes, type Reporter } from '../progress/report.ts';
import { TransferProgress } from './progress.ts';
import { estimateRawTotal } from './estimate.ts';
import { formatDuration } from '../progress/math.ts';
import { ReceiveWaiting, keepWaiting } from './receive-waiting.ts';
import { pollDelay, receiveSchedule } from '../http/poll-schedule.ts';
import { CANNOT_APPLY, cannotApplyAdvice } from './cannot-apply.ts';
import { PARENT_CHANGED, aroundChangedNote } from './changed-parent.ts';
import { metadataFor } from './upload-metadata.ts';
import { streamIdentity } from '../../core/wire/index.ts';
import type { SealKey } from '../../core/crypto/keys.ts';
import { busyTransferId, judgeBusy, waitNote, type BusyVerdict } from './busy-volume.ts';
import { abortedError, judgeGoneUpload } from './gone-upload.ts';

/** How long a stopped push waits for the server to take its lease back before it exits anyway. */
const RELEASE_WAIT_MS = 2_000;

export interface SendContext {
  api: ServerApi;
  volume: SafeName;
  report: Reporter;
  headers: Record<string, string>;
  chunkSize: number;
  compression: Compression;
  patchBytes: number;
  pollMs: number;
  stallMs?: number;
  rateLimit?: UploadRateLimit;
  backoff: BackoffOptions;
  /** How btrfs send makes a new transfer's stream (default 'v1'); a resumed one keeps the stream it began with. */
  sendStream?: SendStream;
  signal?: AbortSignal;
  /** Seal every frame under this key (`encrypt:`), bound to each stream's snapshot and parent UUIDs. */
  sealKey?: SealKey;
  /**
   * `step` planned again on what the server holds now (client/push/push.ts), after waiting for another push, or
   * without the parents in `changedParents` (client/push/changed-parent.ts).
   */
  replan?: (step: PlanStep, changedParents?: ReadonlySet<string>) => Promise<PlanStep>;
  /** Parents the server refused as changed here (parent_changed), this push's and the ones its transfers recorded. */
  changedParents?: Set<string>;
  /** This machine's read-only snapshot of that UUID, or null: what a transfer holding the volume would send. */
  localSnapshot?: (uuid: string) => Promise<LocalSnapshot | null>;
  /**
   * What this push has sent, by snapshot UUID: one sent first because its upload held the volume is its own step
   * later in the plan, and that step was announced and reported received a second time, on the plan's parent.
   */
  sent?: Map<string, SentSnapshot>;
}

export class PushError extends SnapferryError {}

/** What a step sent: the transfer, and the parent it was sent on (another than planned after a wait: replan). */
export interface SentSnapshot {
  transfer: Transfer;
  parent: string | null;
}

export async function sendSnapshot(ctx: SendContext, planned: PlanStep): Promise<SentSnapshot> {
  const before = ctx.sent?.get(planned.snapshot.uuid);
  if (before !== undefined) return before;
  const sent = await sendOnce(ctx, planned);
  ctx.sent?.set(planned.snapshot.uuid, sent);
  return sent;
}

async function sendOnce(ctx: SendContext, planned: PlanStep): Promise<SentSnapshot> {
  let step = planned;
  const backoff = new Backoff(ctx.backoff);
  let lastOffset = -1;
  // Said once the attempt knows which upload goes on (attempt()): a resumed or received one may have begun on
  // another parent than this plan's, and one the server holds already is not sent at all.
  let announced = false;
  const announce = (parent: string | null) => {
    if (announced) return;
    announced = true;
    ctx.report.startTransfer(step.snapshot.name, parent);
  };
  let progress = new TransferProgress(ctx.report, step.snapshot.name, { patchBytes: ctx.patchBytes });
  // Another stream from here on (another parent, or after another snapshot's lines): its own line that says what is
  // sent, and its own estimate and figures.
  const goOn = (now: PlanStep) => {
    step = now;
    announced = false;
    progress = new TransferProgress(ctx.report, step.snapshot.name, { patchBytes: ctx.patchBytes });
  };
  const notes = new RetryNotes((text) => ctx.report.note(text));
  // The transfers this push has sent to: one of them found aborted was ended by someone else (gone-upload.ts).
  const sentTo = new Set<string>();
  // The refusal of the last wait for another transfer that held the volume, until the step is planned again.
  let waitedFor: SnapferryError | null = null;
  for (;;) {
    ctx.signal?.throwIfAborted();
    try {
      if (waitedFor !== null && ctx.replan) {
        // Planned again only once that transfer is over. Planned while it still receives, the step misses the parent
        // it leaves, and the volume is free by the attempt after: sent on the older parent, the stream carries again
        // what that parent has. While it still holds the volume, this try is refused as the server would refuse it.
        if (await stillHolds(ctx, step, waitedFor)) throw waitedFor;
        waitedFor = null;
        const now = await betterParent(ctx, step, ctx.replan);
        if (now !== step) goOn(now);
      }
      return await sentOn(ctx, step, await attempt(ctx, step, progress, notes, sentTo, announce));
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      // Whatever went wrong, the server may have finished anyway (the last response was lost).
      const now = await findTransfer(ctx, step).catch(() => undefined);
      if (now?.state === 'received') return await sentOn(ctx, step, reportReceived(ctx, now));
      // The server has the whole stream and receives it by itself: nothing to send, nothing to wait for here.
      if (err instanceof ReceiveWaiting) throw err;
      // The parent changed here after it was sent: refused again however often it goes, so the step goes another way.
      if (err instanceof SnapferryError && err.code === PARENT_CHANGED && ctx.replan) {
        goOn(await aroundChangedParent(ctx, step, ctx.replan, err));
        continue;
      }
      // The server found the parent changed by hand there, and flags it now: planned again on its listing, the step goes
      // on another parent or in full, at once (the refusal said "push again", which is all the user could do).
      if (err instanceof SnapferryError && err.code === 'parent_altered' && ctx.replan) {
        goOn(await aroundAlteredParent(ctx, step, ctx.replan, err));
        continue;
      }
      // An upload the server expired cannot be resumed, but a new one can start: the next attempt does, and says so.
      if (!(err instanceof SnapferryError) || (!err.retryable && err.code !== 'upload_expired')) throw err;
      if (now && now.wireOffset > lastOffset) {
        if (lastOffset >= 0) backoff.reset();
        lastOffset = now.wireOffset;
      }
      // Another transfer of this client holds the volume: one that can never end is ended, one this machine can send is
      // sent first, and only what really goes on elsewhere is waited for (client/push/busy-volume.ts).
      const busy = err.code === 'volume_busy' && ctx.replan && ctx.localSnapshot ? await lookAtBusy(ctx, step, err).catch(() => null) : null;
      if (busy !== null && busy.kind !== 'wait' && (await clearBusy(ctx, step, busy))) {
        const now = await betterParent(ctx, step, ctx.replan!);
        // After another snapshot's lines, or on another parent: this one's own line again, and its own figures.
        if (now !== step || busy.kind === 'sendFirst') goOn(now);
        continue;
      }
      const delay = backoff.next();
      if (delay === null) {
        throw new PushError('retries_exhausted', `gave up on ${step.snapshot.name} after ${backoff.attempts - 1} retries: ${err.message}`, {
          retryable: true,
          cause: err,
        });
      }
      const wait = chooseWait(delay, err);
      // A wait for another push is said on every try, with the way to end it: said once, it looked like a hang.
      if (busy?.kind === 'wait') ctx.report.note(waitNote(step, busy, wait.ms / 1000));
      else notes.retry(err, `${step.snapshot.name}: ${wait.because ?? describeError(err)}; trying again in ${(wait.ms / 1000).toFixed(1)} s`);
      await backoff.wait(wait.ms, ctx.signal);
      // Another push into the volume held it: it may have sent a parent newer than the one this step was planned on.
      if (err.code === 'volume_busy') waitedFor = err;
    }
  }
}

/** The transfer that holds the volume (named by the refusal `err`), judged on what this machine and the server hold. */
async function lookAtBusy(ctx: SendContext, step: PlanStep, err: SnapferryError): Promise<BusyVerdict> {
  const id = busyTransferId(err);
  const transfer = id === null ? null : await ctx.api.transfer(id);
  if (transfer === null || transfer.state !== 'uploading') return judgeBusy(step, { transfer, local: null, parentHeld: true });
  const local = await ctx.localSnapshot!(transfer.uuid);
  const parentHeld = transfer.parentUuid === null || (await ctx.api.snapshots(ctx.volume)).snapshots.some((s) => s.uuid === transfer.parentUuid);
  return judgeBusy(step, { transfer, local, parentHeld });
}

/**
 * Ends the transfer that can never finish, or sends the one this machine has first, each said in one line. False when
 * that did not happen (the transfer moved on meanwhile, say): the push waits and looks again.
 */
async function clearBusy(ctx: SendContext, step: PlanStep, busy: Exclude<BusyVerdict, { kind: 'wait' }>): Promise<boolean> {
  const t = busy.transfer;
  if (busy.kind === 'end') {
    ctx.report.note(`${step.snapshot.name}: ending transfer ${t.id} of ${ctx.volume}/${t.snapshot}, which held the volume: ${busy.why} (as \`snapferry abort ${t.id}\` does)`);
    return ctx.api.abort(t.id).then(() => true, () => false);
  }
  ctx.report.note(`${step.snapshot.name}: the unfinished upload of ${busy.snapshot.name} (transfer ${t.id}) holds the volume: sending it first`);
  await sendSnapshot(ctx, await ctx.replan!({ snapshot: busy.snapshot, parent: null }));
  return true;
}

/**
 * Whether the transfer a volume_busy refusal named still goes on, as another snapshot's: false when it named none (an
 * older server), and for an upload of `step`'s own snapshot, which the attempt resumes.
 */
async function stillHolds(ctx: SendContext, step: PlanStep, refusal: SnapferryError): Promise<boolean> {
  const id = busyTransferId(refusal);
  if (id === null) return false;
  const transfer = await ctx.api.transfer(id).catch(() => null);
  return transfer !== null && transfer.uuid !== step.snapshot.uuid && !finalStates.includes(transfer.state);
}

const sentOn = async (ctx: SendContext, step: PlanStep, transfer: Transfer): Promise<SentSnapshot> => ({ transfer, parent: await parentOf(ctx, step, transfer) });

/**
 * The name of the parent `transfer` is sent on: the plan's, unless the upload began on another one (a push of this
 * snapshot alone, say, before a newer parent was sent) and the server holds or received it that way.
 */
async function parentOf(ctx: SendContext, step: PlanStep, transfer: Transfer): Promise<string | null> {
  const uuid = transfer.parentUuid;
  if (uuid === null) return null;
  if (uuid === step.parent?.uuid) return step.parent.name;
  const there = (await ctx.api.snapshots(ctx.volume).catch(() => null))?.snapshots.find((s) => s.uuid === uuid);
  if (there !== undefined) return there.name;
  return (await ctx.localSnapshot?.(uuid).catch(() => null))?.name ?? uuid;
}

/** `step` with the parent its plan picks now, said when that is another one than before. */
async function betterParent(ctx: SendContext, step: PlanStep, replan: (step: PlanStep) => Promise<PlanStep>): Promise<PlanStep> {
  const now = await replan(step).catch(() => step);
  if ((now.parent?.uuid ?? null) === (step.parent?.uuid ?? null)) return step;
  ctx.report.note(
    now.parent
      ? `${step.snapshot.name}: another push sent ${now.parent.name} meanwhile, a newer parent than ${step.parent?.name ?? 'none'}: planned again on it`
      : `${step.snapshot.name}: ${step.parent?.name ?? 'its parent'} is no longer a parent on the server: planned again, in full`,
  );
  return now;
}

/**
 * `step` planned again without its parent, which the server refused as changed here (`err`). Throws `err` when the
 * plan cannot go around it (no parent to drop, or it picked a refused one again): never the same refusal in a loop.
 */
async function aroundChangedParent(ctx: SendContext, step: PlanStep, replan: NonNullable<SendContext['replan']>, err: SnapferryError): Promise<PlanStep> {
  if (step.parent === null) throw err;
  const changed = ctx.changedParents ?? new Set<string>();
  changed.add(step.parent.uuid);
  const now = await replan(step, changed);
  if (now.snapshot.uuid !== step.snapshot.uuid || (now.parent !== null && changed.has(now.parent.uuid))) throw err;
  ctx.report.note(aroundChangedNote(step, now));
  return now;
}

/**
 * `step` planned again on the server's listing, which now flags its parent as changed by hand there. Throws `err`
 * when the plan still picks that parent (the listing does not flag it: an older server): never the same refusal in
 * a loop.
 */
async function aroundAlteredParent(ctx: SendContext, step: PlanStep, replan: NonNullable<SendContext['replan']>, err: SnapferryError): Promise<PlanStep> {
  if (step.parent === null) throw err;
  const now = await replan(step);
  if (now.snapshot.uuid !== step.snapshot.uuid || now.parent?.uuid === step.parent.uuid) throw err;
  ctx.report.note(
    `${step.snapshot.name}: not sent on ${step.parent.name}: the server's copy of it was changed by hand there (parent_altered), so ` +
      `nothing is built on it; ${now.parent ? `sending it on ${now.parent.name} instead` : 'sending it in full instead'}`,
  );
  return now;
}

/** The newest transfer of this snapshot that is not over (or is received). */
async function findTransfer(ctx: SendContext, step: PlanStep): Promise<Transfer | undefined> {
  return (await transfersOf(ctx, step)).standing.find((t) => !['failed', 'aborted'].includes(t.state));
}

interface SnapshotTransfers {
  /** This snapshot's transfers that still stand, newest first. */
  standing: Transfer[];
  /** Why a received transfer of it no longer stands (the snapshot is gone from the server), or null. */
  gone: string | null;
}

/**
 * This snapshot's transfers on the server, newest first, less a received one whose snapshot the server no longer
 * holds: deleted there by hand, by retention, or found altered, it leaves its transfer received in the history, and
 * taking that for the answer reported a push done that sent nothing. The list is read after the transfers, so a
 * transfer received in between is in it.
 */
async function transfersOf(ctx: SendContext, step: PlanStep): Promise<SnapshotTransfers> {
  const { transfers } = await ctx.api.transfers();
  const mine = transfers
    .filter((t) => t.volume === ctx.volume && t.uuid === step.snapshot.uuid)
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const received = mine.find((t) => t.state === 'received');
  if (received === undefined) return { standing: mine, gone: null };
  const list = await ctx.api.snapshots(ctx.volume);
  if (list.snapshots.some((s) => s.uuid === step.snapshot.uuid)) return { standing: mine, gone: null };
  const removed = list.removed.find((r) => r.uuid === step.snapshot.uuid);
  const why = removed ? ` (${removed.reason})` : '';
  return {
    standing: mine.filter((t) => t.state !== 'received'),
    gone: `${step.snapshot.name}: the server received it before (transfer ${received.id}) but no longer holds it${why}; sending it again`,
  };
}

/** A snapshot renamed here after its upload began: the server holds it under the upload's name, which restore takes. */
function renamedNote(local: string, transfer: Transfer): string {
  return (
    `${local}: renamed here since its upload began as ${transfer.snapshot}; the server keeps that name ` +
    `(restore it as ${transfer.snapshot})`
  );
}

/** Why a new upload starts from zero when the newest one of this snapshot was expired by the server, or null. */
function expiredNote(snapshot: string, newest: Transfer | undefined): string | null {
  if (newest?.state !== 'failed' || newest.error?.code !== 'upload_expired') return null;
  const { idleMs, wireBytes } = newest.error.details ?? {};
  const after = typeof idleMs === 'number' ? ` after ${formatDuration(idleMs / 1000)} without data` : '';
  const lost = typeof wireBytes === 'number' ? ` (${formatBytes(wireBytes)} of it had arrived)` : '';
  return `${snapshot}: the server expired the unfinished upload${after}${lost}; starting over`;
}

async function attempt(
  ctx: SendContext, step: PlanStep, progress: TransferProgress, notes: RetryNotes, sentTo: Set<string>, announce: (parent: string | null) => void,
): Promise<Transfer> {
  const { standing: mine, gone } = await transfersOf(ctx, step);
  if (gone !== null) notes.once(gone);
  // Aborted while this push waited to try again (its upload's 404 never came): the same decision, not a new upload.
  if (mine[0]?.state === 'aborted' && sentTo.has(mine[0].id)) throw abortedError(step.snapshot.name, mine[0]);
  const existing = mine.find((t) => !['failed', 'aborted'].includes(t.state));
  // The server keeps the name an upload was created with: said before the received line names it.
  if (existing && existing.snapshot !== step.snapshot.name) notes.once(renamedNote(step.snapshot.name, existing));
  if (existing?.state === 'received') return reportReceived(ctx, existing);
  if (existing && existing.state !== 'uploading') {
    announce(await parentOf(ctx, step, existing));
    return waitReceived(ctx, step, existing.id);
  }
  // An uploading one on another parent is aborted below, so what goes on goes on the plan's parent.
  announce(step.parent?.name ?? null);
  const expired = existing ? null : expiredNote(step.snapshot.name, mine[0]);
  if (expired !== null) ctx.report.note(expired);

  let resumeOf: Transfer | null = null;
  if (existing) {
    const why =
      existing.parentUuid !== (step.parent?.uuid ?? null)
        ? `it sends ${step.snapshot.name} from another parent than this plan`
        : !canSend(existing.sendStream, await btrfsFeatures())
          ? `its stream (${existing.sendStream}) is one this machine's btrfs can no longer make`
          : null;
    if (why === null) resumeOf = existing;
    else {
      ctx.report.note(`aborting transfer ${existing.id}: ${why}`);
      // This push's own decision: the transfer, aborted now, is no longer one whose abort stops the push.
      sentTo.delete(existing.id);
      await ctx.api.abort(existing.id);
    }
  }
  // The very stream the server holds part of: a resume never switches the way btrfs send makes it.
  const sendStream = resumeOf?.sendStream ?? ctx.sendStream ?? 'v1';
  if (resumeOf && sendStream !== (ctx.sendStream ?? 'v1')) {
    ctx.report.note(`${step.snapshot.name}: resuming its ${sendStream} stream as it began (new transfers of this push go ${ctx.sendStream ?? 'v1'})`);
  }
  // Once per transfer, before its first send: the total for the progress line's percentage and ETA.
  if (!progress.estimated) progress.setEstimate(await estimateRawTotal(step, sendStream, ctx.report, ctx.signal));
  progress.newAttempt();
  const framed = await open(ctx, step, resumeOf, sendStream, progress);
  // From here this attempt owns the framed send: every way out of the try below cancels it.
  let id = resumeOf?.id ?? null;
  if (id !== null) sentTo.add(id);
  // The transfer as the server has it now; a new upload's id comes with the server's first answer (onUrl below).
  const transferNow = async (options: { stallMs?: number } = {}): Promise<Transfer> => {
    if (id === null) throw new PushError('no_transfer_id', 'the upload has no id yet', { retryable: true });
    return ctx.api.transfer(id, options);
  };
  try {
    progress.begin(framed.start);
    ctx.compression.rawPace.restart();
    // btrfs send's first command, which comes at once: its ctransids go into a new upload's metadata.
    const start = await framed.header;
    await uploadFramed({
      server: ctx.api.base.toString(),
      transport: ctx.api.transport,
      uploadUrl: resumeOf ? ctx.api.url(`${UPLOADS_PATH}/${resumeOf.id}`) : null,
      metadata: { ...metadataFor(ctx.volume, step, ctx.chunkSize, sendStream, start), ...progress.estimateMetadata() },
      source: framed.source,
      chunkSize: ctx.patchBytes,
      headers: ctx.headers,
      ...(ctx.stallMs ? { stallMs: ctx.stallMs } : {}),
      ...(ctx.rateLimit ? { rateLimit: ctx.rateLimit } : {}),
      linkMeter: ctx.compression.linkMeter,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onUrl: (url) => {
        id = url.split('/').pop() ?? null;
        if (id !== null) sentTo.add(id);
      },
      probeArrived: async (timeoutMs) => (await transferNow({ stallMs: timeoutMs })).wireArrived,
      verifiedOffset: async () => (await transferNow()).wireOffset,
      onProgress: (wire) => ctx.compression.rawPace.sent(progress.uploaded(wire).rawBytes),
      onRetry: (err) => notes.retry(err, `${step.snapshot.name}: ${describeError(err)}; resuming from the server's offset`),
    });
    // An upload whose HEAD showed it whole ends without reading the source: its rest arrived while this attempt hashed
    // its way to the offset (from another push of it, say). Nothing reads this send's rest now, so its btrfs send
    // blocks on a full pipe: waited for, the push hung for ever after the upload was done.
    if (framed.source.endTaken) await framed.done;
    else {
      framed.cancel();
      ctx.report.note(`${step.snapshot.name}: the server has the whole upload already (the rest arrived while this push looked for where to resume); nothing more to send`);
    }
  } catch (err) {
    framed.cancel();
    // Stopped (Ctrl-C, SIGTERM): the upload's lease goes with this push, not LEASE_MS later, so the command run again
    // resumes at once. A server that does not answer soon keeps the lease until it runs out, no worse than before.
    if (ctx.signal?.aborted && id !== null) await ctx.api.release(id, RELEASE_WAIT_MS).catch(() => undefined);
    // The pipeline's own failure (btrfs send, a bad stream) explains more than the upload's.
    const pipelineFailure = await framed.done.then(() => null, (e: unknown) => e);
    const failure =
      pipelineFailure instanceof SnapferryError ? pipelineFailure
      : err instanceof SnapferryError && err.code === 'upload_gone' && id !== null && !ctx.signal?.aborted ? await whyGone(ctx, step, id, err)
      : err;
    // A failure the push will not retry (a quota refusal, say) ends this push's hold on the upload too: held on, the
    // server said "being sent by a push now" of an upload nobody sent, and the next push waited out the lease.
    if (!ctx.signal?.aborted && id !== null && failure instanceof SnapferryError && !failure.retryable) {
      await ctx.api.release(id, RELEASE_WAIT_MS).catch(() => undefined);
    }
    throw failure;
  }
  if (id === null) throw new PushError('no_transfer_id', 'the server did not say where the upload went', { retryable: true });
  ctx.report.waiting(step.snapshot.name);
  return waitReceived(ctx, step, id);
}

/**
 * The error to go on with when the server no longer has transfer `id`'s upload (`gone`, retryable): the transfer's
 * state decides (client/push/gone-upload.ts). Said here, once, why a new upload starts; a server that cannot say
 * leaves `gone` as it is, and the next attempt reads the transfer list.
 */
async function whyGone(ctx: SendContext, step: PlanStep, id: string, gone: SnapferryError): Promise<SnapferryError> {
  let transfer: Transfer | null;
  try {
    transfer = await ctx.api.transfer(id);
  } catch (err) {
    if (!(err instanceof SnapferryError && err.code === 'not_found')) return gone;
    transfer = null;
  }
  const verdict = judgeGoneUpload(step.snapshot.name, id, transfer);
  if (verdict.kind === 'stop') return verdict.error;
  if (verdict.note !== null) ctx.report.note(verdict.note);
  return gone;
}

/**
 * Starts the framed send, resuming where the server stands; rewinds the upload when the streams diverged. A framed
 * send is owned by whoever opened it until it is handed on: open() cancels the one it made when anything after
 * opening it fails (the rewind refused with transfer_locked, say), and attempt() owns what open() returns. A send
 * dropped without cancel() leaves its `btrfs send` blocked on a pipe nobody reads, and that child kept `push` from
 * ever exiting after "done".
 */
async function open(ctx: SendContext, step: PlanStep, resumeOf: Transfer | null, sendStream: SendStream, progress: TransferProgress): Promise<FramedSend> {
  const options = {
    onFrame: progress.onFrame,
    sendStream,
    snapshotPath: step.snapshot.path,
    parentPath: step.parent?.path ?? null,
    chunkSize: resumeOf?.chunkSize ?? ctx.chunkSize,
    level: ctx.compression.level,
    pool: ctx.compression.pool,
    maxSlice: ctx.patchBytes,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(ctx.sealKey ? { sealing: { key: ctx.sealKey, stream: streamIdentity(step.snapshot.uuid, step.parent?.uuid ?? null) } } : {}),
  };
  if (!resumeOf) return openFramedSend(options);
  const resume: ResumeFrom = {
    frames: resumeOf.framesVerified, wireOffset: resumeOf.wireOffset, chain: resumeOf.chain,
    ...(await frameZeroOf(ctx, step, resumeOf)),
  };
  let framed: FramedSend;
  try {
    framed = await openFramedSend(options, resume);
  } catch (err) {
    // A failed openFramedSend has cancelled its own send.
    if (!(err instanceof StreamMismatch)) throw err;
    ctx.report.note(
      `${step.snapshot.name}: btrfs send now produces a different stream than the one the server holds ` +
        '(the snapshot was changed since, btrfs-progs or the kernel was updated, or the server\'s copy was changed on its disk); ' +
        'looking for the last frame that still matches',
    );
    framed = await openFramedSend(options, { ...resume, records: await ctx.api.frames(resumeOf.id) });
  }
  try {
    if (framed.rewindTo !== null) {
      await ctx.api.rewind(resumeOf.id, framed.rewindTo);
      ctx.report.note(`${step.snapshot.name}: rewound the upload from frame ${resumeOf.framesVerified} to ${framed.rewindTo}, where the streams still agree`);
    }
    if (framed.start.frames > 0) {
      ctx.report.note(`${step.snapshot.name}: resuming at ${formatBytes(framed.start.wireOffset)} (frame ${framed.start.frames}); the rest was only hashed, not sent`);
    }
    return framed;
  } catch (err) {
    framed.cancel();
    throw err;
  }
}

/**
 * What frame 0 of the upload tells about how its stream names the snapshot (core/wire/stream-naming.ts): one this
 * version began carries the UUID; one an older snapferry began, the directory's name then, which is the upload's
 * snapshot name (the server keeps the name an upload was created with) or, for snapper's `N/snapshot`, `snapshot`.
 */
async function frameZeroOf(ctx: SendContext, step: PlanStep, resumeOf: Transfer): Promise<Pick<ResumeFrom, 'frameZero'>> {
  if (resumeOf.framesVerified === 0) return {};
  const record = await ctx.api.frame(resumeOf.id, 0);
  if (record === null) return {};
  return { frameZero: { chain: record.chain, legacyNames: [resumeOf.snapshot, path.basename(step.snapshot.path)] } };
}

/** Polls until the server has received (or failed) the transfer; an upload that went back to `uploading` (its
 * spool was damaged on disk and rewound) is a retryable interruption, so the loop resumes it. A receive that waits
 * for the server (a full disk) ends the push with ReceiveWaiting, unless the server tries again soon (keepWaiting):
 * the server holds the whole stream already. */
async function waitReceived(ctx: SendContext, step: PlanStep, id: string): Promise<Transfer> {
  let waitingSince: number | null = null;
  const since = Date.now();
  for (;;) {
    ctx.signal?.throwIfAborted();
    const t = await ctx.api.transfer(id);
    if (t.state === 'received') return reportReceived(ctx, t);
    if (waitingStates.includes(t.state)) {
      const now = Date.now();
      waitingSince ??= now;
      if (!keepWaiting(t, now, now - waitingSince)) throw new ReceiveWaiting(t, now);
    }
    if (t.state === 'uploading') {
      throw new PushError('upload_rewound', `the server needs part of ${t.snapshot} again (${t.lastInterruption ?? 'rewound'})`, { retryable: true });
    }
    // Its whole stream waited for the server, and someone threw it away (snapferry abort).
    if (t.state === 'aborted') throw abortedError(step.snapshot.name, t);
    if (finalStates.includes(t.state)) {
      // A stream the server cannot apply fails the same way when sent again: say what will go through instead.
      const advice = t.error?.code === CANNOT_APPLY ? `\n${cannotApplyAdvice(step, t.id)}` : '';
      throw new PushError(t.error?.code ?? 'transfer_failed', `the server could not receive ${t.snapshot}: ${t.error?.message ?? t.state}${advice}`, {
        details: { transferId: t.id },
      });
    }
    await new Promise((r) => setTimeout(r, pollDelay(Date.now() - since, receiveSchedule(ctx.pollMs))));
  }
}

/** However the push learnt it (a poll, or asking again after a lost answer), the received line is said once. */
function reportReceived(ctx: SendContext, t: Transfer): Transfer {
  ctx.report.received(t.snapshot, t);
  return t;
}
