/**
 * The spool (docs/design.md, "The spool"): per upload, a file of verified frames (and the part of a frame a cut left
 * after them) and its frame index (server/spool/frame-index.ts). It knows nothing of tus, HTTP, btrfs or the catalog:
 * a request's bytes come in as a stream, and the frames that verify go out to a FrameSink (server/ingest.ts).
 */
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { SnapferryError } from '../../core/errors.ts';
import { countRecords, readCheckedRecord, readRecord, readRecords, trimIndex, truncateIndex, type IndexRecord } from './frame-index.ts';
import type { ServerLayout } from '../layout.ts';
import { UploadMutex } from './mutex.ts';
import { deleteSpool } from '../orphan-spools.ts';
import { appendFrames, MAX_TAIL, type FrameSink } from './append.ts';
import { progressFromRecord, type SpoolProgress } from './progress.ts';

export type { FrameSink } from './append.ts';
export { progressFromRecord, type SpoolProgress } from './progress.ts';

/** Whether the frame index of an upload may grow by one more record (Spool.gateIndex). */
export type IndexGate = () => boolean | Promise<boolean>;

export interface SpoolHooks {
  /**
   * Told, with a message for the server's log, when repair cut back an index damaged on disk (not a crash's torn or
   * lost tail, which repair mends quietly).
   */
  onDamage?: (id: string, message: string) => void;
  /** A sync that failed after its request was answered (the synced offset stays where it was). */
  onLateFailure?: (id: string, err: unknown) => void;
  /** How a spool or index file is synced (fsync): a test makes it a slow disk's. */
  syncFile?: (file: fs.FileHandle) => Promise<void>;
}

/** What an upload's spool holds after repair: its verified progress, and its size (the offset a HEAD reports). */
export interface OpenSpool {
  progress: SpoolProgress;
  size: number;
}

export class Spool {
  /** Held by append(), repair(), rewind() and open() (server/spool/mutex.ts says why). */
  private readonly busy = new UploadMutex();
  /** Request body bytes that reached append(), by upload, since the server started (Transfer.wireArrived). */
  private readonly arrivedBytes = new Map<string, number>();
  /** Asked before each record an append of the upload adds to its frame index (gateIndex). */
  private readonly indexGates = new Map<string, IndexGate>();
  /** Where each append in progress has reached on the wire: the offset it began at, and its body's bytes since. */
  private readonly reached = new Map<string, number>();
  /** Stops each append in progress: drop() deletes the spool it writes. */
  private readonly appending = new Map<string, AbortController>();
  /**
   * How far each upload's spool is on disk for certain, as this process synced it (absent: not synced by this process
   * yet, so its next append answers after its sync).
   */
  private readonly durable = new Map<string, number>();
  /** Uploads whose requests may be answered once written, before their sync (ACK_HEADER; the client holds back). */
  private readonly answerWritten = new Set<string>();
  /**
   * The last append of each upload, settled (either way) once its sync is: for an upload answered once written the
   * sync runs without the upload's lock, while the next request's bytes cross the line and are verified and written.
   */
  private readonly syncing = new Map<string, Promise<void>>();
  /**
   * Each upload's spool as open() repaired it, kept for the append of the same request: tus looks at the upload
   * (open) just before it writes, under the same lock, so the append's own repair would read again what open() just
   * read (five file operations per PATCH on the request's path). Taken by the next append; forgotten by anything else
   * here that changes the files (create, repair, rewind, drop). A process that restarts starts with none.
   */
  private readonly opened = new Map<string, OpenSpool>();

  private readonly onDamage: (id: string, message: string) => void;
  private readonly onLateFailure: (id: string, err: unknown) => void;
  private readonly syncFile: (file: fs.FileHandle) => Promise<void>;

  constructor(
    readonly layout: ServerLayout,
    hooks: SpoolHooks = {},
  ) {
    this.onDamage = hooks.onDamage ?? noop;
    this.onLateFailure = hooks.onLateFailure ?? noop;
    this.syncFile = hooks.syncFile ?? ((file) => file.sync());
  }

  /** An empty spool for a new upload. */
  async create(id: string): Promise<void> {
    this.opened.delete(id);
    await fs.mkdir(this.layout.spool, { recursive: true });
    await fs.writeFile(this.layout.spoolFile(id), '');
    this.durable.set(id, 0);
  }

  /**
   * Whether the requests of `id` from now on may be answered once their frames are written (the client keeps its
   * bytes back to syncedOffset(), so a power cut before the sync costs it nothing).
   */
  answerWhenWritten(id: string, allowed: boolean): void {
    if (allowed) this.answerWritten.add(id);
    else this.answerWritten.delete(id);
  }

