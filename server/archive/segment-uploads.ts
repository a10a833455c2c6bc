/**
 * The upload store of archive mode (docs/archive.md): an upload's spool lives in the bucket, as its state.json
 * (upload-state.ts) and its segment objects (segment-append.ts), so that any instance can take any request of it. The
 * tus adapter (server/upload-store/tus-store.ts) drives it as it drives the local spool's store.
 *
 * A write takes the upload's lease (upload-lease.ts, over lease.ts) for its whole request, kept alive while it runs:
 * another instance that holds it, live, makes this one a retryable transfer_locked. Its first act under a new lease
 * generation is to swap state.json with that generation (the fence): every later swap by a holder that lost the lease
 * starts from a stale ETag, fails, and ends its request as lease_lost before anything it did is acknowledged. A request answers its new offset only after its
 * last segment is stored and state.json swapped to include it.
 */
import type { Readable } from 'node:stream';
import { LeaseLost, SnapferryError } from '../../core/errors.ts';
import { META } from '../../core/protocol.ts';
import { isTransferId } from '../layout.ts';
import { UploadMutex } from '../spool/mutex.ts';
import type { SpoolProgress } from '../spool/progress.ts';
import type { NewUpload, UploadInfo, UploadStore } from '../upload-store/store.ts';
import type { ObjectStore } from './object-store.ts';
import { withLease, type HeldLease, type UploadLeases } from './upload-lease.ts';
import { appendSegments, SEGMENT_LIMITS, type SegmentLimits, type SegmentSink } from './segment-append.ts';
import {
  encodeState, parseState, progressOf, SEGMENT_PREFIX, STATE_VERSION, stateKey, uploadFolder, type UploadError, type UploadState,
} from './upload-state.ts';

export interface SegmentUploadsOptions {
  objects: ObjectStore;
  leases: UploadLeases;
  /** Who hears of each upload's frame 0 and verified end (the manifest and catalog writer). */
  sink?: (id: string) => SegmentSink;
  limits?: SegmentLimits;
  /** Uploads untouched this long, not complete, go at expire() (0: never). */
  expireAfterMs?: number;
  now?: () => number;
}

const NO_SINK: SegmentSink = { start: () => undefined, complete: () => undefined };

/** state.json as read, with the ETag a swap must match. */
interface Current {
  state: UploadState;
  etag: string;
}

export class SegmentUploads implements UploadStore {
  readonly expireAfterMs: number;
  private readonly objects: ObjectStore;
  private readonly leases: UploadLeases;
  private readonly sinkFor: (id: string) => SegmentSink;
  private readonly limits: SegmentLimits;
  private readonly now: () => number;
  /** One request at a time per upload in this instance (the lease is this instance's, not a request's). */
  private readonly busy = new UploadMutex();
  private readonly arrivedBytes = new Map<string, number>();
  /** Uploads with a request of this instance in flight or waiting. */
  private readonly writing = new Map<string, number>();

  constructor(options: SegmentUploadsOptions) {
    this.objects = options.objects;
    this.leases = options.leases;
    this.sinkFor = options.sink ?? (() => NO_SINK);
    this.limits = options.limits ?? SEGMENT_LIMITS;
    this.expireAfterMs = options.expireAfterMs ?? 0;
    this.now = options.now ?? Date.now;
  }

  async create(upload: NewUpload): Promise<void> {
    const state: UploadState = {
      version: STATE_VERSION, id: upload.id, metadata: upload.metadata, creationDate: upload.creationDate, size: upload.size ?? null,
      generation: 0, touchedAt: new Date(this.now()).toISOString(), segments: [], tombstone: null,
    };
    if ((await this.objects.putIfAbsent(stateKey(upload.id), encodeState(state))) === null) {
      throw new SnapferryError('upload_exists', `upload ${upload.id} already exists in the archive`, { details: { transferId: upload.id } });
    }
  }

  /**
   * The upload as a HEAD sees it: at the end of its last recorded segment, each of which must still be there. It
   * waits for this instance's request in progress on the upload, as the local spool's open() does: @tus/server lets
   * a HEAD in as soon as a cut request's body failed, while its write still stores the frames that verified and swaps
   * state.json. Read before that, the offset is the one before them; the client's next PATCH from there then meets
   * offset_mismatch once the write lands, and its body (megabytes on a fast line) crossed for nothing. This orders
   * only a write already under way; that the cut request's write gets there before the HEAD at all (it waits on the
   * bucket before tus, the HEAD does not) is tus's lock's, in arrival order (server/upload-store/arrival-locker.ts).
   */
  get(id: string): Promise<UploadInfo> {
    return this.busy.run(id, () => this.getNow(id));
  }

