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
    dir, name: 'snap', stagingName: '.incoming-1', input, check: new SendStreamCheck(), receivedUuid: uuid,
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

/**
 * `--chroot` keeps a stream's symlinks inside the folder, not inside its subvolume: with `up -> /` in the snapshot,
 * `up/x` is the folder's x. A restore receives into the user's DEST_DIR, so what the stream put there would stay.
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