  /** Where `id`'s spool is on disk for certain, as far as this process knows (null: it has not synced it yet). */
  syncedOffset(id: string): number | null {
    return this.durable.get(id) ?? null;
  }

  /**
   * Verified progress of an upload: its index's last frame that the spool holds whole (the truth after any restart).
   * The same offset a HEAD reports once repair has run, so a client that resumes from GET /v1/transfers never
   * starts past it; read-only, so it needs no lock (during a write, a frame's bytes reach the spool before its record).
   */
  async progress(id: string): Promise<SpoolProgress> {
    return progressFromRecord((await this.wholeFrames(id, () => sizeOrZero(this.layout.spoolFile(id)))).last);
  }

  /**
   * Bytes of the framed stream the server holds for `id` now: its verified frames, and what has arrived of the next
   * one, kept from a cut request or still arriving in the request under way (where a slow line spends most of its
   * time: a 4 MiB frame takes 17 s at 2 Mbit/s). What `status` shows as sent. It vouches for nothing: the part of a
   * frame may yet fail and go; only progress() (the index) says what verified, and only the end frame that it is whole.
   * Read-only, as progress().
   */
  async held(id: string): Promise<number> {
    const reached = this.reached.get(id);
    if (reached !== undefined) return reached;
    const { last, size } = await this.wholeFrames(id, () => sizeOrZero(this.layout.spoolFile(id)));
    return keptOf(progressFromRecord(last), size);
  }

  /**
   * The index's records up to its last frame that the spool holds whole and that is as the server wrote it: all of
   * them, unless the spool lost bytes the index vouches for (a power cut can keep the index's appends and lose the
   * spool's), or the index's last records are damaged on disk (recordProblem: `damaged` says the first of them). The
   * index is read before the spool's size: a frame's bytes reach the spool before its record, so a write in flight
   * never looks like a loss.
   */
  private async wholeFrames(id: string, spoolSize: () => Promise<number>, counted?: number): Promise<{ records: number; held: number; last: IndexRecord | null; size: number; damaged: { record: number; problem: string } | null }> {
    const indexFile = this.layout.frameIndexFile(id);
    const held = counted ?? (await countRecords(indexFile));
    const size = await spoolSize();
    let records = held;
    let damaged: { record: number; problem: string } | null = null;
    let last = records === 0 ? null : await readCheckedRecord(indexFile, records - 1);
    while (last !== null && (last.problem !== null || last.record.wireEnd > size)) {
      if (last.problem !== null) damaged = { record: records - 1, problem: last.problem };
      records--;
      last = records === 0 ? null : await readCheckedRecord(indexFile, records - 1);
    }
    return { records, held, last: last?.record ?? null, size, damaged };
  }

  /** Brings spool and index into agreement after a crash (see repairNow). */
  repair(id: string): Promise<SpoolProgress> {
    return this.busy.run(id, async () => {
      this.opened.delete(id);
      await this.syncing.get(id);
      return (await this.repairNow(id)).progress;
    });
  }

  /**
   * The spool as a request finds it: repaired, with its size. Waits for a write in progress, so the size is never
   * that of a frame half written (and the offset never goes back), but not for a sync under way: every PATCH asks
   * this first, while the sync of the request before it runs (Spool.append). Throws ENOENT when the spool is gone.
   */
  open(id: string): Promise<OpenSpool> {
    return this.busy.run(id, async () => {
      const opened = await this.repairNow(id);
      this.opened.set(id, opened);
      return opened;
    });
  }

  /**
   * The index decides. A spool longer than it holds the part of a frame that a cut left (or a frame whose record a
   * crash lost): kept, up to one frame, for the next request to verify; a longer tail is cut back to the last record.
   * A spool shorter than the index (bytes lost that the index vouches for) cuts the index back to the last frame
   * the spool still holds whole, so the offset never points past the data. A complete upload keeps no tail. Only
   * with `busy` held. Returns the spool's progress and its size after the repair. Throws ENOENT when the spool is gone.
   */
  private async repairNow(id: string): Promise<OpenSpool> {
    const indexFile = this.layout.frameIndexFile(id);
    const whole = await trimIndex(indexFile);
    const spool = this.layout.spoolFile(id);
    const { records, held, last, size, damaged } = await this.wholeFrames(id, async () => (await fs.stat(spool)).size, whole);
    if (records < held) await truncateIndex(indexFile, records);
    const progress = progressFromRecord(last);
    const kept = keptOf(progress, size);
    if (kept < size) {
      await fs.truncate(spool, kept);
      this.cutDurable(id, kept);
    }
    if (damaged !== null) this.onDamage(id, damagedIndexMessage(indexFile, damaged, progress));
    return { progress, size: kept };
  }