  private async getNow(id: string): Promise<UploadInfo> {
    const { state } = await this.live(id);
    const held = new Set<string>();
    for await (const o of this.objects.list(uploadFolder(id))) held.add(o.key.slice(uploadFolder(id).length));
    const lost = state.segments.find((s) => !held.has(s.name));
    if (lost) {
      throw new SnapferryError('upload_gone', `upload ${id} no longer holds its data (segment ${lost.name} is not in the bucket)`, {
        details: { transferId: id },
      });
    }
    const progress = progressOf(state);
    return {
      id, metadata: state.metadata, creationDate: state.creationDate, offset: progress.wireOffset,
      size: progress.complete ? progress.wireOffset : undefined,
    };
  }

  async write(id: string, body: Readable, offset: number): Promise<number> {
    this.writing.set(id, (this.writing.get(id) ?? 0) + 1);
    try {
      return await this.writeNow(id, body, offset);
    } finally {
      const left = this.writing.get(id)! - 1;
      if (left === 0) this.writing.delete(id);
      else this.writing.set(id, left);
    }
  }

  private writeNow(id: string, body: Readable, offset: number): Promise<number> {
    return this.busy.run(id, () =>
      this.leased(id, async (lease, fenced) => {
        let current = fenced;
        const start = progressOf(current.state);
        if (offset !== start.wireOffset) {
          throw new SnapferryError('offset_mismatch', `the upload is at ${start.wireOffset}, not ${offset}`, {
            retryable: true, details: { offset: start.wireOffset },
          });
        }
        const sink = this.sinkFor(id);
        const refused: { err: SnapferryError | null } = { err: null };
        const heard: SegmentSink = {
          start: async (first) => {
            try {
              await sink.start(first);
            } catch (err) {
              if (err instanceof SnapferryError && !err.retryable) refused.err = err;
              throw err;
            }
          },
          complete: (progress, segments) => sink.complete(progress, segments),
        };
        const end = await appendSegments({
          start, sink: heard, limits: this.limits, now: this.now,
          // Validated when the upload was created (server/replication.ts beginTransfer).
          chunkSize: Number(current.state.metadata[META.chunkSize]),
          body: body as AsyncIterable<Buffer>,
          arrived: (bytes) => this.arrivedBytes.set(id, this.arrived(id) + bytes),
          store: async (segment, bytes) => {
            lease.check();
            // null: the name is taken, and a name is written with one body only (upload-state.ts): these bytes.
            await this.objects.putIfAbsent(`${uploadFolder(id)}${segment.name}`, bytes);
            current = await this.swap(current, { ...current.state, segments: [...current.state.segments, segment], touchedAt: this.iso() });
            if (!segment.end) return;
            // A complete upload takes no more bytes: its count would only be kept for ever.
            this.arrivedBytes.delete(id);
            await sink.complete(progressOf(current.state), current.state.segments);
          },
        }).catch(async (err: unknown) => {
          // Frame 0 refused for good (nothing of the stream is stored): the upload ends failed with the refusal, under
          // this request's lease and before it answers, as a btrfs server fails the transfer (server/ingest.ts). A
          // client that reads the refusal and lists its transfers then finds it failed, not still uploading.
          if (refused.err !== null && err === refused.err) {
            await this.bury(current, 'removed', { code: refused.err.code, message: refused.err.message, at: this.iso() });
          }
          throw err;
        });
        return end.wireOffset;
      }),
    );
  }

  /** As the local spool's store: a declared length binds nothing until the end frame verified, and is not kept. */
  async declareLength(id: string, length: number): Promise<void> {
    const { complete, wireOffset } = progressOf((await this.live(id)).state);
    if (complete && wireOffset !== length) {
      throw new SnapferryError('length_mismatch', `the upload is complete at ${wireOffset} bytes, not ${length}`, {
        details: { length: wireOffset, sent: length },
      });
    }
  }

  /**
   * tus's termination: the upload's state becomes a tombstone, then its segments (write-once objects) go. A complete
   * upload's segments are a stored stream (its manifest names them): that one is over, and terminating it changes
   * nothing, as aborting a received transfer changes nothing on a btrfs server. `refusal`: the server ended it, having
   * refused the creation that began it (the tombstone carries it, so the transfer is failed with it).
   */
  remove(id: string, refusal?: Pick<UploadError, 'code' | 'message'>): Promise<void> {
    return this.busy.run(id, () => this.leased(id, async (_lease, current) => {
      if (progressOf(current.state).complete) return;
      await this.bury(current, 'removed', refusal && { code: refusal.code, message: refusal.message, at: this.iso() });
    }));
  }

