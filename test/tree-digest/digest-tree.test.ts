/**
 * digestTree on plain directories (the temp filesystem; no btrfs): names as bytes, xattrs of every namespace, holes,
 * large files cut into ranges, hard links, what a copy keeps equal and what compareTrees names when it does not.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, link, lstat, lutimes, mkdir, mkdtemp, open, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { execa } from 'execa';
import { compareTrees } from '../../core/tree-digest/compare.ts';
import { digestTree } from '../../core/tree-digest/digest-tree.ts';
import type { DigestProgress } from '../../core/tree-digest/digest-tree.ts';
import { TreeChangedError, TreeReadError } from '../../core/tree-digest/errors.ts';
import { HashPool } from '../../core/tree-digest/hash-pool.ts';
import { spellBytes } from '../../core/tree-digest/spell.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-digest-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The content digest as record-digest.ts defines it, computed here without it. */
function expectedContent(data: Buffer): string {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += 1024 * 1024) {
    pieces.push(createHash('sha256').update(data.subarray(at, at + 1024 * 1024)).digest());
  }
  return createHash('sha256').update('snapferry-content-v1\n').update(`${data.length}\n`).update(Buffer.concat(pieces)).digest('hex');
}

test('names are read as bytes and spelled one way; xattrs of odd names and of every namespace are read', async (t) => {
  const dir = await tempDir(t);
  const odd = [Buffer.from('nl\nx'), Buffer.from([0x62, 0x61, 0x64, 0xff]), Buffer.from('back\\slash'), Buffer.from('50%'), Buffer.from('ünï cödé')];
  for (const name of odd) await writeFile(Buffer.concat([Buffer.from(dir + '/'), name]), name);
  await execa('setfattr', ['-n', 'user.we=ird name', '-v', '0x00ff', path.join(dir, 'back\\slash')]);
  await execa('setfattr', ['-n', 'trusted.t', '-v', 'x', path.join(dir, '50%')]);
  await symlink(Buffer.from([0x74, 0x0a, 0xfe]) as unknown as string, path.join(dir, 'link'));
  await execa('setfattr', ['-h', '-n', 'trusted.on-link', '-v', 'y', path.join(dir, 'link')]);

  const tree = await digestTree(dir);
  const children = (await tree.children([''])).get('') ?? [];
  assert.deepEqual(children.map((c) => c.name), ['50%25', 'back\\slash', 'bad%FF', 'link', 'nl%0Ax', 'ünï cödé']);
  const records = await tree.records(children.map((c) => c.name));
  assert.equal(records.get('link')?.target, 't%0A%FE');
  assert.notEqual(records.get('link')?.xattrs, null);
  assert.notEqual(records.get('back\\slash')?.xattrs, null);
  assert.notEqual(records.get('50%25')?.xattrs, null);
  assert.equal(records.get('bad%FF')?.xattrs, null);
  assert.equal(records.get('bad%FF')?.content, expectedContent(Buffer.from([0x62, 0x61, 0x64, 0xff])));
  for (const name of odd) assert.ok(records.has(spellBytes(name)), spellBytes(name));

  // The xattr's value is what is digested: another value on the odd name is another digest.
  const before = records.get('back\\slash')?.xattrs;
  await execa('setfattr', ['-n', 'user.we=ird name', '-v', '0x00fe', path.join(dir, 'back\\slash')]);
  const after = (await (await digestTree(dir)).records(['back\\slash'])).get('back\\slash')?.xattrs;
  assert.notEqual(after, before);
});

test('content is hashed in pieces, holes read as zeros, a large file in ranges on several threads', async (t) => {
  const dir = await tempDir(t);
  const dense = Buffer.alloc(3 * 1024 * 1024 + 5);
  dense.write('start', 0);
  dense.write('middle', 2 * 1024 * 1024);
  await writeFile(path.join(dir, 'dense'), dense);
  const handle = await open(path.join(dir, 'sparse'), 'w');
  await handle.write('start', 0);
  await handle.write('middle', 2 * 1024 * 1024);
  await handle.truncate(dense.length);
  await handle.close();
  // 130 MiB of hole and a tail: three ranges of 64 MiB on the pool, put back in order.
  const big = Buffer.alloc(130 * 1024 * 1024 + 77);
  big.write('the end', big.length - 7);
  const bigHandle = await open(path.join(dir, 'big'), 'w');
  await bigHandle.write('the end', big.length - 7);
  await bigHandle.close();
  await writeFile(path.join(dir, 'empty'), '');

  const tree = await digestTree(dir, { threads: 3 });
  const r = await tree.records(['dense', 'sparse', 'big', 'empty']);
  assert.equal(r.get('dense')?.content, expectedContent(dense));
  assert.equal(r.get('sparse')?.content, r.get('dense')?.content);
  assert.equal(r.get('big')?.content, expectedContent(big));
  assert.equal(r.get('big')?.size, String(big.length));
  assert.equal(r.get('empty')?.content, expectedContent(Buffer.alloc(0)));
  assert.equal((await tree.summary()).bytes, String(2 * dense.length + big.length));
});

