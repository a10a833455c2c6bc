/**
 * The tus store that knows frames (docs/design.md, "The spool"). It extends @tus/file-store, whose offset is the spool file's
 * size. Incoming bytes are parsed and checked frame by frame (header CRC, length bounds, decompression, SHA-256,
 * chain), and a frame's record reaches the index only once it verified: the index is the verified progress.
 *
 * A PATCH cut mid-frame keeps what arrived of the frame in flight (the spool's tail past the index's last frame) and
 * the tus offset says so, so the client sends only the rest: on a line that cuts more often than a frame takes,
 * every cut still moves the upload on. The kept part is never trusted: the next PATCH parses it again before its own
 * bytes, and the frame is verified whole before its record is written. A frame that then fails and began in the
 * kept part may have been spliced from two encodings (a client that compressed it again at another level): the kept
 * part goes, and the client sends that frame whole (a retryable partial_frame_mismatch). Data is fsynced before
 * write() returns, which is before @tus/server acknowledges the new offset.
 *
 * It knows nothing of btrfs or the catalog: the caller passes hooks for the first frame (check the send stream's
 * first command against the metadata) and for the verified end frame (queue the receive).
 */
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import type { Upload } from '@tus/utils';
import { FRAME_HEADER_SIZE, FrameError, FrameParser, MAX_CHUNK_SIZE, type FrameParserState, type VerifiedFrame } from '../core/wire/index.ts';
import { CHAIN_ZERO } from '../core/wire/chain.ts';
import { SnapferryError } from '../core/errors.ts';
import { encodeIndexRecord, INDEX_RECORD_SIZE, readLastRecord, readRecord, readRecords, trimIndex, truncateIndex, type IndexRecord } from './frame-index.ts';
import type { ServerLayout } from './layout.ts';
import { statusOf } from './http-errors.ts';
import { UploadMutex } from './upload-mutex.ts';

/** fsync at least this often during a long PATCH, so a power cut loses little even before the ack. */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;
const MAX_WRITEV_PARTS = 256;
/**
 * The most the spool keeps past its last verified frame: one whole frame of the largest chunk size. That holds the
 * part of a frame a cut left, or a whole frame whose record a crash lost; anything longer is no frame of ours.
 */
const MAX_TAIL = FRAME_HEADER_SIZE + MAX_CHUNK_SIZE;

export interface SpoolHooks {
  /** The upload's chunk size, from its metadata (validated when the upload was created). */
  chunkSizeOf(upload: Upload): number;
  /** Called with the raw bytes of frame 0; throws (or rejects) to refuse the stream before any of it is kept. */
  checkStreamStart(upload: Upload, raw: Buffer): Promise<void> | void;
  /**
   * Called after each data frame's bytes and index record are written (not yet synced), with the frame and its
   * decoded bytes: the receive may take them (server/live-source.ts). The upload goes on once it resolves, so a
   * receive can pace it.
   */
  onFrameStored(upload: Upload, frame: VerifiedFrame): Promise<void> | void;
  /** Called once the end frame is verified and durable. Must be idempotent: a re-sent end frame calls it again. */
  onStreamComplete(upload: Upload, progress: SpoolProgress): void;
  /**
   * The end frame arrived but says the stream is not the one verified (its chain or counts differ): whatever was
   * received of it must go. The upload stays; a right end frame (or a rewind) can still complete it.
   */
  onEndFrameRefused(upload: Upload, err: FrameError): void;
  /** Why the upload takes no more bytes (its transfer failed), or null. */
  closedError(id: string): SnapferryError | null;
  /**
   * A tus DELETE of the upload (termination): the core ends its transfer, which deletes its files. Never the files
   * alone: a transfer left `uploading` without its spool held its client's slot and its volume for good.
   */
  terminate(id: string): Promise<void>;
}

export interface SpoolProgress {
  wireOffset: number;
  framesVerified: number;
  rawBytes: number;
  chain: Buffer;
  complete: boolean;
}

/** A tus error as @tus/server understands it: thrown from a store, answered with this status and body. */
export class TusStatusError extends SnapferryError {
  readonly status_code: number;
  readonly body: string;
  constructor(status: number, inner: SnapferryError) {
    super(inner.code, inner.message, { retryable: inner.retryable, cause: inner, details: inner.details });
    this.status_code = status;
    this.body = JSON.stringify({ error: inner.toJSON() });
  }
}

