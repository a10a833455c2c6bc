/**
 * The one checked receive (core/receive/checked-receive.ts) on real btrfs, with the stream's tail held back until
 * `btrfs receive -e` has exited at END, as the end frame comes after END on both sides: a tail that passes makes the
 * snapshot (under its name, with the mapped Received UUID), a tail that fails leaves nothing, whatever btrfs did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { receiveExitedAtEnd } from '../fixtures/receive-exit.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { SnapferryError } from '../../core/errors.ts';
import { SendStreamCheck } from '../../core/wire/index.ts';
import { checkedReceive, type CheckedReceiveJob } from '../../core/receive/checked-receive.ts';

const receiveTest = { ...rootOnly, timeout: 60_000 };

/** Starts a checked receive of `raw` into a fresh folder, with all of `raw` written and the input left open. */
async function started(t: Parameters<typeof createBtrfs>[0], raw: Buffer, more: Partial<CheckedReceiveJob> = {}, prepare?: (dir: string) => Promise<void>) {
  const fsx = await createBtrfs(t);
  const dir = path.join(fsx.mountPoint, 'v');
  await fs.mkdir(dir);
  await prepare?.(dir);
  const input = new PassThrough();
  const uuid = randomUuid();
  let settled = false;
  const outcome = checkedReceive({
    dir, folder: 'exclusive', name: 'snap', stagingName: '.incoming-1', input, check: new SendStreamCheck(), receivedUuid: uuid,
    taken: (p) => new SnapferryError('taken', `${p} is taken`), ...more,
  }).then((got) => ({ got }), (err: unknown) => ({ err }));
  void outcome.then(() => (settled = true));
  input.write(raw);
  await receiveExitedAtEnd(dir, path.join(dir, '.incoming-1'), () => settled);
  assert.equal(settled, false, 'the receive waits for the end of its input');
  return { dir, input, outcome };
}

test('the stream goes on past END to its end, and the snapshot takes its name with the Received UUID it was mapped to', receiveTest, async (t) => {
  const uuid = randomUuid();
  const onDisk = randomUuid();
  const raw = new SendStreamBuilder().subvol('sent-as', uuid).file('f', Buffer.from('x\n')).end().build();
  const { dir, input, outcome } = await started(t, raw, { mapUuids: (u) => (u === uuid ? onDisk : u), receivedUuid: onDisk });
  input.end();
  const result = await outcome;
  assert.ok('got' in result, String((result as { err: unknown }).err));
  assert.equal(result.got.path, path.join(dir, 'snap'));
  assert.deepEqual(await fs.readdir(dir), ['snap']);
  const shown = await btrfs.subvolumeShow(path.join(dir, 'snap'));
  assert.deepEqual([shown.receivedUuid, shown.readonly, result.got.uuid], [onDisk, true, shown.uuid]);
});

test('a stream that fails after btrfs receive exited at END (a refused end frame) leaves no snapshot and no partial', receiveTest, async (t) => {
  const raw = new SendStreamBuilder().subvol('snap', randomUuid()).file('f', Buffer.from('x\n')).end().build();
  const { dir, input, outcome } = await started(t, raw);
  const refused = new SnapferryError('frame_chain_mismatch', 'the end frame does not match');
  input.destroy(refused);
  const result = await outcome;
  assert.ok('err' in result, 'it failed');
  assert.equal(result.err, refused, 'with the stream\'s own error');
  assert.deepEqual(await fs.readdir(dir), []);
});

test('a subvolume without the expected Received UUID is receive_unchecked, and deleted', receiveTest, async (t) => {
  const raw = new SendStreamBuilder().subvol('snap', randomUuid()).end().build();
  const { dir, input, outcome } = await started(t, raw, { receivedUuid: randomUuid() });
  input.end();
  const result = await outcome;
  assert.ok('err' in result && result.err instanceof SnapferryError, 'it failed');
  assert.equal(result.err.code, 'receive_unchecked');
  assert.deepEqual(await fs.readdir(dir), []);
});

test('a subvolume not received on the subvolume it was to be received on (receivedOn) is receive_wrong_parent, and deleted', receiveTest, async (t) => {
  // btrfs receive takes an incremental's parent by identity anywhere on the filesystem; its Parent UUID tells which.
  // Here a full stream, received on nothing, where an incremental on a given subvolume was expected.
  const uuid = randomUuid();
  const raw = new SendStreamBuilder().subvol('snap', uuid).end().build();
  const expected = randomUuid();
  const { dir, input, outcome } = await started(t, raw, { receivedUuid: uuid, receivedOn: expected });
  input.end();
  const result = await outcome;
  assert.ok('err' in result && result.err instanceof SnapferryError, 'it failed');
  assert.equal(result.err.code, 'receive_wrong_parent');
  assert.match(result.err.message, new RegExp(`built snap on subvolume none, not on the parent named \\(${expected}\\)`));
  assert.deepEqual(await fs.readdir(dir), []);
});

/**
 * `--chroot` keeps a stream's symlinks inside the folder, not inside its subvolume: with `up -> /` in the snapshot,
 * `up/x` is the folder's x. In a folder that is the receiver's alone (the server's), what the stream put there goes.
 */
