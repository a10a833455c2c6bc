import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly, mutate } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { DEFAULT_CLIENT } from '../../server/auth.ts';
import { namespacedUuid } from '../../server/uuid-namespace.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

test('a full push: the server receives, checks and catalogs the snapshot, and drops the spool', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 16 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'home', snapshots: [s1], chunkSize: 256 * 1024 }, report);

  assert.deepEqual(result.sent.map((s) => [s.snapshot, s.parent]), [['s1', null]]);
  const received = pair.receivedPath('home', 's1');
  await assertReceived(s1, received);
  const shown = await btrfs.subvolumeShow(received);
  assert.equal(shown.readonly, true);
  // In the client's UUID namespace on the server (server/uuid-namespace.ts).
  assert.equal(shown.receivedUuid, namespacedUuid(DEFAULT_CLIENT, (await btrfs.subvolumeShow(s1)).uuid));

  const transfer = result.sent[0]!.transfer;
  assert.equal(transfer.state, 'received');
  assert.ok(transfer.framesVerified > 1, 'a 16 MB stream in 256 KiB chunks makes many frames');
  assert.deepEqual(await fs.readdir(path.join(pair.root, 'spool')), [], 'spool deleted after the receive');
  const listing = await fs.readdir(path.join(pair.root, 'volumes', 'default', 'home'));
  assert.deepEqual(listing, ['s1'], 'nothing but the snapshot in the volume folder');
  // The PATCH body a server on btrfs takes best, which the next push reads with this list.
  assert.equal((await new ServerApi({ server: server.url }).snapshots('home')).patchBytes, 8 * 1024 * 1024);
});

test('two incrementals take their parent from the server catalog; deletes and renames arrive', rootOnly, async (t) => {
  const pair = await createPair(t);
  const server = await pair.startServer();
  const api = new ServerApi({ server: server.url });
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());

  const changes = await mutate(pair.source, 'one');
  assert.ok(changes.some((c) => /delet|remov/i.test(c)) && changes.some((c) => /renam/i.test(c)), 'mutate deletes and renames');
  const s2 = await pair.snapshot('s2');
  const r2 = await push({ server: server.url, volume: 'home', snapshots: [s2] }, recordingReporter());
  assert.deepEqual(r2.sent.map((s) => [s.snapshot, s.parent]), [['s2', 's1']]);
  assert.equal(r2.sent[0]!.transfer.parentUuid, (await btrfs.subvolumeShow(s1)).uuid);
  await assertReceived(s2, pair.receivedPath('home', 's2'));

  await mutate(pair.source, 'two');
  const s3 = await pair.snapshot('s3');
  const r3 = await push({ server: server.url, volume: 'home', snapshots: [s3] }, recordingReporter());
  assert.deepEqual(r3.sent.map((s) => [s.snapshot, s.parent]), [['s3', 's2']]);
  await assertReceived(s3, pair.receivedPath('home', 's3'));
  // The incremental carried less than the full stream did.
  const list = await api.snapshots('home');
  const [full, inc] = [list.snapshots[0]!, list.snapshots[2]!];
  assert.ok(inc.wireBytes < full.wireBytes, `incremental ${inc.wireBytes} < full ${full.wireBytes}`);
  assert.deepEqual(list.snapshots.map((s) => s.name), ['s1', 's2', 's3']);
});

test('a subvolume whose name holds a newline, made by any user anywhere on the client filesystem, does not stop incrementals', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1] }, recordingReporter());
  // What an unprivileged user can make in a folder of their own: btrfs subvolume create needs no root there, and its
  // owner may make it read-only (the parent candidates are the filesystem's read-only subvolumes).
  await fs.mkdir(path.join(pair.client.mountPoint, 'users'));
  const odd = path.join(pair.client.mountPoint, 'users', 'x\ny');
  await btrfs.createSubvolume(odd);
  await btrfs.setReadonly(odd, true);
  await mutate(pair.source, 'newline-name');
  const s2 = await pair.snapshot('s2');
  const result = await push({ server: server.url, volume: 'v', snapshots: [s2] }, recordingReporter());
  assert.deepEqual(result.sent.map((s) => [s.snapshot, s.parent]), [['s2', 's1']]);
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});

