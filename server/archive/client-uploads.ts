/**
 * Each client's uploads in an archive, `clients/CLIENT/uploads.json` (docs/archive.md, "Limits"): what lets the
 * per-client limits of server/upload-limits.ts hold across instances that share only the bucket, without listing the
 * bucket's `uploads/` (every client's, every upload ever made) on each request. Changed only by compare-and-swap
 * (json-object.ts), so instances that create, finish or abort at once lose nothing:
 *
 * - `open`: every upload of the client that may still be open, added before the upload exists (at its creation, in
 *   the same swap that checks maxOpenUploads), dropped once its state.json says it is over. So it holds at least
 *   the client's open uploads, and an entry that is over is only ever counted until the next look at it: a refusal
 *   looks (settle) before it refuses, and an instance that died between an upload's end and its entry's drop leaves
 *   nothing another instance cannot clear.
 * - `creations`: the client's token bucket (server/creation-rate.ts), on the instances' clocks (a rate of a minute
 *   does not need the S3 server's time: a clock a second off gives a token's fraction).
 * - `ended`: how many uploads were found over, by how they ended (aborted, failed, and the failed by code), counted
 *   once each by the swap that drops its entry, as upload-state.ts uploadEnd reads its tombstone (as the transfer is
 *   listed): the archive's transfer counts for GET /v1/status and /metrics.
 *
 * The bytes an upload holds are read from its own state.json (the end of its last recorded segment), never kept
 * here: a count kept beside it could only fall behind.
 */
import { z } from 'zod';
import type { SafeName } from '../../core/names.ts';
import { takeCreation } from '../creation-rate.ts';
import { tooManyCreations, tooManyUploads, type UploadLimits } from '../upload-limits.ts';
import type { ObjectStore } from './object-store.ts';
import { readJson, updateJson } from './json-object.ts';
import { parseState, progressOf, stateKey, uploadEnd, type UploadEnd } from './upload-state.ts';

/**
 * An entry with no state.json yet is an upload being created (the index is written first) for this long; after it,
 * a creation that never finished (its request failed between the two writes).
 */
export const PENDING_MS = 120_000;

const Count = z.number().int().nonnegative();

export const ClientUploads = z.strictObject({
  version: z.literal(1),
  /** Upload id -> when it was admitted (ISO, the admitting instance's clock). */
  open: z.record(z.string().regex(/^[0-9a-f]{32}$/), z.strictObject({ since: z.iso.datetime() })),
  creations: z.strictObject({ tokens: z.number().nonnegative(), at: z.number().nonnegative() }).nullable(),
  ended: z.strictObject({
    aborted: Count,
    failed: Count,
    /**
     * `failed` by the code each upload failed with (upload_expired, or the refusal that ended it), for /metrics.
     * Absent from an index written before the codes were kept, whose `failed` were all expiries (failedByCode).
     */
    failedBy: z.record(z.string(), Count).optional(),
  }),
});
export type ClientUploads = z.infer<typeof ClientUploads>;

export const CLIENTS_FOLDER = 'clients/';

export function clientUploadsKey(client: SafeName): string {
  return `${CLIENTS_FOLDER}${client}/uploads.json`;
}

const EMPTY: ClientUploads = { version: 1, open: {}, creations: null, ended: { aborted: 0, failed: 0 } };

/** One open upload as settle() found it: the bytes its recorded segments hold in the bucket. */
export interface OpenUpload {
  id: string;
  bytes: number;
}

/** How an entry stands by its upload's state.json: still open (with its bytes), or over and how (null: not counted). */
type Standing = { open: true; bytes: number } | { open: false; ended: UploadEnd | null };

type Ended = ClientUploads['ended'];

/** The index's failed uploads by code. One written before the codes were kept counted only expiries as failed. */
export function failedByCode(ended: Ended): Record<string, number> {
  return ended.failedBy ?? (ended.failed > 0 ? { upload_expired: ended.failed } : {});
}

/** `ended` with one more upload, ended as `end` says. */
function countEnd(ended: Ended, end: UploadEnd): Ended {
  if (end.state === 'aborted') return { ...ended, aborted: ended.aborted + 1 };
  // uploadEnd gives every failure its error; 'unknown' is what /metrics calls a failure without one.
  const code = end.error?.code ?? 'unknown';
  const by = failedByCode(ended);
  return { ...ended, failed: ended.failed + 1, failedBy: { ...by, [code]: (by[code] ?? 0) + 1 } };
}

/** At the open-upload limit: admit() settles the entries and tries once more before it refuses. */
class AtLimit extends Error {
  constructor(readonly open: number) {
    super('at the open-upload limit');
  }
}

