// The stream-size estimate (`btrfs send --no-data`) against the real streams it predicts, on loop-mounted btrfs:
// full, incremental, a compressed filesystem, protocol 2; plus cancel and failure. Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { BtrfsCommandError } from '../../core/btrfs/index.ts';
import { createBtrfs, fillVaried, mutate, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';

async function streamLength(snapshot: string, options: btrfs.SendOptions = {}): Promise<number> {
  let bytes = 0;
  for await (const chunk of btrfs.send(snapshot, options).stream) bytes += (chunk as Buffer).length;
  return bytes;
}

/** Estimate and real length side by side; the relative error is logged, and bounded at 1%. */
async function compare(t: { diagnostic(m: string): void }, label: string, snapshot: string, options: btrfs.EstimateOptions = {}) {
  const estimate = await btrfs.estimateSend(snapshot, options);
  const actual = await streamLength(snapshot, options);
  const error = (estimate.rawBytes - actual) / actual;
  t.diagnostic(
    `${label}: estimated ${estimate.rawBytes} B from a ${estimate.noDataBytes} B no-data stream (${estimate.writes} writes, ` +
      `${estimate.dataBytes} B of data); real stream ${actual} B; off by ${estimate.rawBytes - actual} B (${(error * 100).toFixed(3)}%)`,
  );
  assert.ok(Math.abs(error) <= 0.01, `${label}: estimate ${estimate.rawBytes} is ${(error * 100).toFixed(2)}% off the real ${actual}`);
  assert.ok(estimate.dataBytes > 0 && estimate.noDataBytes < actual / 10, `${label}: the no-data stream carries no file data`);
  return { estimate, actual };
}

test('the estimate matches the real stream: full, incremental, and protocol 2', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fs = await createBtrfs(t, { sizeMiB: 512 });
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'estimate', sizeMB: 24 });
  // A file with writes that end mid-way through a 48 KiB write, a hole and a tail: the split into WRITEs shows.
  await writeFile(`${vol}/odd-sizes.bin`, Buffer.alloc(3 * 49152 + 777, 7));
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  await mutate(vol, 1);
  await writeFile(`${vol}/grown.bin`, Buffer.alloc(5 * 1024 * 1024 + 1, 9));
  await snapshotReadonly(vol, `${fs.mountPoint}/s2`);

  const full = await compare(t, 'full', `${fs.mountPoint}/s1`);
  assert.equal(full.estimate.version, 1);
  const incremental = await compare(t, 'incremental', `${fs.mountPoint}/s2`, { parent: `${fs.mountPoint}/s1` });
  assert.ok(incremental.actual < full.actual, 'the incremental stream is the smaller one');
  const v2 = await compare(t, 'full, protocol 2', `${fs.mountPoint}/s1`, { proto: 2 });
  assert.equal(v2.estimate.version, 2);
});

test('on a compressed filesystem the estimate is the stream (which carries the data uncompressed)', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fs = await createBtrfs(t, { sizeMiB: 256, mountOptions: ['compress=zstd'] });
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'estimate-zstd', sizeMB: 12 });
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  await compare(t, 'full, compress=zstd', `${fs.mountPoint}/s1`);
});

test('an estimate can be cancelled, and a failing btrfs send says why', rootOnly, async (t) => {
  const fs = await createBtrfs(t, { sizeMiB: 256 });
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'estimate-cancel', sizeMB: 2 });
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);

  const controller = new AbortController();
  const estimating = btrfs.estimateSend(`${fs.mountPoint}/s1`, { signal: controller.signal });
  controller.abort();
  await assert.rejects(estimating, (err: unknown) => err instanceof BtrfsCommandError && err.code === 'btrfs_cancelled');

  // btrfs send refuses a writable subvolume.
  await assert.rejects(
    btrfs.estimateSend(vol),
    (err: unknown) => err instanceof BtrfsCommandError && err.code === 'btrfs_failed' && err.command.includes('--no-data'),
  );
});
