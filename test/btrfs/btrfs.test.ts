// core/btrfs against real btrfs on loop devices: what the parsers read, what send and receive carry, and how every
// failure surfaces. Needs root (skipped with a message otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { BtrfsCommandError } from '../../core/btrfs/index.ts';
import { SnapferryError } from '../../core/errors.ts';
import { createBtrfs, fillVaried, mutate, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import { assertTreesEqual } from '../fixtures/tree.ts';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A sink that reads nothing after the first `n` bytes are in, so btrfs send blocks on a full pipe. */
function devNull(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

/** A source filesystem with a filled subvolume `vol` and its read-only snapshot `s1`. */
async function sourceWithSnapshot(t: Parameters<typeof createBtrfs>[0], sizeMB = 2) {
  const fs = await createBtrfs(t);
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 7, sizeMB });
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  return { fs, vol, s1: `${fs.mountPoint}/s1` };
}

test('show, list, isSubvolume, snapshot, ro property and delete on a real filesystem', rootOnly, async (t) => {
  const { fs, vol, s1 } = await sourceWithSnapshot(t, 1);
  const volInfo = await btrfs.subvolumeShow(vol);
  const snapInfo = await btrfs.subvolumeShow(s1);
  assert.equal(volInfo.name, 'vol');
  assert.equal(volInfo.path, 'vol');
  assert.equal(volInfo.readonly, false);
  assert.equal(volInfo.parentUuid, null);
  assert.equal(snapInfo.readonly, true);
  assert.equal(snapInfo.parentUuid, volInfo.uuid);
  assert.notEqual(snapInfo.uuid, volInfo.uuid);
  assert.equal(snapInfo.receivedUuid, null);
  assert.deepEqual(volInfo.snapshots, ['s1']);
  assert.ok(snapInfo.creationTime !== null && Math.abs(snapInfo.creationTime.getTime() - Date.now()) < 120_000);

  await mkdir(`${fs.mountPoint}/snaps dir`);
  const spaced = `${fs.mountPoint}/snaps dir/-s2 with space`;
  await btrfs.snapshot(vol, spaced);
  const all = await btrfs.subvolumeList(fs.mountPoint);
  assert.deepEqual(all.map((e) => e.path).sort(), ['s1', 'snaps dir/-s2 with space', 'vol']);
  const listedS1 = all.find((e) => e.path === 's1');
  assert.equal(listedS1?.uuid, snapInfo.uuid);
  assert.equal(listedS1?.parentUuid, volInfo.uuid);
  assert.equal(listedS1?.id, snapInfo.subvolumeId);
  assert.equal(listedS1?.absolutePath, s1);
  assert.equal(all.find((e) => e.path.startsWith('snaps'))?.absolutePath, spaced);
  const readonlyOnes = await btrfs.subvolumeList(`${fs.mountPoint}/vol/text`, { readonlyOnly: true });
  assert.deepEqual(readonlyOnes.map((e) => e.path), ['s1']);

  assert.equal(await btrfs.isSubvolume(vol), true);
  assert.equal(await btrfs.isSubvolume(s1), true);
  assert.equal(await btrfs.isSubvolume(fs.mountPoint), true);
  assert.equal(await btrfs.isSubvolume(`${vol}/text`), false);
  assert.equal(await btrfs.isSubvolume(`${vol}/text/t-000.txt`), false);
  assert.equal(await btrfs.isSubvolume(`${vol}/missing`), false);
  assert.equal(await btrfs.isSubvolume(`${vol}/text/t-000.txt/below-a-file`), false);
  assert.equal(await btrfs.isSubvolume(fs.imagePath.replace(/image$/, '')), false);

  assert.equal(await btrfs.getReadonly(spaced), false);
  await btrfs.setReadonly(spaced, true);
  assert.equal(await btrfs.getReadonly(spaced), true);
  assert.equal((await btrfs.subvolumeShow(spaced)).readonly, true);
  await btrfs.setReadonly(spaced, false);
  assert.equal(await btrfs.getReadonly(spaced), false);
  await assert.rejects(btrfs.getReadonly(`${vol}/text`), (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.match(err.stderrTail, /ERROR/);
    return true;
  });
  await assert.rejects(btrfs.subvolumeShow(`${vol}/text`), /Not a Btrfs subvolume/);

  await btrfs.deleteSubvolume(spaced);
  assert.equal(await btrfs.isSubvolume(spaced), false);
  await btrfs.deleteSubvolume(s1, { commit: false });
  assert.deepEqual((await btrfs.subvolumeList(fs.mountPoint)).map((e) => e.path), ['vol']);
  await assert.rejects(btrfs.createSubvolume(vol), (err: unknown) => err instanceof BtrfsCommandError && /exists/.test(err.message));
});

