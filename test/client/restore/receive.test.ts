/**
 * A restore's receive of its spool, on real btrfs: `btrfs receive -e` exits at the stream's END command, which comes
 * before the end frame, and the end frame is still being verified behind it. The receive must wait for it, not
 * break off with "Premature close" (the race hostile-uuid.test.ts's small restores used to run into about one run in
 * eight). Here the spool is a FIFO, and the end frame is written only once btrfs receive has exited: the race, every
 * time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createBtrfs, rootOnly } from '../../fixtures/btrfs.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../../fixtures/send-streams.ts';
import { FRAME_HEADER_SIZE } from '../../../core/wire/index.ts';
import * as btrfs from '../../../core/btrfs/index.ts';
import { receiveSpool } from '../../../client/restore/receive.ts';
import { receiveExitedAtEnd } from '../../fixtures/receive-exit.ts';

const CHUNK = 65536;

test("a restore's receive waits for the end frame that comes after btrfs receive exited at END", { ...rootOnly, timeout: 60_000 }, async (t) => {
  const fsx = await createBtrfs(t);
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  const uuid = randomUuid();
  const framed = await frameStream(new SendStreamBuilder().subvol('snap', uuid).file('f', Buffer.from('hello\n')).end().build(), CHUNK);
  // The end frame is a header alone, the last thing in the spool.
  const head = framed.subarray(0, framed.length - FRAME_HEADER_SIZE);
  const endFrame = framed.subarray(framed.length - FRAME_HEADER_SIZE);

  const framesFile = path.join(fsx.mountPoint, 'frames.fifo');
  await promisify(execFile)('mkfifo', ['--', framesFile]);
  const outcome = receiveSpool({ framesFile, chunkSize: CHUNK, destDir: dest, name: 'snap', uuid, parentUuid: null }).then(
    (got) => ({ got }),
    (err: unknown) => ({ err }),
  );
  const writer = await fs.open(framesFile, 'w');
  t.after(() => writer.close().catch(() => undefined));
  await writer.write(head);
  let settled = false;
  void outcome.then(() => (settled = true));
  // btrfs receive has read END: the subvolume is finished (read-only, with its Received UUID), and it exits.
  await receiveExitedAtEnd(dest, path.join(dest, `.snapferry-incoming-${uuid}`), () => settled);
  // Time for whatever its exit sets off here; a receive that breaks off without the end frame does so now.
  const early = await Promise.race([outcome, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
  assert.equal(early, null, `the receive ended before its end frame came: ${JSON.stringify(early, (_k, v: unknown) => (v instanceof Error ? `${(v as { code?: string }).code}: ${v.message}` : v))}`);

  await writer.write(endFrame);
  await writer.close();
  const result = await outcome;
  assert.ok('got' in result, `the receive failed: ${String((result as { err: unknown }).err)}`);
  assert.equal(result.got.path, path.join(dest, 'snap'));
  assert.equal(await fs.readFile(path.join(dest, 'snap', 'f'), 'utf8'), 'hello\n');
  const shown = await btrfs.subvolumeShow(path.join(dest, 'snap'));
  assert.deepEqual([shown.receivedUuid, shown.readonly], [uuid, true]);
});

test('a restored stream that writes into DEST_DIR through its own symlink leaves nothing there but the snapshot', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const fsx = await createBtrfs(t);
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  await fs.writeFile(path.join(dest, 'mine'), 'the user\'s\n');
  const uuid = randomUuid();
  // The stream comes from the server: a server that is not what it should be sends what it likes. Every path is
  // relative and free of `..`, so the policy passes it; `--chroot` makes `/` DEST_DIR, so `up/x` is DEST_DIR/x.
  const raw = new SendStreamBuilder()
    .subvol('snap', uuid)
    .symlink('up', '/')
    .mkfileAt('up/planted')
    .write('up/planted', Buffer.from('#!/bin/sh\n'))
    .symlink('up/planted-link', '/etc/shadow')
    .file('f', Buffer.from('hello\n'))
    .end()
    .build();
  const framesFile = path.join(fsx.mountPoint, 'frames');
  await fs.writeFile(framesFile, await frameStream(raw, CHUNK));
  const got = await receiveSpool({ framesFile, chunkSize: CHUNK, destDir: dest, name: 'snap', uuid, parentUuid: null });
  assert.equal(got.path, path.join(dest, 'snap'));
  assert.equal(await fs.readlink(path.join(dest, 'snap', 'up')), '/', 'the symlink out is in the snapshot, as sent');
  assert.deepEqual((await fs.readdir(dest)).sort(), ['mine', 'snap']);
});
