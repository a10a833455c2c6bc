// The bench's data: about the size asked for, the same tree for the same seed, text that compresses and random
// data that does not (else the wire-bytes rows would measure the generator), and a mutation that changes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { fillMixed, mutateMixed } from './data.ts';

async function files(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, p), (await stat(p)).size);
  }
  return out;
}

async function zstdRatio(dir: string, sub: string): Promise<number> {
  const raw = Number((await execa('bash', ['-c', 'cat "$1"/* | wc -c', 'x', path.join(dir, sub)])).stdout);
  const packed = Number((await execa('bash', ['-c', 'cat "$1"/* | zstd -3 -c | wc -c', 'x', path.join(dir, sub)])).stdout);
  return packed / raw;
}

test('fillMixed writes the mix it promises, the same for the same seed; mutateMixed changes it', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const base = await mkdtemp(path.join(os.tmpdir(), 'snapferry-bench-data-test-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const a = path.join(base, 'a');
  const b = path.join(base, 'b');
  const summary = await fillMixed(a, { seed: 's', sizeMiB: 16 });
  await fillMixed(b, { seed: 's', sizeMiB: 16 });

  const inA = await files(a);
  const total = [...inA.values()].reduce((x, y) => x + y, 0);
  assert.ok(Math.abs(summary.bytes - 16 * 1024 * 1024) < 2 * 1024 * 1024, `${summary.bytes} bytes for 16 MiB`);
  assert.ok(total >= summary.bytes, `the files hold what the summary says (${total} >= ${summary.bytes}, reflinks counted twice)`);
  assert.ok([...inA.keys()].filter((f) => f.startsWith('small/')).length > 200, 'many small files');
  assert.deepEqual(await files(b), inA, 'the same names and sizes for the same seed');
  const text = (await execa('cmp', [path.join(a, 'text/log-000.txt'), path.join(b, 'text/log-000.txt')], { reject: false })).exitCode;
  assert.equal(text, 0, 'the same text for the same seed');

  const textRatio = await zstdRatio(a, 'text');
  const randomRatio = await zstdRatio(a, 'random');
  assert.ok(textRatio > 0.2 && textRatio < 0.5, `text compresses like text: ${textRatio.toFixed(2)}`);
  assert.ok(randomRatio > 0.99, `random does not compress: ${randomRatio.toFixed(3)}`);

  const done = await mutateMixed(a, { seed: 'm', sizeMiB: 16 });
  assert.ok(done.length > 10, done.join('\n'));
  const after = await files(a);
  assert.ok([...after.keys()].some((f) => f.startsWith('random-new/')), 'new files');
  assert.ok([...inA.keys()].some((f) => f.startsWith('random/') && !after.has(f)), 'deleted files');
  assert.ok((after.get('text/log-000.txt') ?? 0) > (inA.get('text/log-000.txt') ?? 0), 'appended text');
});
