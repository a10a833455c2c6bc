/**
 * In-memory trees for the pure tests of compareTrees: a nested object made into a DigestedTree through the same
 * EntryTable and digests digestTree uses, and the naive full comparison that compareTrees must agree with.
 */
import { EntryTable, NO_ENTRY } from '../../core/tree-digest/entry-table.ts';
import { DigestedTree } from '../../core/tree-digest/digested-tree.ts';
import { recordDifferences } from '../../core/tree-digest/record-digest.ts';
import type { EntryKind, EntryRecord, TreeDifference } from '../../core/tree-digest/types.ts';
import { createHash } from 'node:crypto';

export type MemNode =
  | { kind: 'dir'; mode: number; uid: number; xattr: number | null; children: Record<string, MemNode> }
  | { kind: 'file'; mode: number; uid: number; xattr: number | null; content: number; size: number; selfLink: boolean }
  | { kind: 'symlink' | 'fifo' | 'chardev'; mode: number; uid: number; xattr: number | null; value: number };

const hex = (v: number | string): string => createHash('sha256').update(String(v)).digest('hex');

export function buildTree(top: MemNode & { kind: 'dir' }): DigestedTree {
  const table = new EntryTable();
  const add = (parent: number, name: string, node: MemNode): void => {
    const kind: EntryKind = node.kind;
    const i = table.add({
      parent,
      name,
      kind,
      mode: node.mode,
      uid: node.uid,
      gid: 0,
      size: node.kind === 'file' ? BigInt(node.size) : 0n,
      mtimeNs: 1_600_000_000_000_000_000n,
      ctimeNs: 0n,
      ino: BigInt(table.count + 256),
      rdev: node.kind === 'chardev' ? `1:${node.value}` : null,
      target: node.kind === 'symlink' ? `target-${node.value}` : null,
    });
    if (node.xattr !== null) table.xattrs.set(i, hex(`x${node.xattr}`));
    if (node.kind === 'file') {
      table.setContent(i, hex(node.content));
      if (node.selfLink) table.link.set(i, i);
    }
    if (node.kind === 'dir') {
      for (const name of Object.keys(node.children).sort()) add(i, name, node.children[name] as MemNode);
    }
  };
  add(NO_ENTRY, '', top);
  return new DigestedTree(table);
}

/** Every path and record of a tree. */
export function flatten(tree: DigestedTree): Map<string, EntryRecord> {
  const out = new Map<string, EntryRecord>();
  for (let i = 0; i < tree.entries; i++) out.set(tree.table.pathOf(i), tree.recordAt(i));
  return out;
}

/**
 * The full comparison compareTrees must agree with: every path of either tree whose parent is a directory on both
 * sides (the top always counts) and whose records differ, or that is on one side only.
 */
export function naiveDifferences(local: DigestedTree, remote: DigestedTree): TreeDifference[] {
  const l = flatten(local);
  const r = flatten(remote);
  const out: TreeDifference[] = [];
  for (const p of [...new Set([...l.keys(), ...r.keys()])].sort()) {
    if (p !== '') {
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (l.get(parent)?.kind !== 'dir' || r.get(parent)?.kind !== 'dir') continue;
    }
    const a = l.get(p) ?? null;
    const b = r.get(p) ?? null;
    const differs = a === null ? ['extra' as const] : b === null ? ['missing' as const] : recordDifferences(a, b);
    if (differs.length > 0) out.push({ path: p, differs, local: a, remote: b });
  }
  return out;
}