  /** Index records from..from+limit-1: each verified frame's end on the wire and the chain after it. */
  async frames(id: string, from: number, limit: number): Promise<IndexRecord[]> {
    // Whole records only (a torn tail is skipped); no repair, which would wait for a write in flight.
    return readRecords(this.layout.frameIndexFile(id), from, limit);
  }

  /**
   * Cuts the upload back to its first `frames` data frames, spool and index (the stream sent from there on may
   * differ, which is why it is rewound). The caller makes sure no request is in flight.
   */
  rewind(id: string, frames: number): Promise<SpoolProgress> {
    return this.busy.run(id, async () => {
      this.opened.delete(id);
      // A sync still under way would say the spool is on disk past the cut.
      await this.syncing.get(id);
      const { progress: before } = await this.repairNow(id);
      if (frames > before.framesVerified) {
        throw new SnapferryError('invalid_input', `cannot rewind to frame ${frames}: the server holds ${before.framesVerified}`);
      }
      const indexFile = this.layout.frameIndexFile(id);
      const last = frames === 0 ? null : await readRecord(indexFile, frames - 1);
      await truncateIndex(indexFile, frames);
      await fs.truncate(this.layout.spoolFile(id), last?.wireEnd ?? 0);
      this.cutDurable(id, last?.wireEnd ?? 0);
      return progressFromRecord(last);
    });
  }

  /**
   * Appends a request's bytes at `offset` (the spool's size), verifying each frame and handing it to `sink`;
   * returns the new size. A wrong offset is a retryable offset_mismatch. For an upload answered once written
   * (answerWhenWritten), resolves before the sync, which runs without the upload's lock: the next request's bytes are
   * verified and written meanwhile (on a LAN the sync of 8 MiB took as long as the next request's crossing), and it
   * is answered once that sync is done, so the synced offset it reports is always its predecessor's end. Never for
   * the first append this process makes to a spool, whose sync says where it stands.
   */
  append(id: string, body: Readable, offset: number, chunkSize: number, sink: FrameSink): Promise<number> {
    const after = this.syncing.get(id) ?? Promise.resolve();
    const early = this.answerWritten.has(id) && this.durable.has(id);
    let answer: ((end: number) => void) | null = null;
    const answered = early ? new Promise<number>((resolve) => (answer = resolve)) : null;
    const whole = this.appendNow(id, body, offset, chunkSize, sink, after, answer);
    const settled = whole.then(noop, noop);
    this.syncing.set(id, settled);
    void settled.then(() => {
      if (this.syncing.get(id) === settled) this.syncing.delete(id);
    });
    if (answered === null) return whole;
    // A failure before the answer is the request's own; one after it (the sync) has nobody else to tell.
    whole.catch((err: unknown) => void answered.then(() => this.onLateFailure(id, err)));
    return Promise.race([answered, whole]);
  }

  /**
   * `after`: the append before and its sync, which may still run; the synced offsets this one reports, and its early
   * answer, wait for it, so that they never run ahead of it nor are overtaken by it. `answer`: answered once written,
   * when the upload's lock is let go too.
   */
  private appendNow(id: string, body: Readable, offset: number, chunkSize: number, sink: FrameSink, after: Promise<void>, answer: ((end: number) => void) | null): Promise<number> {
    return this.busy.run(id, async (release) => {
      const opened = this.opened.get(id);
      this.opened.delete(id);
      const { progress: start, size: held } = opened ?? (await this.repairNow(id));
      const spoolPath = this.layout.spoolFile(id);
      if (offset !== held || offset < start.wireOffset) {
        // The caller checked the offset against the spool's size, which repair may just have cut back.
        throw new SnapferryError('offset_mismatch', `the upload is at ${held}, not ${offset}`, { retryable: true, details: { offset: held } });
      }
      // Every byte of the body is in the spool or in the frame being cut until the append ends (and the spool says).
      this.reached.set(id, offset);
      const stop = new AbortController();
      this.appending.set(id, stop);
      // Once the lock is let go, the next append of the upload may have taken these over.
      const leave = () => {
        if (this.appending.get(id) !== stop) return;
        this.appending.delete(id);
        this.reached.delete(id);
      };
      // Ended with the reason, the body's reader (the append) throws it at once, not once the next chunk comes: a
      // second away on a slow line, never on a silent one. Only this reader's stream: a request's is answered with
      // the reason (server/upload-store/tus-store.ts), which ends it.
      stop.signal.addEventListener('abort', () => body.destroy(stop.signal.reason as Error), { once: true });
      let syncedSaid = Promise.resolve();
      try {
        const end = await appendFrames({
          spoolPath, indexPath: this.layout.frameIndexFile(id), offset, start, chunkSize, sink, stop: stop.signal,
          body: body as AsyncIterable<Buffer>,
          arrived: (bytes) => {
            this.arrivedBytes.set(id, this.arrived(id) + bytes);
            this.reached.set(id, (this.reached.get(id) ?? offset) + bytes);
          },
          admitRecord: () => this.indexGates.get(id)?.() ?? true,
          syncFile: this.syncFile,
          synced: (to) => {
            syncedSaid = after.then(() => {
              // Not once the upload is dropped under an early answer (then nobody waits for this append).
              if (answer === null || this.durable.has(id)) this.durable.set(id, to);
            });
          },
          ...(answer ? {
            written: (end: number) => {
              leave();
              release();
              void after.then(() => answer(end));
            },
          } : {}),
        });
        await syncedSaid;
        return end;
      } finally {
        leave();
      }
    });
  }

