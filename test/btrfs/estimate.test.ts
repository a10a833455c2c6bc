// The stream-size estimates against the real streams they predict, on loop-mounted btrfs: `btrfs send --no-data`
// (full, incremental, a compressed filesystem, protocol 2) and the walk of a full send's tree; plus cancel and
// failure. Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, stat, writeFile } from 'node:fs/promises';
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

/**
 * The walk's estimate of a full send against the real stream. It counts a reflinked copy's data again (the send
 * carries it as a CLONE), so it is compared with the real stream plus `shared` bytes; within 1% of that.
 */
async function compareWalk(t: { diagnostic(m: string): void }, label: string, snapshot: string, shared: number, proto?: number) {
  const estimate = await btrfs.estimateFullSend(snapshot, { version: proto ?? 1 });
  const actual = await streamLength(snapshot, proto !== undefined ? { proto } : {});
  const error = (estimate.rawBytes - shared - actual) / actual;
  t.diagnostic(
    `${label}: walk estimated ${estimate.rawBytes} B (${estimate.writes} writes, ${estimate.dataBytes} B of data, ${shared} B of it ` +
      `shared); real stream ${actual} B; off by ${estimate.rawBytes - shared - actual} B besides the shared (${(error * 100).toFixed(3)}%)`,
  );
  assert.ok(Math.abs(error) <= 0.01, `${label}: estimate ${estimate.rawBytes} less ${shared} shared is ${(error * 100).toFixed(2)}% off the real ${actual}`);
  assert.ok(estimate.rawBytes >= actual, `${label}: the walk never runs under the stream`);
}

test('the walk of a full send estimates its stream: hard links, holes, a nested subvolume, protocol 2', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fs = await createBtrfs(t, { sizeMiB: 512 });
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  // fillVaried makes hard links, holes, symlinks, FIFOs, device nodes, xattrs and names that break quoting, and one
  // reflinked copy.
  await fillVaried(vol, { seed: 'walk-estimate', sizeMB: 24 });
  await writeFile(`${vol}/odd-sizes.bin`, Buffer.alloc(3 * 49152 + 777, 7));
  await writeFile(`${vol}/linked.bin`, Buffer.alloc(200_000, 3));
  await link(`${vol}/linked.bin`, `${vol}/linked-again.bin`);
  // A nested subvolume is sent as an empty directory: the walk must not count what is in it.
  await btrfs.createSubvolume(`${vol}/nested`);
  await writeFile(`${vol}/nested/not-sent.bin`, Buffer.alloc(4 * 1024 * 1024, 5));
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  const shared = (await stat(`${vol}/random/r-000.reflink`)).size;

  await compareWalk(t, 'full', `${fs.mountPoint}/s1`, shared);
  await compareWalk(t, 'full, protocol 2', `${fs.mountPoint}/s1`, shared, 2);
});

test('the walk on a compressed filesystem counts the data as the stream carries it, uncompressed', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fs = await createBtrfs(t, { sizeMiB: 256, mountOptions: ['compress=zstd'] });
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'walk-zstd', sizeMB: 12 });
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  await compareWalk(t, 'full, compress=zstd', `${fs.mountPoint}/s1`, (await stat(`${vol}/random/r-000.reflink`)).size);
});

test('a walk can be cancelled, and a failing walk says what ran', rootOnly, async (t) => {
  const fs = await createBtrfs(t, { sizeMiB: 256 });
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'walk-cancel', sizeMB: 2 });
  const controller = new AbortController();
  const walking = btrfs.estimateFullSend(vol, { version: 1, signal: controller.signal });
  controller.abort();
  await assert.rejects(walking, (err: unknown) => err instanceof BtrfsCommandError && err.code === 'btrfs_cancelled');
  await assert.rejects(
    btrfs.estimateFullSend(`${fs.mountPoint}/no-such-snapshot`, { version: 1 }),
    (err: unknown) => err instanceof BtrfsCommandError && err.code === 'btrfs_failed' && err.command[0] === 'find' && /No such file/.test(err.message),
  );
});
