// Two pushes of one snapshot at once, through the command as a user runs it: the second waits for the first without
// repeating itself, says once why it waits, and both end well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly, mutate } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { push } from '../../client/push/push.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

test('a second push of a snapshot another push is uploading waits quietly, naming the cause once', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 6 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const args = ['push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', s1];
  const first = execa('node', [BIN, ...args], { reject: false, timeout: 120_000 });
  const api = new ServerApi({ server: server.url });
  await until('the first push uploads', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.wireOffset > 0));
  const second = await execa('node', [BIN, ...args], { reject: false, timeout: 120_000 });
  const one = await first;
  assert.equal(one.exitCode, EXIT.ok, one.stderr);
  assert.equal(second.exitCode, EXIT.ok, second.stderr);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
  // Each way the wait is said: transfer_locked, or a bare 409 ("(409)", "answered 409"); not any "409" (a rate of
  // 409.6 KiB/s on a progress line is none).
  const waits = second.stderr.split('\n').filter((l) => /another push holds this upload|\(409\)|answered 409|transfer_locked/.test(l));
  assert.ok(waits.length <= 1, `said more than once:\n${second.stderr}`);
  assert.doesNotMatch(second.stderr, /answered 409: ?;/);
});

test('a push that waited for another push into the volume sends on the parent that push left, not on the older one it planned', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  assert.equal((await execa('node', [BIN, 'push', '--server', server.url, '--volume', 'home', s1], { reject: false })).exitCode, EXIT.ok);
  // s2 carries 6 MB that s3 has too: on s1, s3's stream would carry them again; on s2, only what changed after it.
  await fs.writeFile(path.join(pair.source, 'big'), crypto.randomBytes(6 * 1024 * 1024));
  const s2 = await pair.snapshot('s2');
  await mutate(pair.source, 'after-s2');
  const s3 = await pair.snapshot('s3');
  const first = execa('node', [BIN, 'push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', s2], { reject: false, timeout: 120_000 });
  const api = new ServerApi({ server: server.url });
  await until('the first push uploads s2', async () => (await api.transfers()).transfers.find((x) => x.snapshot === 's2' && x.state === 'uploading' && x.wireOffset > 0));
  const report = recordingReporter();
  const second = await push({ server: server.url, volume: 'home', snapshots: [s3], backoff: { baseMs: 200, maxMs: 1000 } }, report);
  assert.equal((await first).exitCode, EXIT.ok);
  assert.equal(second.sent[0]!.parent, 's2', `sent on ${second.sent[0]!.parent}:\n${report.notes.join('\n')}`);
  assert.ok(second.sent[0]!.transfer.rawBytes < 4 * 1024 * 1024, `s3 carried ${second.sent[0]!.transfer.rawBytes} raw bytes`);
  assert.ok(report.notes.some((n) => /s3: another push sent s2 meanwhile, a newer parent than s1: planned again on it/.test(n)), report.notes.join('\n'));
  assert.ok(!report.notes.some((n) => /resuming from the server's offset/.test(n)), `a wait for the volume is no resume:\n${report.notes.join('\n')}`);
  await assertReceived(s3, pair.receivedPath('home', 's3'));
});

test('a push that waited for a receive into the volume plans again once it is over, not on a listing read while it went on', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const s1 = await pair.snapshot('s1');
  const before = await pair.startServer();
  assert.equal((await execa('node', [BIN, 'push', '--server', before.url, '--volume', 'home', s1], { reject: false })).exitCode, EXIT.ok);
  await before.close();
  // From here on a receive waits for the test: s2's holds the volume, as a long one does, while s3's push waits.
  const server = await pair.startServer({ holdReceives: true });
  await fs.writeFile(path.join(pair.source, 'big'), crypto.randomBytes(6 * 1024 * 1024));
  const s2 = await pair.snapshot('s2');
  await mutate(pair.source, 'after-s2');
  const s3 = await pair.snapshot('s3');
  const first = execa('node', [BIN, 'push', '--server', server.url, '--volume', 'home', s2], { reject: false, timeout: 120_000 });
  const api = new ServerApi({ server: server.url });
  const held = await until('s2 uploaded whole', async () => (await api.transfers()).transfers.find((x) => x.snapshot === 's2' && x.state !== 'uploading'));
  // The race, made certain: a listing the waiting push asks for while s2 is still being received is read then, and
  // answered only once s2 is received and the volume free again (as a slow answer would be).
  const report = recordingReporter();
  const waiting = () => report.notes.some((n) => /holds the volume while the server receives it/.test(n));
  const listing = server.service.snapshots.bind(server.service);
  let resumed = false;
  const resume = () => {
    resumed = true;
    server.service.resumeReceives();
  };
  server.service.snapshots = async (client, volume) => {
    const answer = await listing(client, volume);
    if (waiting() && !resumed) {
      resume();
      await until('s2 received', async () => (await api.transfer(held.id)).state === 'received', 60_000, 100);
    }
    return answer;
  };
  const second = push({ server: server.url, volume: 'home', snapshots: [s3], backoff: { baseMs: 200, maxMs: 1000 } }, report);
  // A push that asks nothing while s2 is received: its receive goes on a few tries into the wait.
  await until('the second push waits', async () => waiting() || undefined, 60_000, 50);
  await new Promise((r) => setTimeout(r, 2500));
  if (!resumed) resume();
  const sent = await second;
  assert.equal((await first).exitCode, EXIT.ok);
  assert.equal(sent.sent[0]!.parent, 's2', `sent on ${sent.sent[0]!.parent}:\n${report.notes.join('\n')}`);
  await assertReceived(s3, pair.receivedPath('home', 's3'));
});
