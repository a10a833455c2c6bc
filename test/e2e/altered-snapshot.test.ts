/**
 * Received snapshots changed by hand on the server (issue 18, server/alterations.ts), on real btrfs: made writable
 * with `btrfs property set -f ... ro false` (which also clears the Received UUID), or through the SUBVOL_SETFLAGS
 * ioctl that older btrfs-progs used (the Received UUID stays, and `btrfs receive` would build on it without a word).
 * Such a snapshot is flagged and kept: in /v1/volumes, in its snapshot list, in /metrics; and never a parent: the
 * client's plan passes it over, and the server refuses an incremental that names it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { routes } from '../../core/protocol.ts';
import { assertReceived, createPair, recordingReporter, type Pair } from './harness.ts';
import { snapferry } from './processes.ts';

/** Three snapshots s1..s3 of the source, each after a change; s1 and s2 pushed (s2 on s1). */
async function twoPushed(pair: Pair, url: string): Promise<string[]> {
  const snaps = [];
  for (const name of ['s1', 's2', 's3']) {
    await fs.writeFile(path.join(pair.source, `change-${name}`), `${name}\n`);
    snaps.push(await pair.snapshot(name));
  }
  const sent = await push({ server: url, volume: 'home', snapshots: snaps.slice(0, 2) }, recordingReporter());
  assert.deepEqual(sent.sent.map((s) => [s.snapshot, s.parent]), [['s1', null], ['s2', 's1']]);
  return snaps;
}

/** BTRFS_IOC_SUBVOL_SETFLAGS with no flags: writable, Received UUID untouched (Node has no ioctl; python3 does). */
async function clearReadOnlyByIoctl(subvolume: string): Promise<void> {
  const script = 'import fcntl, os, struct, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nfcntl.ioctl(fd, 0x4008941a, struct.pack("Q", 0))\n';
  await execa('python3', ['-c', script, subvolume]);
}

async function metric(url: string, name: string): Promise<string[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(`${name}{`));
}

test('made writable by hand (-f clears the Received UUID): flagged at restart in the API and metrics, kept, and the next push builds on an intact parent', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  let server = await pair.startServer();
  const snaps = await twoPushed(pair, server.url);
  const s2 = pair.receivedPath('home', 's2');
  await execa('btrfs', ['property', 'set', '-f', '-ts', s2, 'ro', 'false']);
  await fs.writeFile(path.join(s2, 'written-by-hand'), 'not from the client\n');
  const shown = await btrfs.subvolumeShow(s2);
  assert.deepEqual([shown.readonly, shown.receivedUuid], [false, null], 'what btrfs-progs did to it');

  await server.close();
  server = await pair.startServer();
  const api = new ServerApi({ server: server.url });
  const volume = (await api.volumes()).volumes.find((v) => v.name === 'home');
  assert.deepEqual(volume?.altered, ['s2']);
  assert.equal(volume?.snapshots, 2, 'kept: listed, not forgotten');
  const list = await api.snapshots('home');
  const flagged = list.snapshots.find((s) => s.name === 's2');
  assert.deepEqual(flagged?.altered?.what, ['not_read_only', 'received_uuid_lost']);
  assert.ok(Number.isFinite(Date.parse(flagged?.altered?.foundAt ?? '')));
  assert.equal(list.snapshots.find((s) => s.name === 's1')?.altered, null);
  assert.deepEqual(list.removed, [], 'not recorded as removed');
  assert.deepEqual(await metric(server.url, 'snapferry_altered_snapshots'), ['snapferry_altered_snapshots{client="default",volume="home"} 1']);

  const report = recordingReporter();
  const next = await push({ server: server.url, volume: 'home', snapshots: [snaps[2]!] }, report);
  assert.deepEqual(next.sent.map((s) => [s.snapshot, s.parent]), [['s3', 's1']], 'built on s1, the newest intact one');
  assert.match(report.notes.join('\n'), /the server's copy of s2 was changed by hand on the server \(not_read_only, received_uuid_lost\), so it cannot be the parent of s3; using s1 as parent instead/);
  await assertReceived(snaps[2]!, pair.receivedPath('home', 's3'));
  assert.equal(await fs.readFile(path.join(s2, 'written-by-hand'), 'utf8'), 'not from the client\n', 'the changed snapshot is still there');

  // Nor is it the parent of a restore stream: the difference from the changed copy, applied to the client's.
  const restore = await fetch(`${server.url}${routes.restoreStream('home', 's3', { parent: flagged!.uuid, chunkSize: 64 * 1024 })}`);
  assert.equal(restore.status, 409);
  const body = (await restore.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'parent_altered');
  assert.match(body.error.message, /home\/s2 was changed by hand on the server \(not_read_only, received_uuid_lost\), so a restore cannot be sent from it; restore in full or from another parent/);
});

