/**
 * Turns the files a walk meets into content digests in the table: reused from a previous digest where the inode is
 * unchanged, shared between the names of one inode, and otherwise hashed on the pool. Small files go in batches (one
 * message for many), a large file in ranges (so that one 100 GB file still uses every core). The walk is held back
 * while too much is in flight, so memory stays bounded whatever the tree.
 */
import { contentDigest, PIECE_SIZE } from './record-digest.ts';
import type { EntryTable } from './entry-table.ts';
import type { HashItem } from './hash-messages.ts';
import type { HashPool } from './hash-pool.ts';
import type { WalkedFile } from './walk.ts';

/** What a previous digest can lend (DigestedTree.reusableContent). */
export interface ContentReuse {
  reusableContent(ino: bigint, size: bigint, ctimeNs: bigint, mtimeNs: bigint): string | null;
}

export interface HashProgress {
  /** Bytes of file content met so far (the total once the walk is done). */
  bytesTotal: bigint;
  /** Bytes hashed, reused or shared so far. */
  bytesDone: bigint;
  /** Bytes whose digest came from the previous digest. */
  bytesReused: bigint;
}

/** A batch is sent when it holds this many files or bytes; a larger file is cut into ranges of RANGE bytes. */
const BATCH_FILES = 128;
const BATCH_BYTES = 8 * PIECE_SIZE;
const RANGE = 64 * PIECE_SIZE;

const EMPTY_CONTENT = contentDigest(0n, new Uint8Array(0));

interface Assembly {
  size: bigint;
  parts: Array<Buffer | undefined>;
  left: number;
}

export class ContentHasher {
  readonly progress: HashProgress = { bytesTotal: 0n, bytesDone: 0n, bytesReused: 0n };
  readonly #table: EntryTable;
  readonly #pool: HashPool;
  readonly #reuse: ContentReuse | null;
  readonly #onProgress: () => void;
  /** Inode (of files with more than one link) -> the first entry that names it. */
  readonly #firstOfInode = new Map<string, number>();
  /** Entries that take their content from another entry of the same inode, filled in at the end. */
  readonly #sharers: Array<[entry: number, first: number]> = [];
  readonly #assembling = new Map<number, Assembly>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #maxInFlight: number;
  #batch: Array<{ item: HashItem; index: number; part: number }> = [];
  #batchBytes = 0;
  #failure: Error | null = null;

  constructor(table: EntryTable, pool: HashPool, reuse: ContentReuse | null, onProgress: () => void) {
    this.#table = table;
    this.#pool = pool;
    this.#reuse = reuse;
    this.#onProgress = onProgress;
    this.#maxInFlight = pool.size * 2;
  }

  async add(file: WalkedFile): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.progress.bytesTotal += file.size;
    if (file.nlink > 1n) {
      const key = `${file.dev}:${file.ino}`;
      const first = this.#firstOfInode.get(key);
      if (first !== undefined) {
        this.#sharers.push([file.index, first]);
        this.#done(file.size);
        return;
      }
      this.#firstOfInode.set(key, file.index);
    }
    if (file.size === 0n) {
      // Nothing to read: the digest of no pieces.
      this.#table.setContent(file.index, EMPTY_CONTENT);
      this.#done(0n);
      return;
    }
    const reused = this.#reuse?.reusableContent(file.ino, file.size, file.ctimeNs, file.mtimeNs) ?? null;
    if (reused !== null) {
      this.#table.setContent(file.index, reused);
      this.progress.bytesReused += file.size;
      this.#done(file.size);
      return;
    }
    const size = Number(file.size);
    const ranges = Math.max(1, Math.ceil(size / RANGE));
    this.#assembling.set(file.index, { size: file.size, parts: new Array<Buffer | undefined>(ranges), left: ranges });
    for (let part = 0; part < ranges; part++) {
      const offset = part * RANGE;
      const item: HashItem = {
        path: file.path,
        ino: file.ino.toString(),
        size: file.size.toString(),
        offset,
        length: Math.min(RANGE, size - offset),
      };
      this.#batch.push({ item, index: file.index, part });
      this.#batchBytes += item.length;
      if (this.#batch.length >= BATCH_FILES || this.#batchBytes >= BATCH_BYTES) await this.#send();
    }
  }

  /** Sends what is left, waits for every job, and fills in the names that share an inode. */
  async finish(): Promise<void> {
    if (this.#batch.length > 0) await this.#send();
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
    if (this.#failure) throw this.#failure;
    for (const [entry, first] of this.#sharers) {
      this.#table.setContent(entry, this.#table.contentOf(first) as string);
    }
  }

  async #send(): Promise<void> {
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const job = this.#pool.hash(batch.map((b) => b.item)).then(
      (digests) => {
        for (const [k, b] of batch.entries()) this.#arrived(b.index, b.part, digests[k] as Buffer, b.item.length);
      },
      (err: unknown) => {
        this.#failure ??= err as Error;
      },
    );
    const tracked = job.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
    while (this.#inFlight.size >= this.#maxInFlight) await Promise.race(this.#inFlight);
    if (this.#failure) throw this.#failure;
  }

  #arrived(index: number, part: number, digests: Buffer, length: number): void {
    const a = this.#assembling.get(index);
    if (a === undefined) return;
    a.parts[part] = digests;
    this.#done(BigInt(length));
    if (--a.left > 0) return;
    this.#assembling.delete(index);
    this.#table.setContent(index, contentDigest(a.size, Buffer.concat(a.parts as Buffer[])));
  }

  #done(bytes: bigint): void {
    this.progress.bytesDone += bytes;
    this.#onProgress();
  }
}
