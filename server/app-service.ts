/**
 * What the HTTP layer (server/app.ts, server/upload-store/tus-server.ts, server/metrics.ts) needs of the server's core:
 * the replication service that receives into btrfs (server/replication.ts) and the archive service that stores
 * streams in a bucket (server/archive/archive-service.ts) each implement it, and the routes know nothing else.
 */
import type { SnapferryError } from '../core/errors.ts';
import type { SafeName } from '../core/names.ts';
import type { FrameRecord, Status, Transfer } from '../core/protocol.ts';
import type { SpoolProgress } from './spool/progress.ts';
import type { UploadStore } from './upload-store/store.ts';
import type { CreationMetadata } from './transfers/creation.ts';
import type { ClientFacts, ServiceViews, SnapshotList, VolumeSummary } from './views.ts';
import type { RestoreRequest, RestoreStream } from './restore.ts';

export interface AppService extends ServiceViews {
  /** The store tus writes uploads through. */
  uploadStore(): UploadStore;
  /** Validates a new upload's metadata (the tus creation request) and records the transfer. */
  beginTransfer(client: SafeName, id: string, metadata: CreationMetadata): Promise<unknown>;
  /**
   * Makes transferOwner(id) answer for an upload this process may not have seen (an archive's upload begun on
   * another instance is in the bucket); called before any ownership check of a request naming `id`.
   */
  lookUpUpload(id: string): Promise<void>;
  transfer(client: SafeName, id: string): Promise<Transfer>;
  frames(client: SafeName, id: string, from: number, limit: number): Promise<FrameRecord[]>;
  abort(client: SafeName, id: string): Promise<Transfer>;
  /**
   * A creation refused after its upload began (server/upload-store/tus-server.ts: answered without a Location, so no
   * client can ever resume or end that upload): the upload ends, failed with `refusal`, what its client was told.
   */
  endRefusedCreation(client: SafeName, id: string, refusal: SnapferryError): Promise<void>;
  /**
   * The client's token left the tokens file (server/auth.ts RevokedListener): its uploads in progress end as an abort
   * ends them. Returns the ids of those it ended.
   */
  endUploadsOf(client: SafeName): Promise<string[]>;
  /**
   * The clients that may have an upload in progress (it may name more): at start, those no longer in the tokens file
   * have them ended (server/revoked-clients.ts).
   */
  clientsWithUploads(): Promise<SafeName[]>;
  rewind(client: SafeName, id: string, session: string, frames: number): Promise<Transfer>;
  /** The push of `session` stopped and lets go of upload `id` (server/leases.ts releaseBy); the upload stays. */
  release(client: SafeName, id: string, session: string): Promise<Transfer>;
  snapshots(client: SafeName, volume: SafeName): Promise<SnapshotList>;
  volumes(client: SafeName): Promise<VolumeSummary[]>;
  status(client?: SafeName): Promise<Status>;
  clientFacts(client: SafeName): Promise<ClientFacts>;
  /** A snapshot's framed stream for a restore (server/restore.ts's protocol). */
  restoreStream(req: RestoreRequest): Promise<RestoreStream>;
  // A request's life on an upload: its session lease, its start offset, a cut body.
  enterRequest(id: string, session: string): void;
  leaveRequest(id: string): void;
  /**
   * A PATCH begins; it may refuse it (an archive: another instance holds the upload's lease) before tus reads it.
   * `answerWhenWritten`: its client keeps its bytes back to the synced offset (ACK_HEADER).
   */
  noteUploadRequest(id: string, offset: number, answerWhenWritten: boolean): void | Promise<void>;
  /** Where upload `id` is on disk for certain, for a PATCH's answer; null when answers come after the sync only. */
  syncedOffset(id: string): number | null;
  isUploading(id: string): boolean;
  progress(id: string): Promise<SpoolProgress>;
  /** A PATCH on `id` ended before its body did, at `offset`; `refusedWith`: the code the server refused it with. */
  noteInterruption(id: string, offset: number, refusedWith?: string | null): Promise<void>;
}
