/**
 * compareTrees against the naive full comparison of two in-memory trees (memory-tree.ts): generated trees with
 * random mutations must give the same set of differences, with calls bounded by the depth, and a limit that
 * truncates honestly.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compareTrees } from '../../core/tree-digest/compare.ts';
import type { TreeDigestSource, TreeDifference } from '../../core/tree-digest/types.ts';
import { buildTree, naiveDifferences } from './memory-tree.ts';
import type { MemNode } from './memory-tree.ts';

type Dir = MemNode & { kind: 'dir' };
const names = fc.constantFrom('a', 'b', 'c', 'ü', '%41', 'long name');
const attrs = { mode: fc.constantFrom(0o644, 0o755, 0o4755), uid: fc.constantFrom(0, 1234), xattr: fc.option(fc.nat(2)) };

const { tree } = fc.letrec<{ tree: Dir; node: MemNode }>((tie) => ({
  tree: fc.record({ kind: fc.constant('dir' as const), ...attrs, children: fc.dictionary(names, tie('node'), { maxKeys: 4 }) }),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ kind: fc.constant('file' as const), ...attrs, content: fc.nat(3), size: fc.nat(3), selfLink: fc.boolean() }),
    fc.record({ kind: fc.constantFrom('symlink' as const, 'fifo' as const, 'chardev' as const), ...attrs, value: fc.nat(2) }),
    tie('tree'),
  ),
}));

interface Mutation {
  at: number;
  op: 'mode' | 'uid' | 'xattr' | 'content' | 'size' | 'value' | 'link' | 'delete' | 'replace' | 'add';
  with: MemNode;
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('mode', 'uid', 'xattr', 'content', 'size', 'value', 'link', 'delete', 'replace', 'add'),
  with: fc.oneof(tree, fc.record({ kind: fc.constant('file' as const), ...attrs, content: fc.nat(3), size: fc.nat(3), selfLink: fc.boolean() })),
});

function mutate(top: Dir, mutations: Mutation[]): Dir {
  const copy = structuredClone(top);
  for (const m of mutations) {
    const places: Array<{ parent: Dir | null; name: string; node: MemNode }> = [];
    const visit = (parent: Dir | null, name: string, node: MemNode): void => {
      places.push({ parent, name, node });
      if (node.kind === 'dir') for (const [n, c] of Object.entries(node.children)) visit(node, n, c);
    };
    visit(null, '', copy);
    const { parent, name, node } = places[m.at % places.length]!;
    switch (m.op) {
      case 'mode': node.mode ^= 0o100; break;
      case 'uid': node.uid += 1; break;
      case 'xattr': node.xattr = node.xattr === null ? 7 : null; break;
      case 'content': if (node.kind === 'file') node.content += 1; break;
      case 'size': if (node.kind === 'file') node.size += 1; break;
      case 'value': if ('value' in node) node.value += 1; break;
      case 'link': if (node.kind === 'file') node.selfLink = !node.selfLink; break;
      case 'delete': if (parent !== null) delete parent.children[name]; break;
      case 'replace': if (parent !== null) parent.children[name] = structuredClone(m.with); break;
      case 'add': if (node.kind === 'dir') node.children[`new-${m.at % 3}`] = structuredClone(m.with); break;
    }
  }
  return copy;
}

/** Counts the calls made to a source, as the client counts round trips. */
function counted(source: TreeDigestSource): TreeDigestSource & { calls: number } {
  const c = {
    calls: 0,
    summary: () => (c.calls++, source.summary()),
    children: (d: readonly string[]) => (c.calls++, source.children(d)),
    records: (p: readonly string[]) => (c.calls++, source.records(p)),
  };
  return c;
}

const key = (d: TreeDifference): string => `${d.path}: ${d.differs.join(',')}`;
const depthOf = (differences: TreeDifference[]): number => Math.max(0, ...differences.map((d) => (d.path === '' ? 0 : d.path.split('/').length)));

