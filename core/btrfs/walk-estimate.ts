/**
 * How long a full send stream will be, from a walk of the snapshot's tree (`find`, one lstat per entry) instead of
 * `btrfs send --no-data`. The no-data send costs about a third of the real send's kernel time (it walks every
 * extent's back references looking for clone sources, as the real send does again): 0.5-0.9 CPU s per GB of a
 * 1 GB tree of 21,000 files, the client's largest cost after the send itself (issue 22, docs/performance.md). The
 * walk costs a tenth of that.
 *
 * A full send is each inode made under a temporary name, renamed into place, its data in WRITEs of the stream
 * version's write size, then its owner, mode and times (fs/btrfs/send.c); every command names the inode's path.
 * So the stream's length follows from each entry's type, path, size and allocated blocks. What the walk cannot see:
 * - data shared within the snapshot (reflinks: `cp` makes them by default on btrfs), which the send carries once
 *   and then as CLONE commands, so the estimate counts it again for each copy: it runs over, never under;
 * - preallocated extents, which count in a file's blocks but are not sent (over again);
 * - xattrs (a few dozen bytes each), and the temporary names' generation number (assumed GENERATION_DIGITS long).
 * Everything else is within a few bytes per inode (test/btrfs/estimate.test.ts against real streams).
 * An incremental send's length depends on what changed, which only the kernel's comparison knows: estimate.ts.
 */
import path from 'node:path';
import { sendWriteSize, type SendEstimate } from './estimate.ts';
import { readStdout, startTool } from './run.ts';
import { SEND_COMMAND_HEADER_LENGTH as CMD, SEND_STREAM_HEADER_LENGTH, SEND_TLV_HEADER_LENGTH as TLV } from '../wire/sendstream-format.ts';

/** One entry of the walk: what `find -printf '%i %n %y %s %b %P\0'` prints, the path by its length alone. */
export interface WalkEntry {
  ino: number;
  links: number;
  /** find's %y: f d l p s c b. */
  type: string;
  /** st_size: a symlink's is its target's length. */
  size: number;
  /** st_blocks (512-byte units). */
  blocks: number;
  /** Bytes of the path below the snapshot; 0 for its root. */
  pathBytes: number;
}

/** Digits of the generation in a temporary name (`o<ino>-<generation>-0`): a filesystem some months old. */
export const GENERATION_DIGITS = 6;

const U64 = TLV + 8;
const TIMESPEC = TLV + 12;
const UUID = TLV + 16;

/** Tallies a full send's length from the walk's entries, in any order. */
export class FullSendTally {
  readonly #version: number;
  readonly #seen = new Set<number>();
  #bytes: number;
  #data = 0;
  #writes = 0;

  constructor(snapshotName: string, version: number) {
    this.#version = version;
    const name = Buffer.byteLength(snapshotName);
    // Stream header, SUBVOL (path, uuid, ctransid), END.
    this.#bytes = SEND_STREAM_HEADER_LENGTH + CMD + TLV + name + UUID + U64 + CMD;
  }

  entry(e: WalkEntry): void {
    const p = e.pathBytes;
    if (p === 0) {
      // The snapshot's own root: CHOWN, CHMOD, UTIMES of the empty path.
      this.#bytes += 3 * (CMD + TLV) + 2 * U64 + U64 + 3 * TIMESPEC;
      return;
    }
    if (e.links > 1 && e.type !== 'd') {
      if (this.#seen.has(e.ino)) {
        // Another name of an inode already made: LINK (this path, the first; taken as long as this one).
        this.#bytes += CMD + 2 * (TLV + p);
        return;
      }
      this.#seen.add(e.ino);
    }
    const orphan = 4 + String(e.ino).length + GENERATION_DIGITS;
    // Made under its temporary name (PATH, INO), renamed (PATH, PATH_TO), CHOWN (uid, gid), UTIMES (three times).
    let bytes = CMD + TLV + orphan + U64 + (CMD + 2 * TLV + orphan + p) + (CMD + TLV + p + 2 * U64) + (CMD + TLV + p + 3 * TIMESPEC);
    if (e.type === 'l') bytes += TLV + e.size; // SYMLINK's PATH_LINK; a symlink gets no CHMOD
    else bytes += CMD + TLV + p + U64; // CHMOD
    if (e.type === 'p' || e.type === 's' || e.type === 'c' || e.type === 'b') bytes += 2 * U64; // MODE, RDEV
    if (e.type === 'f') bytes += this.#fileData(e, p);
    this.#bytes += bytes;
  }

