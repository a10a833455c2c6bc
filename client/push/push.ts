/**
 * `snapferry push`: plan, then send each snapshot the server lacks (client/push/send-snapshot.ts), oldest first. It
 * returns only once the server has received and checked every one, or throws a typed error that says what to do.
 */
import crypto from 'node:crypto';
import { parseVolumeName } from '../../core/snapshot-name.ts';
import { planPush, serverView, type LocalSnapshot, type Plan, type PlanStep } from '../../core/plan.ts';
import { PATCH_BYTES_MAX, PATCH_BYTES_MIN, SESSION_HEADER, type SendStream, type SnapshotList, type Transfer } from '../../core/protocol.ts';
import { btrfsFeatures, chooseSendStream, mountCompression, type SendCompressedMode } from '../../core/btrfs/features.ts';
import { DEFAULT_CHUNK_SIZE, DEFAULT_ZSTD_LEVEL } from '../../core/wire/index.ts';
import { readKeyFile } from '../../core/crypto/key-file.ts';
import { ServerApi } from '../http/api.ts';
import { createTransport } from '../http/transport.ts';
import { findParentCandidates, resolveRequested, setAsideNote, type SetAside } from '../local/snapshots.ts';
import { withClientUuids } from '../../core/uuid-namespace.ts';
import { PushError, sendSnapshot, type SentSnapshot } from './send-snapshot.ts';
import { estimateRawTotal } from './estimate.ts';
import { sourceGroups } from '../../core/sources.ts';
import { sealingOfKey, type Sealing } from '../../core/sealing.ts';
import { mixedSourcesError } from './mixed-sources.ts';
import { changedParentsOf } from './changed-parent.ts';
import { planFacts } from './plan-facts.ts';
import { UploadRateLimit } from '../upload/rate-limit.ts';
import { startCompression, type CompressSetting } from './compression.ts';
import { DEFAULT_BACKOFF, type BackoffOptions } from '../http/retry.ts';
import type { Reporter } from '../progress/report.ts';

export { PushError };

export interface PlannedSend {
  snapshot: string;
  parent: string | null;
  rawBytes: number | null;
  /** Not taken yet (`run --dry-run`'s new snapshot): it would be sent once taken. */
  toBeTaken?: boolean;
}

export interface PushOptions {
  server: string;
  /** Plan and estimate only: ask the server what it holds, send nothing. */
  dryRun?: boolean;
  volume: string;
  snapshots: readonly string[];
  /** `snapshots` is the volume's configured snapshotDir (push --config): one with no snapshot yet says so. */
  snapshotDir?: boolean;
  chunkSize?: number;
  /** zstd level (0: none) or 'auto' (default): the highest level that stays well ahead of the link. */
  compress?: CompressSetting;
  /** Bytes per PATCH at most. */
  patchBytes?: number;
  pollMs?: number;
  /** A request with no byte moving and no answer for this long is dropped and resumed (--stall-timeout; default 30 s). */
  stallMs?: number;
  /** Upload bytes per second at most, for the whole push (--limit-rate). */
  limitRate?: number;
  /** Retries in a row without progress before giving up (default: forever). */
  retries?: number;
  /** `btrfs send --proto 2 --compressed-data` for new transfers (--send-compressed; default 'auto'). */
  sendCompressed?: SendCompressedMode;
  backoff?: Partial<BackoffOptions>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** PEM CA certificates to trust besides the bundled roots (--ca-file). */
  caFile?: string;
  /** Where HTTPS_PROXY / NO_PROXY are read (default process.env). */
  env?: Record<string, string | undefined>;
  /** The key file to seal every frame with (client-side encryption; `encrypt:` in the config). */
  encrypt?: string;
}

export interface PushResult {
  sent: { snapshot: string; parent: string | null; transfer: Transfer }[];
  /** --dry-run: what would be sent, in order, with the raw stream's estimated size (null: no estimate). */
  planned?: PlannedSend[];
  present: string[];
  skipped: string[];
}

