/**
 * What real `btrfs receive` makes of a stream whose UUIDs core/wire/sendstream-uuids.ts rewrote: it takes the
 * rewritten CRCs, gives the new subvolume the mapped Received UUID, and finds an incremental's parent by the mapped
 * parent UUID (the per-client UUID namespaces of server/uuid-namespace.ts rest on exactly this).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SendStreamUuidRewriter, type SendUuidMap } from '../../core/wire/sendstream-uuids.ts';
import { randomUuid } from '../fixtures/send-streams.ts';
import { createBtrfs, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';

test('real btrfs receive takes a rewritten full and incremental stream: the Received UUIDs are the mapped ones, and the incremental finds its parent by the mapped UUID', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const src = path.join(fsx.mountPoint, 'src');
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  await btrfs.createSubvolume(src);
  await fs.writeFile(path.join(src, 'a'), 'first\n');
  await fs.writeFile(path.join(src, 'big'), Buffer.alloc(256 * 1024, 3));
  await snapshotReadonly(src, path.join(fsx.mountPoint, 's1'));
  await fs.writeFile(path.join(src, 'b'), 'second\n');
  // A reflink copy: the incremental sends it as a CLONE (from the parent or from s2 itself), mapped like the rest.
  await fs.copyFile(path.join(src, 'big'), path.join(src, 'big2'), fs.constants.COPYFILE_FICLONE);
  await snapshotReadonly(src, path.join(fsx.mountPoint, 's2'));
  const [s1, s2] = await Promise.all([btrfs.subvolumeShow(path.join(fsx.mountPoint, 's1')), btrfs.subvolumeShow(path.join(fsx.mountPoint, 's2'))]);
  const mapped: Record<string, string> = { [s1.uuid]: randomUuid(), [s2.uuid]: randomUuid() };
  const m: SendUuidMap = (u) => mapped[u] ?? u;

  const sendRewritten = async (name: string, parent?: string) => {
    const sent = btrfs.send(path.join(fsx.mountPoint, name), parent ? { parent: path.join(fsx.mountPoint, parent) } : {});
    const rewriter = new SendStreamUuidRewriter(m);
    const received = btrfs.receive(dest, rewriter);
    await Promise.all([pipeline(sent.stream, rewriter), received]);
    return btrfs.subvolumeShow(path.join(dest, name));
  };
  const r1 = await sendRewritten('s1');
  assert.equal(r1.receivedUuid, mapped[s1.uuid]);
  // Without the rewrite btrfs would have found the parent by its real UUID (s1 itself); with it, only the received
  // copy has the mapped UUID as its Received UUID, so that is the parent receive uses.
  const r2 = await sendRewritten('s2', 's1');
  assert.equal(r2.receivedUuid, mapped[s2.uuid]);
  assert.equal(r2.parentUuid, r1.uuid, 'snapshotted from the received s1, found by the mapped UUID');
  assert.equal(await fs.readFile(path.join(dest, 's2', 'b'), 'utf8'), 'second\n');
  assert.deepEqual(await fs.readFile(path.join(dest, 's2', 'big2')), Buffer.alloc(256 * 1024, 3));
});