  /** A regular file's WRITEs (holes are not sent), and a TRUNCATE where it has holes. */
  #fileData(e: WalkEntry, p: number): number {
    const allocated = e.blocks * 512;
    const data = allocated >= e.size ? e.size : allocated;
    const writes = Math.ceil(data / sendWriteSize(this.#version));
    this.#data += data;
    this.#writes += writes;
    // Each WRITE: PATH, FILE_OFFSET, DATA (whose header is its type alone from version 2 on).
    const dataHeader = this.#version === 1 ? TLV : 2;
    const truncate = data < e.size ? CMD + TLV + p + U64 : 0;
    return data + writes * (CMD + TLV + p + U64 + dataHeader) + truncate;
  }

  result(): SendEstimate {
    return { rawBytes: this.#bytes, noDataBytes: 0, dataBytes: this.#data, writes: this.#writes, version: this.#version };
  }
}

const FIELDS = 5;
const SPACE = 0x20;

/**
 * Cuts find's NUL-ended records as they arrive (a record may span chunks). Bytes, not text: a name need not be
 * UTF-8, and only its length counts.
 */
export class WalkRecords {
  #rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onEntry: (e: WalkEntry) => void): void {
    const data = this.#rest.length === 0 ? chunk : Buffer.concat([this.#rest, chunk]);
    let start = 0;
    for (let end = data.indexOf(0, start); end >= 0; end = data.indexOf(0, start)) {
      onEntry(parseRecord(data.subarray(start, end)));
      start = end + 1;
    }
    this.#rest = Buffer.from(data.subarray(start));
  }

  end(): void {
    if (this.#rest.length > 0) throw new Error(`find's output ends in the middle of an entry: ${describe(this.#rest)}`);
  }
}

function parseRecord(record: Buffer): WalkEntry {
  // Five numbers and a type, then the path, which may hold spaces (and anything but NUL).
  const fields: string[] = [];
  let at = 0;
  for (let i = 0; i < FIELDS; i++) {
    const space = record.indexOf(SPACE, at);
    if (space < 0) throw new Error(`find printed an entry without its fields: ${describe(record)}`);
    fields.push(record.toString('latin1', at, space));
    at = space + 1;
  }
  const [type = ''] = fields.splice(2, 1);
  const [ino = -1, links = -1, size = -1, blocks = -1] = fields.map(Number);
  if (![ino, links, size, blocks].every((n) => Number.isSafeInteger(n) && n >= 0) || !/^[fdlpscbD]$/.test(type)) {
    throw new Error(`find printed an entry that does not parse: ${describe(record)}`);
  }
  return { ino, links, type, size, blocks, pathBytes: record.length - at };
}

function describe(bytes: Buffer): string {
  return JSON.stringify(bytes.subarray(0, 80).toString('latin1'));
}

export interface WalkEstimateOptions {
  /** The send stream's version (it decides the write size); 1 when btrfs-progs' default is taken. */
  version: number;
  signal?: AbortSignal;
}

/**
 * Walks a snapshot with `find` (-xdev: a nested subvolume is sent as an empty directory, so the walk does not enter
 * it) and tallies the full send's length. Rejects with BtrfsCommandError when find fails or is cancelled.
 */
export async function estimateFullSend(snapshot: string, options: WalkEstimateOptions): Promise<SendEstimate> {
  // Absolute, so that a path starting with '-' is never read as one of find's expressions.
  const root = path.resolve(snapshot);
  const proc = startTool('find', [root, '-xdev', '-printf', '%i %n %y %s %b %P\\0'], { stdout: 'stream', ...(options.signal ? { signal: options.signal } : {}) });
  const tally = new FullSendTally(path.basename(root), options.version);
  const records = new WalkRecords();
  await readStdout(proc, (chunk) => records.push(chunk, (e) => tally.entry(e)), options.signal);
  records.end();
  return tally.result();
}
