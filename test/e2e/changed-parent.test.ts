/**
 * A parent snapshot changed on the client after it was pushed (made writable, a file added, made read-only again):
 * the incremental from it names a path (an unlink of the added file) that the server's copy of the parent does not
 * have. btrfs receive fails the same way however often it runs, so the transfer fails at once with
 * `sendstream_cannot_apply` instead of waiting to retry for ever and holding the volume busy (`volume_busy`), and the
 * push says what to do: the next push, with the changed parent out of the way, builds on an intact one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { waitingStates } from '../../core/protocol.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

test('an incremental from a parent changed on the client after it was pushed fails at once as cannot-apply, does not hold the volume, and the next push goes around the parent', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const api = new ServerApi({ server: server.url });
  const snaps = [];
  for (const name of ['s1', 's2']) {
    await fs.writeFile(path.join(pair.source, `change-${name}`), `${name}\n`);
    snaps.push(await pair.snapshot(name));
  }
  const sent = await push({ server: server.url, volume: 'home', snapshots: snaps }, recordingReporter());
  assert.deepEqual(sent.sent.map((s) => [s.snapshot, s.parent]), [['s1', null], ['s2', 's1']]);

  // The tester's case: s2 on the client gains a file after it was sent; the source never had it.
  const s2 = snaps[1]!;
  await execa('btrfs', ['property', 'set', '-ts', s2, 'ro', 'false']);
  await fs.writeFile(path.join(s2, 'tampered.txt'), 'x\n');
  await execa('btrfs', ['property', 'set', '-ts', s2, 'ro', 'true']);
  const s3 = await pair.snapshot('s3');

  const started = Date.now();
  const err = await push({ server: server.url, volume: 'home', snapshots: [s3] }, recordingReporter()).then(
    () => assert.fail('an incremental that unlinks a file the server does not have cannot be received'),
    (e: unknown) => e as Error & { code?: string },
  );
  assert.equal(err.code, 'sendstream_cannot_apply', err.message);
  assert.equal(exitCodeFor(err), EXIT.failed, 'not a temporary failure (exit 75): running push again as it is cannot help');
  assert.match(err.message, /unlink tampered\.txt failed: No such file or directory/, 'the line of btrfs receive that convicts the stream');
  // What to do next, as the README says: s2 here differs from the server's copy; out of the way, push again.
  assert.match(err.message, /s3 is an incremental on s2, and s2 on this machine differs from the server's copy of it/);
  assert.match(err.message, /btrfs property set -ts \S*s2 ro false/);
  assert.ok(Date.now() - started < 30_000, `failed within seconds, not after the server's retries (${Date.now() - started} ms)`);

  // The server does not retry it: the transfer is failed, and stays failed past the first retry's time (5 s).
  await sleep(6000);
  const transfers = (await api.transfers()).transfers.filter((x) => x.volume === 'home' && x.snapshot === 's3');
  assert.deepEqual(transfers.map((x) => [x.state, x.error?.code, x.wait]), [['failed', 'sendstream_cannot_apply', null]]);
  assert.deepEqual((await api.transfers()).transfers.filter((x) => waitingStates.includes(x.state)), [], 'nothing waits to be received again');

  // The volume is not held: the same push fails the same way (a new transfer), not with volume_busy.
  const again = await push({ server: server.url, volume: 'home', snapshots: [s3] }, recordingReporter()).then(
    () => assert.fail('the same incremental cannot be received either'),
    (e: unknown) => e as Error & { code?: string },
  );
  assert.equal(again.code, 'sendstream_cannot_apply', again.message);

  // What the message says to do: the changed s2 made writable is no parent, so the push builds s3 on s1.
  await execa('btrfs', ['property', 'set', '-ts', s2, 'ro', 'false']);
  const fixed = await push({ server: server.url, volume: 'home', snapshots: [s3] }, recordingReporter());
  assert.deepEqual(fixed.sent.map((s) => [s.snapshot, s.parent]), [['s3', 's1']]);
  await assertReceived(s3, pair.receivedPath('home', 's3'));

  // The two failed transfers of s3 have nothing left to give: their spools went when s3 was received, not 7 days
  // later (they counted against the quota and were listed as spools of ended transfers until then).
  const ended = (await api.transfers()).transfers.filter((x) => x.snapshot === 's3' && x.state === 'failed');
  assert.equal(ended.length, 2);
  assert.deepEqual(ended.map((x) => x.spoolBytes), [0, 0]);
  const left = await fs.readdir(path.join(pair.root, 'spool'));
  assert.deepEqual(left.filter((f) => ended.some((x) => f.startsWith(x.id))), [], 'no file of their spools is left');
  assert.deepEqual((await api.status()).orphanedSpools, { count: 0, bytes: 0 });
});