/**
 * The largest PATCH body where the server does not say what it takes best (SnapshotList.patchBytes; an older
 * server): what a server on btrfs asks for (server/views.ts SPOOL_PATCH_BYTES has the measurements).
 */
const DEFAULT_PATCH_BYTES = 8 * 1024 * 1024;

/** The server's PATCH size, kept within what the client will hold (PATCH_BYTES_MIN..MAX). */
export function patchBytesFor(serverSays: number | undefined): number {
  if (serverSays === undefined) return DEFAULT_PATCH_BYTES;
  return Math.min(PATCH_BYTES_MAX, Math.max(PATCH_BYTES_MIN, serverSays));
}

/**
 * What is already on the server, in one line: `run` pushes a whole folder every hour, and a line per snapshot the
 * server has long held buried the one line that mattered.
 */
export function presentNote(names: readonly string[]): string | null {
  if (names.length === 0) return null;
  if (names.length === 1) return `${names[0]} is already on the server`;
  return `${names.length} of these snapshots are already on the server (the newest of them: ${names[names.length - 1]})`;
}

export async function push(options: PushOptions, report: Reporter): Promise<PushResult> {
  const volume = parseVolumeName(options.volume);
  // Read first: a missing, damaged or open key file is said before the server is asked anything.
  const sealKey = options.encrypt === undefined ? undefined : await readKeyFile(options.encrypt);
  const headers = { ...options.headers, [SESSION_HEADER]: crypto.randomUUID() };
  const transport = createTransport(options.server, {
    ...(options.caFile !== undefined ? { caFile: options.caFile } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  // The stop (Ctrl-C, SIGTERM, a run's stop) cancels a request waiting on a server that does not answer, as it cancels
  // the upload: otherwise the push went on until the request's stall timeout (minutes when configured so).
  const api = new ServerApi({
    server: options.server, headers, transport,
    ...(options.stallMs ? { stallMs: options.stallMs } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const asides: SetAside[] = [];
  const requested = await resolveRequested(options.snapshots, {
    volume, note: (m) => report.note(m), setAside: (a) => asides.push(a), ...(options.snapshotDir === true ? { snapshotDir: true } : {}),
  });
  if (requested.length === 0) throw new PushError('nothing_to_push', 'no read-only snapshots found in the paths given');
  // One volume, one source: checked before the server is asked anything.
  const groups = sourceGroups(requested);
  if (groups.length > 1) throw mixedSourcesError(groups, options.snapshots);

  const sealing = sealingOfKey(sealKey);
  // Both at once: on a line of 600 ms round trips, one round trip less before the push starts. Settled both before
  // either is looked at, so that a failure is always the snapshot list's, as when they were asked one after another.
  const [heldAnswer, transfersAnswer] = await Promise.allSettled([api.snapshots(volume), api.transfers()]);
  if (heldAnswer.status === 'rejected') throw heldAnswer.reason;
  if (transfersAnswer.status === 'rejected') throw transfersAnswer.reason;
  const held = heldAnswer.value;
  const { transfers } = transfersAnswer.value;
  const heldHere = new Set(withClientUuids(held.snapshots, held.client, asides.flatMap((a) => a.others.map((s) => s.uuid))).map((s) => s.uuid));
  for (const aside of asides) report.note(setAsideNote(aside, (s) => heldHere.has(s.uuid)));
  // Parents the server refused before as changed here: a plan on one would be refused again (client/push/changed-parent.ts).
  const changedParents = changedParentsOf(transfers, volume);
  const plan = await planOn(held, requested, sealing, changedParents);
  for (const note of plan.notes) report.note(note);
  // By the server's name where it differs (renamed here after it was pushed): the name `restore` takes.
  const serverNames = new Map(held.snapshots.map((s) => [s.uuid, s.name]));
  const shown = (s: LocalSnapshot): string => {
    const there = serverNames.get(s.uuid);
    return there === undefined || there === s.name ? s.name : `${s.name} (there as ${there})`;
  };
  const present = presentNote(plan.present.map(shown));
  if (present !== null) report.note(present);
  const sendStream = plan.steps.length === 0 ? 'v1' : await pickSendStream(options.sendCompressed ?? 'auto', requested[0]!.path, api, report);
  if (options.dryRun === true) {
    // The estimate of each step (client/push/estimate.ts): a walk or `btrfs send --no-data`, no upload.
    const planned: PlannedSend[] = [];
    for (const step of plan.steps) {
      options.signal?.throwIfAborted();
      const rawBytes = await estimateRawTotal(step, sendStream, report, options.signal);
      planned.push({ snapshot: step.snapshot.name, parent: step.parent?.name ?? null, rawBytes });
    }
    await transport.close();
    return { sent: [], planned, present: plan.present.map((s) => s.name), skipped: plan.skipped.map((s) => s.name) };
  }

  const ctx = {
    api, volume, report, headers,
    chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    // Sealed, `auto` is the default level: a resume compresses and seals the frames already sent again to compare
    // them, and it can only if each was compressed at a level it knows (auto picks them frame by frame).
    compression: startCompression(sealKey && (options.compress ?? 'auto') === 'auto' ? DEFAULT_ZSTD_LEVEL : (options.compress ?? 'auto'), (level, why) =>
      report.note(level === 0 ? `compression off: ${why}` : `compression level ${level}: ${why}`),
    ),
    patchBytes: options.patchBytes ?? patchBytesFor(held.patchBytes),
    pollMs: options.pollMs ?? 250,
    ...(options.stallMs ? { stallMs: options.stallMs } : {}),
    ...(options.limitRate ? { rateLimit: new UploadRateLimit(options.limitRate) } : {}),
    backoff: { ...DEFAULT_BACKOFF, ...options.backoff, ...(options.retries !== undefined ? { retries: options.retries } : {}) },
    sendStream,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(sealKey ? { sealKey } : {}),
    changedParents,
    sent: new Map<string, SentSnapshot>(),
    localSnapshot: async (uuid: string) => (await findParentCandidates(requested[0]!.path, new Set([uuid])))[0] ?? null,
    replan: async (step: PlanStep, changed: ReadonlySet<string> = changedParents) =>
      (await planOn(await api.snapshots(volume), [step.snapshot], sealing, changed)).steps[0] ?? step,
  };
  const sent: PushResult['sent'] = [];
  try {
    for (const step of plan.steps) {
      const { transfer, parent } = await sendSnapshot(ctx, step);
      sent.push({ snapshot: step.snapshot.name, parent, transfer });
    }
  } finally {
    await ctx.compression.close();
  }
  return { sent, present: plan.present.map((s) => s.name), skipped: plan.skipped.map((s) => s.name) };
}

/**
 * The plan of `requested` on what the server holds (`held`): the first plan of a push, and a step's again after a
 * wait for another push into the volume, which may have sent a newer parent meanwhile, or after the server refused its
 * parent as changed here (`changedParents`, client/push/changed-parent.ts; a step it has nothing to send for then goes
 * as first planned: the send finds out what the server holds). Only a snapshot sealed as this push
 * seals may be a parent (core/sealing.ts): a chain restores with one config.
 */
async function planOn(held: SnapshotList, requested: readonly LocalSnapshot[], sealing: Sealing, changedParents: ReadonlySet<string>): Promise<Plan> {
  const { candidates, server } = await planFacts(held, requested);
  return planPush({ requested, candidates, server: serverView(server), removed: held.removed, sealing, changedParents });
}

/** --send-compressed, decided once per push; a resumed transfer keeps its own (client/push/send-snapshot.ts). */
async function pickSendStream(mode: SendCompressedMode, snapshotPath: string, api: ServerApi, report: Reporter): Promise<SendStream> {
  const choice = await chooseSendStream(mode, {
    local: await btrfsFeatures(),
    sourceCompression: () => mountCompression(snapshotPath),
    serverVersions: async () => (await api.status()).receiveStreamVersions,
  });
  if (choice.stream === 'v2-compressed') report.note(`sending compressed extents as they are (btrfs send --proto 2 --compressed-data): ${choice.why}`);
  else if (choice.fellBack) report.note(`sending without --compressed-data: ${choice.why}`);
  return choice.stream;
}
