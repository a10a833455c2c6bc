/**
 * The tree digest's speed (issue 18), on the bench's data snapshots, from the page cache (each tree is read once
 * first), against `cat` of the same files:
 *   find s1 -type f -exec cat {} + > /dev/null       the baseline: reading every file
 *   digestTree(s1)                                    walk, xattrs, and every byte hashed on every core
 *   digestTree(s2, { reuse: s1 })                     the daily incremental: only what changed is read
 * and the bytes that cross the line to verify an identical tree (compareTrees over JSON, as the client asks).
 */
import { compareTrees } from '../../core/tree-digest/compare.ts';
import { digestTree } from '../../core/tree-digest/digest-tree.ts';
import type { TreeDigestSource } from '../../core/tree-digest/types.ts';
import { mbps, timed, timedShell } from './measure.ts';
import type { World } from './world.ts';

export interface DigestBenchResult {
  bytes: number;
  entries: number;
  catMBps: number;
  digestMBps: number;
  /** The incremental digest of s2 reusing s1, against a full digest of s2. */
  incrementalSeconds: number;
  fullSeconds: number;
  identicalLineBytes: number;
}

const CAT = 'find "$1" -type f -exec cat {} + > /dev/null';

export async function runDigest(world: World, say: (line: string) => void): Promise<DigestBenchResult> {
  const s1 = world.full.snapshot;
  const s2 = world.incremental.snapshot;
  say('digest: cat of s1 (twice: the first fills the page cache), then digestTree');
  await timedShell(CAT, [s1]);
  const cat = await timedShell(CAT, [s1]);
  const full1 = await timed(() => digestTree(s1));
  const bytes = Number(full1.value.bytes);

  say('digest: s2 incremental (reusing s1) and full');
  await timedShell(CAT, [s2]);
  const incremental = await timed(() => digestTree(s2, { reuse: full1.value }));
  const full2 = await timed(() => digestTree(s2, { reuse: null }));
  if (incremental.value.digest !== full2.value.digest) throw new Error('the incremental digest of s2 differs from its full digest');

  let lineBytes = 0;
  const count = <T>(v: T): T => ((lineBytes += Buffer.byteLength(JSON.stringify(v instanceof Map ? [...v] : v))), v);
  const remote = full2.value;
  const line: TreeDigestSource = {
    summary: async () => count(await remote.summary()),
    children: async (d) => count(await remote.children(count(d))),
    records: async (p) => count(await remote.records(count(p))),
  };
  const same = await compareTrees(incremental.value, line);
  if (!same.equal) throw new Error('an identical tree compared unequal');
  return {
    bytes,
    entries: full1.value.entries,
    catMBps: mbps(bytes, cat.seconds),
    digestMBps: mbps(bytes, full1.seconds),
    incrementalSeconds: incremental.seconds,
    fullSeconds: full2.seconds,
    identicalLineBytes: lineBytes,
  };
}
