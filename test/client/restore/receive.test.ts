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
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createBtrfs, rootOnly } from '../../fixtures/btrfs.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../../fixtures/send-streams.ts';
import { FRAME_HEADER_SIZE } from '../../../core/wire/index.ts';
import * as btrfs from '../../../core/btrfs/index.ts';
import { receiveSpool } from '../../../client/restore/receive.ts';
import { receiveExitedAtEnd } from '../../fixtures/receive-exit.ts';
import { chunkMemoryCounts } from '../../../core/wire/chunk-memory.ts';
import { SendAttr, SendCmd } from '../../../core/wire/sendstream-format.ts';
import { tlv } from '../../wire/sendstream-builder.ts';

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

/** DEST_DIR as the user left it: a file of theirs, one to delete, one to rename; what the attacks aim at. */
async function userFiles(dest: string): Promise<void> {
  await fs.writeFile(path.join(dest, 'mine'), "the user's\n", { mode: 0o600 });
  await fs.writeFile(path.join(dest, 'keep'), 'keep\n');
  await fs.writeFile(path.join(dest, 'victim'), 'victim\n');
}

/** What userFiles left must be there, unchanged, and nothing else but `extra`. */
async function assertUserFilesUntouched(dest: string, extra: string[] = []): Promise<void> {
  assert.equal(await fs.readFile(path.join(dest, 'mine'), 'utf8'), "the user's\n", 'the user file was written through the symlink');
  assert.equal((await fs.stat(path.join(dest, 'mine'))).mode & 0o7777, 0o600, 'the user file was chmodded through the symlink');
  assert.deepEqual((await fs.readdir(dest)).sort(), ['keep', 'mine', 'victim', ...extra].sort(), 'entries of DEST_DIR were deleted or renamed');
}

/** The attack: through `up`, a symlink to DEST_DIR (`/` in the chroot), change, chmod, delete and rename its files. */
function throughUp(b: SendStreamBuilder): SendStreamBuilder {
  return b
    .write('up/mine', Buffer.from('owned\n'))
    .chmod('up/mine', 0o777)
    .cmd(SendCmd.UNLINK, tlv(SendAttr.PATH, 'up/keep'))
    .cmd(SendCmd.RENAME, tlv(SendAttr.PATH, 'up/victim'), tlv(SendAttr.PATH_TO, 'up/victim-moved'))
    .file('f', Buffer.from('hello\n'));
}

async function spoolOf(fsx: { mountPoint: string }, raw: Buffer): Promise<string> {
  const framesFile = path.join(fsx.mountPoint, 'frames');
  await fs.writeFile(framesFile, await frameStream(raw, CHUNK));
  return framesFile;
}

test("a restored stream cannot change, chmod, delete or rename the user's files in DEST_DIR through its own symlink", { ...rootOnly, timeout: 60_000 }, async (t) => {
  const fsx = await createBtrfs(t);
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  await userFiles(dest);
  const uuid = randomUuid();
  // The stream comes from the server: a server that is not what it should be sends what it likes. Every path is
  // relative and free of `..`; `--chroot` makes `/` DEST_DIR, so `up/x` is DEST_DIR/x.
  const raw = throughUp(new SendStreamBuilder().subvol('snap', uuid).symlink('up', '/')).end().build();
  const framesFile = await spoolOf(fsx, raw);
  await assert.rejects(receiveSpool({ framesFile, chunkSize: CHUNK, destDir: dest, name: 'snap', uuid, parentUuid: null }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'sendstream_unsafe_path', err.message);
    assert.match(err.message, /"up" is a symlink/);
    return true;
  });
  await assertUserFilesUntouched(dest);
});

test("an incremental restore cannot reach DEST_DIR through a symlink its local parent snapshot holds", { ...rootOnly, timeout: 60_000 }, async (t) => {
  const fsx = await createBtrfs(t);
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  // The parent as a user has it: a read-only snapshot with an absolute symlink in it (a root filesystem has many).
  const work = path.join(fsx.mountPoint, 'work');
  await btrfs.createSubvolume(work);
  await fs.symlink('/', path.join(work, 'up'));
  await btrfs.snapshot(work, path.join(dest, 'base'), { readonly: true });
  const parent = await btrfs.subvolumeShow(path.join(dest, 'base'));
  await userFiles(dest);
  const uuid = randomUuid();
  const raw = throughUp(new SendStreamBuilder().snapshot('snap', uuid, parent.uuid, 20, parent.generation)).end().build();
  const framesFile = await spoolOf(fsx, raw);
  const job = { framesFile, chunkSize: CHUNK, destDir: dest, name: 'snap', uuid, parentUuid: parent.uuid, parentPath: path.join(dest, 'base') };
  await assert.rejects(receiveSpool(job), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'sendstream_unsafe_path', err.message);
    return true;
  });
  await assertUserFilesUntouched(dest, ['base']);
});

test("a restore's zstd frames decode into memory that btrfs receive's pipe took whole, and arrive intact", { ...rootOnly, timeout: 60_000 }, async (t) => {
  const fsx = await createBtrfs(t);
  const dest = path.join(fsx.mountPoint, 'dest');
  await fs.mkdir(dest);
  const uuid = randomUuid();
  // 2 MiB of hex text, which zstd shrinks to about half, in 64 KiB chunks: 32 zstd frames, a read of the spool
  // holding about two (text that shrank more would be decoded many frames a read, ahead of the pipe).
  const content = Buffer.from(randomBytes(1024 * 1024).toString('hex'));
  const stream = new SendStreamBuilder().subvol('snap', uuid).file('f', Buffer.alloc(0));
  for (let at = 0; at < content.length; at += 48 * 1024) stream.write('f', content.subarray(at, at + 48 * 1024), at);
  const framed = await frameStream(stream.end().build(), CHUNK, 3);
  const framesFile = path.join(fsx.mountPoint, 'frames');
  await fs.writeFile(framesFile, framed);

  const before = chunkMemoryCounts();
  await receiveSpool({ framesFile, chunkSize: CHUNK, destDir: dest, name: 'snap', uuid, parentUuid: null });
  const after = chunkMemoryCounts();
  const decoded = after.fresh + after.reused - (before.fresh + before.reused);
  const reused = after.reused - before.reused;
  assert.ok(decoded >= 32, `only ${decoded} chunks were decoded: the stream was not framed with zstd`);
  // A chunk's memory goes back once the pipe took its last byte; the receive holds a few decoded chunks in flight.
  assert.ok(reused >= decoded - 8, `${reused} of ${decoded} decoded chunks reused memory the pipe had taken`);
  assert.ok((await fs.readFile(path.join(dest, 'snap', 'f'))).equals(content), 'the restored file differs from what was framed');
});