  /**
   * Until the returned function is called, appends of `id` ask `admit` before each record they add to the frame index
   * (the quota, server/upload-store/quota.ts, counts what the index grows by): refused, the append ends there, and
   * that frame and those after it stay as the spool's tail, up to a frame (server/spool/append.ts admitRecord).
   */
  gateIndex(id: string, admit: IndexGate): () => void {
    this.indexGates.set(id, admit);
    return () => {
      if (this.indexGates.get(id) === admit) this.indexGates.delete(id);
    };
  }

  /** Bytes of request bodies that reached the server for `id` so far: moves while any arrive, even mid-frame. */
  arrived(id: string): number {
    return this.arrivedBytes.get(id) ?? 0;
  }

  /**
   * Deletes an upload's files, those that are there (the orphan sweep may have been first), tus's record beside them
   * included, and what was counted of its arrivals. An append in progress stops first, at once: it reads no more of
   * its request's body and writes nothing more, and its request is answered upload_gone (410), so that the push
   * learns now, not once the rest of the request (up to 8 MiB, half a minute on a 2 Mbit/s line) has crossed for
   * nothing. Whoever deleted the upload (an abort, an expiry, a final refusal) has the transfer say why.
   */
  async drop(id: string): Promise<void> {
    this.appending.get(id)?.abort(
      new SnapferryError('upload_gone', `upload ${id} was deleted on the server while this request was writing to it; it takes no more bytes`, {
        details: { transferId: id },
      }),
    );
    this.arrivedBytes.delete(id);
    this.durable.delete(id);
    this.answerWritten.delete(id);
    this.opened.delete(id);
    await deleteSpool(this.layout, id);
  }

  /** The spool was cut back to `size`: what was synced past it is gone. */
  private cutDurable(id: string, size: number): void {
    const was = this.durable.get(id);
    if (was !== undefined && was > size) this.durable.set(id, size);
  }
}

/**
 * What the server's log says of an index repair found damaged on disk and cut back: which file, where and how it was
 * damaged, and what was done. Before, nothing said it: the server offered the damaged record's offset and chain, and
 * the push resuming from them blamed an update of btrfs-progs or the kernel for a stream that no longer matched.
 */
export function damagedIndexMessage(file: string, damaged: { record: number; problem: string }, kept: SpoolProgress): string {
  return (
    `the frame index ${file} is damaged on disk at record ${damaged.record} (${damaged.problem}): the upload was cut back to ` +
    `the ${kept.framesVerified} frames before it (${kept.wireOffset} bytes), spool and index, and the client sends the rest ` +
    'again by itself; nothing needs doing for this upload (to give it up instead: snapferry abort). Something other than ' +
    'the server wrote there, or the disk is failing: look at the disk (dmesg, `btrfs device stats`, `btrfs scrub`)'
  );
}

/**
 * What repair keeps of a spool of `size` bytes whose index says `progress`: all of it, when past the verified frames
 * it holds at most one frame's part (none once complete); else only the verified frames.
 */
function keptOf(progress: SpoolProgress, size: number): number {
  return size > progress.wireOffset + (progress.complete ? 0 : MAX_TAIL) ? progress.wireOffset : size;
}

function noop(): void {}

async function sizeOrZero(file: string): Promise<number> {
  return fs.stat(file).then(
    (st) => st.size,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return 0;
      throw err;
    },
  );
}
