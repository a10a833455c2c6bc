/**
 * A stream that can never fit on the server's filesystem, however much is freed: its spool (kept until it is
 * received) and the snapshot its receive writes are more than the filesystem's whole size. Before, its transfer
 * waited for space for ever and every push exited 75, "free space on the server", which could never be enough. Now
 * the server says the filesystem is too small for it, how big both are, and that the server root needs a bigger
 * disk: in its log, in the transfer's status, and in push's error (exit 1: running again cannot help). Nothing
 * received is deleted: once the filesystem is grown, the server receives the stream from its spool by itself.
 * The same said partway through the upload, when the spool fills the disk and the rest of the stream (by the client's
 * estimate) cannot fit even on the empty filesystem: before, a 507 to wait out, and exit 75 on every run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { rootOnly } from '../fixtures/btrfs.ts';
import type { SnapferryError } from '../../core/errors.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { assertReceived, createPair, recordingReporter, until, type Pair } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const MiB = 1024 * 1024;

test('a stream too big for the server\'s filesystem even empty: said so, with the sizes and what to do; received once the filesystem grows', { ...rootOnly, timeout: 300_000 }, async (t) => {
  // 192 MiB of btrfs holds about 116 MB of data: room for the stream's spool (100 MiB of random bytes, which no
  // compression shrinks), not for the spool and the snapshot beside it, which are more than the filesystem's size.
  const pair = await createPair(t, { serverMiB: 192, fillMB: 1, seed: 'too-small' });
  await execa('dd', ['if=/dev/urandom', `of=${path.join(pair.source, 'noise')}`, 'bs=1M', 'count=100', 'status=none']);
  const s1 = await pair.snapshot('s1');
  const logged: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  // Receives held while the stream arrives: the spool alone fits; its receive then runs out of space.
  const server = await pair.startServer({ log, holdReceives: true, receiveRetry: { firstMs: 300_000, maxMs: 300_000, checkMs: 200 } });
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushing = push({ server: server.url, volume: 'v', snapshots: [s1], pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal }, recordingReporter());
  pushing.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  const whole = await until('the whole stream on the server', async () => (await api.transfers()).transfers.find((x) => x.state === 'receiving'), 120_000, 100);
  server.service.resumeReceives();

  const waiting = await until('the stream waiting for space', async () => {
    const now = await api.transfer(whole.id);
    return now.state === 'waiting_for_space' && now;
  }, 120_000, 100);
  const total = (await fs.statfs(pair.server.mountPoint)).blocks * (await fs.statfs(pair.server.mountPoint)).bsize;
  assert.equal(waiting.wait?.reason, 'disk_full');
  assert.equal(waiting.wait?.filesystemBytes, total, JSON.stringify(waiting.wait));
  assert.ok(waiting.spoolBytes + (waiting.wait?.neededBytes ?? 0) > total);
  // Before: the receive's own ENOSPC, and a wait for freed space that could never be enough.
  assert.equal(waiting.error?.code, 'filesystem_too_small', waiting.error?.message);
  assert.match(waiting.error?.message ?? '', /the server's filesystem is too small for this stream: it needs about \d+\.\d MiB \(its spool, \d+\.\d MiB/);
  assert.match(waiting.error?.message ?? '', /is 192\.0 MiB in all/);
  assert.match(waiting.error?.message ?? '', /bigger disk/);
  assert.match(waiting.error?.message ?? '', /no space left on device/i, 'what the receive said is kept');
  // Logged as the state is recorded, and read here perhaps a turn before the line reaches the log.
  await until('the warning in the log', async () => logged.some((l) => l.level === 40 && /too small for this stream/.test(l.msg)), 10_000, 50).catch(() => {
    assert.fail(`no warning that the filesystem is too small: ${logged.map((l) => l.msg).join(' | ')}`);
  });
  const spool = await fs.readdir(path.join(pair.root, 'spool'));
  assert.ok(spool.includes(waiting.id) && spool.includes(`${waiting.id}.frames`), 'the spool is kept');

  // The push says it, and that running again cannot help: exit 1, not 75.
  const stopped = await pushing.then(() => null, (err: unknown) => err as SnapferryError);
  assert.ok(stopped, 'the push did not succeed');
  assert.equal(stopped.code, 'server_filesystem_too_small', stopped.message);
  assert.equal(exitCodeFor(stopped), EXIT.failed);
  assert.match(stopped.message, /too small for this stream/);
  assert.match(stopped.message, /bigger disk/);
  const status = await execa('node', [BIN, 'status', '--server', server.url], { reject: false, timeout: 60_000 });
  assert.equal(status.exitCode, 0, status.stderr);
  assert.match(status.stdout.replace(/\s+/g, ' '), /filesystem is too small for this stream/);

  // A bigger disk for the server root: the same filesystem grown. The server receives from its spool by itself.
  await grow(pair, 400);
  await until('the snapshot received', async () => (await api.transfer(waiting.id)).state === 'received', 120_000, 200);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('an upload too big for the server\'s filesystem even empty, stopped by a full disk partway: said so, not "free space"; it goes on once the filesystem grows', { ...rootOnly, timeout: 300_000 }, async (t) => {
  // 240 MiB of random bytes (no compression shrinks them) on a server filesystem of 192 MiB: the spool fills the disk
  // partway, and the rest of the stream, by the client's estimate, is more than the filesystem could hold empty.
  const pair = await createPair(t, { serverMiB: 192, fillMB: 1, seed: 'too-small-partway' });
  await execa('dd', ['if=/dev/urandom', `of=${path.join(pair.source, 'noise')}`, 'bs=1M', 'count=240', 'status=none']);
  const s1 = await pair.snapshot('s1');
  const logged: { level: number; msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  // Receives held, so that the spool alone fills the disk.
  const server = await pair.startServer({ log, holdReceives: true });
  const stop = new AbortController();
  t.after(() => stop.abort());
  const report = recordingReporter();
  // A few retries: before, each 507 was a pause to wait out, and the push ended once they were spent (exit 75).
  const first = await push({ server: server.url, volume: 'v', snapshots: [s1], pollMs: 50, retries: 2, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal }, report)
    .then(() => null, (err: unknown) => err as SnapferryError);
  assert.ok(first, 'the push did not succeed');
  const total = (await fs.statfs(pair.server.mountPoint)).blocks * (await fs.statfs(pair.server.mountPoint)).bsize;
  // Before: disk_full, exit 75, "free space on the server", on this run and every later one.
  assert.equal(first.code, 'filesystem_too_small', first.message);
  assert.equal(exitCodeFor(first), EXIT.failed);
  assert.match(first.message, /the server's filesystem is too small for this stream: its upload needs about \d+\.\d MiB \(its spool so far, \d+\.\d MiB/);
  assert.match(first.message, /is 192\.0 MiB in all/);
  assert.match(first.message, /bigger disk/);
  assert.doesNotMatch(first.message, /free space on the server/);
  assert.ok(Number(first.details.neededBytes) > total, JSON.stringify(first.details));
  assert.ok(!report.notes.some((n) => /out of disk space/.test(n)), `no retries of a refusal that waiting cannot heal: ${report.notes.join(' | ')}`);
  await until('the warning in the log', async () => logged.some((l) => l.level === 40 && /too small for this stream/.test(l.msg)), 10_000, 50).catch(() => {
    assert.fail(`no warning that the filesystem is too small: ${logged.map((l) => l.msg).join(' | ')}`);
  });
  // The upload and what arrived of it are kept.
  const [open] = server.service.transferRecords({ volume: 'v' }).filter((x) => x.state === 'uploading');
  assert.ok(open, 'the upload is still open, not failed');
  const held = (await server.service.progress(open.id)).wireOffset;
  assert.ok(held > 0, 'part of the stream was acknowledged before the disk filled');

  // A bigger disk (room for the spool and the snapshot beside it): the next push goes on from where the first stopped.
  await grow(pair, 640);
  server.service.resumeReceives();
  const result = await push({ server: server.url, volume: 'v', snapshots: [s1], pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal }, recordingReporter());
  assert.equal(result.sent[0]?.transfer.state, 'received');
  assert.equal(result.sent[0]?.transfer.id, open.id, 'the same upload went on; nothing was sent from scratch');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

/** The server root's filesystem grown to `mib` MiB, as an admin gives it a bigger disk. */
async function grow(pair: Pair, mib: number): Promise<void> {
  await execa('truncate', ['-s', `${mib * MiB}`, pair.server.imagePath]);
  await execa('losetup', ['-c', pair.server.device]);
  await execa('btrfs', ['filesystem', 'resize', 'max', pair.server.mountPoint]);
}
