/**
 * A tree of 100k entries: the digest holds it in a few hundred bytes an entry (typed columns, not an object each),
 * and a walk of it takes seconds, not minutes.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { execa } from 'execa';
import { digestTree } from '../../core/tree-digest/digest-tree.ts';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function retained(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

test('a 100k-entry tree is held in under 400 bytes an entry', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-digest-scale-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (let d = 0; d < 100; d++) {
    await mkdir(path.join(dir, `directory-${d}`));
    const names = Array.from({ length: 1000 }, (_, i) => `a-file-with-a-usual-length-name-${i}.txt`);
    await execa('touch', names, { cwd: path.join(dir, `directory-${d}`) });
  }
  await execa('sh', ['-c', 'for i in $(seq 1 50); do printf "%0100000d" $i > "directory-0/data-$i"; done'], { cwd: dir });

  const before = retained();
  const started = performance.now();
  const tree = await digestTree(dir);
  const seconds = (performance.now() - started) / 1000;
  const perEntry = (retained() - before) / tree.entries;
  assert.equal(tree.entries, 1 + 100 + 100_000 + 50);
  t.diagnostic(`${tree.entries} entries in ${seconds.toFixed(1)} s, ${perEntry.toFixed(0)} bytes an entry held`);
  assert.ok(perEntry < 400, `${perEntry.toFixed(0)} bytes an entry`);
  assert.ok(seconds < 60, `${seconds.toFixed(1)} s`);
  // Still held here, so that the measure above is of a live tree.
  assert.equal((await tree.summary()).bytes, String(50 * 100_000));
});
