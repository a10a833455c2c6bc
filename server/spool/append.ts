/**
 * One request's bytes into an upload's spool (docs/design.md, "The spool"). Incoming bytes are parsed and checked
 * frame by frame (header CRC, length bounds, decompression, SHA-256, chain), and a frame's record reaches the index
 * only once it verified: the index is the verified progress.
 *
 * A request cut mid-frame keeps what arrived of the frame in flight (the spool's tail past the index's last frame),
 * so the client sends only the rest: on a line that cuts more often than a frame takes, every cut still moves the
 * upload on. It is written while it arrives, not only once the request ends, so a server killed mid-request keeps
 * it too (server/spool/tail-writes.ts). The kept part is never trusted: the next request parses it again before its
 * own bytes, and the frame is verified whole before its record is written. A frame that then fails and began in the
 * kept part may have been spliced from two encodings (a client that compressed it again at another level): the kept
 * part goes, and the client sends that frame whole (a retryable partial_frame_mismatch). Data is fsynced before
 * append returns. The upload's new offset is acknowledged after that, or, for a client that keeps its bytes back to
 * the synced offset, once the frames are written (`written`): the sync then runs while the next request crosses the
 * line, and that request's answer waits for it (server/spool/spool.ts).
 */
import fs from 'node:fs/promises';
import { FRAME_HEADER_SIZE, FrameError, MAX_CHUNK_SIZE, type VerifiedFrame } from '../../core/wire/index.ts';
import { SnapferryError } from '../../core/errors.ts';
import { chunkDone } from '../../core/wire/chunk-memory.ts';
import { ArrivalMemory } from './arrival-memory.ts';
import { FrameCutter, takeFront } from './frame-cutter.ts';
import { TailWrites } from './tail-writes.ts';
import { openedFrame } from '../stream-start.ts';
import { encodeIndexRecord, type IndexRecord } from './frame-index.ts';
import { progressFromRecord, type SpoolProgress } from './progress.ts';

/** fsync at least this often during a long request, so a power cut loses little even before the ack. */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;
const MAX_WRITEV_PARTS = 256;
/**
 * The most the spool keeps past its last verified frame: one whole frame of the largest chunk size. That holds the
 * part of a frame a cut left, or a whole frame whose record a crash lost; anything longer is no frame of ours.
 */
export const MAX_TAIL = FRAME_HEADER_SIZE + MAX_CHUNK_SIZE;

/** Where the verified frames of one request go on (server/ingest.ts): the spool knows nothing of receives. */
export interface FrameSink {
  /**
   * Frame 0, verified (with its raw bytes, unless it is sealed); throws (or rejects) to refuse the stream before any
   * of it is kept.
   */
  start(frame: VerifiedFrame): Promise<void> | void;
  /**
   * Called after each data frame's bytes and index record are written (not yet synced), with the frame and its
   * decoded bytes. The upload goes on once it resolves, so a receive can pace it. True when a receive took the
   * decoded bytes: it then says when it is done with them (chunk-memory.ts); false, nothing reads them again.
   */
  stored(frame: VerifiedFrame): Promise<boolean> | boolean;
  /** The end frame is verified and durable. A re-sent end frame does not call it again. */
  complete(progress: SpoolProgress): void;
  /**
   * The end frame arrived but says the stream is not the one verified (its chain or counts differ): whatever was
   * received of it must go. The upload stays; a right end frame (or a rewind) can still complete it.
   */
  endRefused(err: FrameError): void;
}

export interface AppendJob {
  spoolPath: string;
  indexPath: string;
  /** Where the request's bytes go on the wire (the spool's size: its verified frames and the kept tail). */
  offset: number;
  /** The verified progress before the request (after repair). */
  start: SpoolProgress;
  chunkSize: number;
  body: AsyncIterable<Buffer>;
  sink: FrameSink;
  /** Each request body chunk as it arrives (the arrivals counter). */
  arrived(bytes: number): void;
  /**
   * Asked before each frame is written and its record added to the index (the quota counts what the index grows by,
   * server/upload-store/quota.ts): false ends the request there, as a body that ended would. That frame and those
   * after it are the spool's tail, kept up to a frame as a cut's part of a frame is (the next request verifies them
   * again), and no record the quota did not admit reaches the disk.
   */
  admitRecord(): boolean | Promise<boolean>;
  /**
   * Called with the spool's new size once the request's frames and the kept tail are written, before their sync,
   * when nothing failed and the end frame is not among them (the end is answered durable, as it completes the
   * stream). From then on the append only syncs and closes its files.
   */
  written?(end: number): void;
  /** Called each time the spool and index are synced, with the offset up to which they are on disk. */
  synced(to: number): void;
  /** Syncs a file to disk (fsync). */
  syncFile(file: fs.FileHandle): Promise<void>;
  /**
   * Aborted when the upload's spool is deleted under the request (an abort, say), as the body is ended with the same
   * reason (server/spool/spool.ts drop): the append writes nothing more, not even the part of a frame a cut keeps.
   */
  stop?: AbortSignal;
}