test('hard links: every name of an inode names the first in walk order; an inode with one name in the tree has none', async (t) => {
  const dir = await tempDir(t);
  await mkdir(path.join(dir, 'a'));
  await writeFile(path.join(dir, 'b'), 'shared');
  await link(path.join(dir, 'b'), path.join(dir, 'a/z'));
  await link(path.join(dir, 'b'), path.join(dir, 'c'));
  await writeFile(path.join(dir, 'a/single'), 'x');
  await link(path.join(dir, 'a/single'), path.join(dir, 'outside-of-a'));

  const tree = await digestTree(dir);
  const r = await tree.records(['a/z', 'b', 'c', 'a/single']);
  // Parents before children, names sorted: a, a/single, a/z, b, c.
  assert.deepEqual([r.get('a/z')?.link, r.get('b')?.link, r.get('c')?.link], ['a/z', 'a/z', 'a/z']);
  assert.equal(r.get('a/single')?.link, 'a/single');
  assert.equal(r.get('b')?.content, r.get('a/z')?.content);

  const sub = await digestTree(path.join(dir, 'a'));
  assert.equal((await sub.records(['single'])).get('single')?.link, null, 'the other name is outside this tree');
  assert.equal((await sub.records(['z'])).get('z')?.link, null);
});

/** A tree with one of each kind of entry, owned and stamped so that a copy must carry it all. */
async function fillKinds(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'sub/deeper'), { recursive: true });
  await writeFile(path.join(dir, 'sub/deeper/file'), 'deep content\n'.repeat(1000));
  await writeFile(path.join(dir, 'large'), Buffer.alloc(3 * 1024 * 1024, 7));
  await writeFile(path.join(dir, 'linked'), 'one inode, two names');
  await link(path.join(dir, 'linked'), path.join(dir, 'sub/linked-too'));
  await symlink('sub/deeper/file', path.join(dir, 'symlink'));
  await execa('mkfifo', [path.join(dir, 'fifo')]);
  await execa('mknod', [path.join(dir, 'null'), 'c', '1', '3']);
  await execa('setfattr', ['-n', 'user.note', '-v', 'kept', path.join(dir, 'sub')]);
  await chmod(path.join(dir, 'large'), 0o640);
  await lutimes(path.join(dir, 'large'), 1_600_000_000, 1_600_000_000.123456);
}

test('a copy that keeps everything digests the same; each change is found and named', { skip: process.getuid?.() === 0 ? false : 'needs root (mknod, chown)' }, async (t) => {
  const base = await tempDir(t);
  const source = path.join(base, 'source');
  await mkdir(source);
  await fillKinds(source);
  const copy = async (name: string): Promise<string> => {
    const to = path.join(base, name);
    await execa('cp', ['-a', '--', source, to]);
    return to;
  };
  const local = await digestTree(source);
  const same = await digestTree(await copy('same'));
  assert.deepEqual(await compareTrees(local, same), { equal: true, differences: [], truncated: false, requests: 1 });

  const cases: Array<[string, (d: string) => Promise<unknown>, string, string[]]> = [
    ['byte', async (d) => { const h = await open(path.join(d, 'large'), 'r+'); await h.write('x', 2_000_000); await h.close(); await lutimes(path.join(d, 'large'), 1_600_000_000, 1_600_000_000.123456); }, 'large', ['content']],
    ['mode', (d) => chmod(path.join(d, 'large'), 0o644), 'large', ['mode']],
    ['owner', (d) => execa('chown', ['-h', '1234:1234', path.join(d, 'symlink')]), 'symlink', ['owner']],
    ['xattr', (d) => execa('setfattr', ['-n', 'user.note', '-v', 'changed', path.join(d, 'sub')]), 'sub', ['xattrs']],
    ['missing', (d) => rm(path.join(d, 'sub/deeper'), { recursive: true }), 'sub/deeper', ['missing']],
    ['extra', (d) => writeFile(path.join(d, 'sub/deeper/new'), ''), 'sub/deeper/new', ['extra']],
    ['target', async (d) => { await rm(path.join(d, 'symlink')); await symlink('elsewhere', path.join(d, 'symlink')); }, 'symlink', ['target']],
    ['rdev', async (d) => { await rm(path.join(d, 'null')); await execa('mknod', [path.join(d, 'null'), 'c', '1', '5']); }, 'null', ['rdev']],
    ['kind', async (d) => { await rm(path.join(d, 'fifo')); await writeFile(path.join(d, 'fifo'), ''); }, 'fifo', ['kind']],
    ['truncated', (d) => truncate(path.join(d, 'sub/deeper/file'), 10), 'sub/deeper/file', ['content', 'size']],
  ];
  for (const [label, change, where, differs] of cases) {
    const dir = await copy(label);
    await change(dir);
    const result = await compareTrees(local, await digestTree(dir));
    const named = result.differences.filter((d) => d.path === where);
    assert.equal(result.equal, false, label);
    assert.deepEqual(named.map((d) => d.differs.filter((k) => k !== 'mtime')), [differs], `${label}: ${JSON.stringify(result.differences.map((d) => [d.path, d.differs]))}`);
  }

  // A hard link broken: the copy of `linked` under sub/ becomes an inode of its own.
  const broken = await copy('broken');
  await rm(path.join(broken, 'sub/linked-too'));
  await execa('cp', ['-p', path.join(broken, 'linked'), path.join(broken, 'sub/linked-too')]);
  const result = await compareTrees(local, await digestTree(broken));
  assert.deepEqual(
    // sub's mtime changed too (a name was removed and added in it), which is a true difference.
    result.differences.map((d) => [d.path, d.differs]).filter(([p]) => p !== 'sub').sort(),
    [['linked', ['link']], ['sub/linked-too', ['link']]],
  );
});