export function progressFromRecord(last: IndexRecord | null): SpoolProgress {
  if (!last) return { wireOffset: 0, framesVerified: 0, rawBytes: 0, chain: CHAIN_ZERO, complete: false };
  const complete = last.kind === 'end';
  return {
    wireOffset: last.wireEnd,
    framesVerified: complete ? last.index : last.index + 1,
    rawBytes: last.rawEnd,
    chain: last.chain,
    complete,
  };
}

export class FrameVerifyingStore extends FileStore {
  /** Held by write(), repair(), rewind() and getUpload() (server/upload-mutex.ts says why). */
  private readonly busy = new UploadMutex();
  /** Request body bytes that reached write(), by upload, since the server started (Transfer.wireArrived). */
  private readonly arrivedBytes = new Map<string, number>();

  constructor(
    protected readonly layout: ServerLayout,
    private readonly hooks: SpoolHooks,
    expireAfterMs = 0,
  ) {
    super({ directory: layout.spool, expirationPeriodInMilliseconds: expireAfterMs });
  }

  /**
   * @tus/file-store deletes an upload whose stored record has offset != size, but that record's offset is never
   * updated, so it would delete a complete upload that waits for its receive: expiry is ExpiringSpoolStore's
   * (server/expiring-store.ts), and this store expires nothing.
   */
  override deleteExpired(): Promise<number> {
    return Promise.resolve(0);
  }

