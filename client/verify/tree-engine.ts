/** core/tree-digest on the client: the local snapshot's digest and the comparison (the one file that calls it). */
import { compareTrees, digestTree, type DigestedTree, type TreeComparison, type TreeDigestSource } from '../../core/tree-digest/index.ts';

export interface DigestProgress {
  bytes: number;
  total: number | null;
  entries: number;
}

export function digestLocal(dir: string, options: { reuse?: DigestedTree | null; signal?: AbortSignal; onProgress(p: DigestProgress): void }): Promise<DigestedTree> {
  return digestTree(dir, {
    reuse: options.reuse ?? null,
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (p) => options.onProgress({ bytes: Number(p.bytesDone), total: p.walked ? Number(p.bytesTotal) : null, entries: p.entries }),
  });
}

export function compare(local: TreeDigestSource, remote: TreeDigestSource, limit: number): Promise<TreeComparison> {
  return compareTrees(local, remote, { maxDifferences: limit });
}
