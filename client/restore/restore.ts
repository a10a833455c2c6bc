/**
 * `snapferry restore`: bring one snapshot back from the server into DEST_DIR, over the same slow, breaking link a
 * push rides out. The plan (client/restore/plan.ts) picks the parent from the catalog and the snapshots here; the
 * download (client/restore/http.ts) spools verified frames in DEST_DIR/.snapferry-restore-<uuid>/ and, after a cut,
 * a stall or a killed run, goes on from the last verified frame; only once the end frame has verified does the
 * spool go through `btrfs receive` (client/restore/receive.ts); the received snapshot waits under a dot name for the
 * check against the server's digest, and only one that passed takes the snapshot's name (a failed or unfinished check
 * never reads as a complete restore).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { SnapferryError, describeError } from '../../core/errors.ts';
import { parseName } from '../../core/names.ts';
import { DEFAULT_CHUNK_SIZE, FrameError, validateChunkSize } from '../../core/wire/index.ts';
import { ServerApi } from '../http/api.ts';
import { DEFAULT_STALL_MS, createTransport } from '../http/transport.ts';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from '../http/retry.ts';
import { chooseWait } from '../http/retry-after.ts';
import { formatBytes, type Reporter } from '../progress/report.ts';
import { assertWritable, btrfsMountOf, readonlySnapshotsIn, rivalParents, RestoreTargetError } from './local.ts';
import { PARENT_CHANGED } from '../push/changed-parent.ts';
import { planRestore, type RestorePlan } from './plan.ts';
import { RestoreSpool, spoolDirFor } from './spool.ts';
import { assertOnlyWeWrite } from './target-owner.ts';
import { asRestoreDiskFull } from './disk-full.ts';
import { downloadInto, fetchCatalog, type RestoreHttp } from './http.ts';
import { differsName, receiveSpool, uncheckedName } from './receive.ts';
import { removePartial } from '../../core/receive/checked-receive.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { lockDestDir } from './dest-lock.ts';
import { RestoreProgress } from './progress.ts';
import { checkRestored } from '../verify/after-restore.ts';
import { onTheLine } from '../verify/view.ts';
import { VerifyDifferences, type VerifyOutcome } from '../verify/check.ts';
import { readKeyFile } from '../../core/crypto/key-file.ts';
import type { SealKey } from '../../core/crypto/keys.ts';
import { SealError } from '../../core/crypto/errors.ts';
import { describeSealing, restoreRefusal, sealingOfKey, sealingOfListed, type Sealing } from '../../core/sealing.ts';
import { pushedSizeKnown, type Snapshot } from '../../core/protocol.ts';

export interface RestoreOptions {
  server: string;
  volume: string;
  /** The snapshot's name on the server; it gets the same name in destDir. */
  snapshot: string;
  /** A folder on btrfs to receive into. */
  destDir: string;
  /** Where to look for a parent (default destDir); must be on destDir's filesystem. */
  parentDir?: string;
  /** Whose snapshot, for an admin token (the server refuses it for a client token's own restores). */
  client?: string;
  chunkSize?: number;
  headers?: Record<string, string>;
  /** Retries in a row without progress before giving up (default: forever). */
  retries?: number;
  backoff?: Partial<BackoffOptions>;
  /** A request or download that brings no byte for this long is dropped and resumed (--stall-timeout; default 30 s). */
  stallMs?: number;
  signal?: AbortSignal;
  caFile?: string;
  env?: Record<string, string | undefined>;
  /** Check the restored snapshot against the server's digest (client/verify/after-restore.ts); default true. */
  verify?: boolean;
  /** The key file sealed streams are opened with (`encrypt:` in the config); a sealed stream without it is refused. */
  encrypt?: string;
}

export interface RestoreResult {
  snapshot: string;
  /** Where the snapshot is now. */
  path: string;
  /** The local snapshot it was received on, or null for a full restore. */
  parent: string | null;
  /** False when it was already there and nothing was done. */
  restored: boolean;
  rawBytes: number;
  /** Bytes of the framed stream, spooled over all runs. */
  wireBytes: number;
  /** Downloads that broke off and were resumed, in this run. */
  interruptions: number;
  /** The final check's bytes on the line, or null when it was not made. */
  verifiedLineBytes: number | null;
  /** This run only checked (and named) a copy an earlier run had received: its sizes and parent are not this run's. */
  receivedEarlier?: boolean;
}

