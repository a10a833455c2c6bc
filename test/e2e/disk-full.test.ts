/**
 * A server disk that fills up mid-upload: the push pauses on 507 (retryable, the message says to free space), what
 * was acknowledged stays, and once space is freed the same upload goes on from there and the snapshot arrives whole.
 * One that fills up after the stream arrived whole, during its receive: the transfer waits with its spool, the push
 * exits 75 without sending anything again, and the server receives by itself once space is freed (issue 16).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import pino from 'pino';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import type { SnapferryError } from '../../core/errors.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import type { RunningServer } from '../../server/serve.ts';
import { DEFAULT_CLIENT } from '../../server/auth.ts';
import { namespacedUuid } from '../../server/uuid-namespace.ts';
import { fillUntilFull } from './fill-disk.ts';
import { assertReceived, createPair, recordingReporter, until, type Pair } from './harness.ts';

test('disk full on the server: 507 and retries, nothing acknowledged lost, done once space is freed', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { serverMiB: 128, fillMB: 16, seed: 'disk-full' });
  const logged: { level: number; msg: string; err?: unknown }[] = [];
  const server = await pair.startServer({ log: pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) }) });
  const s1 = await pair.snapshot('s1');

  // Leave a few MiB free: the upload starts, then runs out of space partway.
  const reserve = path.join(pair.server.mountPoint, 'reserve');
  await fs.writeFile(reserve, crypto.randomBytes(6 * 1024 * 1024));
  const filler = path.join(pair.server.mountPoint, 'filler');
  await fillUntilFull(filler);
  await fs.rm(reserve);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);

  const report = recordingReporter();
  // A push retries for ever: stop it when the test ends, whichever way, or it would keep the test file running.
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushing = push(
    { server: server.url, volume: 'v', snapshots: [s1], chunkSize: 256 * 1024, patchBytes: 1024 * 1024, pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal },
    report,
  );
  pushing.catch(() => undefined);
  const fullNote = () => report.notes.find((n) => /out of disk space/.test(n) && /free space/.test(n));
  await until('a disk-full retry note', () => fullNote() !== undefined, 120_000);
  // Said once per retry: by tus-js-client's short inner retries, then by the push loop's backoff.
  assert.match(fullNote()!, /trying again in|resuming from the server's offset/);

  const [transfer] = server.service.transferRecords({ volume: 'v' }).filter((x) => x.state === 'uploading');
  assert.ok(transfer, 'the upload is still open, not failed');
  const held = (await server.service.progress(transfer.id)).wireOffset;
  assert.ok(held > 0, 'part of the stream was acknowledged before the disk filled');
  // What `snapferry status` shows of it: the disk, not a cut of the line.
  assert.match(transfer.lastInterruption ?? '', /refused, the server's disk full, at byte/);

  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  const result = await pushing;
  assert.equal(result.sent[0]?.transfer.state, 'received');
  assert.equal(result.sent[0]?.transfer.id, transfer.id, 'the same upload went on; nothing was sent from scratch');
  // Resumed either within the upload (tus-js-client asks the offset) or by a new attempt that hashes up to it.
  assert.ok(report.notes.some((n) => /resuming at|resuming from the server's offset/.test(n)), `a resume from the acknowledged offset: ${report.notes.join(' | ')}`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  // The server's log: a full disk is the operator's to fix, said as a warning, not an error with a stack trace.
  const faults = logged.filter((l) => l.level >= 50);
  assert.deepEqual(faults.map((l) => l.msg), [], 'no error lines for a full disk');
  assert.ok(logged.some((l) => l.level === 40 && /disk full/.test(l.msg)), `a warning says the disk is full: ${logged.map((l) => l.msg).join(' | ')}`);
});

test('a receive beside the upload that fills the disk gives its room to the upload: the stream arrives whole and waits for space', { ...rootOnly, timeout: 240_000 }, async (t) => {
  // Zeros: a snapshot far larger than its compressed stream, and than the room left on the server.
  const pair = await createPair(t, { serverMiB: 256, fillMB: 2, seed: 'receive-takes-room' });
  await execa('dd', ['if=/dev/zero', `of=${path.join(pair.source, 'zeros')}`, 'bs=1M', 'count=160', 'status=none']);
  const s1 = await pair.snapshot('s1');
  const server = await pair.startServer({ receiveRetry: { firstMs: 300_000, maxMs: 300_000, checkMs: 200 } });
  const filler = path.join(pair.server.mountPoint, 'filler');
  await fs.writeFile(filler, crypto.randomBytes(100 * 1024 * 1024));
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  const uploads = countUploads(server);

  const stop = new AbortController();
  t.after(() => stop.abort());
  const report = recordingReporter();
  // Small PATCHes: the receive beside the upload runs ahead of the disk's room while much of the stream is still to come.
  const pushing = push(
    { server: server.url, volume: 'v', snapshots: [s1], chunkSize: 256 * 1024, patchBytes: 1024 * 1024, pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal },
    report,
  );
  pushing.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  // Before, the receive held the room and waited for frames that the full disk kept out: 507 for ever, the transfer
  // uploading. Now the upload ends whole, and the receive that follows it finds too little room and waits for it.
  const waiting = await until('the whole stream waiting for space', async () => {
    const [now] = (await api.transfers()).transfers;
    return now?.state === 'waiting_for_space' && now;
  }, 120_000, 100);
  assert.equal(waiting.wait?.reason, 'disk_full');
  const stopped = await pushing.then(() => null, (err: unknown) => err as SnapferryError);
  assert.equal(stopped?.code, 'receive_waiting', stopped?.message);
  const sent = { ...uploads };
  assert.equal(sent.POST, 1, 'one upload');

  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  await until('the snapshot received', async () => (await api.transfer(waiting.id)).state === 'received', 90_000, 200);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  assert.deepEqual(uploads, sent, 'nothing was sent again once the stream was whole');
});

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

/** Upload requests a server saw: a creation (POST) or bytes (PATCH) after the stream arrived whole would be a resend. */
function countUploads(server: RunningServer): { POST: number; PATCH: number } {
  const uploads = { POST: 0, PATCH: 0 };
  server.http.on('request', (req: { method?: string; url?: string }) => {
    if (req.url?.startsWith(UPLOADS_PATH) && (req.method === 'POST' || req.method === 'PATCH')) uploads[req.method]++;
  });
  return uploads;
}

