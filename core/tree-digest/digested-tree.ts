/**
 * A digested tree in memory: the entry table with every digest computed bottom-up, answering the questions of a
 * comparison (TreeDigestSource) for the side that holds it. Both the client (its snapshot) and the server (its copy)
 * hold one; digest-tree.ts builds it from a directory, tree-file.ts from a saved file.
 */
import { entryDigest, formatMtime } from './record-digest.ts';
import { NO_ENTRY } from './entry-table.ts';
import type { EntryTable } from './entry-table.ts';
import { PathIndex } from './path-index.ts';
import type { ChildDigest, EntryRecord, TreeDigestSource, TreePath, TreeSummary } from './types.ts';

export class DigestedTree implements TreeDigestSource {
  readonly table: EntryTable;
  readonly bytes: bigint;
  readonly #paths: PathIndex;
  #byInode: Int32Array | null = null;

  /** Takes a complete table (every file's content digest set) and computes the entry digests. */
  constructor(table: EntryTable) {
    if (table.count === 0 || table.kindOf(0) !== 'dir') throw new RangeError('a digested tree has a directory at its top');
    this.table = table;
    this.#paths = new PathIndex(table);
    let bytes = 0n;
    for (let i = table.count - 1; i >= 0; i--) {
      if (table.kindOf(i) === 'file') {
        if (table.hasContent[i] !== 1) throw new RangeError(`no content digest for ${JSON.stringify(table.pathOf(i))}`);
        bytes += table.size[i] as bigint;
      }
      table.setDigest(i, entryDigest(this.recordAt(i), this.#childDigests(i)));
    }
    this.bytes = bytes;
  }

  get entries(): number {
    return this.table.count;
  }

  get digest(): string {
    return this.table.digestOf(0);
  }

  summary(): Promise<TreeSummary> {
    return Promise.resolve({ digest: this.digest, entries: this.entries, bytes: this.bytes.toString() });
  }

  children(dirs: readonly TreePath[]): Promise<Map<TreePath, ChildDigest[]>> {
    const out = new Map<TreePath, ChildDigest[]>();
    for (const dir of dirs) {
      const i = this.indexOf(dir);
      if (i !== NO_ENTRY && this.table.kindOf(i) === 'dir') out.set(dir, [...this.#childDigests(i)]);
    }
    return Promise.resolve(out);
  }

  records(paths: readonly TreePath[]): Promise<Map<TreePath, EntryRecord>> {
    const out = new Map<TreePath, EntryRecord>();
    for (const p of paths) {
      const i = this.indexOf(p);
      if (i !== NO_ENTRY) out.set(p, this.recordAt(i));
    }
    return Promise.resolve(out);
  }

  recordAt(i: number): EntryRecord {
    const t = this.table;
    const kind = t.kindOf(i);
    const link = t.link.get(i);
    return {
      kind,
      mode: t.mode[i] as number,
      uid: t.uid[i] as number,
      gid: t.gid[i] as number,
      size: kind === 'file' ? (t.size[i] as bigint).toString() : null,
      // The top's mtime is left out: an incremental receive can leave it at the time of the receive.
      mtime: i === 0 ? null : formatMtime(t.mtimeNs[i] as bigint),
      rdev: t.rdev.get(i) ?? null,
      target: t.target.get(i) ?? null,
      xattrs: t.xattrs.get(i) ?? null,
      content: t.contentOf(i),
      link: link === undefined ? null : t.pathOf(link),
    };
  }

  /** The index of a path, or NO_ENTRY. */
  indexOf(p: TreePath): number {
    return this.#paths.indexOf(p);
  }

  /**
   * The content digest a previous digest of this inode can lend: same inode number, size, ctime and mtime. A file
   * written in place changes its mtime and ctime; one replaced has a new ctime (which no one can set by hand).
   */
  reusableContent(ino: bigint, size: bigint, ctimeNs: bigint, mtimeNs: bigint): string | null {
    const t = this.table;
    const byInode = (this.#byInode ??= this.#inodeIndex());
    let lo = 0;
    let hi = byInode.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((t.ino[byInode[mid] as number] as bigint) < ino) lo = mid + 1;
      else hi = mid;
    }
    if (lo === byInode.length) return null;
    const i = byInode[lo] as number;
    if (t.ino[i] !== ino || t.size[i] !== size || t.ctimeNs[i] !== ctimeNs || t.mtimeNs[i] !== mtimeNs) return null;
    return t.contentOf(i);
  }

  #inodeIndex(): Int32Array {
    const t = this.table;
    const files: number[] = [];
    for (let i = 0; i < t.count; i++) if (t.kindOf(i) === 'file' && t.hasContent[i] === 1) files.push(i);
    files.sort((a, b) => {
      const x = t.ino[a] as bigint;
      const y = t.ino[b] as bigint;
      return x < y ? -1 : x > y ? 1 : 0;
    });
    return Int32Array.from(files);
  }

  *#childDigests(i: number): Generator<ChildDigest> {
    const t = this.table;
    for (const c of t.childrenOf(i)) yield { name: t.names[c] as string, kind: t.kindOf(c), digest: t.digestOf(c) };
  }
}