test('made writable while the server runs, Received UUID intact: the incremental that names it is refused with what happened, and the next push goes around it', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const snaps = await twoPushed(pair, server.url);
  const s2 = pair.receivedPath('home', 's2');
  await clearReadOnlyByIoctl(s2);
  await fs.writeFile(path.join(s2, 'written-by-hand'), 'not from the client\n');
  const shown = await btrfs.subvolumeShow(s2);
  assert.deepEqual([shown.readonly, shown.receivedUuid !== null], [false, true], 'btrfs receive would still find it as a parent');

  // The plan does not know yet (no restart since): it names s2, the server looks at it, refuses and flags it; the push
  // plans the step again on the listing that now says so, and sends s3 on s1 at once (it used to stop, exit 1, with
  // "push again", which was all the user could do).
  const report = recordingReporter();
  const again = await push({ server: server.url, volume: 'home', snapshots: [snaps[2]!], retries: 0 }, report);
  assert.deepEqual(again.sent.map((s) => [s.snapshot, s.parent]), [['s3', 's1']]);
  assert.deepEqual(report.started, [{ snapshot: 's3', parent: 's2' }, { snapshot: 's3', parent: 's1' }]);
  assert.ok(
    report.notes.some((n) => /^s3: not sent on s2: the server's copy of it was changed by hand there \(parent_altered\), so nothing is built on it; sending it on s1 instead$/.test(n)),
    report.notes.join('\n'),
  );
  await assertReceived(snaps[2]!, pair.receivedPath('home', 's3'));
  const list = await new ServerApi({ server: server.url }).snapshots('home');
  assert.deepEqual(list.snapshots.map((s) => [s.name, s.altered?.what ?? null]), [['s1', null], ['s2', ['not_read_only']], ['s3', null]]);
});

test('an upload in progress onto a snapshot found changed at restart fails with parent_altered; the next push goes around it', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  let server = await pair.startServer();
  const snaps = await twoPushed(pair, server.url);
  // s3 again, with 1.5 MB that do not compress, pushed at 64 KiB/s and cut once its upload has begun.
  await btrfs.deleteSubvolume(snaps[2]!);
  await fs.writeFile(path.join(pair.source, 'noise'), crypto.randomBytes(1536 * 1024));
  await pair.snapshot('s3');
  const controller = new AbortController();
  await push(
    { server: server.url, volume: 'home', snapshots: [snaps[2]!], chunkSize: 64 * 1024, limitRate: 64 * 1024, compress: 0, signal: controller.signal },
    { ...recordingReporter(), progress: () => controller.abort() },
  ).catch(() => undefined);
  const api = () => new ServerApi({ server: server.url });
  const cut = (await api().transfers()).transfers.find((x) => x.snapshot === 's3');
  assert.equal(cut?.state, 'uploading');
  for (let i = 0; i < 100 && server.service.inFlight(cut.id); i++) await sleep(100);
  await server.close();

  await execa('btrfs', ['property', 'set', '-f', '-ts', pair.receivedPath('home', 's2'), 'ro', 'false']);
  server = await pair.startServer();
  const failed = (await api().transfers()).transfers.find((x) => x.id === cut.id);
  assert.equal(failed?.state, 'failed');
  assert.equal(failed?.error?.code, 'parent_altered');
  assert.match(failed?.error?.message ?? '', /home\/s2, the parent this incremental would build on, was changed by hand/);

  const again = await push({ server: server.url, volume: 'home', snapshots: [snaps[2]!] }, recordingReporter());
  assert.deepEqual(again.sent.map((s) => [s.snapshot, s.parent]), [['s3', 's1']]);
  assert.notEqual(again.sent[0]?.transfer.id, cut.id, 'a new transfer');
  await assertReceived(snaps[2]!, pair.receivedPath('home', 's3'));
});