test('compareTrees finds the same differences as a full comparison, on generated trees with random mutations', async () => {
  await fc.assert(
    fc.asyncProperty(tree, fc.array(mutation, { maxLength: 6 }), async (a, mutations) => {
      const local = buildTree(a);
      const remote = counted(buildTree(mutate(a, mutations)));
      const expected = naiveDifferences(local, buildTree(mutate(a, mutations)));
      const result = await compareTrees(local, remote, { maxDifferences: 10_000 });
      assert.deepEqual(result.differences.map(key).sort(), expected.map(key).sort());
      assert.deepEqual(
        new Map(result.differences.map((d) => [d.path, [d.local, d.remote]])),
        new Map(expected.map((d) => [d.path, [d.local, d.remote]])),
      );
      assert.equal(result.equal, expected.length === 0);
      assert.equal(result.truncated, false);
      assert.equal(result.requests, remote.calls);
      // A summary, then per level one records() call and (where directories differ) one children() call.
      if (result.equal) assert.equal(result.requests, 1);
      else assert.ok(result.requests <= 1 + 2 * (depthOf(expected) + 1), `${result.requests} requests for depth ${depthOf(expected)}`);
    }),
    { numRuns: 400 },
  );
});

test('compareTrees on two unrelated generated trees agrees with a full comparison', async () => {
  await fc.assert(
    fc.asyncProperty(tree, tree, async (a, b) => {
      const local = buildTree(a);
      const remote = buildTree(b);
      const result = await compareTrees(local, remote, { maxDifferences: 10_000 });
      assert.deepEqual(result.differences.map(key).sort(), naiveDifferences(local, remote).map(key).sort());
    }),
    { numRuns: 300 },
  );
});

test('a limit stops the list there and says so', async () => {
  await fc.assert(
    fc.asyncProperty(tree, tree, fc.integer({ min: 1, max: 5 }), async (a, b, limit) => {
      const local = buildTree(a);
      const remote = buildTree(b);
      const all = new Set(naiveDifferences(local, remote).map(key));
      const result = await compareTrees(local, remote, { maxDifferences: limit });
      assert.ok(result.differences.length <= limit);
      for (const d of result.differences) assert.ok(all.has(key(d)), key(d));
      assert.equal(result.truncated, all.size > limit);
      if (!result.truncated) assert.equal(result.differences.length, all.size);
    }),
    { numRuns: 300 },
  );
});

test('a missing directory is one difference, however much is inside it', async () => {
  const big: Dir = { kind: 'dir', mode: 0o755, uid: 0, xattr: null, children: {} };
  for (let i = 0; i < 50; i++) big.children[`f${i}`] = { kind: 'file', mode: 0o644, uid: 0, xattr: null, content: i, size: i, selfLink: false };
  const withDir: Dir = { kind: 'dir', mode: 0o755, uid: 0, xattr: null, children: { big, other: { kind: 'fifo', mode: 0o600, uid: 0, xattr: null, value: 0 } } };
  const without: Dir = { ...withDir, children: { other: withDir.children.other! } };
  const result = await compareTrees(buildTree(withDir), buildTree(without));
  assert.deepEqual(result.differences.map(key), ['big: missing']);
  const reverse = await compareTrees(buildTree(without), buildTree(withDir));
  assert.deepEqual(reverse.differences.map(key), ['big: extra']);
  assert.equal(reverse.differences[0]?.remote?.kind, 'dir');
});

test('identical trees cost one call', async () => {
  const a: Dir = { kind: 'dir', mode: 0o755, uid: 0, xattr: 1, children: { x: { kind: 'symlink', mode: 0o777, uid: 0, xattr: null, value: 1 } } };
  const remote = counted(buildTree(a));
  const result = await compareTrees(buildTree(a), remote);
  assert.deepEqual(result, { equal: true, differences: [], truncated: false, requests: 1 });
  assert.equal(remote.calls, 1);
});