/**
 * Admits upload ID of CLIENT: one creation taken from its rate, its open uploads under maxOpenUploads, the id
 * recorded, in one swap. Refuses as a btrfs server does (too_many_creations, too_many_uploads: 429); a refusal
 * writes nothing.
 */
export async function admitUpload(store: ObjectStore, client: SafeName, id: string, limits: Readonly<UploadLimits>, now = Date.now()): Promise<void> {
  for (let settled = false; ; settled = true) {
    try {
      await updateJson(store, clientUploadsKey(client), ClientUploads, (old) => {
        const v = old ?? EMPTY;
        if (v.open[id]) return v; // admitted already (a swap whose answer was lost, done again)
        const rate = takeCreation(v.creations, now, limits);
        if (rate.waitMs > 0) throw tooManyCreations(client, limits, rate.waitMs);
        const count = Object.keys(v.open).length;
        if (count >= limits.maxOpenUploads) throw new AtLimit(count);
        return { ...v, creations: rate.bucket, open: { ...v.open, [id]: { since: new Date(now).toISOString() } } };
      });
      return;
    } catch (err) {
      if (!(err instanceof AtLimit)) throw err;
      // Entries of uploads that are over may still be there (an instance died before it dropped them): look first.
      if (settled) throw tooManyUploads(client, err.open, 0, limits.maxOpenUploads);
      await settle(store, client, now);
    }
  }
}

/** Drops ID's entry without counting it: its creation failed before the upload existed. */
export async function withdrawUpload(store: ObjectStore, client: SafeName, id: string): Promise<void> {
  await updateJson(store, clientUploadsKey(client), ClientUploads, (old) => {
    if (!old?.open[id]) return old ?? EMPTY;
    const { [id]: _gone, ...open } = old.open;
    return { ...old, open };
  });
}

/**
 * The client's open uploads as their state.json say now, each with the bytes it holds; entries found over are
 * dropped (and counted in `ended`) by one swap. Reads one state.json per entry: at most maxOpenUploads of them, and
 * the entries of uploads that ended since the last look.
 */
export async function settle(store: ObjectStore, client: SafeName, now = Date.now()): Promise<{ open: OpenUpload[]; ended: ClientUploads['ended'] }> {
  const seen = await readJson(store, clientUploadsKey(client), ClientUploads);
  if (seen === null) return { open: [], ended: EMPTY.ended };
  const standing = new Map<string, Standing>();
  for (const [id, { since }] of Object.entries(seen.value.open)) standing.set(id, await standOf(store, id, Date.parse(since), now));
  const over = [...standing].filter(([, s]) => !s.open);
  let ended = seen.value.ended;
  if (over.length > 0) {
    const written = await updateJson(store, clientUploadsKey(client), ClientUploads, (old) => {
      const v = old ?? EMPTY;
      const open = { ...v.open };
      let count = v.ended;
      let changed = false;
      for (const [id, s] of over) {
        // Another instance's settle may have dropped (and counted) it already: each entry counts once.
        if (s.open || !open[id]) continue;
        delete open[id];
        if (s.ended !== null) count = countEnd(count, s.ended);
        changed = true;
      }
      return changed ? { ...v, open, ended: count } : v;
    });
    ended = written.value.ended;
  }
  const open = [...standing].flatMap(([id, s]) => (s.open ? [{ id, bytes: s.bytes }] : []));
  return { open, ended };
}

/** How upload ID stands by its state.json; `since` is when its entry was made. */
async function standOf(store: ObjectStore, id: string, since: number, now: number): Promise<Standing> {
  const got = await store.get(stateKey(id));
  if (got === null) return now - since < PENDING_MS ? { open: true, bytes: 0 } : { open: false, ended: null };
  const state = parseState(id, got.body);
  // Counted as the transfer is listed (archive-transfer.ts): both read the tombstone through uploadEnd.
  const ended = uploadEnd(state);
  if (ended) return { open: false, ended };
  const progress = progressOf(state);
  // Complete: its segments are a stored stream now (the catalog counts it), no longer an upload's.
  if (progress.complete) return { open: false, ended: null };
  return { open: true, bytes: progress.wireOffset };
}

/** Every client with an index in the bucket (one object each): who has ever created an upload here. */
export async function indexedClients(store: ObjectStore): Promise<string[]> {
  const names: string[] = [];
  for await (const o of store.list(CLIENTS_FOLDER)) {
    const m = /^clients\/([^/]+)\/uploads\.json$/.exec(o.key);
    if (m) names.push(m[1]!);
  }
  return names;
}
