/**
 * What verify needs of core/tree-digest: digest a tree (reusing an earlier digest for what did not change), and keep
 * a digest on disk. The jobs (server/verify/jobs.ts) see only this interface, so their limits and states are tested
 * with a fake, and core/tree-digest is called from this one file.
 */
import type { TreeDigestSource } from '../../core/tree-digest/types.ts';

export interface DigestProgress {
  /** Bytes of file content hashed or taken over from the earlier digest. */
  bytes: number;
  /** All the content's bytes, once known; null before. */
  total: number | null;
  entries: number;
}

export interface DigestOptions<T> {
  /** An earlier digest of this tree or of its parent: files whose inode, size, ctime and mtime match are not read. */
  previous: T | null;
  signal: AbortSignal;
  onProgress(progress: DigestProgress): void;
}

export interface DigestEngine<T extends TreeDigestSource = TreeDigestSource> {
  digest(dir: string, options: DigestOptions<T>): Promise<T>;
  /** The digest saved at `file`, or null when there is none (or it cannot be read: it is computed again then). */
  load(file: string): Promise<T | null>;
  save(tree: T, file: string): Promise<void>;
}