/** Appends the verified frames of `job.body` to the spool; returns the spool's new size (verified end plus kept tail). */
export async function appendFrames(job: AppendJob): Promise<number> {
  const { start, offset, sink } = job;
  const cutter = new FrameCutter({
    state: { chunkSize: job.chunkSize, framesVerified: start.framesVerified, wireOffsetVerified: start.wireOffset, rawOffset: start.rawBytes, chain: start.chain, ended: start.complete },
    keepRaw: true,
  });
  const spool = await fs.open(job.spoolPath, 'r+');
  const index = await fs.open(job.indexPath, 'a');
  let written = start.wireOffset;
  let unsynced = 0;
  let last = start;
  let failure: unknown = null;
  /** admitRecord refused a frame: nothing more of the request is taken. */
  let stopped = false;
  /** What arrived after the refusal in the same read: it follows the refused frames in the tail. */
  const untaken: Buffer[] = [];
  /**
   * The bytes of the frames cut but not yet in the spool: when a write fails (a full disk), they are what follows
   * the spool's verified end, so they, and not only what came after them, are the tail a later request builds on.
   */
  let unwritten: Buffer[] = [];
  const arrival = new ArrivalMemory();
  /** The request's bytes so far end here on the wire. */
  let arrivedTo = offset;
  // What arrived past the last verified frame, written while the request waits for more (a server killed keeps it).
  const arriving = new TailWrites(spool, offset, () =>
    stopped || failure !== null || job.stop?.aborted === true || cutter.end !== written ? null : { at: written, bytes: cutter.rest(), max: written + MAX_TAIL },
  );

  const take = async (chunk: Buffer): Promise<void> => {
    const { frames, failure: failed } = cutter.push(chunk);
    unwritten = frames.flatMap((f) => f.parts);
    for (const { frame, parts: cut } of frames) {
      // Each frame waits on its receive (sink.stored): the spool may have been deleted meanwhile.
      job.stop?.throwIfAborted();
      // Before the frame's bytes, so that a refused one stays whole in `unwritten`, the tail kept below.
      if (!(await job.admitRecord())) {
        stopped = true;
        return;
      }
      if (frame.kind === 'data' && frame.index === 0) await sink.start(frame);
      // Every frame here goes to btrfs receive, which needs its raw bytes: a stream that turns sealed after a plain
      // frame 0 is refused at its first sealed frame, before it is kept (its raw bytes would be missing downstream).
      else if (frame.kind === 'data') openedFrame(frame);
      // Exactly this frame's bytes (no copy), less the part the spool holds already (a cut's tail, or what was
      // written while it arrived: the same bytes). A hostile client can send a frame in many tiny pieces: stay well
      // under IOV_MAX.
      const frameLength = frame.wireEnd - frame.wireStart;
      const held = Math.min(frameLength, Math.max(0, arriving.onDisk - written));
      // A copy only when some of it is on disk: `cut` itself is said done below (frameDone).
      const fresh = held === 0 ? cut : [...cut];
      if (held > 0) takeFront(fresh, held);
      const parts = fresh.length > MAX_WRITEV_PARTS ? [Buffer.concat(fresh)] : fresh;
      if (held < frameLength) await writeAllAt(spool, parts, frameLength - held, written + held);
      takeFront(unwritten, frameLength);
      written += frameLength;
      arriving.wrote(written);
      const record: IndexRecord = {
        index: frame.index,
        wireEnd: frame.wireEnd,
        rawEnd: frame.kind === 'end' ? frame.rawOffset : frame.rawOffset + frame.rawLength,
        kind: frame.kind,
        chain: frame.chain,
      };
      await index.write(encodeIndexRecord(record));
      last = progressFromRecord(record);
      const taken = frame.kind === 'data' && (await sink.stored(frame));
      frameDone(frame, cut, taken);
      unsynced += frameLength;
      if (unsynced >= SYNC_EVERY_BYTES) {
        await Promise.all([job.syncFile(spool), job.syncFile(index)]);
        job.synced(written);
        unsynced = 0;
      }
    }
    // The frames verified before a failure in the same chunk are written first: they are verified progress.
    if (failed) throw failed;
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
    if (!stopped) {
      arriving.waiting(arrivedTo);
      for await (const chunk of job.body) {
        const writing = arriving.busy();
        if (writing !== null) await writing;
        job.arrived(chunk.length);
        arrivedTo += chunk.length;
        for (const piece of arrival.copy(chunk)) {
          if (stopped) untaken.push(piece);
          else await take(piece);
        }
        if (stopped) break;
        arriving.waiting(arrivedTo);
      }
    }
  } catch (err) {
    failure = err;
  } finally {
    await arriving.close();
    // A cut (the request's stream failed) keeps what arrived of the frame in flight, as does a body the quota ended
    // at its line (server/upload-store/quota.ts) or a frame whose record it refused; a verdict of ours on the bytes
    // (a frame that failed, a refused stream) keeps none of them. A spool deleted under the request is written no
    // more, not even cut back.
    const kept = job.stop?.aborted === true ? Promise.resolve(written) : keepTail(spool, written, failure instanceof SnapferryError ? [] : [...unwritten, ...cutter.rest(), ...untaken], arriving.onDisk);
    end = await kept.finally(async () => {
      const keptEnd = await kept.catch(() => null);
      // No more of the request's bytes come: the rest of the last slab is free before the sync, which may outlast it.
      arrival.close();
      if (keptEnd !== null && failure === null && !last.complete) job.written?.(keptEnd);
      await Promise.all([job.syncFile(spool), job.syncFile(index)]).finally(async () => {
        await Promise.all([spool.close(), index.close()]);
      });
      if (keptEnd !== null) job.synced(keptEnd);
    });
  }
  if (last.complete && !start.complete) sink.complete(last);
  // Converted, it is no end-frame refusal below: the end frame may only have been spliced, and comes again whole.
  if (failure instanceof FrameError && cutter.end < offset) failure = new SnapferryError('partial_frame_mismatch',
    `frame ${cutter.parser.state().framesVerified} did not verify with the part of it the server kept from the cut request (${failure.message}); ` +
      'that part is dropped and the client sends the frame whole', { retryable: true, cause: failure, details: failure.details });
  if (failure instanceof FrameError && isEndFrameRefusal(failure)) sink.endRefused(failure);
  if (failure) throw failure;
  return end;
}

