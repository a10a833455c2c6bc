/**
 * What the archive's uploads leave behind, deleted now and then by any instance (archive-upkeep.ts runs it): the
 * bucket's counterpart of the local server's orphaned spools and forgotten transfers (server/spool-sweep.ts).
 *
 * - A tombstone (state.json `removed` or `expired`, segment-uploads.ts): its segments at once (the tombstone's swap
 *   went before them, so none is read again; an instance killed mid-bury left some), and the whole folder
 *   (transfer.json, state.json, lease.json) once it ended `keepEndedMs` ago: until then a client that comes back is
 *   told why its upload is gone (410 upload_expired, or the aborted transfer), as a btrfs server keeps an ended
 *   transfer for `endedTransfers.keepFor`.
 * - A folder without state.json (an instance killed between transfer.json and state.json, a creation refused after
 *   its record was written, what a killed deletion left) whose newest object is older than `keepEndedMs`.
 *
 * Never a folder whose lease is live: someone is on it right now. Expiry itself (an idle upload becoming a
 * tombstone) is SegmentUploads.expire(), which the expiry timer of every server runs (server/expiry.ts).
 */
import { describeError } from '../../core/errors.ts';
import { isTransferId } from '../layout.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from './object-store.ts';
import { assertNotLeasedByOther } from './lease.ts';
import { parseState, SEGMENT_PREFIX, stateKey, uploadFolder } from './upload-state.ts';
import { deleteUploadFolder } from './archive-retention.ts';

export interface UploadSweepOptions {
  objects: ObjectStore;
  /** How long an ended upload's tombstone, or a folder without state, stays. */
  keepEndedMs: number;
  log: Logger;
  now?: () => number;
}

export interface UploadSweepResult {
  /** Upload folders deleted whole. */
  folders: number;
  /** Segments of tombstones deleted. */
  segments: number;
}

/** A holder name no instance uses: the sweep never holds a lease, it only asks whether one is live. */
const SWEEPER = '(sweep)';

export async function sweepUploads(options: UploadSweepOptions): Promise<UploadSweepResult> {
  const { objects, log } = options;
  const now = (options.now ?? Date.now)();
  const result: UploadSweepResult = { folders: 0, segments: 0 };
  for (const [id, keys] of await uploadFolders(objects)) {
    try {
      await sweepOne(options, id, keys, now, result);
    } catch (err) {
      log.error({ transfer: id, err: describeError(err) }, 'could not sweep an archive upload; the next sweep tries again');
    }
  }
  if (result.folders + result.segments > 0) log.info({ ...result }, 'swept ended and abandoned archive uploads');
  return result;
}

async function sweepOne(options: UploadSweepOptions, id: string, keys: Map<string, Date>, now: number, result: UploadSweepResult): Promise<void> {
  const { objects } = options;
  const folder = uploadFolder(id);
  const got = keys.has(stateKey(id)) ? await objects.get(stateKey(id)) : null;
  if (got === null) {
    const newest = Math.max(...[...keys.values()].map((d) => d.getTime()));
    if (now - newest < options.keepEndedMs || !(await leaseFree(objects, id))) return;
    await deleteUploadFolder(objects, id);
    result.folders++;
    return;
  }
  const state = parseState(id, got.body);
  if (state.tombstone === null) return;
  for (const key of keys.keys()) {
    if (!key.startsWith(`${folder}${SEGMENT_PREFIX}`)) continue;
    await objects.delete(key);
    result.segments++;
  }
  if (now - Date.parse(state.touchedAt) < options.keepEndedMs || !(await leaseFree(objects, id))) return;
  await deleteUploadFolder(objects, id);
  result.folders++;
}

async function leaseFree(objects: ObjectStore, id: string): Promise<boolean> {
  try {
    await assertNotLeasedByOther(objects, id, SWEEPER);
    return true;
  } catch {
    return false;
  }
}

/** Every upload folder in the bucket, with its objects' keys and last-modified times. */
async function uploadFolders(objects: ObjectStore): Promise<Map<string, Map<string, Date>>> {
  const folders = new Map<string, Map<string, Date>>();
  for await (const o of objects.list('uploads/')) {
    const m = /^uploads\/([^/]+)\//.exec(o.key);
    // Anything else under uploads/ (an operator's, another version's) is not ours to delete.
    if (!m || !isTransferId(m[1]!)) continue;
    const keys = folders.get(m[1]!) ?? new Map<string, Date>();
    keys.set(o.key, o.lastModified);
    folders.set(m[1]!, keys);
  }
  return folders;
}