test('a folder of five snapshots with two on the server sends the other three, oldest first', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const names = ['a', 'b', 'c', 'd', 'e'];
  const paths: string[] = [];
  for (const [i, n] of names.entries()) {
    await mutate(pair.source, `five-${i}`);
    paths.push(await pair.snapshot(n));
  }
  await push({ server: server.url, volume: 'v', snapshots: paths.slice(0, 2) }, recordingReporter());
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [pair.snaps] }, report);
  assert.deepEqual(result.present, ['a', 'b']);
  assert.deepEqual(result.sent.map((s) => [s.snapshot, s.parent]), [['c', 'b'], ['d', 'c'], ['e', 'd']]);
  for (const [i, n] of names.entries()) await assertReceived(paths[i]!, pair.receivedPath('v', n));

  const again = await push({ server: server.url, volume: 'v', snapshots: [pair.snaps] }, recordingReporter());
  assert.equal(again.sent.length, 0, 'a second push has nothing to do');
});

test('when an admin deleted the newest common snapshot, the client falls back and says so', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'x');
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s1, s2] }, recordingReporter());
  await btrfs.deleteSubvolume(pair.receivedPath('v', 's2'));

  await mutate(pair.source, 'y');
  const s3 = await pair.snapshot('s3');
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [s3] }, report);
  assert.deepEqual(result.sent.map((s) => [s.snapshot, s.parent]), [['s3', 's1']]);
  assert.match(report.notes.join('\n'), /no longer holds s2.*using s1 as parent/);
  await assertReceived(s3, pair.receivedPath('v', 's3'));

  // With every parent gone, a full send.
  await btrfs.deleteSubvolume(pair.receivedPath('v', 's1'));
  await btrfs.deleteSubvolume(pair.receivedPath('v', 's3'));
  await mutate(pair.source, 'z');
  const s4 = await pair.snapshot('s4');
  const report4 = recordingReporter();
  const r4 = await push({ server: server.url, volume: 'v', snapshots: [s4] }, report4);
  assert.deepEqual(r4.sent.map((s) => [s.snapshot, s.parent]), [['s4', null]]);
  assert.match(report4.notes.join('\n'), /sending it in full/);
  await assertReceived(s4, pair.receivedPath('v', 's4'));
});

test('a snapshot deleted on the server since it was received is sent again, not reported received from its old transfer', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const api = new ServerApi({ server: server.url });
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'gone-1');
  const s2 = await pair.snapshot('s2');
  const first = await push({ server: server.url, volume: 'v', snapshots: [s1, s2] }, recordingReporter());
  const before = first.sent[1]!.transfer;
  await btrfs.deleteSubvolume(pair.receivedPath('v', 's2'));

  const report = recordingReporter();
  const again = await push({ server: server.url, volume: 'v', snapshots: [s2] }, report);
  assert.deepEqual(again.sent.map((s) => [s.snapshot, s.parent]), [['s2', 's1']]);
  assert.notEqual(again.sent[0]!.transfer.id, before.id, 'a new transfer, not the old one taken for the answer');
  await assertReceived(s2, pair.receivedPath('v', 's2'));
  assert.deepEqual((await api.snapshots('v')).snapshots.map((s) => s.name), ['s1', 's2']);
  const said = report.notes.filter((n) => n.includes('no longer holds it'));
  assert.deepEqual(said, [`s2: the server received it before (transfer ${before.id}) but no longer holds it (deleted from disk); sending it again`]);

  const third = await push({ server: server.url, volume: 'v', snapshots: [pair.snaps] }, recordingReporter());
  assert.equal(third.sent.length, 0, 'held again: nothing more to send');
});

test('a writable subvolume is refused with a message that says what to do', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  await assert.rejects(
    push({ server: server.url, volume: 'v', snapshots: [pair.source] }, recordingReporter()),
    (err: Error & { code?: string }) => err.code === 'snapshot_not_readonly' && /btrfs subvolume snapshot -r/.test(err.message),
  );
  const api = new ServerApi({ server: server.url });
  assert.equal((await api.transfers()).transfers.length, 0, 'nothing reached the server');
});