/**
 * After a request, the spool holds its verified frames up to `verifiedEnd`, and then `tail`, or as much of it as
 * repair keeps (MAX_TAIL): what arrived past the last indexed frame (kept for the client's next request, which
 * verifies it again), or nothing (a frame that failed: none of it may stay). The spool already holds the tail's
 * bytes up to `onDiskTo` (the part a cut left before this request, and what was written while it arrived,
 * server/spool/tail-writes.ts): only the rest is written. Keeping it is worth a try, never a failure: a short write
 * keeps a shorter part, still a prefix.
 */
async function keepTail(spool: fs.FileHandle, verifiedEnd: number, tail: readonly Buffer[], onDiskTo: number): Promise<number> {
  // Frames whose records the quota refused (admitRecord) may run past a frame's length: their first MAX_TAIL bytes.
  const length = Math.min(MAX_TAIL, tail.reduce((n, b) => n + b.length, 0));
  const kept = Math.min(Math.max(0, onDiskTo - verifiedEnd), length);
  const rest = [...tail];
  takeFront(rest, kept);
  const unkept = takeFront(rest, length - kept);
  const added = unkept.length === 0 ? 0 : await spool.writev(unkept.length > MAX_WRITEV_PARTS ? [Buffer.concat(unkept)] : unkept, verifiedEnd + kept).then(
    ({ bytesWritten }) => bytesWritten,
    () => 0,
  );
  await spool.truncate(verifiedEnd + kept + added);
  return verifiedEnd + kept + added;
}

/**
 * A frame written to the spool and handed to its receive (or not): the memory nothing reads again is done
 * (core/wire/chunk-memory.ts). Its wire bytes, once written, unless a receive took them: a raw frame's payload is the
 * bytes the receive took, and its pipe says when it is done with them (core/btrfs/receive.ts `taken`), so only the
 * header is done here. A decoded frame nobody took is done too. Each byte is said done once: said twice, memory would
 * be used again while a receive still reads it.
 */
function frameDone(frame: VerifiedFrame, wire: readonly Buffer[], taken: boolean): void {
  const rawPayload = frame.kind === 'data' && frame.codec === 'raw' && !frame.sealed;
  if (!taken) {
    for (const piece of wire) chunkDone(piece);
    if (frame.kind === 'data' && !rawPayload) for (const piece of frame.raw ?? []) chunkDone(piece);
    return;
  }
  if (!rawPayload) {
    for (const piece of wire) chunkDone(piece);
    return;
  }
  const header = [...wire];
  for (const piece of takeFront(header, FRAME_HEADER_SIZE)) chunkDone(piece);
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
