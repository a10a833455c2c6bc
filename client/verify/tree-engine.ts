/** core/tree-digest on the client: the local snapshot's digest and the comparison (the one file that calls it). */
import { SnapferryError } from '../../core/errors.ts';
import type { TreeComparison, TreeDigestSource } from '../../core/tree-digest/types.ts';

export interface DigestProgress {
  bytes: number;
  total: number | null;
  entries: number;
}

export function digestLocal(_dir: string, _options: { signal?: AbortSignal; onProgress(p: DigestProgress): void }): Promise<TreeDigestSource> {
  return Promise.reject(new SnapferryError('not_implemented', 'core/tree-digest is not merged yet'));
}

export function compare(_local: TreeDigestSource, _remote: TreeDigestSource, _limit: number): Promise<TreeComparison> {
  return Promise.reject(new SnapferryError('not_implemented', 'core/tree-digest is not merged yet'));
}