  /**
   * Verified progress of an upload: its index's last frame that the spool holds whole (the truth after any restart).
   * The same offset a HEAD reports once repair has run, so a client that resumes from GET /v1/transfers never
   * starts past it; read-only, so it needs no lock (during a write, a frame's bytes reach the spool before its record).
   */
  async progress(id: string): Promise<SpoolProgress> {
    const spoolSize = () =>
      fs.stat(this.layout.spoolFile(id)).then(
        (st) => st.size,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return 0;
          throw err;
        },
      );
    return progressFromRecord((await this.wholeFrames(id, spoolSize)).last);
  }

  /**
   * The index's records up to its last frame that the spool holds whole: all of them, unless the spool lost bytes the
   * index vouches for (a power cut can keep the index's appends and lose the spool's). The index is read before the
   * spool's size: a frame's bytes reach the spool before its record, so a write in flight never looks like a loss.
   */
  private async wholeFrames(id: string, spoolSize: () => Promise<number>): Promise<{ records: number; held: number; last: IndexRecord | null; size: number }> {
    const indexFile = this.layout.frameIndexFile(id);
    let last = await readLastRecord(indexFile);
    const held = last === null ? 0 : Math.floor((await fs.stat(indexFile)).size / INDEX_RECORD_SIZE);
    const size = await spoolSize();
    let records = held;
    while (last !== null && last.wireEnd > size) {
      records--;
      last = records === 0 ? null : await readRecord(indexFile, records - 1);
    }
    return { records, held, last, size };
  }

  /** Brings spool and index into agreement after a crash (see repairNow). */
  repair(id: string): Promise<SpoolProgress> {
    return this.busy.run(id, () => this.repairNow(id));
  }

  /**
   * The index decides. A spool longer than it holds the part of a frame that a cut left (or a frame whose record a
   * crash lost): kept, up to one frame, for the next PATCH to verify; a longer tail is cut back to the last record.
   * A spool shorter than the index (bytes lost that the index vouches for) cuts the index back to the last frame
   * the spool still holds whole, so the offset never points past the data. A complete upload keeps no tail. Only
   * with `busy` held.
   */
  private async repairNow(id: string): Promise<SpoolProgress> {
    const indexFile = this.layout.frameIndexFile(id);
    await trimIndex(indexFile);
    const spool = this.layout.spoolFile(id);
    const { records, held, last, size } = await this.wholeFrames(id, async () => (await fs.stat(spool)).size);
    if (records < held) await truncateIndex(indexFile, records);
    const progress = progressFromRecord(last);
    if (size > progress.wireOffset + (progress.complete ? 0 : MAX_TAIL)) await fs.truncate(spool, progress.wireOffset);
    return progress;
  }

  /** Index records from..from+limit-1: each verified frame's end on the wire and the chain after it. */
  async frames(id: string, from: number, limit: number): Promise<IndexRecord[]> {
    // Whole records only (a torn tail is skipped); no repair, which would wait for a PATCH in flight.
    return readRecords(this.layout.frameIndexFile(id), from, limit);
  }

  /**
   * Cuts the upload back to its first `frames` data frames: the spool, the index, and any declared length (the
   * stream sent from there on may differ, which is why it is rewound). The caller makes sure no PATCH is in flight.
   */
  rewind(id: string, frames: number): Promise<SpoolProgress> {
    return this.busy.run(id, () => this.rewindNow(id, frames));
  }

  private async rewindNow(id: string, frames: number): Promise<SpoolProgress> {
    const before = await this.repairNow(id);
    if (frames > before.framesVerified) {
      throw new SnapferryError('invalid_input', `cannot rewind to frame ${frames}: the server holds ${before.framesVerified}`);
    }
    const indexFile = this.layout.frameIndexFile(id);
    const last = frames === 0 ? null : await readRecord(indexFile, frames - 1);
    await truncateIndex(indexFile, frames);
    await fs.truncate(this.layout.spoolFile(id), last?.wireEnd ?? 0);
    const info = await this.configstore.get(id);
    if (info && info.size !== undefined) {
      info.size = undefined;
      await this.configstore.set(id, info);
    }
    return progressFromRecord(last);
  }

  /**
   * The length is shown only once the end frame verified. A client whose last PATCH was cut sends it again with an
   * Upload-Length (tus-js-client does so on every PATCH after a resume), sometimes while the cut one is still being
   * taken apart; @tus/server refuses any Upload-Length on an upload whose length it sees (400), which would end the
   * upload for good. Hidden, the length reaches declareUploadLength below.
   */
  override getUpload(id: string): Promise<Upload> {
    return this.busy.run(id, async () => {
      const progress = await this.repairNow(id).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        return null;
      });
      const upload = await super.getUpload(id).catch((err: unknown) => {
        // A failed transfer whose spool is gone (nothing of it was worth keeping) still answers with its reason.
        const closed = this.hooks.closedError(id);
        throw closed ? this.asTusError(closed) : err;
      });
      if (!progress?.complete) upload.size = undefined;
      return upload;
    });
  }

  /**
   * A declared length binds nothing until the end frame verified, and is never stored before: the end frame records
   * the length itself (writeNow). A length declared with a PATCH that was then cut would otherwise outlive it, and a
   * client that resumed and framed the tail anew (another compression level, other frame sizes) could never finish:
   * every PATCH refused for a length that no stream it can send adds up to. @tus/server still bounds this request's
   * body by the length it was given. A declaration stored by an older server is dropped here.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    const info = await this.configstore.get(id);
    if (info === undefined) return super.declareUploadLength(id, length);
    if (info.size === undefined) return;
    const { complete } = await this.progress(id);
    if (complete && info.size !== length) {
      throw this.asTusError(new SnapferryError('length_mismatch', `the upload is complete at ${info.size} bytes, not ${length}`, {
        details: { length: info.size, sent: length },
      }));
    }
    if (!complete) {
      info.size = undefined;
      await this.configstore.set(id, info);
    }
  }

  /** Bytes of request bodies that reached the server for `id` so far: moves while any arrive, even mid-frame. */
  arrived(id: string): number {
    return this.arrivedBytes.get(id) ?? 0;
  }

  /** Forgets the arrivals of an upload whose spool is gone (deleteFiles() does, and so must whoever deletes it otherwise). */
  forgetArrivals(id: string): void {
    this.arrivedBytes.delete(id);
  }

  /** tus's termination (a DELETE), which is the core's to carry out (SpoolHooks.terminate). */
  override remove(id: string): Promise<void> {
    return this.hooks.terminate(id);
  }

  /** Deletes the upload's spool, frame index and tus record (the spool must be there). */
  async deleteFiles(id: string): Promise<void> {
    this.forgetArrivals(id);
    await fs.rm(this.layout.frameIndexFile(id), { force: true });
    await super.remove(id);
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    return this.busy.run(id, () => this.writeNow(readable, id, offset));
  }

  private async writeNow(readable: Readable, id: string, offset: number): Promise<number> {
    const closed = this.hooks.closedError(id);
    if (closed) throw this.asTusError(closed);
    const upload = await super.getUpload(id);
    const start = await this.repairNow(id);
    const spoolPath = this.layout.spoolFile(id);
    const held = (await fs.stat(spoolPath)).size;
    if (offset !== held || offset < start.wireOffset) {
      // @tus/server checked the offset against the spool's size, which repair() may just have cut back.
      throw this.asTusError(new SnapferryError('offset_mismatch', `the upload is at ${held}, not ${offset}`, {
        retryable: true, details: { offset: held },
      }));
    }
    const parser = new FrameParser({ state: this.parserState(upload, start), keepRaw: true });
    const spool = await fs.open(spoolPath, 'r+');
    const index = await fs.open(this.layout.frameIndexFile(id), 'a');
    let written = start.wireOffset;
    let unsynced = 0;
    const pending: Buffer[] = [];
    let pendingStart = start.wireOffset;
    let last = start;
    let failure: unknown = null;

    const take = async (chunk: Buffer): Promise<void> => {
      pending.push(chunk);
      const frames: VerifiedFrame[] = parser.push(chunk);
      for (const frame of frames) {
        if (frame.index === 0 && frame.kind === 'data' && frame.raw) await this.hooks.checkStreamStart(upload, frame.raw);
        // Write exactly this frame's bytes from what is pending (no copy), keeping any tail of the next frame. A
        // frame that began in the kept tail is written whole again: the same bytes, and one write.
        const frameLength = frame.wireEnd - pendingStart;
        let parts = takeFront(pending, frameLength);
        // A hostile client can send a frame in many tiny pieces: stay well under the kernel's IOV_MAX.
        if (parts.length > MAX_WRITEV_PARTS) parts = [Buffer.concat(parts)];
        await writeAllAt(spool, parts, frameLength, written);
        written += frameLength;
        pendingStart = frame.wireEnd;
        const record: IndexRecord = {
          index: frame.index,
          wireEnd: frame.wireEnd,
          rawEnd: frame.kind === 'end' ? frame.rawOffset : frame.rawOffset + frame.rawLength,
          kind: frame.kind,
          chain: frame.chain,
        };
        await index.write(encodeIndexRecord(record));
        last = progressFromRecord(record);
        if (frame.kind === 'data') await this.hooks.onFrameStored(upload, frame);
        unsynced += frameLength;
        if (unsynced >= SYNC_EVERY_BYTES) {
          await Promise.all([spool.sync(), index.sync()]);
          unsynced = 0;
        }
      }
    };

    let end = written;
    try {
      // What a cut left of the frame in flight is parsed first, as if this request had sent it.
      if (offset > start.wireOffset) {
        const tail = Buffer.allocUnsafe(offset - start.wireOffset);
        const { bytesRead } = await spool.read(tail, 0, tail.length, start.wireOffset);
        if (bytesRead !== tail.length) throw new Error(`the spool's tail is ${bytesRead} bytes, not ${tail.length}`);
        await take(tail);
      }
      for await (const chunk of readable as AsyncIterable<Buffer>) {
        this.arrivedBytes.set(id, this.arrived(id) + chunk.length);
        await take(chunk);
      }
    } catch (err) {
      failure = err;
    } finally {
      // A cut (the request's stream failed) keeps what arrived of the frame in flight; a verdict of ours on the bytes
      // (a frame that failed, a refused stream, the quota) keeps none of them.
      end = await this.keepTail(spool, written, failure instanceof SnapferryError ? [] : pending, offset).finally(async () => {
        await Promise.all([spool.sync(), index.sync()]).finally(async () => {
          await Promise.all([spool.close(), index.close()]);
        });
      });
    }
    if (last.complete && !start.complete) {
      await this.recordLength(id, written);
      this.hooks.onStreamComplete(upload, last);
    }
    // Converted, it is no end-frame refusal below: the end frame may only have been spliced, and comes again whole.
    if (failure instanceof FrameError && pendingStart < offset) failure = new SnapferryError('partial_frame_mismatch',
      `frame ${parser.state().framesVerified} did not verify with the part of it the server kept from the cut request (${failure.message}); ` +
        'that part is dropped and the client sends the frame whole', { retryable: true, cause: failure, details: failure.details });
    if (failure instanceof FrameError && isEndFrameRefusal(failure)) this.hooks.onEndFrameRefused(upload, failure);
    if (failure) throw this.asTusError(failure);
    return end;
  }

  /**
   * After a request, the spool holds its verified frames up to `verifiedEnd`, and then exactly `tail`: what arrived
   * of the next frame (kept for the client's next request), or nothing (a frame that failed: none of it may stay).
   * The spool already holds the tail's bytes up to `onDiskTo` (the part a cut left before this request): only the
   * rest is written. Keeping it is worth a try, never a failure: a short write keeps a shorter part, still a prefix.
   */
  private async keepTail(spool: fs.FileHandle, verifiedEnd: number, tail: readonly Buffer[], onDiskTo: number): Promise<number> {
    const length = tail.reduce((n, b) => n + b.length, 0);
    let kept = 0;
    if (length > 0 && length <= MAX_TAIL) {
      kept = Math.min(Math.max(0, onDiskTo - verifiedEnd), length);
      const rest = [...tail];
      takeFront(rest, kept);
      if (rest.length > 0) {
        kept += await spool.writev(rest.length > MAX_WRITEV_PARTS ? [Buffer.concat(rest)] : rest, verifiedEnd + kept).then(
          ({ bytesWritten }) => bytesWritten,
          () => 0,
        );
      }
    }
    await spool.truncate(verifiedEnd + kept);
    return verifiedEnd + kept;
  }

  /** The upload's length, once its end frame verified: what HEAD reports from then on. */
  private async recordLength(id: string, length: number): Promise<void> {
    const info = await this.configstore.get(id);
    if (info && info.size !== length) {
      info.size = length;
      await this.configstore.set(id, info);
    }
  }

  private parserState(upload: Upload, p: SpoolProgress): FrameParserState {
    return {
      chunkSize: this.hooks.chunkSizeOf(upload),
      framesVerified: p.framesVerified,
      wireOffsetVerified: p.wireOffset,
      rawOffset: p.rawBytes,
      chain: p.chain,
      ended: p.complete,
    };
  }

  private asTusError(err: unknown): unknown {
    if (err instanceof TusStatusError || !(err instanceof SnapferryError)) return err;
    // The status of a code is chosen in one place (460, tus's checksum mismatch, for a frame that did not verify);
    // a code it does not know is the client's bad stream here, not a server fault.
    const status = statusOf(err);
    return new TusStatusError(status >= 500 ? 400 : status, err);
  }
}