test('progress reaches the total; an abort stops the digest', async (t) => {
  const dir = await tempDir(t);
  for (let i = 0; i < 200; i++) await writeFile(path.join(dir, `f${i}`), Buffer.alloc(10_000, i));
  const seen: DigestProgress[] = [];
  const tree = await digestTree(dir, { onProgress: (p) => seen.push({ ...p }) });
  const last = seen.at(-1);
  assert.equal(last?.walked, true);
  assert.equal(last?.entries, tree.entries);
  assert.equal(last?.bytesDone, 2_000_000n);
  assert.equal(last?.bytesTotal, 2_000_000n);

  const controller = new AbortController();
  let calls = 0;
  await assert.rejects(
    digestTree(dir, { signal: controller.signal, onProgress: () => { if (++calls === 5) controller.abort(new Error('stop')); } }),
    /stop/,
  );

  // Aborted while a 4 GiB file is being hashed: the workers stop mid-file.
  const big = await open(path.join(dir, 'big'), 'w');
  await big.truncate(4 * 1024 ** 3);
  await big.close();
  const late = new AbortController();
  let abortedAt = 0;
  const started = performance.now();
  await assert.rejects(
    digestTree(dir, {
      signal: late.signal,
      onProgress: (p) => {
        if (p.bytesDone > 0n && p.bytesTotal >= 4n * 1024n ** 3n && abortedAt === 0) {
          abortedAt = performance.now();
          late.abort(new Error('late stop'));
        }
      },
    }),
    /late stop/,
  );
  const after = performance.now() - abortedAt;
  assert.ok(abortedAt > started && after < 1500, `stopped ${after.toFixed(0)} ms after the abort`);
});

test('a file that is not what the walk saw when it is read is a tree_changed error (retryable)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'f'), 'two');
  const pool = new HashPool(1);
  t.after(() => pool.close());
  const { ino } = await lstat(path.join(dir, 'f'), { bigint: true });
  const item = { path: Buffer.from(path.join(dir, 'f')), ino: String(ino), size: '3', offset: 0, length: 3 };
  assert.equal((await pool.hash([item]))[0]?.length, 32);
  // Grown since the walk, or another inode under the name: never hashed as if it were the file the walk saw.
  for (const seen of [{ ...item, size: '2', length: 2 }, { ...item, ino: String(ino + 1n) }]) {
    await assert.rejects(pool.hash([seen]), (err: unknown) => err instanceof TreeChangedError && err.retryable && err.code === 'tree_changed');
  }
});

test('without getfattr, the digest fails with a message that says what to install', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'f'), 'x');
  const saved = process.env.PATH;
  process.env.PATH = dir;
  t.after(() => {
    process.env.PATH = saved;
  });
  await assert.rejects(digestTree(dir), (err: unknown) => err instanceof TreeReadError && /install the package "attr"/.test(err.message));
});
