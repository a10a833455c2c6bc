/**
 * `snapferry status` as data: what the server says (GET /v1/status, /v1/volumes, /v1/transfers) joined with the
 * client's own snapshot folders when it knows them (--snapshots-dir VOLUME=DIR, or the config file's volumes). The
 * text view (client/status/view.ts) and `--json` are two views of this one object.
 */
import fs from 'node:fs/promises';
import { describeError, isSnapferryError } from '../../core/errors.ts';
import { inProgress, type ReceiveWait, type Status, type Transfer, type Volume } from '../../core/protocol.ts';
import { planPush, type LocalSnapshot } from '../../core/plan.ts';
import type { ServerApi } from '../http/api.ts';
import { retrying, type RetryingOptions } from '../http/retry.ts';
import { resolveRequested } from '../local/snapshots.ts';
import { takenOrder, type ServerTakenAt } from '../../core/taken-order.ts';

export interface StatusReport {
  server: Status & { url: string };
  volumes: VolumeStatus[];
  /** Transfers not yet over (uploading, receiving, waiting for their receive), oldest first. */
  inFlight: TransferStatus[];
  /** The newest error any transfer recorded, or null. */
  lastError: LastError | null;
  /** Transfers that are over but whose spool is still on the server (a failed one keeps it), newest first. */
  orphaned: OrphanStatus[];
}

export interface OrphanStatus {
  id: string;
  client: string;
  volume: string;
  snapshot: string;
  state: Transfer['state'];
  /** When the transfer ended (its last change). */
  endedAt: string;
  spoolBytes: number;
}

export interface VolumeStatus {
  /** Whose volume, in an admin's view. */
  client?: string;
  name: string;
  /** On the server. */
  snapshots: number;
  /** Their raw send streams' bytes, or null where the server does not know one's size (Volume.sizeUnknown). */
  rawBytes: number | null;
  newest: { name: string; receivedAt: string } | null;
  /** Snapshots the server found changed by hand since it received them: kept there, never used as parents. */
  altered: string[];
  /** This machine's snapshots of the volume, when their folder is known. */
  local: LocalStatus | null;
}

export type LocalStatus =
  | {
      dir: string;
      snapshots: number;
      newest: string | null;
      /**
       * How many a push would send (UNSENT): not on the server, and not older than the newest it holds, which push
       * skips (core/plan.ts). One the server's retention deleted is not counted: nothing would send it again.
       */
      notOnServer: number;
    }
  | { dir: string; error: string };

export interface TransferStatus {
  id: string;
  client: string;
  volume: string;
  snapshot: string;
  state: Transfer['state'];
  rawBytes: number;
  rawEstimate: number | null;
  /** rawBytes of rawEstimate, 0..100, or null without an estimate. */
  percent: number | null;
  /**
   * Framed bytes the server holds (SENT), the part of a frame still arriving or kept from a cut request included;
   * `frames` are the verified ones.
   */
  wireBytes: number;
  frames: number;
  /** Raw bytes the server's btrfs receive has taken so far (it receives while the upload goes on). */
  rawReceived: number;
  interruptions: number;
  lastInterruption: string | null;
  createdAt: string;
  /**
   * For an upload: whether a push is sending it right now (the server's lease on it, Transfer.heldByPush), or left
   * waiting for the next push to resume it. Null when the server does not say, and for a stream no longer uploading.
   */
  heldByPush: boolean | null;
  /** Why and until when its receive waits (a full disk on the server), or null. */
  wait: ReceiveWait | null;
  /** The last failure it recorded (for a waiting one: the receive's), or null. */
  error: { code: string; message: string } | null;
}

export interface LastError {
  transferId: string;
  client: string;
  volume: string;
  snapshot: string;
  state: Transfer['state'];
  code: string;
  message: string;
  at: string;
}

/** A volume's snapshot folder as found: its read-only snapshots, or why they could not be listed. */
export type LocalListing = { dir: string; snapshots: readonly LocalSnapshot[] } | { dir: string; error: string };

/** A snapshot the server holds, as status needs it: its UUID (client side's), name and when it was taken. */
type HeldSnapshot = ServerTakenAt & { name: string };

export interface StatusInput {
  url: string;
  status: Status;
  volumes: readonly Volume[];
  transfers: readonly Transfer[];
  /** By volume name. */
  local: Readonly<Record<string, LocalListing>>;
  /** By volume name: the snapshots the server holds, by their UUID (client side's), with when each was taken. */
  serverSnapshots: Readonly<Record<string, readonly HeldSnapshot[]>>;
}

