/**
 * The tree digest on real btrfs (root; loop filesystems): a snapshot sent with `btrfs send | btrfs receive`, full and
 * incremental, digests the same as its source; each kind of difference made by hand in a received copy is found and
 * named, with the bytes that would cross the line counted; the incremental digest (reusing the parent's saved digest)
 * equals a full recomputation after fsstress-style churn, on both sides.
 */
import assert from 'node:assert/strict';
import { chmod, lchown, mkdir, open, rm, symlink, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { execa } from 'execa';
import * as btrfs from '../../core/btrfs/index.ts';
import { compareTrees } from '../../core/tree-digest/compare.ts';
import { digestTree } from '../../core/tree-digest/digest-tree.ts';
import type { DigestedTree } from '../../core/tree-digest/digested-tree.ts';
import { loadTree, saveTree } from '../../core/tree-digest/tree-file.ts';
import type { TreeDigestSource } from '../../core/tree-digest/types.ts';
import { createBtrfs, fillVaried, mutate, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import { churn } from '../fixtures/churn.ts';
import { flatten } from './memory-tree.ts';

/** `btrfs send [-p parent] snapshot | btrfs receive into`. */
async function sendReceive(snapshot: string, into: string, parent?: string): Promise<void> {
  const handle = btrfs.send(snapshot, parent === undefined ? {} : { parent });
  await btrfs.receive(into, handle.stream);
  await handle.done;
}

/** A remote side as the line sees it: every answer serialised as JSON, its bytes counted. */
function overTheLine(source: TreeDigestSource): TreeDigestSource & { bytes: number } {
  const count = <T>(value: T): T => {
    line.bytes += Buffer.byteLength(JSON.stringify(value instanceof Map ? [...value] : value));
    return value;
  };
  const line = {
    bytes: 0,
    summary: async () => count(await source.summary()),
    children: async (d: readonly string[]) => (count(d), count(await source.children(d))),
    records: async (p: readonly string[]) => (count(p), count(await source.records(p))),
  };
  return line;
}

test('full and incremental send | receive digest the same as their snapshots; the incremental digest reuses the parent', rootOnly, async (t) => {
  const fs = await createBtrfs(t);
  const vol = `${fs.mountPoint}/vol`;
  const recv = `${fs.mountPoint}/recv`;
  await btrfs.createSubvolume(vol);
  await mkdir(recv);
  await fillVaried(vol, { seed: 18, sizeMB: 8 });
  // A nested subvolume: a snapshot holds an empty placeholder for it, which send does not carry.
  await btrfs.createSubvolume(`${vol}/nested`);
  await writeFile(`${vol}/nested/inside`, 'not in any snapshot of vol');
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  await sendReceive(`${fs.mountPoint}/s1`, recv);

  const s1 = await digestTree(`${fs.mountPoint}/s1`);
  const r1 = await digestTree(`${recv}/s1`);
  assert.equal((await s1.records(['nested'])).size, 0, 'the nested placeholder is left out');
  assert.deepEqual(await compareTrees(s1, r1), { equal: true, differences: [], truncated: false, requests: 1 });
  assert.equal(r1.digest, s1.digest);
  assert.ok(s1.entries > 100 && s1.bytes > 8_000_000n, `${s1.entries} entries, ${s1.bytes} bytes`);

  const saved = `${fs.mountPoint}/digests`;
  await mkdir(saved);
  await saveTree(s1, `${saved}/s1`);
  await saveTree(r1, `${saved}/r1`);

  await mutate(vol, 1);
  await snapshotReadonly(vol, `${fs.mountPoint}/s2`);
  await sendReceive(`${fs.mountPoint}/s2`, recv, `${fs.mountPoint}/s1`);
  let reused = 0n;
  const s2 = await digestTree(`${fs.mountPoint}/s2`, { reuse: await loadTree(`${saved}/s1`), onProgress: (p) => (reused = p.bytesReused) });
  const r2 = await digestTree(`${recv}/s2`, { reuse: await loadTree(`${saved}/r1`) });
  assert.ok(reused > s2.bytes / 2n, `reused ${reused} of ${s2.bytes} bytes`);
  const line = overTheLine(r2);
  assert.deepEqual(await compareTrees(s2, line), { equal: true, differences: [], truncated: false, requests: 1 });
  assert.ok(line.bytes < 200, `an identical tree costs ${line.bytes} bytes on the line`);
  // The incremental digests are the full ones.
  assert.equal(s2.digest, (await digestTree(`${fs.mountPoint}/s2`, { reuse: null })).digest);
  assert.equal(r2.digest, (await digestTree(`${recv}/s2`, { reuse: null })).digest);
  assert.notEqual(s2.digest, s1.digest);
});

test('each kind of difference in a received copy is found and named, with few bytes on the line', rootOnly, async (t) => {
  const fs = await createBtrfs(t);
  const vol = `${fs.mountPoint}/vol`;
  const recv = `${fs.mountPoint}/recv`;
  await btrfs.createSubvolume(vol);
  await mkdir(recv);
  await fillVaried(vol, { seed: 19, sizeMB: 4 });
  const big = Buffer.alloc(24 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
  await writeFile(`${vol}/large.bin`, big);
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  await sendReceive(`${fs.mountPoint}/s1`, recv);
  // A writable copy of the received snapshot, changed by hand.
  const copy = `${fs.mountPoint}/copy`;
  await btrfs.snapshot(`${recv}/s1`, copy);

  const h = await open(`${copy}/large.bin`, 'r+');
  await h.write(Buffer.from([0xee]), 0, 1, 17 * 1024 * 1024 + 3);
  await h.close();
  await chmod(`${copy}/text/t-000.txt`, 0o644);
  await lchown(`${copy}/random/r-001.bin`, 4321, 5678);
  await chmod(`${copy}/random/r-001.bin`, 0o4755); // chown clears setuid; put it back, so only the owner differs
  await execa('setfattr', ['-n', 'user.large', '-v', '0x00', `${copy}/random/r-000.bin`]);
  await rm(`${copy}/names/-leading-dash`);
  await writeFile(`${copy}/small/extra-file`, 'not in the snapshot');
  await execa('cp', ['-a', `${copy}/hard/b`, `${copy}/hard/b.new`]);
  await execa('mv', [`${copy}/hard/b.new`, `${copy}/hard/b`]);
  await rm(`${copy}/links/relative`);
  await symlink('../text/t-001.txt', `${copy}/links/relative`);
  await lchown(`${copy}/links/relative`, 1234, 1234);
  await rm(`${copy}/special/char-null`);
  await execa('mknod', ['-m', '0600', `${copy}/special/char-null`, 'c', '1', '5']);
  await rm(`${copy}/empty`, { recursive: true });

  const local = await digestTree(`${fs.mountPoint}/s1`);
  const line = overTheLine(await digestTree(copy));
  const result = await compareTrees(local, line);
  const found = new Map(result.differences.map((d) => [d.path, d.differs.filter((k) => k !== 'mtime')]));
  const expected: Record<string, string[]> = {
    'large.bin': ['content'],
    'text/t-000.txt': ['mode'],
    'random/r-001.bin': ['owner'],
    'random/r-000.bin': ['xattrs'],
    'names/-leading-dash': ['missing'],
    'small/extra-file': ['extra'],
    'hard/b': ['link'],
    'links/relative': ['target'],
    'special/char-null': ['rdev'],
    empty: ['missing'],
  };
  for (const [p, differs] of Object.entries(expected)) assert.deepEqual(found.get(p), differs, `${p}: ${JSON.stringify([...found])}`);
  // Anything else is the mtime of a directory a name was added to or removed from.
  for (const d of result.differences) {
    if (!(d.path in expected)) assert.deepEqual([d.path, d.differs], [d.path, ['mtime']]);
  }
  assert.equal(result.truncated, false);
  assert.equal(result.differences.length, Object.keys(expected).length + result.differences.filter((d) => !(d.path in expected)).length);
  // Requests grow with depth (at most 3 levels here: 1 + 2 per level), bytes with the differences and their directories.
  assert.ok(result.requests <= 1 + 2 * 4, `${result.requests} requests`);
  assert.ok(line.bytes < 120_000, `${line.bytes} bytes on the line for ${result.differences.length} differences`);
  t.diagnostic(`${result.differences.length} differences, ${result.requests} requests, ${line.bytes} bytes on the line`);
});

test('after fsstress-style churn, the incremental digest equals a full one, on the sender and on the receiver', rootOnly, async (t) => {
  const fs = await createBtrfs(t);
  const vol = `${fs.mountPoint}/vol`;
  const recv = `${fs.mountPoint}/recv`;
  await btrfs.createSubvolume(vol);
  await mkdir(recv);
  await fillVaried(vol, { seed: 20, sizeMB: 4 });
  await snapshotReadonly(vol, `${fs.mountPoint}/s0`);
  await sendReceive(`${fs.mountPoint}/s0`, recv);
  let sent: DigestedTree = await digestTree(`${fs.mountPoint}/s0`);
  let received: DigestedTree = await digestTree(`${recv}/s0`);
  const file = `${fs.mountPoint}/digest`;
  for (let round = 1; round <= 3; round++) {
    await churn(vol, { seed: round, operations: 250 });
    const name = `s${round}`;
    await snapshotReadonly(vol, `${fs.mountPoint}/${name}`);
    await sendReceive(`${fs.mountPoint}/${name}`, recv, `${fs.mountPoint}/s${round - 1}`);
    await saveTree(sent, file);
    const incremental = await digestTree(`${fs.mountPoint}/${name}`, { reuse: await loadTree(file) });
    const full = await digestTree(`${fs.mountPoint}/${name}`, { reuse: null });
    assert.deepEqual(flatten(incremental), flatten(full), `round ${round}: sender`);
    assert.equal(incremental.digest, full.digest);
    const receivedNow = await digestTree(`${recv}/${name}`, { reuse: received });
    assert.deepEqual(await compareTrees(full, receivedNow), { equal: true, differences: [], truncated: false, requests: 1 }, `round ${round}: receiver`);
    assert.equal(receivedNow.digest, (await digestTree(`${recv}/${name}`, { reuse: null })).digest);
    sent = incremental;
    received = receivedNow;
  }
});