test('a failed receive: the transfer says why, the client fails, the spool stays, nothing half-received remains', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  // Something an admin left where the snapshot should go: the receive must not overwrite or adopt it.
  await fs.mkdir(path.join(pair.root, 'volumes', 'default', 'v'), { recursive: true });
  await btrfs.createSubvolume(pair.receivedPath('v', 's1'));

  await assert.rejects(
    push({ server: server.url, volume: 'v', snapshots: [s1] }, recordingReporter()),
    (err: Error & { code?: string }) => err.code === 'snapshot_exists' && /already exists/.test(err.message),
  );
  const api = new ServerApi({ server: server.url });
  const [transfer] = (await api.transfers()).transfers;
  assert.equal(transfer?.state, 'failed');
  assert.equal(transfer?.error?.code, 'snapshot_exists');
  const spool = await fs.readdir(path.join(pair.root, 'spool'));
  assert.ok(spool.includes(transfer!.id), 'the spool is kept');
  const volumeDir = await fs.readdir(path.join(pair.root, 'volumes', 'default', 'v'));
  assert.deepEqual(volumeDir, ['s1'], 'no partial subvolume left behind');
  assert.equal((await btrfs.subvolumeShow(pair.receivedPath('v', 's1'))).receivedUuid, null, 'the admin subvolume is untouched');

  // The kept spool is an orphan: counted, shown with its transfer, and deleted by an abort (issue 16).
  assert.ok(transfer!.spoolBytes >= transfer!.wireOffset, `the transfer shows its spool: ${transfer!.spoolBytes}`);
  assert.deepEqual((await api.status()).orphanedSpools, { count: 1, bytes: transfer!.spoolBytes });
  // By the first digits `snapferry status` shows.
  const abort = await execa('node', [BIN, 'abort', '--server', server.url, transfer!.id.slice(0, 8)], { reject: false, timeout: 60_000 });
  assert.equal(abort.exitCode, 0, abort.stderr);
  assert.match(abort.stderr, new RegExp(`transfer ${transfer!.id} \\(v/s1\\) was failed; deleted its spool \\(`));
  const aborted = await api.transfer(transfer!.id);
  assert.deepEqual([aborted.state, aborted.error?.code, aborted.spoolBytes], ['failed', 'snapshot_exists', 0], 'still failed, with its reason');
  assert.ok(!(await fs.readdir(path.join(pair.root, 'spool'))).some((f) => f.startsWith(transfer!.id)), 'spool, index and tus record gone');
  assert.deepEqual((await api.status()).orphanedSpools, { count: 0, bytes: 0 });
});

test('a push stopped midway leaves nothing that looks received, and says it was cancelled', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 24 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const controller = new AbortController();
  const report = recordingReporter();
  report.progress = ({ wireBytes }) => {
    if (wireBytes > 0) controller.abort();
  };
  await assert.rejects(
    push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 64 * 1024, patchBytes: 256 * 1024, signal: controller.signal }, report),
    (err: Error & { code?: string }) => ['cancelled', 'btrfs_cancelled'].includes(err.code ?? ''),
  );
  const api = new ServerApi({ server: server.url });
  const [transfer] = (await api.transfers()).transfers;
  assert.equal(transfer?.state, 'uploading', 'the end frame never arrived, so nothing is received');
  assert.ok(transfer.wireOffset < 20 * 1024 * 1024);
  assert.deepEqual((await api.snapshots('v')).snapshots, []);
  // The receive runs beside the upload, so its staging subvolume may be there; never anything under a snapshot name.
  const volumeDir = path.join(pair.root, 'volumes', 'default', 'v');
  const left = await fs.readdir(volumeDir).catch(() => []);
  assert.ok(left.every((n) => n === `.incoming-${transfer.id}`), `only the receive in progress, under its staging name: ${left.join(', ')}`);
});
