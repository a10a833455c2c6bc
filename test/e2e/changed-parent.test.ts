/**
 * A parent snapshot changed on the client after it was pushed (made writable, written to, made read-only again): an
 * incremental from it describes the new snapshot as changes from the parent as it is now, while the server holds it
 * as it was sent. btrfs receive compares nothing, so the stream either applied cleanly and left the server's copy
 * different, reported received (the tester's case), or failed on a path the server's copy lacks
 * (`sendstream_cannot_apply`). The server now refuses it at its first frame (`parent_changed`: the stream's
 * CLONE_CTRANSID is not the parent's Send transid), and push sends the snapshot again from an intact parent, or in
 * full, saying why; later pushes do not try that parent again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

/** What the tester did to P: writable, one file rewritten, read-only again. */
async function changeParent(parent: string, file: string, text: string): Promise<void> {
  await execa('btrfs', ['property', 'set', '-ts', parent, 'ro', 'false']);
  await fs.writeFile(path.join(parent, file), text);
  await execa('btrfs', ['property', 'set', '-ts', parent, 'ro', 'true']);
}

test('the tester\'s case: a parent changed after it was pushed, its change reflinked into the source: the new snapshot reaches the server as it is here, sent around that parent', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 2, seed: 'changed-parent' });
  const server = await pair.startServer();
  await fs.writeFile(path.join(pair.source, 'new.txt'), 'old content\n');
  const p = await pair.snapshot('P');
  await push({ server: server.url, volume: 'home', snapshots: [p], retries: 0 }, recordingReporter());

  await changeParent(p, 'new.txt', 'CHANGED IN PARENT\n');
  // The same inode in the source, sharing P's new extent: btrfs send from P finds nothing to send for it.
  await execa('cp', ['--reflink=always', path.join(p, 'new.txt'), path.join(pair.source, 'new.txt')]);
  const s = await pair.snapshot('S');

  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'home', snapshots: [s], retries: 0 }, report);
  // Before: S was sent on P, reported received, and the server's S/new.txt held "old content".
  await assertReceived(s, pair.receivedPath('home', 'S'));
  assert.equal(await fs.readFile(path.join(pair.receivedPath('home', 'S'), 'new.txt'), 'utf8'), 'CHANGED IN PARENT\n');
  assert.deepEqual(result.sent.map((x) => [x.snapshot, x.parent]), [['S', null]], 'no intact parent is left: S goes in full');
  const why = report.notes.filter((n) => /parent_changed/.test(n));
  assert.equal(why.length, 1, report.notes.join('\n'));
  assert.match(why[0]!, /^S: not sent on P: P on this machine was changed after it was sent/);
  assert.match(why[0]!, /sending it in full instead/);

  // The server says what it refused, on the failed transfer.
  const refused = (await new ServerApi({ server: server.url }).transfers()).transfers.filter((x) => x.error?.code === 'parent_changed');
  assert.equal(refused.length, 1);
  assert.match(refused[0]!.error!.message, /the client's P, the parent of this incremental, was changed after it was sent/);

  // The next push builds on S and never tries P again.
  await fs.writeFile(path.join(pair.source, 'after.txt'), 'after\n');
  const s2 = await pair.snapshot('S2');
  const next = recordingReporter();
  const again = await push({ server: server.url, volume: 'home', snapshots: [s2], retries: 0 }, next);
  assert.deepEqual(again.sent.map((x) => [x.snapshot, x.parent]), [['S2', 'S']]);
  assert.deepEqual(next.notes.filter((n) => /parent_changed/.test(n)), []);
  await assertReceived(s2, pair.receivedPath('home', 'S2'));
});

test('a parent changed after it was pushed, with an older intact one: the incremental goes on that one, and a push that stopped half-way does not try the changed one again', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 2, seed: 'changed-parent-2' });
  const server = await pair.startServer();
  const api = new ServerApi({ server: server.url });
  const snaps = [];
  for (const name of ['s1', 's2']) {
    await fs.writeFile(path.join(pair.source, `change-${name}`), `${name}\n`);
    snaps.push(await pair.snapshot(name));
  }
  await push({ server: server.url, volume: 'home', snapshots: snaps, retries: 0 }, recordingReporter());
  // A file s2 never had: from the changed s2, btrfs send unlinks it, which the server's s2 lacks (before:
  // sendstream_cannot_apply, exit 1, and the user had to move s2 out of the way by hand).
  await changeParent(snaps[1]!, 'tampered.txt', 'x\n');
  const s3 = await pair.snapshot('s3');

  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'home', snapshots: [s3], retries: 0 }, report);
  assert.deepEqual(result.sent.map((x) => [x.snapshot, x.parent]), [['s3', 's1']]);
  assert.deepEqual(report.started, [{ snapshot: 's3', parent: 's2' }, { snapshot: 's3', parent: 's1' }]);
  assert.ok(report.notes.some((n) => /^s3: not sent on s2: s2 on this machine was changed after it was sent.*sending it on s1 instead$/.test(n)), report.notes.join('\n'));
  await assertReceived(s3, pair.receivedPath('home', 's3'));

  // The failed transfer of s3 (refused as parent_changed) has nothing left to give: no spool of it is left, and none
  // counts against the quota or is listed as a spool of an ended transfer.
  const ended = (await api.transfers()).transfers.filter((x) => x.snapshot === 's3' && x.state === 'failed');
  assert.deepEqual(ended.map((x) => x.error?.code), ['parent_changed']);
  assert.deepEqual(ended.map((x) => x.spoolBytes), [0]);
  const left = await fs.readdir(path.join(pair.root, 'spool'));
  assert.deepEqual(left.filter((f) => ended.some((x) => f.startsWith(x.id))), [], 'no file of their spools is left');
  assert.deepEqual((await api.status()).orphanedSpools, { count: 0, bytes: 0 });

  // A later push plans from what the server recorded: s2 is passed over from the start, with one line that says why.
  const s4 = await pair.snapshot('s4');
  await execa('btrfs', ['subvolume', 'delete', pair.receivedPath('home', 's3')]);
  const later = recordingReporter();
  const plan = await push({ server: server.url, volume: 'home', snapshots: [s4], dryRun: true }, later);
  assert.deepEqual(plan.planned?.map((x) => [x.snapshot, x.parent]), [['s4', 's1']]);
  assert.ok(later.notes.some((n) => /^s2 on this machine was changed after it was sent .*parent_changed.*using s1 as parent instead$/.test(n)), later.notes.join('\n'));
});