  /**
   * Deletes the uploads untouched for the period whose end frame has not verified; one another instance is writing
   * (its lease is live) stays. Dated by state.json's touchedAt, the clock of the instance that wrote it: against a
   * period of days, instances' clocks agree well enough.
   */
  async expire(): Promise<number> {
    if (this.expireAfterMs === 0) return 0;
    let expired = 0;
    for (const id of await this.uploadIds()) {
      const idle = (s: UploadState) => s.tombstone === null && !progressOf(s).complete && this.now() - Date.parse(s.touchedAt) >= this.expireAfterMs;
      // A request of this instance in flight touches it when it ends; the sweep does not wait for it.
      if (this.writing.has(id)) continue;
      const seen = await this.read(id);
      if (seen === null || !idle(seen.state)) continue;
      const gone = await this.busy.run(id, () =>
        this.leased(id, async (_lease, current) => {
          if (!idle(current.state)) return false;
          await this.bury(current, 'expired');
          return true;
        }),
      ).catch((err: unknown) => {
        if (err instanceof SnapferryError && (err.code === 'transfer_locked' || err.code === 'not_found' || err.code === 'upload_expired')) return false;
        throw err;
      });
      if (gone) expired++;
    }
    return expired;
  }

  /** Bytes of request bodies that reached this instance for `id`. */
  arrived(id: string): number {
    return this.arrivedBytes.get(id) ?? 0;
  }

  /**
   * Runs `fn` under the upload's lease, with state.json fenced by the lease's generation (swapped to it if another
   * generation wrote last), and releases the lease after.
   */
  private leased<T>(id: string, fn: (lease: HeldLease, current: Current) => Promise<T>): Promise<T> {
    return withLease(this.leases, id, async (lease) => {
      lease.check();
      let current = await this.live(id);
      // A newer generation stamped it: this lease was taken over between its acquisition and this read (a pause).
      if (current.state.generation > lease.generation) throw lostLease(id);
      if (current.state.generation < lease.generation) current = await this.swap(current, { ...current.state, generation: lease.generation });
      return fn(lease, current);
    });
  }

  /** Marks the upload `tombstone` (a swap: the fence holds), with the refusal that ended it if any, then deletes its segments. */
  private async bury(current: Current, tombstone: 'removed' | 'expired', error?: UploadError): Promise<void> {
    const { id } = current.state;
    await this.swap(current, { ...current.state, tombstone, touchedAt: this.iso(), ...(error ? { error } : {}) });
    this.arrivedBytes.delete(id);
    for await (const o of this.objects.list(`${uploadFolder(id)}${SEGMENT_PREFIX}`)) await this.objects.delete(o.key);
  }

  /** Swaps state.json from `current` to `next`; a stale ETag means another holder fenced this one out. */
  private async swap(current: Current, next: UploadState): Promise<Current> {
    const id = next.id;
    const written = await this.objects.swap(stateKey(id), encodeState(next), current.etag);
    if (written === null) throw lostLease(id);
    return { state: next, etag: written.etag };
  }

  /** The upload's state, unless it does not exist (404) or is a tombstone (removed: 404, expired: 410). */
  private async live(id: string): Promise<Current> {
    const current = await this.read(id);
    if (current === null || current.state.tombstone === 'removed') {
      throw new SnapferryError('not_found', `upload ${id} not found`, { details: { transferId: id } });
    }
    if (current.state.tombstone === 'expired') {
      throw new SnapferryError('upload_expired', `upload ${id} expired: nothing was sent for too long; the client starts it again`, {
        details: { transferId: id },
      });
    }
    return current;
  }

  private async read(id: string): Promise<Current | null> {
    const got = await this.objects.get(stateKey(id));
    return got === null ? null : { state: parseState(id, got.body), etag: got.etag };
  }

  private async uploadIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.objects.list('uploads/')) {
      const m = /^uploads\/([^/]+)\/state\.json$/.exec(o.key);
      // Anything else in the folder (an operator's, another version's) is not an upload of ours.
      if (m && isTransferId(m[1]!)) ids.push(m[1]!);
    }
    return ids;
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}

function lostLease(id: string): LeaseLost {
  return new LeaseLost(`another server instance took over upload ${id}; nothing more of this request is kept, and the client resumes from the offset a HEAD reports`, {
    details: { transferId: id },
  });
}

export type { SegmentSink, SpoolProgress };