export class RestoreFailed extends SnapferryError {}

/** The parent named is not the one btrfs receive would build on (local.ts rivalParents): planned again without it. */
const PARENT_AMBIGUOUS = 'parent_ambiguous';

/** One frame failing verification this often in a row is not the link: the server sends it wrong every time. */
const MAX_BAD_FRAME_REPEATS = 3;

export function restore(options: RestoreOptions, report: Reporter): Promise<RestoreResult> {
  return restoreWith(options, report, true);
}

/**
 * `withChain`: a stored stream (an archive's) whose chain is not held here restores the chain's path first, each
 * step by a restore of its own (its spool, resume, verification and checked receive, as for any snapshot), then the
 * target on the last. The steps' own restores find their parents held, so they never walk a chain again.
 */
async function restoreWith(options: RestoreOptions, report: Reporter, withChain: boolean, changedParents: ReadonlySet<string> = new Set()): Promise<RestoreResult> {
  const volume = parseName(options.volume, 'volume');
  const name = parseName(options.snapshot, 'snapshot name');
  const destDir = path.resolve(options.destDir);
  const parentDir = path.resolve(options.parentDir ?? destDir);
  const chunkSize = validateChunkSize(options.chunkSize ?? DEFAULT_CHUNK_SIZE);
  const dest = await btrfsMountOf(destDir, 'DEST_DIR');
  await assertWritable(destDir, 'DEST_DIR');
  await assertOnlyWeWrite(destDir);
  const sealKey = options.encrypt === undefined ? undefined : await readKeyFile(options.encrypt);
  if (parentDir !== destDir && (await btrfsMountOf(parentDir, '--parent-dir')).source !== dest.source) {
    throw new RestoreTargetError('parent_dir_elsewhere', `--parent-dir ${parentDir} is on another filesystem than ${destDir}: btrfs receive finds the parent on its own filesystem only`);
  }
  const headers = { ...options.headers };
  const transport = createTransport(options.server, {
    ...(options.caFile !== undefined ? { caFile: options.caFile } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const http: RestoreHttp = {
    // The stop cancels a catalog request waiting on a server that does not answer too, not only the stream's.
    api: new ServerApi({
      server: options.server, headers, transport,
      ...(options.stallMs ? { stallMs: options.stallMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    }),
    headers,
    ...(options.client !== undefined ? { client: parseName(options.client, 'client') } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  try {
    const local = await readonlySnapshotsIn(parentDir);
    if (parentDir !== destDir) local.push(...(await readonlySnapshotsIn(destDir)));
    const catalog = await fetchCatalog(http, volume, local.map((l) => l.identity));
    const plan = planRestore({ name, volume, catalog, local, destDir, changedParents });
    if (plan.present === null) refuseBySealing([...plan.before, plan.target], sealingOfKey(sealKey));
    if (plan.before.length > 0) {
      if (!withChain) {
        throw new RestoreFailed('chain_broken', `${name} still lacks ${plan.before[0]!.name} of its chain after restoring it; restore ${plan.before[0]!.name} by itself to see why`, {
          details: { snapshot: name, missing: plan.before[0]!.name },
        });
      }
      const from = plan.parent ? `after ${plan.parent.local.name} (held here)` : `from its full ${plan.before[0]!.name}`;
      report.note(`the server holds ${name} as a stream on its chain: restoring the chain ${from} first (${plan.before.map((s) => s.name).join(', ')})`);
      for (const step of plan.before) await restoreWith({ ...options, snapshot: step.name }, report, false, changedParents);
      return await restoreWith(options, report, false, changedParents);
    }
    if (plan.present) {
      report.note(`${name} is already here, at ${plan.present.path}`);
      return { snapshot: name, path: plan.present.path, parent: null, restored: false, rawBytes: 0, wireBytes: 0, interruptions: 0, verifiedLineBytes: null };
    }
    if (plan.elsewhere) report.note(`${name} is already at ${plan.elsewhere.path} (--parent-dir), not in ${destDir}: restoring it into ${destDir} as asked`);
    const finalPath = path.join(destDir, name);
    if (await fs.lstat(finalPath).then(() => true, () => false)) {
      throw new RestoreTargetError('restore_target_exists', `${finalPath} already exists and is not ${name} from the server; move it away or restore into another folder`, {
        details: { path: finalPath },
      });
    }
    // Held until the snapshot has its name: another restore's spool, receive or check here would go with this one's
    // cleanup, and its copy waiting for the check is this one's by name.
    const lock = await lockDestDir(destDir);
    let changed: string | null = null;
    try {
      const unchecked = path.join(destDir, uncheckedName(plan.target.uuid));
      let result: RestoreResult;
      // --no-verify spares the check of what this run downloads. A copy an earlier run left unchecked is there because
      // its check failed to end (stopped, the server out of reach) or never started (killed): nothing says it is
      // whole, and checking it costs no download, so it is checked all the same rather than named unchecked.
      const waiting = await receivedEarlier(unchecked, plan.target.uuid);
      if (waiting) {
        const anyway = options.verify === false ? ' all the same (--no-verify skips the check of a copy this run downloads, not of one left unchecked)' : '';
        report.note(`${name}: an earlier run received it and did not finish checking it (${unchecked}); checking it now${anyway}, without downloading it again`);
        result = { snapshot: name, path: unchecked, parent: null, restored: true, rawBytes: 0, wireBytes: 0, interruptions: 0, verifiedLineBytes: null, receivedEarlier: true };
      } else {
        await removePartial(unchecked);
        result = await download({ options, report, http, volume, plan, destDir, chunkSize, mountPoint: dest.mountPoint, ...(sealKey ? { sealKey } : {}) });
      }
      const verify = waiting || options.verify !== false;
      const checked = await finalCheck({ options, report, http, volume, plan, verify, path: unchecked, kept: path.join(destDir, differsName(name)) });
      // Only now the snapshot's name: a restore whose check failed or never ended must never read as complete.
      if (await fs.lstat(finalPath).then(() => true, () => false)) {
        throw new RestoreTargetError('restore_target_exists', `${finalPath} appeared while ${name} was restored; the restored snapshot is kept at ${unchecked}: move ${finalPath} away and run the restore again to give it its name`, {
          details: { path: finalPath, kept: unchecked },
        });
      }
      await fs.rename(unchecked, finalPath);
      return { ...result, path: finalPath, verifiedLineBytes: checked === null ? null : onTheLine(checked) };
    } catch (err) {
      if (!(plan.parent && err instanceof SnapferryError && (err.code === PARENT_CHANGED || err.code === PARENT_AMBIGUOUS))) throw err;
      changed = err.code === PARENT_CHANGED
        ? `${plan.parent.local.path} here was changed after it was sent, and a restore on it would differ from the server's copy (parent_changed)`
        : err.message;
    } finally {
      await lock.release();
    }
    // The local parent was changed after it was sent (the server compared its ctransid now with its copy's), or btrfs
    // receive could take another copy for it: the stream would be applied to a tree the server never saw, or to one
    // the policy did not look at. Planned again without it, as push does.
    const again = new Set([...changedParents, plan.parent!.server.uuid]);
    /* c8 ignore next 3 */
    if (again.size === changedParents.size) {
      throw new RestoreFailed('restore_plan_loop', `${name}: the plan took ${plan.parent!.local.path} again after passing it over (${changed}); restore into a folder without it`);
    }
    const next = planRestore({ name, volume, catalog, local, destDir, changedParents: again });
    const instead = next.parent ? `restoring it on ${next.parent.local.name} instead` : 'restoring it in full instead';
    report.note(`${name}: not restored on ${plan.parent!.local.name}: ${changed}; ${instead}`);
    return await restoreWith(options, report, withChain, again);
  } finally {
    await transport.close();
  }
}

interface Download {
  options: RestoreOptions;
  report: Reporter;
  http: RestoreHttp;
  volume: string;
  plan: RestorePlan;
  destDir: string;
  chunkSize: number;
  mountPoint: string;
  sealKey?: SealKey;
}

/** The spool, downloaded (resuming) and received under the unchecked name; a full disk said as what to do about it. */
async function download({ options, report, http, volume, plan, destDir, chunkSize, mountPoint, sealKey }: Download): Promise<RestoreResult> {
  const name = plan.target.name;
  let spool: RestoreSpool | null = null;
  try {
    const opened = await RestoreSpool.open(spoolDirFor(destDir, plan.target.uuid), {
      client: http.client ?? null, volume, snapshot: name,
      uuid: plan.target.uuid, parentUuid: plan.parent?.server.uuid ?? null, chunkSize,
    });
    spool = opened.spool;
    if (opened.discarded) report.note(`started the download of ${name} over: the spool in ${spool.dir} was of another stream (${opened.discarded})`);
    return await run({ options, report, http, volume, plan, spool, destDir, ...(sealKey ? { sealKey } : {}) });
  } catch (err) {
    // A spool that holds no byte has nothing to resume: a refusal (snapshot_altered, not_found, parent_changed, ...)
    // or a stop before the first byte leaves DEST_DIR as it was found, not with an empty dot folder in it.
    if (spool && (await spool.holdsNothing().catch(() => false))) {
      await spool.remove();
      spool = null;
    }
    // The one place a full disk under DEST_DIR (the spool's writes, btrfs receive) becomes what to do about it.
    const state = spool?.state;
    throw await asRestoreDiskFull(err, {
      destDir, mountPoint, target: plan.target,
      streamParent: plan.parent?.server ?? null,
      spool: spool && state ? { dir: spool.dir, wireBytes: state.wireOffsetVerified, complete: state.ended } : null,
    });
  } finally {
    await spool?.close();
  }
}

/** A copy an earlier run received and did not check to the end: whole (read-only, the stream's Received UUID). */
async function receivedEarlier(p: string, uuid: string): Promise<boolean> {
  if (!(await btrfs.isSubvolume(p))) return false;
  const shown = await btrfs.subvolumeShow(p);
  return shown.readonly && shown.receivedUuid === uuid;
}

interface FinalCheck {
  options: RestoreOptions;
  report: Reporter;
  http: RestoreHttp;
  volume: string;
  plan: RestorePlan;
  /** False to skip the check (--no-verify, for a copy this run downloaded). */
  verify: boolean;
  /** The received snapshot, under its unchecked name. */
  path: string;
  /** Where it goes when it differs. */
  kept: string;
}

/**
 * The restored tree against the server's digest of its copy: what btrfs receive wrote, not only what it was sent.
 * Null where no digest is compared (--no-verify, an archive). A difference moves the copy to `kept` (`kept-2`, ... when
 * an earlier one is kept there) and fails the restore (exit 3); an interrupted check or one that could not reach the
 * server leaves it unchecked, for the next run to check.
 */
async function finalCheck({ options, report, http, volume, plan, verify, path: at, kept }: FinalCheck): Promise<VerifyOutcome | null> {
  const name = plan.target.name;
  if (!verify) return null;
  // An archive holds the pushed stream, not a tree it could digest (and a sealed one it cannot even read): the
  // check there is every frame verified on its way down and the checked receive, which are done.
  if (plan.target.storedStream === true) {
    report.note(`${name}: every frame of its stream verified; an archive server keeps streams, not trees, so there is no digest of its copy to compare with`);
    return null;
  }
  const keptAt = await freeName(kept);
  try {
    return await checkRestored({
      api: http.api, headers: http.headers, volume, snapshot: name, path: at, keptAt, parentPath: plan.parent?.local.path ?? null,
      ...(http.client !== undefined ? { client: http.client } : {}), ...(options.signal ? { signal: options.signal } : {}),
    }, report);
  } catch (err) {
    if (err instanceof VerifyDifferences) {
      if (keptAt !== at) await fs.rename(at, keptAt);
      throw err;
    }
    // An archive server holds the stream, not a tree (and a sealed one it cannot read): nothing to compare with. The
    // stream was verified frame by frame and received with the checked receive; that is the check there is.
    if (!(err instanceof SnapferryError && err.code === 'verify_unavailable')) throw err;
    report.note(`${name}: not checked against a digest (${err.message}); every frame of its stream was verified`);
    return null;
  }
}

/**
 * `wanted`, or `wanted-2`, `wanted-3`, ... when it is taken: a second copy that differs is kept beside the first. Left
 * under its unchecked name instead, it was checked again by every later run, which failed the same way until the user
 * deleted it by hand.
 */
async function freeName(wanted: string): Promise<string> {
  const taken = (p: string) => fs.lstat(p).then(() => true, () => false);
  let candidate = wanted;
  for (let n = 2; await taken(candidate); n++) candidate = `${wanted}-${n}`;
  return candidate;
}

interface Run {
  options: RestoreOptions;
  report: Reporter;
  http: RestoreHttp;
  volume: string;
  plan: RestorePlan;
  spool: RestoreSpool;
  destDir: string;
  sealKey?: SealKey;
}

/** Download (resuming), receive, clean up; retries what can heal, with backoff, and says what it does. */
async function run({ options, report, http, volume, plan, spool, destDir, sealKey }: Run): Promise<RestoreResult> {
  const { target, parent } = plan;
  // The original that was pushed is held against the ctransid the server's copy was sent at; a received copy's
  // ctransid is its own, which says nothing of that (as for push: server/stream-start.ts).
  const parentCtransid = parent && !parent.local.received ? await btrfs.ctransidOf(parent.local.path) : undefined;
  const rivals = parent ? await rivalParents(parent.local) : [];
  if (rivals.length > 0) {
    throw new RestoreFailed(PARENT_AMBIGUOUS, `btrfs receive would take its parent by identity and could build on ${rivals.join(', ')} (another copy of ${parent!.server.name} on this filesystem) instead of ${parent!.local.path}`, {
      details: { parent: parent!.local.path, rivals },
    });
  }
  const signal = options.signal;
  const backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.backoff, ...(options.retries !== undefined ? { retries: options.retries } : {}) });
  // Same-parent restores transfer about what the push did; from another parent nothing tells the size beforehand,
  // nor for a snapshot the server adopted without its push's record (shown as of unknown size, not as ~0 B).
  const estimate = (parent?.server.uuid ?? null) === target.parentUuid && pushedSizeKnown(target) ? target.rawBytes : null;
  const progress = new RestoreProgress(report, target.name, estimate);
  report.note(`restoring ${target.name} into ${destDir} ` + (parent ? `(incremental from ${parent.local.name})` : '(full)'));
  if (spool.state.framesVerified > 0 && !spool.state.ended) {
    report.note(`${target.name}: resuming the download at frame ${spool.state.framesVerified} (${formatBytes(spool.state.wireOffsetVerified)} already spooled)`);
  }
  let interruptions = 0;
  let badFrame = { index: -1, repeats: 0 };
  for (;;) {
    signal?.throwIfAborted();
    const before = spool.state;
    let phase: 'download' | 'receive' = 'download';
    try {
      if (!before.ended) {
        progress.begin(before);
        await downloadInto(spool, http, {
          volume, snapshot: target.name, parentUuid: parent?.server.uuid ?? null,
          ...(parentCtransid !== undefined ? { parentCtransid } : {}),
          stallMs: options.stallMs ?? DEFAULT_STALL_MS, sealing: sealingOfKey(sealKey),
          onProgress: (state, pending) => progress.update(state, pending),
        });
      }
      phase = 'receive';
      report.note(`${target.name}: downloaded and verified ${formatBytes(spool.state.rawOffset)}; receiving it`);
      const got = await receiveSpool({
        framesFile: spool.framesFile, chunkSize: spool.identity.chunkSize, destDir, name: uncheckedName(target.uuid),
        uuid: target.uuid, parentUuid: parent?.server.uuid ?? null, ...(parent ? { parentPath: parent.local.path, parentLocalUuid: parent.local.uuid } : {}), ...(signal ? { signal } : {}),
        ...(sealKey ? { sealKey } : {}),
      });
      const wireBytes = spool.state.wireOffsetVerified;
      await spool.remove();
      return { snapshot: target.name, path: got.path, parent: parent?.local.name ?? null, restored: true, rawBytes: got.rawBytes, wireBytes, interruptions, verifiedLineBytes: null };
    } catch (err) {
      if (signal?.aborted) throw err;
      const after = spool.state;
      if (after.framesVerified > before.framesVerified || (after.ended && !before.ended)) backoff.reset();
      const damaged = phase === 'receive' ? frameErrorIn(err) : null;
      if (damaged !== null) {
        // Verified when it came, different now: the disk under the spool. Those frames are downloaded again.
        await spool.rewind(damaged.details.frameIndex);
        report.note(`${target.name}: the spool no longer verifies at frame ${damaged.details.frameIndex} (${damaged.message}); downloading from there again`);
      } else if (phase === 'receive' || err instanceof SealError) {
        // A SealError in the download is the receive's refusal of the key (wrong_key, key_required, not_sealed) said
        // at frame 0's seal header instead of after the whole stream (http.ts): the same error, worded the same. The
        // spool stays either way: its frames are the stored stream's whatever key opens them (the key is not part of
        // its identity), so the same restore with the right key goes on from them.
        throw err instanceof SnapferryError
          ? new RestoreFailed(err.code, `${err.message} (the download is kept in ${spool.dir}: run the restore again to retry the receive, or delete it)`, { cause: err, details: err.details })
          : err;
      } else if (err instanceof SnapferryError && err.code === 'stream_mismatch') {
        await spool.rewind(0);
        report.note(`${target.name}: ${err.message}; downloading it from the start`);
      } else if (!(err instanceof FrameError) && !(err instanceof SnapferryError && err.retryable)) {
        throw err;
      }
      if (err instanceof FrameError && phase === 'download') {
        badFrame = badFrame.index === after.framesVerified ? { index: badFrame.index, repeats: badFrame.repeats + 1 } : { index: after.framesVerified, repeats: 1 };
        if (badFrame.repeats >= MAX_BAD_FRAME_REPEATS) {
          throw new RestoreFailed(err.code, `frame ${badFrame.index} of ${target.name} failed verification ${badFrame.repeats} times in a row: ${err.message}`, { cause: err, details: err.details });
        }
      }
      interruptions++;
      const delay = backoff.next();
      if (delay === null) {
        throw new RestoreFailed('retries_exhausted', `gave up on ${target.name} after ${backoff.attempts - 1} retries: ${describeError(err)}`, { retryable: true, cause: err });
      }
      const wait = chooseWait(delay, err);
      report.note(`${target.name}: ${wait.because ?? describeError(err)}; resuming from frame ${spool.state.framesVerified} in ${(wait.ms / 1000).toFixed(1)} s`);
      await backoff.wait(wait.ms, signal);
    }
  }
}

/**
 * A restore that the receive would refuse at the first frame of one of its streams (core/sealing.ts restoreRefusal),
 * refused now, from the listing, before a byte is downloaded: a chain is restored in one run with one config, so the
 * first step the key cannot open ends it, and the steps before it would be downloaded for nothing. Where the server does
 * not list a stream's sealing (an archive older than sealedBy), its frame 0 tells as it arrives (http.ts).
 */
function refuseBySealing(streams: readonly Snapshot[], configured: Sealing): void {
  for (const s of streams) {
    const listed = sealingOfListed(s);
    const refusal = listed === undefined ? null : restoreRefusal(listed, configured);
    if (refusal === null) continue;
    throw new RestoreFailed(refusal.code, `${refusal.message} (the server lists ${s.name} as ${describeSealing(listed)}; nothing was downloaded)`, {
      cause: refusal, details: { ...refusal.details, snapshot: s.name },
    });
  }
}

/** The FrameError in a failure's cause chain, when the spool failed verification on its way to btrfs receive. */
function frameErrorIn(err: unknown): FrameError | null {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    if (e instanceof FrameError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}
