/**
 * Writes the bench's slow-link send stream to a file, for measuring compression options on it offline
 * (test/bench/slow-compress-table.ts): the same mixed data (test/bench/data.ts, seed 'slow') on a loop btrfs,
 * snapshotted and sent. Needs root. Usage: node --import tsx test/bench/slow-stream.ts OUT [SIZE_MIB=44]
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import * as btrfs from '../../core/btrfs/index.ts';
import { createBtrfs, snapshotReadonly } from '../fixtures/btrfs.ts';
import { Cleanup } from './cleanup.ts';
import { fillMixed } from './data.ts';

const [out, size = '44'] = process.argv.slice(2);
if (out === undefined) throw new Error('usage: slow-stream.ts OUT [SIZE_MIB]');
const cleanup = new Cleanup();
try {
  const fs = await createBtrfs(cleanup, { sizeMiB: 1024 });
  const at = (...parts: string[]) => path.join(fs.mountPoint, ...parts);
  await btrfs.createSubvolume(at('slow'));
  await fillMixed(at('slow'), { seed: 'slow', sizeMiB: Number(size) });
  await mkdir(at('snaps'));
  await snapshotReadonly(at('slow'), at('snaps', 'w1'));
  await execa('btrfs', ['send', '-q', at('snaps', 'w1')], { stdout: { file: out } });
} finally {
  await cleanup.run();
}
