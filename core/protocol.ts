/**
 * What client and server agree on over HTTP: routes, tus metadata keys, and the JSON bodies (zod schemas, so the
 * client parses what it receives instead of trusting it, and the server's types cannot drift from the client's).
 */
import { z } from 'zod';
import { ENTRY_KINDS } from './tree-digest/types.ts';

export const API_PREFIX = '/v1';
export const UPLOADS_PATH = `${API_PREFIX}/uploads`;

export const routes = {
  status: `${API_PREFIX}/status`,
  volumes: `${API_PREFIX}/volumes`,
  snapshots: (volume: string) => `${API_PREFIX}/volumes/${encodeURIComponent(volume)}/snapshots`,
  transfers: `${API_PREFIX}/transfers`,
  transfer: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}`,
  abort: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}/abort`,
  rewind: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}/rewind`,
  frames: (id: string, from: number, limit: number) =>
    `${API_PREFIX}/transfers/${encodeURIComponent(id)}/frames?from=${from}&limit=${limit}`,
  /** A received snapshot as a framed send stream, for restore (RESTORE_QUERY, RESTORE_HEADERS). */
  restoreStream: (volume: string, snapshot: string, query: RestoreQuery) =>
    `${API_PREFIX}/volumes/${encodeURIComponent(volume)}/snapshots/${encodeURIComponent(snapshot)}/stream?${restoreQueryString(query)}`,
  /** Verify (issue 18): POST VerifyStart starts or joins the digest of the server's copy of a snapshot. */
  verify: `${API_PREFIX}/verify`,
  /** GET: the job's VerifyJob; DELETE: this caller is done with it. */
  verifyJob: (id: string) => `${API_PREFIX}/verify/${encodeURIComponent(id)}`,
  /** POST ChildrenRequest -> ChildrenAnswer. */
  verifyChildren: (id: string) => `${API_PREFIX}/verify/${encodeURIComponent(id)}/children`,
  /** POST RecordsRequest -> RecordsAnswer. */
  verifyRecords: (id: string) => `${API_PREFIX}/verify/${encodeURIComponent(id)}/records`,
} as const;

/**
 * What a restore asks for. `parent`: the UUID (as the catalog lists it) of a snapshot of the same volume that the
 * restoring machine holds, for an incremental stream; absent for a full one. `fromFrame` and `chain` resume: the data
 * frames the client already holds verified, and the hex chain hash after them (the server regenerates the stream and
 * refuses with 409 stream_mismatch when its chain differs). `skip`: bytes of frame `fromFrame` the client already
 * holds (what a cut download brought of it): the answer starts that far into the frame. `client`: whose snapshot,
 * for an admin token only.
 */
export interface RestoreQuery {
  parent?: string | null;
  chunkSize: number;
  fromFrame?: number;
  chain?: string;
  skip?: number;
  client?: string;
}

export const RESTORE_QUERY = { parent: 'parent', chunkSize: 'chunkSize', fromFrame: 'fromFrame', chain: 'chain', skip: 'skip', client: 'client' } as const;

function restoreQueryString(q: RestoreQuery): string {
  const params = new URLSearchParams({ [RESTORE_QUERY.chunkSize]: String(q.chunkSize) });
  if (q.parent) params.set(RESTORE_QUERY.parent, q.parent);
  if (q.fromFrame) params.set(RESTORE_QUERY.fromFrame, String(q.fromFrame));
  if (q.chain !== undefined && q.fromFrame) params.set(RESTORE_QUERY.chain, q.chain);
  if (q.skip) params.set(RESTORE_QUERY.skip, String(q.skip));
  if (q.client !== undefined) params.set(RESTORE_QUERY.client, q.client);
  return params.toString();
}

/** Headers of a restore stream's response: what the server is sending, for the client to hold against what it asked. */
export const RESTORE_HEADERS = {
  uuid: 'snapferry-snapshot-uuid',
  /** The parent's catalog UUID, or `none` for a full stream. */
  parentUuid: 'snapferry-parent-uuid',
  chunkSize: 'snapferry-chunk-size',
  fromFrame: 'snapferry-from-frame',
  /** Bytes of frame fromFrame left out of the body (RestoreQuery.skip); 0 when absent. */
  skip: 'snapferry-skip',
} as const;

/** A framed stream (core/wire/frame.ts) as a response body. */
export const FRAMED_STREAM_TYPE = 'application/vnd.snapferry.frames';

/**
 * Sent by the client on every request of a push: one push process, one session. A transfer being uploaded by one
 * session is refused to another for a short lease, so two pushes of the same snapshot never interleave.
 */
export const SESSION_HEADER = 'snapferry-session';

/**
 * On every error answer, the error's code (ErrorBody's `code`): a HEAD's answer has no body, and tus clients ask
 * for the offset with HEAD, so without it a refused HEAD says nothing of why.
 */
export const ERROR_CODE_HEADER = 'snapferry-error-code';

/** Most frame records one GET /v1/transfers/:id/frames returns. */
export const MAX_FRAMES_PER_PAGE = 10_000;

/** The wire format this build speaks; a server refuses an upload in any other. */
export const WIRE_FORMAT = 'sfr1';

/** tus Upload-Metadata keys of one transfer (one framed send stream). */
export const META = {
  volume: 'volume',
  snapshot: 'snapshot',
  uuid: 'uuid',
  /** The UUID of the parent snapshot on the client; absent for a full send. */
  parentUuid: 'parentUuid',
  format: 'format',
  chunkSize: 'chunkSize',
  /** The client's estimate of the raw stream size, for progress on the server side only. */
  rawEstimate: 'rawEstimate',
  /** How `btrfs send` made the stream (SendStream); absent means 'v1'. A resume regenerates it the same way. */
  sendStream: 'sendStream',
  /** The snapshot's btrfs Creation time (otime) on the client, ISO 8601 UTC; absent where btrfs has none. */
  createdAt: 'createdAt',
  /**
   * When the snapshot was taken (its name's time, else its creation time: client/snapshot-time.ts), ISO 8601 UTC:
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
 * Where a transfer stands. `uploading`: frames arrive (and a receive runs beside them). `receiving`: the whole stream
 * is on the server, verified and durable, and `btrfs receive` finishes it. `waiting_for_space` (the disk was full)
 * and `waiting_to_retry` (an I/O error, or any other fault of the server's own): the whole stream is on the server
 * but its receive failed; the server keeps the spool and receives again by itself (Transfer.wait says when), so the
 * client never sends it again. `received`, `failed` (Transfer.error says why), `aborted`: over. (`verifying` is
 * kept for catalogs that recorded it; nothing sets it now.) Which move is allowed: server/transfer-moves.ts.
 */
export const transferStates = ['uploading', 'verifying', 'receiving', 'waiting_for_space', 'waiting_to_retry', 'received', 'failed', 'aborted'] as const;
export type TransferState = (typeof transferStates)[number];
/** States after which nothing more happens to a transfer. */
export const finalStates: readonly TransferState[] = ['received', 'failed', 'aborted'];
/** The whole stream is on the server, and its receive waits for the server to be able to run it. */
export const waitingStates: readonly TransferState[] = ['waiting_for_space', 'waiting_to_retry'];

/** Not over yet: the transfer holds its spool and its volume (one transfer per volume at a time). */
export function inProgress(state: TransferState): boolean {
  return !finalStates.includes(state);
}

/** Why a receive waits: `disk_full` (ENOSPC, EDQUOT), `server_fault` (an I/O error or any other fault of the server's). */
export const receiveWaitReasons = ['disk_full', 'server_fault'] as const;

/** A transfer in a waiting state: why, since when, and when the server receives it again. */
export const ReceiveWait = z.object({
  reason: z.enum(receiveWaitReasons),
  /** When the whole stream first waited. */
  since: z.string(),
  /** Receives of the whole stream that failed so far for the server's own reasons. */
  tries: z.number(),
  /** When the server tries again at the latest; for disk_full sooner, once freeBytes reaches neededBytes. */
  nextTryAt: z.string(),
  /** disk_full: the free space the receive needs, about the raw stream's size; null otherwise. */
  neededBytes: z.number().nullable(),
  /** Free space on the server's filesystem now (in the catalog: when the receive last failed). */
  freeBytes: z.number().nullable(),
});
export type ReceiveWait = z.infer<typeof ReceiveWait>;

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    retryable: z.boolean().default(false),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/**
 * What was changed by hand on a received snapshot (found when the server starts, or when a push names it as parent):
 * `not_read_only` (`btrfs property set ro false`), `received_uuid_lost` (that command with -f clears it, and nothing
 * but a receive can set it again). Its content may no longer be what the client sent, so it is never a parent.
 */
export const alterations = ['not_read_only', 'received_uuid_lost'] as const;
export type Alteration = (typeof alterations)[number];

export const SnapshotAltered = z.object({
  /** When the server first found it so. */
  foundAt: z.string(),
  what: z.array(z.enum(alterations)),
});
export type SnapshotAltered = z.infer<typeof SnapshotAltered>;

export const Snapshot = z.object({
  name: z.string(),
  /** The client snapshot's UUID, which is the received subvolume's Received UUID on the server. */
  uuid: z.string(),
  /** The received subvolume's own UUID on the server. */
  serverUuid: z.string(),
  parentUuid: z.string().nullable(),
  receivedAt: z.string(),
  rawBytes: z.number(),
  wireBytes: z.number(),
  transferId: z.string().nullable(),
  /** The client snapshot's btrfs Creation time (META.createdAt); null where unknown (catalogued before it was sent). */
  createdAt: z.string().nullish(),
  /**
   * When it was taken (META.takenAt): what retention and "newest" count. Null for snapshots catalogued before
   * clients sent it: the server then dates them by their name, else by their arrival (server/snapshot-time.ts).
   */
  takenAt: z.string().nullish(),
  /**
   * Null, or how the snapshot was changed by hand on the server since it was received (SnapshotAltered). Such a
   * snapshot stays listed (it may still be worth restoring) but is never the parent of an incremental: the server
   * refuses one (409 parent_altered) and the client's planner passes it over.
   */
  altered: SnapshotAltered.nullable().default(null),
});
export type Snapshot = z.infer<typeof Snapshot>;

/** A snapshot the catalog once held that is gone from disk (an admin deleted it); kept so clients can say so. */
export const RemovedSnapshot = z.object({
  name: z.string(),
  uuid: z.string(),
  removedAt: z.string(),
  reason: z.string(),
});
export type RemovedSnapshot = z.infer<typeof RemovedSnapshot>;

export const SnapshotList = z.object({
  volume: z.string(),
  snapshots: z.array(Snapshot),
  removed: z.array(RemovedSnapshot),
});
export type SnapshotList = z.infer<typeof SnapshotList>;

export const Volume = z.object({
  /** Whose volume: in an admin's listing only (a client's are all its own). */
  client: z.string().optional(),
  name: z.string(),
  snapshots: z.number(),
  newest: Snapshot.nullable(),
  rawBytes: z.number(),
  /** Names of the volume's snapshots changed by hand on the server (Snapshot.altered): never used as parents. */
  altered: z.array(z.string()).default([]),
});
export type Volume = z.infer<typeof Volume>;

export const VolumeList = z.object({ client: z.string(), volumes: z.array(Volume) });
export type VolumeList = z.infer<typeof VolumeList>;

export const TransferError = z.object({
  code: z.string(),
  message: z.string(),
  at: z.string(),
  /** Facts for scripts and for the client's own message (upload_expired: idleMs, expireAfterMs, wireBytes). */
  details: z.record(z.string(), z.unknown()).optional(),
});
export type TransferError = z.infer<typeof TransferError>;

export const Transfer = z.object({
  id: z.string(),
  client: z.string(),
  volume: z.string(),
  snapshot: z.string(),
  uuid: z.string(),
  parentUuid: z.string().nullable(),
  state: z.enum(transferStates),
  createdAt: z.string(),
  updatedAt: z.string(),
  chunkSize: z.number(),
  /** Bytes of the framed stream the server holds, all of them in verified frames. */
  wireOffset: z.number(),
  framesVerified: z.number(),
  /** Bytes of the raw `btrfs send` stream inside the verified frames. */
  rawBytes: z.number(),
  rawEstimate: z.number().nullable(),
  /** Hex chain hash after the verified frames: what a resuming client compares its regenerated stream with. */
  chain: z.string(),
  error: TransferError.nullable(),
  /** How the upload was last cut short (a PATCH that ended before its body), when, and at which offset. */
  lastInterruption: z.string().nullable(),
  interruptions: z.number(),
  /** How btrfs send makes this transfer's stream; a transfer recorded before the key existed is 'v1'. */
  sendStream: SendStreamName.default('v1'),
  /**
   * Bytes of the raw stream the server's `btrfs receive` has been given so far: it receives while the upload goes
   * on, so this trails rawBytes (and starts again from 0 when a receive must start over).
   */
  rawReceived: z.number().default(0),
  /**
   * Bytes of request bodies that reached the server for this upload since it started, cut requests and the frame
   * in flight included: a counter that moves while bytes arrive. A client whose own writes went quiet (they sit in
   * socket buffers that can hold many seconds of a slow line) reads it to tell a slow line from a silent one.
   */
  wireArrived: z.number().default(0),
  /** Set while the receive waits (waiting_for_space, waiting_to_retry) and while it runs again after that; else null. */
  wait: ReceiveWait.nullable().default(null),
  /**
   * Bytes the transfer's spool holds on the server's disk. Once the transfer is over (a failed one keeps its spool),
   * they are orphaned: an abort deletes them, and the server does after its expiry period.
   */
  spoolBytes: z.number().default(0),
  /** The snapshot's times from the upload's metadata (META.createdAt, META.takenAt), for its record once received. */
  snapshotCreatedAt: z.string().nullish(),
  snapshotTakenAt: z.string().nullish(),
});
export type Transfer = z.infer<typeof Transfer>;

/** One verified frame as the server's index records it. */
export const FrameRecord = z.object({ index: z.number(), wireEnd: z.number(), rawEnd: z.number(), chain: z.string() });
export type FrameRecord = z.infer<typeof FrameRecord>;
export const FrameList = z.object({ frames: z.array(FrameRecord) });
export type FrameList = z.infer<typeof FrameList>;

export const RewindRequest = z.object({ frames: z.number().int().nonnegative() });

export const TransferList = z.object({ transfers: z.array(Transfer) });
export type TransferList = z.infer<typeof TransferList>;

export const Status = z.object({
  service: z.literal('snapferry'),
  version: z.string(),
  uptimeSeconds: z.number(),
  freeBytes: z.number().nullable(),
  volumes: z.number(),
  snapshots: z.number(),
  transfers: z.record(z.string(), z.number()),
  /** Send stream versions the server's `btrfs receive` reads; a server that does not say reads version 1 only. */
  receiveStreamVersions: z.array(z.number().int()).default([1]),
  /** Spools of transfers that are over (failed ones keep theirs): how many, and their bytes. */
  orphanedSpools: z.object({ count: z.number(), bytes: z.number() }).default({ count: 0, bytes: 0 }),
});
export type Status = z.infer<typeof Status>;

// ---- verify (issue 18) ---------------------------------------------------------------------------------------------
// The server digests its copy of one snapshot (core/tree-digest/) in a job, and then answers the client's questions
// about it: the summary, the children of directories, the records of paths. Only digests cross the line, in bounded
// batches; the client descends only where digests differ (core/tree-digest/types.ts has the contract).

/**
 * Bounds of one verify request and its answer. A request over them is refused (400 invalid_input) before any of it
 * is looked at; an answer stops at maxEntriesPerAnswer children and says where to go on (ChildrenAnswer).
 */
export const VERIFY_LIMITS = {
  /** Directories or paths named in one request. */
  maxPathsPerRequest: 1000,
  /** One path: a Linux path is at most 4096 bytes, and each byte spelled %XX is 3 characters. */
  maxPathLength: 3 * 4096,
  /** A request's body. */
  maxBodyBytes: 1024 * 1024,
  /** Child digests in one answer, over all the directories it covers. */
  maxEntriesPerAnswer: 5000,
} as const;

export const verifyStates = ['digesting', 'ready', 'failed'] as const;
export type VerifyState = (typeof verifyStates)[number];

/** The body of POST /v1/verify; an admin token names the client with ?client=NAME, as a restore does. */
export const VerifyStart = z.strictObject({
  volume: z.string(),
  snapshot: z.string(),
  /** Recompute every file's content from the disk instead of reusing a saved digest (to catch bit rot). */
  readData: z.boolean().default(false),
});
export type VerifyStart = z.input<typeof VerifyStart>;
export const VERIFY_QUERY = { client: 'client' } as const;

const hex = z.string().regex(/^[0-9a-f]+$/);
const TreePathField = z.string().max(VERIFY_LIMITS.maxPathLength);

export const TreeSummarySchema = z.object({ digest: hex, entries: z.number().int().nonnegative(), bytes: z.string().regex(/^\d+$/) });
export const ChildDigestSchema = z.object({ name: z.string(), kind: z.enum(ENTRY_KINDS), digest: hex });
export const EntryRecordSchema = z.object({
  kind: z.enum(ENTRY_KINDS),
  mode: z.number().int(),
  uid: z.number().int(),
  gid: z.number().int(),
  size: z.string().nullable(),
  mtime: z.string().nullable(),
  rdev: z.string().nullable(),
  target: z.string().nullable(),
  xattrs: z.string().nullable(),
  content: z.string().nullable(),
  link: z.string().nullable(),
});

export const VerifyJob = z.object({
  id: z.string(),
  /** Whose snapshot: in an admin's answers only. */
  client: z.string().optional(),
  volume: z.string(),
  snapshot: z.string(),
  readData: z.boolean(),
  state: z.enum(verifyStates),
  /** Bytes of file content hashed or reused so far, and the total when known (the parent's or the catalog's figure). */
  progress: z.object({ bytes: z.number(), total: z.number().nullable(), entries: z.number() }),
  /** The server's digest, once ready. */
  summary: TreeSummarySchema.nullable(),
  /** Which saved digest the server started from: 'self' (this snapshot's), 'parent', or null (none, or readData). */
  reused: z.enum(['self', 'parent']).nullable(),
  error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }).nullable(),
});
export type VerifyJob = z.infer<typeof VerifyJob>;

/** `after`: go on with the children after this name (the answer before stopped inside this directory). */
export const ChildrenRequest = z.strictObject({
  dirs: z.array(z.strictObject({ path: TreePathField, after: z.string().max(VERIFY_LIMITS.maxPathLength).optional() })).max(VERIFY_LIMITS.maxPathsPerRequest),
});
export type ChildrenRequest = z.infer<typeof ChildrenRequest>;

/**
 * The directories answered, in the order asked, until the answer holds maxEntriesPerAnswer children: `complete`
 * false means the directory's list goes on (ask again with `after` its last name); a directory asked for and in
 * neither `children` nor `notDirectories` was not reached, ask again. `notDirectories`: not a directory of the tree.
 */
export const ChildrenAnswer = z.object({
  children: z.array(z.object({ path: z.string(), entries: z.array(ChildDigestSchema), complete: z.boolean() })),
  notDirectories: z.array(z.string()),
});
export type ChildrenAnswer = z.infer<typeof ChildrenAnswer>;

export const RecordsRequest = z.strictObject({ paths: z.array(TreePathField).max(VERIFY_LIMITS.maxPathsPerRequest) });
export type RecordsRequest = z.infer<typeof RecordsRequest>;

/** The record of each path asked for that the tree holds; a path left out is not in the tree. */
export const RecordsAnswer = z.object({ records: z.array(z.object({ path: z.string(), record: EntryRecordSchema })) });
export type RecordsAnswer = z.infer<typeof RecordsAnswer>;