/** Writes all of `parts` (`length` bytes) at `position`; a short write is a full disk. */
async function writeAllAt(file: fs.FileHandle, parts: Buffer[], length: number, position: number): Promise<void> {
  const { bytesWritten } = await file.writev(parts, position);
  if (bytesWritten !== length) {
    throw Object.assign(new Error(`short write to the spool: ${bytesWritten} of ${length} bytes`), { code: 'ENOSPC' });
  }
}

/** An end frame whose chain, frame count or raw length disagrees with the frames verified before it. */
function isEndFrameRefusal(err: FrameError): boolean {
  return err.code === 'frame_chain_mismatch' || err.details.endFrameCount !== undefined;
}

/** Removes the first `n` bytes from `buffers` (in place) and returns them as views, without copying. */
function takeFront(buffers: Buffer[], n: number): Buffer[] {
  const taken: Buffer[] = [];
  let left = n;
  while (left > 0) {
    const head = buffers[0];
    if (head === undefined) throw new RangeError(`${left} bytes short of a verified frame`);
    if (head.length <= left) {
      taken.push(head);
      buffers.shift();
      left -= head.length;
    } else {
      taken.push(head.subarray(0, left));
      buffers[0] = head.subarray(left);
      left = 0;
    }
  }
  return taken;
}
