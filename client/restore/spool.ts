/**
 * Where a restore keeps what it downloaded until the whole stream is in: DEST_DIR/.snapferry-restore-<uuid>/ with
 *
 *   restore.json    which stream is being restored (client, volume, snapshot, UUIDs, chunk size): a later run resumes
 *                   only the same stream, and starts over when anything of it changed (another parent, another chunk
 *                   size). Not the server's URL: the same server reached by another address (a proxy, a name for
 *                   its IP) sends the same stream, and a server whose stream differs after all says so when the
 *                   download resumes (it checks the spool's chain: stream_mismatch), which starts it over then.
 *   frames          the verified frames, as they came over the wire (compressed), one after the other
 *   frames.index    one 64-byte record per frame, appended once the frame's bytes are on disk (fdatasync), so the
 *                   frames file never holds less than the index vouches for
 *
 * Bytes of `frames` past the last record are what a cut download brought of the next frame (keepPartial), or a
 * frame whose record a crash lost: kept, up to one frame, and asked of the server no more (RestoreQuery.skip). They
 * are verified with the rest of their frame before anything of it is recorded.
 *
 * A record is the layout of the server's spool index (server/spool/frame-index.ts): u64 frame index | u64 wire end | u64
 * raw end | u8 kind (0 data, 1 end) | 7 zero bytes | 32-byte chain after the frame. The end frame's record makes
 * the spool complete. Resuming needs only the last record: it is the FrameParser state at that frame boundary.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readJsonFile, writeFileDurably } from '../../core/durable-file.ts';
import { RestoreTargetError } from './local.ts';
import { unsafeBecause } from './target-owner.ts';
import { CHAIN_ZERO, FRAME_HEADER_SIZE, HASH_SIZE, type FrameParserState, type VerifiedFrame } from '../../core/wire/index.ts';

export const SPOOL_PREFIX = '.snapferry-restore-';
const RECORD_SIZE = 64;
// 'a+' that refuses a symlink in the file's place instead of writing where it points.
const APPEND_NOFOLLOW = fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW;

/**
 * The spool folder is written by path, as root. DEST_DIR was found safe at the start (target-owner.ts); this holds
 * the folder itself to the same rule whatever happened since, or was left there before, and first to being a real
 * folder, not a symlink to one elsewhere (lstat). Inside it nobody else can then plant a symlink on the names written
 * next (restore.json.tmp, frames, frames.index).
 */
async function assertOwnFolder(dir: string): Promise<void> {
  const st = await fs.lstat(dir);
  const why = st.isDirectory() ? unsafeBecause(st, true) : 'is not a folder (a symlink?)';
  if (why === null) return;
  throw new RestoreTargetError(
    'restore_target_unsafe',
    `the restore's spool ${dir} ${why}; the restore runs as root and would write the download through it: remove it (rm -r ${dir}) and restore again`,
    { details: { dir } },
  );
}

/**
 * What one spool holds the stream of; a spool is resumed only by a restore that asks for the very same. A spool
 * written before the server's URL left this (it held `server` too) reads as the same stream: zod drops that key.
 */
export const SpoolIdentity = z.object({
  /** The client whose snapshot it is, when an admin token restores; null for one's own. */
  client: z.string().nullable(),
  volume: z.string(),
  snapshot: z.string(),
  uuid: z.string(),
  parentUuid: z.string().nullable(),
  chunkSize: z.number().int(),
});
export type SpoolIdentity = z.infer<typeof SpoolIdentity>;

export function spoolDirFor(destDir: string, uuid: string): string {
  return path.join(destDir, `${SPOOL_PREFIX}${uuid}`);
}

export class RestoreSpool {
  #state: FrameParserState;

  private constructor(
    readonly dir: string,
    readonly identity: SpoolIdentity,
    private readonly frames: fs.FileHandle,
    private readonly index: fs.FileHandle,
    state: FrameParserState,
  ) {
    this.#state = state;
  }

