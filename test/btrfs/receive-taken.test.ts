/**
 * "cannot open PATH" from btrfs receive convicts the stream only while the subvolume it builds is still there: taken
 * from under a running receive (an admin, a failing disk), every later path fails with the very message a hostile
 * stream gets, and that failure is the server's, which a receive from the spool may heal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { receive } from '../../core/btrfs/receive.ts';
import { deleteSubvolume } from '../../core/btrfs/subvolume.ts';
import { BtrfsCommandError } from '../../core/btrfs/errors.ts';

const data = Buffer.alloc(4096, 7);

async function until(what: string, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Receives `head`, then does `meanwhile` once head's file is there, then the rest of `whole`; the receive's failure. */
async function receiveInTwo(target: string, head: Buffer, whole: Buffer, meanwhile: () => Promise<void>): Promise<unknown> {
  assert.ok(whole.subarray(0, head.length).equals(head), 'head is a prefix of the whole stream');
  const input = new PassThrough();
  const receiving = receive(target, input, { chroot: true }).then(() => null, (err: unknown) => err);
  input.write(head);
  await until('the file of the first part', () => fs.access(path.join(target, 'snap', 'f')).then(() => true, () => false));
  await meanwhile();
  input.end(whole.subarray(head.length));
  return receiving;
}

test("a path that no longer resolves because the receive's own subvolume was taken away is not the stream's fault", rootOnly, async (t) => {
  const fsx = await createBtrfs(t);
  const target = path.join(fsx.mountPoint, 'v');
  await fs.mkdir(target);
  const uuid = randomUuid();
  // g is made in the first part and written in the second: receive opens it then (f's open descriptor it would reuse).
  const head = new SendStreamBuilder().subvol('snap', uuid).file('f', data).mkfileAt('g').build();
  const whole = new SendStreamBuilder().subvol('snap', uuid).file('f', data).mkfileAt('g').write('g', data).end().build();
  const err = await receiveInTwo(target, head, whole, () => deleteSubvolume(path.join(target, 'snap')));
  assert.ok(err instanceof BtrfsCommandError, String(err));
  assert.match(err.stderrTail, /cannot open \S*snap\/g: No such file or directory/, 'the message a hostile stream gets too');
  assert.notEqual(err.code, 'sendstream_cannot_apply', err.message);
});

test('with its subvolume in place, a stream that writes a file it never made is convicted', rootOnly, async (t) => {
  const fsx = await createBtrfs(t);
  const target = path.join(fsx.mountPoint, 'v');
  await fs.mkdir(target);
  const uuid = randomUuid();
  const head = new SendStreamBuilder().subvol('snap', uuid).file('f', data).build();
  const whole = new SendStreamBuilder().subvol('snap', uuid).file('f', data).write('g', data).end().build();
  const err = await receiveInTwo(target, head, whole, async () => {});
  assert.ok(err instanceof BtrfsCommandError, String(err));
  assert.equal(err.code, 'sendstream_cannot_apply', err.message);
});