/** Pure: the report from what was fetched and listed. */
export function buildStatusReport(input: StatusInput): StatusReport {
  const rows: VolumeStatus[] = input.volumes.map((v) => ({
    ...(v.client !== undefined ? { client: v.client } : {}),
    name: v.name,
    snapshots: v.snapshots,
    // The server counts a size it does not know as 0: a sum without it would pass for the volume's size.
    rawBytes: v.sizeUnknown.length > 0 ? null : v.rawBytes,
    newest: v.newest ? { name: v.newest.name, receivedAt: v.newest.receivedAt } : null,
    altered: v.altered,
    local: localStatus(input.local[v.name], input.serverSnapshots[v.name] ?? []),
  }));
  // A configured volume that was never pushed is a row too: it is the one most worth seeing.
  for (const [name, listing] of Object.entries(input.local)) {
    if (rows.some((r) => r.name === name)) continue;
    rows.push({ name, snapshots: 0, rawBytes: 0, newest: null, altered: [], local: localStatus(listing, []) });
  }
  rows.sort((a, b) => `${a.client ?? ''}/${a.name}`.localeCompare(`${b.client ?? ''}/${b.name}`));

  const inFlight = input.transfers
    .filter((t) => inProgress(t.state))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
    .map(transferStatus);

  // An error is news until the same snapshot is received after it: the push that followed the advice succeeded.
  const receivedSince = (t: Transfer) =>
    input.transfers.some((r) => r.state === 'received' && r.client === t.client && r.volume === t.volume && r.uuid === t.uuid && r.updatedAt > t.error!.at);
  const newest = input.transfers.filter((t) => t.error !== null && !receivedSince(t)).sort((a, b) => b.error!.at.localeCompare(a.error!.at))[0];
  const lastError: LastError | null = newest
    ? {
        transferId: newest.id, client: newest.client, volume: newest.volume, snapshot: newest.snapshot, state: newest.state,
        code: newest.error!.code, message: newest.error!.message, at: newest.error!.at,
      }
    : null;

  const orphaned = input.transfers
    .filter((t) => !inProgress(t.state) && t.spoolBytes > 0)
    .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))
    .map((t) => ({ id: t.id, client: t.client, volume: t.volume, snapshot: t.snapshot, state: t.state, endedAt: t.updatedAt, spoolBytes: t.spoolBytes }));

  return { server: { url: input.url, ...input.status }, volumes: rows, inFlight, lastError, orphaned };
}

function localStatus(listing: LocalListing | undefined, server: readonly HeldSnapshot[]): LocalStatus | null {
  if (listing === undefined) return null;
  if ('error' in listing) return listing;
  // Newest as push counts it: a snapshot restored into the folder is as old as when it was taken.
  const newest = [...listing.snapshots].sort(takenOrder(listing.snapshots, server)).at(-1);
  // Counted by push's own plan, so that status and `push --dry-run` agree (which parent each would go on does not count).
  const unsent = planPush({ requested: listing.snapshots, candidates: [], server }).steps.length;
  return {
    dir: listing.dir,
    snapshots: listing.snapshots.length,
    newest: newest?.name ?? null,
    notOnServer: unsent,
  };
}

/** States in which the server holds the whole stream: its raw bytes are the stream's, whatever the estimate said. */
const WHOLE: readonly Transfer['state'][] = ['verifying', 'receiving', 'waiting_for_space', 'waiting_to_retry', 'received'];

function transferStatus(t: Transfer): TransferStatus {
  // A whole stream is 100%, not the 99% an estimate a little high made of it.
  const percent = WHOLE.includes(t.state)
    ? 100
    : t.rawEstimate !== null && t.rawEstimate > 0 ? Math.min(100, Math.floor((t.rawBytes / t.rawEstimate) * 100)) : null;
  return {
    id: t.id, client: t.client, volume: t.volume, snapshot: t.snapshot, state: t.state,
    rawBytes: t.rawBytes, rawEstimate: t.rawEstimate, percent, wireBytes: t.wireHeld ?? t.wireOffset, frames: t.framesVerified,
    rawReceived: t.rawReceived, interruptions: t.interruptions, lastInterruption: t.lastInterruption, createdAt: t.createdAt,
    heldByPush: t.state === 'uploading' ? (t.heldByPush ?? null) : null,
    wait: t.wait, error: t.error ? { code: t.error.code, message: t.error.message } : null,
  };
}

/** The read-only snapshots in `dir`; an empty folder has none, a missing or unreadable one says why. */
export async function listLocal(dir: string, volume?: string): Promise<LocalListing> {
  const stat = await fs.stat(dir).catch((err: unknown) => err as Error);
  if (stat instanceof Error) return { dir, error: describeError(stat) };
  try {
    // As push reads the folder: in a folder shared by several sources (btrbk's layout), the volume's own.
    return { dir, snapshots: await resolveRequested([dir], { snapshotDir: true, ...(volume !== undefined ? { volume } : {}) }) };
  } catch (err) {
    // A folder that holds no snapshot yet is not an error here, unlike for push.
    if (isSnapferryError(err) && err.code === 'snapshot_not_taken_yet') return { dir, snapshots: [] };
    return { dir, error: describeError(err) };
  }
}

/**
 * A server (or the proxy in front of it) that asks to slow down (429) or is down for a moment is asked again a few
 * times, after its Retry-After or a backoff, each wait said; then status stops with the last answer's words.
 */
export const STATUS_RETRIES = 3;

/** Everything `snapferry status` shows: the server's answers, and the folders in `localDirs` (volume -> dir). */
export async function gatherStatus(api: ServerApi, url: string, localDirs: Readonly<Record<string, string>>, options: RetryingOptions = {}): Promise<StatusReport> {
  const ask = <T>(fn: () => Promise<T>) => retrying(fn, { ...options, backoff: { retries: STATUS_RETRIES, ...options.backoff } });
  const [status, volumes, transfers] = await ask(() => Promise.all([api.status(), api.volumes(), api.transfers()]));
  const local: Record<string, LocalListing> = {};
  const serverSnapshots: Record<string, readonly HeldSnapshot[]> = {};
  for (const [volume, dir] of Object.entries(localDirs)) {
    local[volume] = await listLocal(dir, volume);
    const held = volumes.volumes.some((v) => v.name === volume) ? (await ask(() => api.snapshots(volume))).snapshots : [];
    serverSnapshots[volume] = held;
  }
  return buildStatusReport({ url, status, volumes: volumes.volumes, transfers: transfers.transfers, local, serverSnapshots });
}