test('full then incremental send/receive reproduce the tree exactly, received UUIDs set', rootOnly, async (t) => {
  const { fs, vol, s1 } = await sourceWithSnapshot(t, 8);
  const target = await createBtrfs(t);
  const s1Info = await btrfs.subvolumeShow(s1);

  const full = btrfs.send(s1);
  assert.equal(await btrfs.receive(target.mountPoint, full.stream), 's1');
  await full.done;
  const r1 = await btrfs.subvolumeShow(`${target.mountPoint}/s1`);
  assert.equal(r1.receivedUuid, s1Info.uuid);
  assert.equal(r1.readonly, true);
  await assertTreesEqual(s1, `${target.mountPoint}/s1`);

  const changes = await mutate(vol, 7);
  t.diagnostic(changes.join('; '));
  const s2 = `${fs.mountPoint}/s2`;
  await snapshotReadonly(vol, s2);
  const incremental = btrfs.send(s2, { parent: s1 });
  assert.equal(await btrfs.receive(target.mountPoint, incremental.stream), 's2');
  await incremental.done;
  const r2 = await btrfs.subvolumeShow(`${target.mountPoint}/s2`);
  assert.equal(r2.receivedUuid, (await btrfs.subvolumeShow(s2)).uuid);
  assert.equal(r2.readonly, true);
  // The received s2 is a snapshot of the received s1: that is what made the stream incremental.
  assert.equal(r2.parentUuid, r1.uuid);
  await assertTreesEqual(s2, `${target.mountPoint}/s2`);
  // The old snapshot is untouched, and the change really was a change.
  await assertTreesEqual(s1, `${target.mountPoint}/s1`);
  await assert.rejects(assertTreesEqual(s1, s2), /only in a/);
  const deleted = changes.find((c) => c.startsWith('deleted '))?.slice('deleted '.length);
  assert.ok(deleted !== undefined);
  await assert.rejects(stat(`${target.mountPoint}/s2/${deleted}`), { code: 'ENOENT' });

  const listed = await btrfs.subvolumeList(target.mountPoint, { readonlyOnly: true });
  assert.deepEqual(
    listed.map((e) => [e.path, e.receivedUuid]),
    [['s1', s1Info.uuid], ['s2', r2.receivedUuid]],
  );
});

test('the send stream of the same snapshots is byte-identical run to run (resume relies on it)', rootOnly, async (t) => {
  const { vol, fs, s1 } = await sourceWithSnapshot(t, 2);
  await mutate(vol, 1);
  const s2 = `${fs.mountPoint}/s2`;
  await snapshotReadonly(vol, s2);
  const hashes: string[] = [];
  for (let run = 0; run < 2; run++) {
    for (const handle of [btrfs.send(s1), btrfs.send(s2, { parent: s1 })]) {
      hashes.push(sha256(await collect(handle.stream)));
      await handle.done;
    }
  }
  assert.equal(hashes[0], hashes[2]);
  assert.equal(hashes[1], hashes[3]);
  assert.notEqual(hashes[0], hashes[1]);
});

