/**
 * The cleanup of a receive that is stopped (server/receiver.ts) on a real btrfs: what appeared in the volume's folder
 * while it ran goes, but never what others hold there (server/volume-folder.ts othersInFolder). A quota-refused
 * upload's receive ran on while the next push into its volume was received; when it was stopped at last, its cleanup
 * deleted that received, acknowledged snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import type { SafeName } from '../../core/names.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { ServerLayout } from '../../server/layout.ts';
import { LiveStreamSource } from '../../server/live-source.ts';
import { receiveStream } from '../../server/receiver.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { until } from '../fixtures/receive-exit.ts';
import { streamOfRandomFile } from '../e2e/hostile-client.ts';

const CHUNK = 65536;
const ID = 'c'.repeat(32);

test('a stopped receive deletes its partial subvolume and what it wrote, but keeps what others hold in the folder', rootOnly, async (t) => {
  const fsx = await createBtrfs(t, { sizeMiB: 128 });
  const layout = new ServerLayout(path.join(fsx.mountPoint, 'root'));
  const dir = layout.volumeDir('default' as SafeName, 'v' as SafeName);
  const uuid = randomUuid();
  const framed = await frameStream(streamOfRandomFile(uuid, 40), CHUNK);
  // Every frame but the end: the receive takes them all, then waits for more, as beside an upload in progress.
  const spool = layout.spoolFile(ID);
  await fs.mkdir(path.dirname(spool), { recursive: true });
  await fs.writeFile(spool, framed.subarray(0, framed.length - FRAME_HEADER_SIZE));
  const source = new LiveStreamSource(spool, CHUNK);
  const run = receiveStream(layout, {
    id: ID, client: 'default' as SafeName, volume: 'v' as SafeName, snapshot: 'snap' as SafeName, uuid, parentUuid: null, chunkSize: CHUNK,
    policy: { parentUuid: null, cloneSources: [], allowDevices: true, allowSetuid: true },
    toDisk: (u) => u,
    othersNames: () => ['home', `.incoming-${'d'.repeat(32)}`],
  }, source);
  source.advance(framed.length - FRAME_HEADER_SIZE, false);
  const staged = path.join(dir, layout.incomingName(ID));
  await until('the receive to start', () => btrfs.isSubvolume(staged));

  // Meanwhile, in the same folder: another transfer's snapshot and staging subvolume (others'), and a stray (its own).
  await btrfs.createSubvolume(path.join(dir, 'home'));
  await btrfs.createSubvolume(path.join(dir, `.incoming-${'d'.repeat(32)}`));
  await fs.writeFile(path.join(dir, 'stray'), 'written through a symlink of the stream');

  run.stop(new Error('stopped by the test'));
  await assert.rejects(run.done, /stopped by the test/);
  assert.deepEqual((await fs.readdir(dir)).sort(), [`.incoming-${'d'.repeat(32)}`, 'home']);
  assert.equal(await btrfs.isSubvolume(path.join(dir, 'home')), true);
  assert.deepEqual(await fs.readdir(layout.receiving), [], 'its record of the folder is gone');
});
