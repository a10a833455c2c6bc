/**
 * What client and server agree on over HTTP: routes, tus metadata keys, and the JSON bodies (zod schemas, so the
 * client parses what it receives instead of trusting it, and the server's types cannot drift from the client's).
 */
import { z } from 'zod';

export const API_PREFIX = '/v1';
export const UPLOADS_PATH = `${API_PREFIX}/uploads`;

export const routes = {
  status: `${API_PREFIX}/status`,
  volumes: `${API_PREFIX}/volumes`,
  snapshots: (volume: string) => `${API_PREFIX}/volumes/${encodeURIComponent(volume)}/snapshots`,
  transfers: `${API_PREFIX}/transfers`,
  transfer: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}`,
  abort: (id: string) => `${API_PREFIX}/transfers/${encodeURIComponent(id)}/abort`,
} as const;

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
} as const;

export const transferStates = ['uploading', 'verifying', 'receiving', 'received', 'failed', 'aborted'] as const;
export type TransferState = (typeof transferStates)[number];
/** States after which nothing more happens to a transfer. */
export const finalStates: readonly TransferState[] = ['received', 'failed', 'aborted'];

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    retryable: z.boolean().default(false),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

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
  name: z.string(),
  snapshots: z.number(),
  newest: Snapshot.nullable(),
  rawBytes: z.number(),
});
export type Volume = z.infer<typeof Volume>;

export const VolumeList = z.object({ client: z.string(), volumes: z.array(Volume) });
export type VolumeList = z.infer<typeof VolumeList>;

export const TransferError = z.object({ code: z.string(), message: z.string(), at: z.string() });
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
  error: TransferError.nullable(),
  lastInterruption: z.string().nullable(),
});
export type Transfer = z.infer<typeof Transfer>;

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
});
export type Status = z.infer<typeof Status>;