test('a failed send rejects done with the stderr tail, and its stream errors instead of ending', rootOnly, async (t) => {
  const { fs, vol } = await sourceWithSnapshot(t, 1);
  const missing = btrfs.send(`${fs.mountPoint}/no such snapshot`);
  await assert.rejects(missing.done, (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.ok(err instanceof SnapferryError);
    assert.equal(err.code, 'btrfs_failed');
    assert.equal(err.exitCode, 1);
    assert.equal(err.signal, null);
    assert.deepEqual(err.command, ['btrfs', 'send', '--', `${fs.mountPoint}/no such snapshot`]);
    assert.match(err.stderrTail, /ERROR: unable to resolve/);
    assert.match(err.message, /^btrfs send -- '.*no such snapshot' exited with code 1:\nERROR: unable to resolve/);
    return true;
  });
  await assert.rejects(pipeline(missing.stream, devNull()), BtrfsCommandError);
  // A caller that never touches the stream still learns of the failure from `done`, without an uncaught 'error'.
  await assert.rejects(btrfs.send(`${fs.mountPoint}/no such snapshot`).done, /unable to resolve/);

  // Not read-only: btrfs refuses after it started, the classic "empty stream that looked finished".
  const writable = btrfs.send(vol);
  await assert.rejects(collect(writable.stream), /is not read-only/);
  await assert.rejects(writable.done, /is not read-only/);
});

test('aborting a send kills btrfs send; done and the stream fail as cancelled', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 4);
  const controller = new AbortController();
  const handle = btrfs.send(s1, { signal: controller.signal });
  const streamError = once(handle.stream, 'error');
  // Read one chunk, then stop reading: btrfs send blocks on the full pipe until it is killed.
  await once(handle.stream, 'readable');
  // Let btrfs fill the pipe: what it leaves there unread must not keep `done` from settling.
  await sleep(300);
  controller.abort();
  await assert.rejects(handle.done, (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.equal(err.code, 'btrfs_cancelled');
    assert.equal(err.cancelled, true);
    assert.equal(err.signal, 'SIGTERM');
    return true;
  });
  const [error] = (await streamError) as [BtrfsCommandError];
  assert.equal(error.code, 'btrfs_cancelled');
  assert.equal(handle.stream.destroyed, true);
});

test('closing the send stream early stops btrfs send', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 4);
  const handle = btrfs.send(s1);
  for await (const chunk of handle.stream) {
    assert.ok((chunk as Buffer).length > 0);
    break; // for-await's break destroys the stream
  }
  await assert.rejects(handle.done, (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.equal(err.code, 'btrfs_cancelled');
    assert.match(err.message, /consumer closed the send stream/);
    return true;
  });
});

test('receive of garbage or of nothing is a BtrfsCommandError with what btrfs said', rootOnly, async (t) => {
  const target = await createBtrfs(t);
  const garbage = Readable.from([Buffer.from('this is not a btrfs send stream, not even its header'.repeat(100))]);
  await assert.rejects(btrfs.receive(target.mountPoint, garbage), (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.equal(err.code, 'btrfs_failed');
    assert.equal(err.exitCode, 1);
    assert.match(err.stderrTail, /ERROR/);
    assert.equal(err.details.subvolume, null);
    return true;
  });
  assert.equal(garbage.destroyed, true);
  await assert.rejects(btrfs.receive(target.mountPoint, Readable.from([])), /empty stream/);
  await assert.rejects(btrfs.receive(`${target.mountPoint}/missing-dir`, Readable.from([Buffer.alloc(10)])), BtrfsCommandError);
  assert.deepEqual(await readdir(target.mountPoint), []);
});

/** A source whose first `bytes` come from `data`, then fails with `error` once `ready()` says so. */
function breakingSource(data: Buffer, bytes: number, error: Error, ready: () => Promise<void>): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(data.subarray(0, bytes));
      void ready().then(() => this.destroy(error));
    },
  });
}

test('an input error kills receive: btrfs_input_failed, cause kept, partial subvolume named', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 2);
  const target = await createBtrfs(t);
  const whole = await collect(btrfs.send(s1).stream);
  const linkCut = new SnapferryError('network_error', 'link cut', { retryable: true });
  const partial = `${target.mountPoint}/s1`;
  const waitForSubvolume = async (): Promise<void> => {
    for (let i = 0; i < 100 && !(await btrfs.isSubvolume(partial)); i++) await sleep(20);
  };
  const input = breakingSource(whole, Math.floor(whole.length / 2), linkCut, waitForSubvolume);
  await assert.rejects(btrfs.receive(target.mountPoint, input), (err: unknown) => {
    assert.ok(err instanceof BtrfsCommandError);
    assert.equal(err.code, 'btrfs_input_failed');
    assert.equal(err.cause, linkCut);
    assert.equal(err.retryable, true);
    assert.equal(err.details.subvolume, 's1');
    assert.match(err.message, /its input failed: link cut/);
    return true;
  });
  // What is left is a partial subvolume that no one can take for a received one.
  const left = await btrfs.subvolumeShow(partial);
  assert.equal(left.receivedUuid, null);
  assert.equal(left.readonly, false);
});