const planted = (uuid: string) =>
  new SendStreamBuilder()
    .subvol('snap', uuid)
    .symlink('up', '/')
    .mkfileAt('up/planted')
    .write('up/planted', Buffer.from('from the stream\n'))
    .symlink('up/planted-link', '/etc')
    .file('after', Buffer.from('x\n'))
    .end()
    .build();

/** Entries the folder held before the receive: they stay, whatever the stream does. */
async function userEntries(dir: string): Promise<void> {
  await fs.writeFile(path.join(dir, 'kept'), 'the user\'s\n');
  await fs.symlink('/nowhere', path.join(dir, 'kept-link'));
}

test('what a stream wrote beside its snapshot through its own symlink is deleted; what the folder held before stays', receiveTest, async (t) => {
  const uuid = randomUuid();
  const { dir, input, outcome } = await started(t, planted(uuid), { receivedUuid: uuid }, userEntries);
  input.end();
  const result = await outcome;
  assert.ok('got' in result, String((result as { err: unknown }).err));
  assert.equal(await fs.readlink(path.join(dir, 'snap', 'up')), '/', 'the stream did make its way out of the snapshot');
  assert.deepEqual((await fs.readdir(dir)).sort(), ['kept', 'kept-link', 'snap']);
  assert.equal(await fs.readFile(path.join(dir, 'kept'), 'utf8'), 'the user\'s\n');
});

test('a stream that fails after writing beside its snapshot leaves nothing of its own in the folder', receiveTest, async (t) => {
  const { dir, input, outcome } = await started(t, planted(randomUuid()), {}, userEntries);
  input.destroy(new SnapferryError('frame_chain_mismatch', 'the end frame does not match'));
  const result = await outcome;
  assert.ok('err' in result, 'it failed');
  assert.deepEqual((await fs.readdir(dir)).sort(), ['kept', 'kept-link']);
});

/**
 * A shared folder (a restore's DEST_DIR): a snapshot another program takes into it and a file a person writes there
 * while the receive runs are theirs, not the stream's, though both are new since the receive started. Taken from the
 * folder's own subvolume twice, as `snapferry snapshot` does: snapshots of one subvolume share their root's inode and
 * birth time, so an identity by those could not tell them apart either.
 */
async function othersWrite(dir: string): Promise<void> {
  const source = path.join(path.dirname(dir), 'home');
  if (!(await btrfs.isSubvolume(source))) await btrfs.createSubvolume(source);
  await btrfs.snapshot(source, path.join(dir, 'home.Y'), { readonly: true });
  await fs.writeFile(path.join(dir, 'NOTES.txt'), 'note\n');
}

async function startedShared(t: Parameters<typeof createBtrfs>[0], raw: Buffer, more: Partial<CheckedReceiveJob> = {}) {
  return started(t, raw, { folder: 'shared', ...more }, async (dir) => {
    // One snapshot of the same source there before: same root inode and birth time as the one taken meanwhile.
    const source = path.join(path.dirname(dir), 'home');
    await btrfs.createSubvolume(source);
    await btrfs.snapshot(source, path.join(dir, 'home.X'), { readonly: true });
  });
}

test('in a shared folder, what others wrote while the receive ran stays when it ends received', receiveTest, async (t) => {
  const uuid = randomUuid();
  const raw = new SendStreamBuilder().subvol('snap', uuid).file('f', Buffer.from('x\n')).end().build();
  const { dir, input, outcome } = await startedShared(t, raw, { receivedUuid: uuid });
  await othersWrite(dir);
  input.end();
  const result = await outcome;
  assert.ok('got' in result, String((result as { err: unknown }).err));
  assert.deepEqual((await fs.readdir(dir)).sort(), ['NOTES.txt', 'home.X', 'home.Y', 'snap']);
  assert.equal(await btrfs.isSubvolume(path.join(dir, 'home.Y')), true);
});

test('in a shared folder, a failed receive deletes its own partial only, never what others wrote meanwhile', receiveTest, async (t) => {
  const raw = new SendStreamBuilder().subvol('snap', randomUuid()).file('f', Buffer.from('x\n')).end().build();
  const { dir, input, outcome } = await startedShared(t, raw);
  await othersWrite(dir);
  input.destroy(new SnapferryError('frame_chain_mismatch', 'the end frame does not match'));
  const result = await outcome;
  assert.ok('err' in result, 'it failed');
  assert.deepEqual((await fs.readdir(dir)).sort(), ['NOTES.txt', 'home.X', 'home.Y']);
});

test('in a shared folder, an entry made under the snapshot\'s name meanwhile is not replaced: the name is taken', receiveTest, async (t) => {
  const uuid = randomUuid();
  const raw = new SendStreamBuilder().subvol('snap', uuid).end().build();
  const { dir, input, outcome } = await startedShared(t, raw, { receivedUuid: uuid });
  await fs.mkdir(path.join(dir, 'snap'));
  input.end();
  const result = await outcome;
  assert.ok('err' in result && result.err instanceof SnapferryError, 'it failed');
  assert.equal(result.err.code, 'taken');
  assert.deepEqual((await fs.readdir(dir)).sort(), ['home.X', 'snap']);
  assert.equal(await btrfs.isSubvolume(path.join(dir, 'snap')), false, 'the empty folder someone made is still there');
});
