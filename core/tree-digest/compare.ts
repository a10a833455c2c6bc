/**
 * Compares two trees through their digests only (pure over two TreeDigestSources; no I/O of its own). The summaries
 * first; where the top digests differ, level by level: for every entry of one level whose digest differs, one
 * records() call per side (what differs of the entry itself) and, for the directories among them, one children()
 * call per side (which children differ). A name on one side only is one difference (missing or extra), not one per
 * entry below it, and an entry whose kind changed is not descended either. So the calls grow with the depth of the
 * differences, and the bytes with their number (and the size of the directories that hold them), not with the data.
 */
import { recordDifferences } from './record-digest.ts';
import type { ChildDigest, EntryKind, TreeComparison, TreeDifference, TreeDigestSource, TreePath } from './types.ts';

export interface CompareOptions {
  /** Stop after this many differences (then `truncated`); default 1000. */
  maxDifferences?: number;
}

/** One path whose digests differ, with its kind on each side (null: absent there). */
interface Differing {
  path: TreePath;
  local: EntryKind | null;
  remote: EntryKind | null;
}

export async function compareTrees(
  local: TreeDigestSource,
  remote: TreeDigestSource,
  options: CompareOptions = {},
): Promise<TreeComparison> {
  const limit = options.maxDifferences ?? 1000;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`maxDifferences must be a whole number >= 1, got ${limit}`);
  let requests = 1;
  const [localSummary, remoteSummary] = await Promise.all([local.summary(), remote.summary()]);
  if (localSummary.digest === remoteSummary.digest) return { equal: true, differences: [], truncated: false, requests };

  const differences: TreeDifference[] = [];
  let level: Differing[] = [{ path: '', local: 'dir', remote: 'dir' }];
  let truncated = false;
  while (level.length > 0 && !truncated) {
    const paths = level.map((d) => d.path);
    const dirs = level.filter((d) => d.local === 'dir' && d.remote === 'dir').map((d) => d.path);
    const [localRecords, remoteRecords, localChildren, remoteChildren] = await Promise.all([
      local.records(paths),
      remote.records(paths),
      dirs.length > 0 ? local.children(dirs) : new Map<TreePath, ChildDigest[]>(),
      dirs.length > 0 ? remote.children(dirs) : new Map<TreePath, ChildDigest[]>(),
    ]);
    requests += dirs.length > 0 ? 2 : 1;

    for (const d of level) {
      const l = localRecords.get(d.path) ?? null;
      const r = remoteRecords.get(d.path) ?? null;
      let differs;
      if (l === null && r === null) continue;
      else if (r === null) differs = ['missing' as const];
      else if (l === null) differs = ['extra' as const];
      else differs = recordDifferences(l, r);
      if (differs.length === 0) continue;
      if (differences.length === limit) {
        truncated = true;
        break;
      }
      differences.push({ path: d.path, differs, local: l, remote: r });
    }

    const next: Differing[] = [];
    for (const dir of dirs) {
      next.push(...differingChildren(dir, localChildren.get(dir) ?? [], remoteChildren.get(dir) ?? []));
    }
    level = next;
  }
  return { equal: false, differences, truncated, requests };
}

/** The children of `dir` whose digests differ or that are on one side only, in name order. */
function differingChildren(dir: TreePath, local: ChildDigest[], remote: ChildDigest[]): Differing[] {
  const join = (name: string): TreePath => (dir === '' ? name : `${dir}/${name}`);
  const remoteByName = new Map(remote.map((c) => [c.name, c]));
  const out: Differing[] = [];
  for (const l of local) {
    const r = remoteByName.get(l.name);
    remoteByName.delete(l.name);
    if (r === undefined) out.push({ path: join(l.name), local: l.kind, remote: null });
    else if (r.digest !== l.digest || r.kind !== l.kind) out.push({ path: join(l.name), local: l.kind, remote: r.kind });
  }
  for (const r of remoteByName.values()) out.push({ path: join(r.name), local: null, remote: r.kind });
  return out;
}