test('receive rejects a stream cut at a command boundary before its END command', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 1);
  const target = await createBtrfs(t);
  const whole = await collect(btrfs.send(s1).stream);
  // Stream header: 13-byte magic + u32 version; each command: u32 length, u16 type, u32 crc, then length bytes.
  let end = 17;
  let lastCommand = 17;
  while (end < whole.length) {
    lastCommand = end;
    end += 10 + whole.readUInt32LE(end);
  }
  assert.equal(whole.readUInt16LE(lastCommand + 4), 21, 'the last command is END (21)');
  await assert.rejects(btrfs.receive(target.mountPoint, Readable.from([whole.subarray(0, lastCommand)])), /unexpected EOF/);
  assert.equal((await btrfs.subvolumeShow(`${target.mountPoint}/s1`)).receivedUuid, null);
  // The same bytes with END are received whole: the test above failed for the cut alone.
  await btrfs.deleteSubvolume(`${target.mountPoint}/s1`);
  assert.equal(await btrfs.receive(target.mountPoint, Readable.from([whole])), 's1');
});

test('receive: --dump names the subvolume and writes nothing; --chroot and -E pass; abort cancels', rootOnly, async (t) => {
  const { s1 } = await sourceWithSnapshot(t, 1);
  const target = await createBtrfs(t);
  const whole = await collect(btrfs.send(s1).stream);
  assert.equal(await btrfs.receive('/nonexistent', Readable.from([whole]), { dumpOnly: true }), 's1');
  assert.deepEqual(await readdir(target.mountPoint), []);

  await mkdir(`${target.mountPoint}/jail`);
  assert.equal(await btrfs.receive(`${target.mountPoint}/jail`, Readable.from([whole]), { chroot: true, maxErrors: 1 }), 's1');
  assert.equal((await btrfs.subvolumeShow(`${target.mountPoint}/jail/s1`)).readonly, true);

  const controller = new AbortController();
  // A stream that starts and then stalls, as a dead link would.
  const stalled = new Readable({ read() {} });
  stalled.push(whole.subarray(0, 4096));
  const receiving = btrfs.receive(target.mountPoint, stalled, { signal: controller.signal });
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(receiving, (err: unknown) => err instanceof BtrfsCommandError && err.code === 'btrfs_cancelled');
  assert.equal(stalled.destroyed, true);
});

test('proto 2 with compressed data from a compress=zstd filesystem', rootOnly, async (t) => {
  const source = await createBtrfs(t, { mountOptions: ['compress=zstd'] });
  const target = await createBtrfs(t);
  const vol = `${source.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 11, sizeMB: 2 });
  await writeFile(`${vol}/very-compressible.txt`, 'snapferry '.repeat(200_000));
  await snapshotReadonly(vol, `${source.mountPoint}/s1`);
  const handle = btrfs.send(`${source.mountPoint}/s1`, { proto: 2, compressedData: true });
  assert.equal(await btrfs.receive(target.mountPoint, handle.stream), 's1');
  await handle.done;
  await assertTreesEqual(`${source.mountPoint}/s1`, `${target.mountPoint}/s1`);
});

test('without btrfs on PATH the error says to install btrfs-progs', async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await assert.rejects(btrfs.subvolumeShow('/'), (err: unknown) => {
      assert.ok(err instanceof BtrfsCommandError);
      assert.equal(err.code, 'btrfs_failed');
      assert.equal(err.exitCode, null);
      assert.match(err.message, /could not start: btrfs is not installed \(install btrfs-progs\)/);
      return true;
    });
  } finally {
    process.env.PATH = saved;
  }
});
