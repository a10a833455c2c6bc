/**
 * A digested tree saved and loaded, and the incremental digest that reuses it: unchanged inodes lend their content
 * digest, changed ones are read again, `reuse: null` reads everything.
 */
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { digestTree } from '../../core/tree-digest/digest-tree.ts';
import type { DigestProgress } from '../../core/tree-digest/digest-tree.ts';
import { DigestFileError } from '../../core/tree-digest/errors.ts';
import { loadTree, saveTree } from '../../core/tree-digest/tree-file.ts';
import { flatten } from './memory-tree.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-digest-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function fill(dir: string): Promise<void> {
  for (let i = 0; i < 20; i++) await writeFile(path.join(dir, `f${i}`), Buffer.alloc(100_000 + i, i));
  await writeFile(path.join(dir, 'names: ü %\n'), 'odd');
}

/** Enough multi-byte names that the saved file's chunks cut some of them in two. */
async function fillNames(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'names'));
  await execa('touch', Array.from({ length: 800 }, (_, i) => `ファイル名-${i}-ü`), { cwd: path.join(dir, 'names') });
}

test('a saved tree loads back with the same digests and records', async (t) => {
  const dir = await tempDir(t);
  const store = await tempDir(t);
  await fill(dir);
  await fillNames(dir);
  const tree = await digestTree(dir);
  const file = path.join(store, 'tree.digest');
  await saveTree(tree, file);
  const loaded = await loadTree(file);
  assert.equal(loaded.digest, tree.digest);
  assert.deepEqual(flatten(loaded), flatten(tree));
  assert.deepEqual(await loaded.summary(), await tree.summary());
  // Saving again replaces the file whole.
  await saveTree(loaded, file);
  assert.equal((await loadTree(file)).digest, tree.digest);
});

test('a damaged or foreign digest file is refused with tree_digest_file_invalid', async (t) => {
  const dir = await tempDir(t);
  const store = await tempDir(t);
  await fill(dir);
  const file = path.join(store, 'tree.digest');
  await saveTree(await digestTree(dir), file);
  const lines = gunzipSync(await readFile(file)).toString().split('\n');
  const variants: Record<string, string[]> = {
    'a content digest changed': lines.map((l, i) => (i === 3 ? l.replace(/"[0-9a-f]{64}"/, `"${'0'.repeat(64)}"`) : l)),
    'an entry dropped': lines.filter((_, i) => i !== 2),
    'another version': lines.map((l, i) => (i === 0 ? l.replace('"version":1', '"version":2') : l)),
    'a parent after its child': lines.map((l, i) => (i === 2 ? l.replace(/^\[0,/, '[5,') : l)),
  };
  for (const [label, changed] of Object.entries(variants)) {
    await writeFile(file, gzipSync(changed.join('\n')));
    await assert.rejects(loadTree(file), (err: unknown) => err instanceof DigestFileError && err.code === 'tree_digest_file_invalid', label);
  }
  await writeFile(file, 'not gzip');
  await assert.rejects(loadTree(file), DigestFileError);
  await writeFile(file, gzipSync(lines.join('\n')).subarray(0, 200));
  await assert.rejects(loadTree(file), DigestFileError, 'cut short');
  await writeFile(file, gzipSync(lines.map((l, i) => (i === 2 ? l.replace(/^(\[0,)"[^"]*"/, '$1"a/b"') : l)).join('\n')));
  await assert.rejects(loadTree(file), /has no name or a '\/' in it/, 'a name with a slash is refused as such, before the digests are summed');
});

test('a missing digest file rejects with ENOENT, and does not end the process', async (t) => {
  const store = await tempDir(t);
  await assert.rejects(loadTree(path.join(store, 'none')), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT');
});

test('reuse takes the content digest of unchanged inodes from the previous tree, and reads changed ones', async (t) => {
  const dir = await tempDir(t);
  await fill(dir);
  const previous = await digestTree(dir);
  // A previous tree that lies about every file's content: whatever comes from it shows.
  const table = previous.table;
  const lie = 'ab'.repeat(32);
  for (let i = 0; i < table.count; i++) if (table.kindOf(i) === 'file') table.setContent(i, lie);

  // f3 rewritten in place with its old mtime: same inode, size and mtime, but a new ctime.
  const handle = await open(path.join(dir, 'f3'), 'r+');
  await handle.write('x', 10);
  await handle.close();
  const f3 = table.mtimeNs[previous.indexOf('f3')] as bigint;
  await execa('touch', ['-m', '-d', `@${f3 / 1_000_000_000n}.${String(f3 % 1_000_000_000n).padStart(9, '0')}`, path.join(dir, 'f3')]);
  const now = await lstat(path.join(dir, 'f3'), { bigint: true });
  assert.deepEqual([now.ino, now.size, now.mtimeNs], [table.ino[previous.indexOf('f3')], 100_003n, f3], 'only the ctime tells');

  let progress: DigestProgress | undefined;
  const incremental = await digestTree(dir, { reuse: previous, onProgress: (p) => (progress = p) });
  const full = await digestTree(dir, { reuse: null });
  const got = await incremental.records(['f0', 'f3']);
  assert.equal(got.get('f0')?.content, lie, 'an unchanged inode is reused');
  assert.notEqual(got.get('f3')?.content, lie, 'a changed ctime is read again');
  assert.equal(got.get('f3')?.content, (await full.records(['f3'])).get('f3')?.content);
  assert.equal(progress?.bytesReused, progress!.bytesTotal - BigInt(100_003));
  assert.notEqual((await full.records(['f0'])).get('f0')?.content, lie);
});