/**
 * Pushes `snapshot` to a server that holds its receives, fills the server's disk once the stream is whole, and lets
 * the receive run: it runs out of space. Returns once the transfer waits for space, with the push (still running or
 * stopped) and the file that fills the disk.
 */
async function streamWaitingForSpace(t: TestContext, pair: Pair, server: RunningServer, snapshot: string, uploads = countUploads(server)) {
  // Whatever happens, the push must not outlive the test (one that retries for ever would keep the file running).
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushing = push({ server: server.url, volume: 'v', snapshots: [snapshot], pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal }, recordingReporter());
  pushing.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  const whole = await until('the whole stream on the server', async () => (await api.transfers()).transfers.find((x) => x.state === 'receiving'), 60_000, 50);
  const sentWhenWhole = { ...uploads };

  const filler = path.join(pair.server.mountPoint, 'filler');
  await fillUntilFull(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  server.service.resumeReceives();
  const waiting = await until('the transfer to wait for space', async () => {
    const now = await api.transfer(whole.id);
    return now.state === 'waiting_for_space' && now;
  }, 60_000, 100);
  return { api, pushing, waiting, filler, sentWhenWhole };
}

test('disk full during the receive: the transfer waits with its spool, push exits 75, nothing is sent twice, received once space is freed', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { serverMiB: 128, fillMB: 4, seed: 'receive-full' });
  // Receives held until the disk is full: the stream arrives whole first, then its receive finds no space. Its timer
  // is far off (a push waits for a try that is near): freed space is what starts it again.
  const server = await pair.startServer({ holdReceives: true, receiveRetry: { firstMs: 300_000, maxMs: 300_000, checkMs: 200 } });
  const s1 = await pair.snapshot('s1');
  const uploads = countUploads(server);
  const { api, pushing, waiting, filler, sentWhenWhole: sent } = await streamWaitingForSpace(t, pair, server, s1, uploads);
  assert.equal(sent.POST, 1);
  assert.deepEqual(uploads, sent, 'nothing was sent while the receive ran out of space');

  // The receive ran out of space: the transfer waits, keeps its spool, and says what it needs.
  assert.equal(waiting.wait?.reason, 'disk_full');
  assert.ok((waiting.wait?.neededBytes ?? 0) >= waiting.rawBytes, `needs at least the raw stream: ${JSON.stringify(waiting.wait)}`);
  assert.ok(waiting.wait?.freeBytes !== null && waiting.wait!.freeBytes! < waiting.wait!.neededBytes!, 'and says how little is free');
  assert.ok(Date.parse(waiting.wait!.nextTryAt) > 0);
  // Said by btrfs receive, or by the write of the folder's record before it (server/volume-folder.ts).
  assert.match(waiting.error?.message ?? '', /no space left on device/i);
  const spool = await fs.readdir(path.join(pair.root, 'spool'));
  assert.ok(spool.includes(waiting.id) && spool.includes(`${waiting.id}.frames`), 'the spool is kept');

  // The push that was waiting stops with a temporary failure that says the server has the stream.
  const stopped = await pushing.then(() => null, (err: unknown) => err as SnapferryError);
  assert.ok(stopped, 'the push did not succeed');
  assert.equal(stopped.code, 'receive_waiting', stopped.message);
  assert.equal(exitCodeFor(stopped), EXIT.temporary);
  assert.match(stopped.message, /whole stream/);
  assert.match(stopped.message, /free/);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /snapferry_transfers\{client="default",state="waiting_for_space"\} 1/);
  assert.match(metrics, /snapferry_waiting_raw_bytes\{client="default"\} [1-9]/);

  // The next push (the command, as a timer runs it) sends nothing: it finds the stream waiting and exits 75.
  const again = await execa('node', [BIN, 'push', '--server', server.url, '--volume', 'v', s1], { reject: false, timeout: 120_000 });
  assert.equal(again.exitCode, EXIT.temporary, again.stderr);
  assert.match(again.stderr, /whole stream/);
  const status = await execa('node', [BIN, 'status', '--server', server.url], { reject: false, timeout: 60_000 });
  assert.equal(status.exitCode, 0, status.stderr);
  assert.match(status.stdout, /waiting_for_space/);
  assert.deepEqual(uploads, sent, 'no upload request after the stream arrived whole');

  // Space freed: the server receives from its spool by itself.
  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  const received = await until('the snapshot received', async () => {
    const now = await api.transfer(waiting.id);
    return now.state === 'received' && now;
  }, 90_000, 200);
  assert.equal(received.wait, null);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  const shown = await btrfs.subvolumeShow(pair.receivedPath('v', 's1'));
  assert.ok(shown.readonly, 'received read-only');
  assert.equal(shown.receivedUuid, namespacedUuid(DEFAULT_CLIENT, (await btrfs.subvolumeShow(s1)).uuid));
  const left = await fs.readdir(path.join(pair.root, 'spool'));
  assert.ok(!left.some((f) => f.startsWith(waiting.id)), 'the spool is gone once received');

  const last = await push({ server: server.url, volume: 'v', snapshots: [s1] }, recordingReporter());
  assert.deepEqual(last.present, ['s1']);
  assert.deepEqual(uploads, sent, 'nothing was sent twice');
});

test('a stream waiting for space is received when the server starts again, with nothing sent again', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { serverMiB: 128, fillMB: 2, seed: 'receive-full-restart' });
  // No retry by timer or freed space in this one: only the restart may receive it.
  const first = await pair.startServer({ holdReceives: true, receiveRetry: { firstMs: 3_600_000, maxMs: 3_600_000, checkMs: 3_600_000 } });
  const s1 = await pair.snapshot('s1');
  const { waiting, filler } = await streamWaitingForSpace(t, pair, first, s1);
  await first.close();
  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);

  const second = await pair.startServer();
  const uploads = countUploads(second);
  await second.service.idle();
  const api = new ServerApi({ server: second.url });
  const after = await api.transfer(waiting.id);
  assert.deepEqual([after.state, after.wait, after.error], ['received', null, null]);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  const again = await push({ server: second.url, volume: 'v', snapshots: [s1] }, recordingReporter());
  assert.deepEqual(again.present, ['s1']);
  assert.deepEqual(uploads, { POST: 0, PATCH: 0 });
});