test('a snapshot made writable by hand and read-only again is not restored: 409 before and after a restart, and the CLI stops (exit 1) saying what the admin can do', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  let server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());
  const received = pair.receivedPath('home', 's1');
  await execa('btrfs', ['property', 'set', '-f', '-ts', received, 'ro', 'false']);
  await fs.writeFile(path.join(received, 'extra'), 't\n');
  await execa('btrfs', ['property', 'set', '-ts', received, 'ro', 'true']);
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);

  const restoreCli = () => snapferry(['restore', '--server', server.url, '--volume', 'home', '--chunk-size', '64k', 's1', dest]);
  // Not flagged yet (no restart since): its send names another subvolume, found before the answer starts.
  const before = await restoreCli();
  assert.equal(before.exitCode, 1, before.stderr);
  assert.match(before.stderr, /the server's copy of home\/s1 was changed on the server after it was received \(it sends as [0-9a-f-]+ from nothing, not as [0-9a-f-]+ from nothing\)/);
  assert.match(before.stderr, /delete it there \(btrfs subvolume delete\) and push it again/);
  assert.doesNotMatch(before.stderr, /resuming/, 'no retry: every try would send the same');

  await server.close();
  server = await pair.startServer();
  const res = await fetch(`${server.url}${routes.restoreStream('home', 's1', { chunkSize: 64 * 1024 })}`);
  assert.equal(res.status, 409);
  const body = (await res.json()) as { error: { code: string; retryable: boolean } };
  assert.deepEqual([body.error.code, body.error.retryable], ['snapshot_altered', false]);
  const after = await restoreCli();
  assert.equal(after.exitCode, 1, after.stderr);
  // Found at start, where its flags and Received UUID are read (not its ctransid: a btrfs send each).
  assert.match(after.stderr, /home\/s1 was changed on the server after it was received \(it is no longer read-only and has lost its Received UUID\)|home\/s1 was changed on the server after it was received \(it has lost its Received UUID\)/);
  assert.doesNotMatch(after.stderr, /resuming/);
  assert.deepEqual(await fs.readdir(dest).then((l) => l.filter((n) => n === 's1')), [], 'nothing received');
});

test('made writable by the ioctl, changed and made read-only again while serve runs (Received UUID kept): told by its ctransid, not restored (409, exit 1); a balance is no change', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  let server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());
  // A balance moves every subvolume's Generation on, and changes nothing in one: not an alteration, at restart either.
  await execa('btrfs', ['balance', 'start', '--full-balance', pair.server.mountPoint]);
  await server.close();
  server = await pair.startServer();
  const api = () => new ServerApi({ server: server.url });
  assert.deepEqual((await api().snapshots('home')).snapshots.map((s) => s.altered), [null]);

  const received = pair.receivedPath('home', 's1');
  await clearReadOnlyByIoctl(received);
  await fs.writeFile(path.join(received, 'extra'), 'not from the client\n');
  await execa('btrfs', ['property', 'set', '-ts', received, 'ro', 'true']);
  const shown = await btrfs.subvolumeShow(received);
  assert.deepEqual([shown.readonly, shown.receivedUuid !== null], [true, true], 'every flag as btrfs receive left it');

  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);
  const restored = await snapferry(['restore', '--server', server.url, '--volume', 'home', '--chunk-size', '64k', 's1', dest]);
  assert.equal(restored.exitCode, 1, restored.stderr);
  assert.match(restored.stderr, /the server's copy of home\/s1 was changed on the server after it was received \(it has been written to since it was received \(its ctransid moved on\)\)/);
  assert.match(restored.stderr, /delete it there \(btrfs subvolume delete\) and push it again/);
  assert.doesNotMatch(restored.stderr, /resuming/, 'no retry: every try would send the same');
  assert.deepEqual(await fs.readdir(dest).then((l) => l.filter((n) => n === 's1')), [], 'nothing received');

  const res = await fetch(`${server.url}${routes.restoreStream('home', 's1', { chunkSize: 64 * 1024 })}`);
  assert.equal(res.status, 409);
  const body = (await res.json()) as { error: { code: string; retryable: boolean } };
  assert.deepEqual([body.error.code, body.error.retryable], ['snapshot_altered', false]);
  // Flagged, and found so again at the restart's look at the disk.
  assert.deepEqual((await api().snapshots('home')).snapshots.map((s) => s.altered?.what), [['changed_since_received']]);
  await server.close();
  server = await pair.startServer();
  assert.deepEqual((await api().snapshots('home')).snapshots.map((s) => s.altered?.what), [['changed_since_received']]);
});
