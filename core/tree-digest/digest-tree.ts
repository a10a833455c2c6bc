/**
 * digestTree: a directory (a read-only snapshot, or the server's received copy of one) -> its DigestedTree. The walk,
 * the xattrs (one getfattr run) and the hashing (a worker pool) run at the same time; digests are combined once all
 * three are done.
 */
import { ContentHasher } from './content-hasher.ts';
import { DigestedTree } from './digested-tree.ts';
import { EntryTable, NO_ENTRY } from './entry-table.ts';
import { HashPool } from './hash-pool.ts';
import { PathIndex } from './path-index.ts';
import { walkTree } from './walk.ts';
import { readTreeXattrs } from './xattrs.ts';

export interface DigestProgress {
  /** Entries met by the walk so far. */
  entries: number;
  /** False while the walk still runs (bytesTotal still grows). */
  walked: boolean;
  bytesTotal: bigint;
  bytesDone: bigint;
  /** Bytes whose digest came from `reuse`. */
  bytesReused: bigint;
}

export interface DigestOptions {
  /**
   * A previous digest of a parent snapshot of the same subvolume (same filesystem): a file with the same inode
   * number, size, ctime and mtime takes its content digest from it. null (`--read-data`) or absent: hash everything.
   */
  reuse?: DigestedTree | null;
  signal?: AbortSignal;
  /** Called as work is done (often: throttle it for display). */
  onProgress?: (progress: DigestProgress) => void;
  /** Hashing threads; default: the cores there are (at most 16). */
  threads?: number;
}

export async function digestTree(dir: string, options: DigestOptions = {}): Promise<DigestedTree> {
  options.signal?.throwIfAborted();
  const pool = new HashPool(options.threads);
  let entries = 0;
  let walked = false;
  const report = (): void => {
    if (options.onProgress === undefined) return;
    options.onProgress({ entries, walked, ...hasher.progress });
  };
  const table = new EntryTable();
  const hasher = new ContentHasher(table, pool, options.reuse ?? null, () => report());
  const xattrs: Array<{ path: string; digest: string }> = [];
  const abort = new AbortController();
  const onAbort = (): void => {
    abort.abort(options.signal?.reason);
    // Stops the workers mid-file: a digest of 100 GB must not read on for minutes after Ctrl-C.
    void pool.close();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const xattrsDone = readTreeXattrs(dir, (e) => xattrs.push(e), abort.signal);
  // A getfattr that fails (not installed, say) stops the walk at once; its error is thrown where it is awaited.
  const walkStop = new AbortController();
  xattrsDone.catch((err: unknown) => walkStop.abort(err));
  const walkSignal = options.signal === undefined ? walkStop.signal : AbortSignal.any([options.signal, walkStop.signal]);
  try {
    await walkTree(dir, table, {
      signal: walkSignal,
      onEntry: (n) => {
        entries = n;
        // A tree of many small files or directories still moves the progress line while it is walked.
        if (n % 4096 === 0) report();
      },
      onFile: (file) => hasher.add(file),
    });
    walked = true;
    report();
    await Promise.all([hasher.finish(), xattrsDone]);
    options.signal?.throwIfAborted();
    const paths = new PathIndex(table);
    for (const { path, digest } of xattrs) {
      // Paths the walk did not take (inside a nested subvolume or mount) are not part of the tree.
      const i = paths.indexOf(path);
      if (i !== NO_ENTRY) table.xattrs.set(i, digest);
    }
    return new DigestedTree(table);
  } catch (err) {
    abort.abort(err);
    await xattrsDone.catch(() => {});
    throw options.signal?.aborted ? options.signal.reason : err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await pool.close();
  }
}