  /**
   * Opens the spool in `dir`, resuming it when it holds `identity`'s stream. `discarded` says why an existing spool
   * was started over (null when there was none, or it was resumed).
   */
  static async open(dir: string, identity: SpoolIdentity): Promise<{ spool: RestoreSpool; discarded: string | null }> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await assertOwnFolder(dir);
    const metaFile = path.join(dir, 'restore.json');
    const before = await readJsonFile(metaFile, SpoolIdentity);
    let discarded: string | null = null;
    if (before !== null && !sameIdentity(before, identity)) discarded = `it held ${describe(before)}; this restore asks for ${describe(identity)}`;
    if (before === null || discarded !== null) {
      await fs.rm(path.join(dir, 'frames'), { force: true });
      await fs.rm(path.join(dir, 'frames.index'), { force: true });
      await writeFileDurably(metaFile, `${JSON.stringify(identity, null, 2)}\n`);
    }
    const frames = await fs.open(path.join(dir, 'frames'), APPEND_NOFOLLOW, 0o600);
    const index = await fs.open(path.join(dir, 'frames.index'), APPEND_NOFOLLOW, 0o600);
    try {
      const state = await recover(frames, index, identity.chunkSize);
      return { spool: new RestoreSpool(dir, identity, frames, index, state), discarded };
    } catch (err) {
      await frames.close();
      await index.close();
      throw err;
    }
  }

  /** Where the verified frames stand: what a FrameParser resumes from, and what the server is asked to skip. */
  get state(): FrameParserState {
    return { ...this.#state, chain: Buffer.from(this.#state.chain) };
  }

  get framesFile(): string {
    return path.join(this.dir, 'frames');
  }

  /** What a cut download brought of the frame after the verified ones (none, or less than a frame). */
  async partial(): Promise<Buffer> {
    const { size } = await this.frames.stat();
    const length = size - this.#state.wireOffsetVerified;
    if (length <= 0) return Buffer.alloc(0);
    const out = Buffer.alloc(length);
    const { bytesRead } = await this.frames.read(out, 0, length, this.#state.wireOffsetVerified);
    return out.subarray(0, bytesRead);
  }

  /** The stream's first `n` bytes the spool holds (fewer when it holds fewer), verified frames and kept part alike. */
  async head(n: number): Promise<Buffer> {
    const out = Buffer.alloc(n);
    const { bytesRead } = await this.frames.read(out, 0, n, 0);
    return out.subarray(0, bytesRead);
  }

  /** Keeps `bytes`, the start of the frame after the verified ones, for the next download to go on from. */
  async keepPartial(bytes: Buffer): Promise<void> {
    await this.dropPartial();
    if (bytes.length === 0 || bytes.length >= FRAME_HEADER_SIZE + this.identity.chunkSize) return;
    await writeAll(this.frames, bytes);
    await this.frames.datasync();
  }

  /** Forgets the bytes past the verified frames (a frame that failed must be downloaded whole). */
  async dropPartial(): Promise<void> {
    await this.frames.truncate(this.#state.wireOffsetVerified);
  }

  /** Appends one verified frame: its wire bytes first, made durable, then its index record. */
  async append(wire: Buffer, frame: Omit<VerifiedFrame, 'raw'>): Promise<void> {
    if (frame.wireStart !== this.#state.wireOffsetVerified || wire.length !== frame.wireEnd - frame.wireStart) {
      throw new RangeError(`frame ${frame.index} spans ${frame.wireStart}..${frame.wireEnd}, the spool ends at ${this.#state.wireOffsetVerified}`);
    }
    // The file is opened to append: a kept part of this frame goes first, and the whole frame is written after.
    await this.dropPartial();
    await writeAll(this.frames, wire);
    await this.frames.datasync();
    const rawEnd = frame.kind === 'end' ? frame.rawOffset : frame.rawOffset + frame.rawLength;
    await writeAll(this.index, encodeRecord(frame.index, frame.wireEnd, rawEnd, frame.kind, frame.chain));
    this.#state = {
      chunkSize: this.identity.chunkSize,
      framesVerified: frame.kind === 'end' ? frame.index : frame.index + 1,
      wireOffsetVerified: frame.wireEnd,
      rawOffset: rawEnd,
      chain: Buffer.from(frame.chain),
      ended: frame.kind === 'end',
    };
  }

  /** Keeps the first `frames` data frames (and never the end frame): bytes from there on are downloaded again. */
  async rewind(frames: number): Promise<void> {
    const keep = Math.min(frames, this.#state.framesVerified);
    await this.index.truncate(keep * RECORD_SIZE);
    await this.index.datasync();
    this.#state = await recover(this.frames, this.index, this.identity.chunkSize);
  }

  async close(): Promise<void> {
    await this.frames.close().catch(() => undefined);
    await this.index.close().catch(() => undefined);
  }

  /** True while no byte of the stream is kept: nothing a later run could resume from. */
  async holdsNothing(): Promise<boolean> {
    return this.#state.wireOffsetVerified === 0 && (await this.frames.stat()).size === 0;
  }

  /** Deletes the spool (after a checked receive, or when it will never be used). */
  async remove(): Promise<void> {
    await this.close();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * All of `bytes`, at the end of a file opened to append. A write may write less than asked (a disk filling up) and
 * say so only in its count: a record must never vouch for bytes that did not reach the file.
 */
async function writeAll(file: fs.FileHandle, bytes: Buffer): Promise<void> {
  for (let at = 0; at < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, at, bytes.length - at);
    if (bytesWritten === 0) throw Object.assign(new Error('no space left on device, write (nothing written)'), { code: 'ENOSPC' });
    at += bytesWritten;
  }
}

/** The state after the index's last whole record; the frames file is cut back to it, or to one frame past it. */
async function recover(frames: fs.FileHandle, index: fs.FileHandle, chunkSize: number): Promise<FrameParserState> {
  const { size } = await index.stat();
  let count = Math.floor(size / RECORD_SIZE);
  const framesSize = (await frames.stat()).size;
  let last: ReturnType<typeof decodeRecord> | null = null;
  // The frames file is synced before each record is written, so it is never shorter than the last record says;
  // walking back anyway costs nothing and never resumes from bytes that are not there.
  while (count > 0) {
    const buf = Buffer.alloc(RECORD_SIZE);
    await index.read(buf, 0, RECORD_SIZE, (count - 1) * RECORD_SIZE);
    last = decodeRecord(buf);
    if (last.wireEnd <= framesSize) break;
    last = null;
    count--;
  }
  if (count * RECORD_SIZE !== size) await index.truncate(count * RECORD_SIZE);
  const wireEnd = last?.wireEnd ?? 0;
  const ended = last?.kind === 'end';
  if (framesSize > wireEnd && (ended || framesSize - wireEnd >= FRAME_HEADER_SIZE + chunkSize)) await frames.truncate(wireEnd);
  if (last === null) return { chunkSize, framesVerified: 0, wireOffsetVerified: 0, rawOffset: 0, chain: CHAIN_ZERO, ended: false };
  return { chunkSize, framesVerified: ended ? last.index : last.index + 1, wireOffsetVerified: wireEnd, rawOffset: last.rawEnd, chain: last.chain, ended };
}

function encodeRecord(index: number, wireEnd: number, rawEnd: number, kind: 'data' | 'end', chain: Buffer): Buffer {
  const b = Buffer.alloc(RECORD_SIZE);
  b.writeBigUInt64BE(BigInt(index), 0);
  b.writeBigUInt64BE(BigInt(wireEnd), 8);
  b.writeBigUInt64BE(BigInt(rawEnd), 16);
  b.writeUInt8(kind === 'end' ? 1 : 0, 24);
  chain.copy(b, 32, 0, HASH_SIZE);
  return b;
}

function decodeRecord(b: Buffer): { index: number; wireEnd: number; rawEnd: number; kind: 'data' | 'end'; chain: Buffer } {
  return {
    index: Number(b.readBigUInt64BE(0)),
    wireEnd: Number(b.readBigUInt64BE(8)),
    rawEnd: Number(b.readBigUInt64BE(16)),
    kind: b.readUInt8(24) === 1 ? 'end' : 'data',
    chain: Buffer.from(b.subarray(32, 32 + HASH_SIZE)),
  };
}

function describe(s: SpoolIdentity): string {
  const whose = s.client === null ? '' : `${s.client}'s `;
  return `${whose}${s.volume}/${s.snapshot} from ${s.parentUuid ?? 'nothing (full)'} in chunks of ${s.chunkSize}`;
}

function sameIdentity(a: SpoolIdentity, b: SpoolIdentity): boolean {
  return (Object.keys(SpoolIdentity.shape) as (keyof SpoolIdentity)[]).every((k) => a[k] === b[k]);
}
