/**
 * Abandoned uploads expire (issue 7): a push stopped midway leaves an upload that, once no request touched it for
 * the period (and its lease ran out), the server deletes, spool and index, failing the transfer with upload_expired
 * and a log line. The client that comes back starts a new upload from zero and says why. An upload whose PATCH is in
 * flight never expires, however long a frame takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { gatherStatus } from '../../client/status/data.ts';
import { NO_COMPRESSION } from '../../core/wire/index.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { assertReceived, createPair, pushPart, recordingReporter, until, type Pair } from './harness.ts';
import { SNAPFERRY_BIN } from './processes.ts';

const slow = { ...rootOnly, timeout: 300_000 };

/** A server whose log lines the test can read. */
async function serverWithLog(pair: Pair, options: { expireAfterMs: number; leaseMs: number }) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const server = await pair.startServer({ log: pino({ level: 'info' }, sink), ...options });
  return { server, logs: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('an abandoned upload expires once idle past the period and its lease: spool freed, transfer failed, logged; the client starts over and says why', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 12, seed: 'expiry' });
  const leaseMs = 6000;
  const { server, logs } = await serverWithLog(pair, { expireAfterMs: 1500, leaseMs });
  const s1 = await pair.snapshot('s1');
  const api = new ServerApi({ server: server.url });

  const partial = await pushPart(server, s1, 4);
  const spool = path.join(pair.root, 'spool');
  assert.ok((await fs.readdir(spool)).includes(`${partial.id}.frames`), 'the unfinished upload is in the spool');
  // Past the period, but the aborted push's lease still holds the upload.
  await sleep(1500);
  assert.equal((await api.transfer(partial.id)).state, 'uploading', 'an upload within its lease does not expire');

  const expired = await until('the expiry', async () => {
    const now = await api.transfer(partial.id);
    return now.state !== 'uploading' && now;
  }, 30_000);
  assert.equal(expired.state, 'failed');
  assert.equal(expired.error?.code, 'upload_expired');
  assert.match(expired.error!.message, /no data arrived for \d+s \(the server expires unfinished uploads after 2s\)/);
  const details = expired.error!.details as { idleMs: number; wireBytes: number };
  assert.ok(details.idleMs >= leaseMs, `expired after ${details.idleMs} ms idle, within the lease of ${leaseMs} ms`);
  assert.ok(details.wireBytes >= partial.wireOffset && details.wireBytes > 0);
  // The transfer shows failed as soon as it is decided (no request may take the upload up after that); the files go
  // just after, and the log line says so once they have.
  const line = await until('the log line', () => Promise.resolve(logs().find((l) => l.msg === 'abandoned upload expired; spool freed')), 10_000);
  assert.deepEqual((await fs.readdir(spool)).filter((f) => f.startsWith(partial.id)), [], 'spool, index and tus record deleted');
  // The receive that ran beside the upload is stopped and its partial subvolume deleted.
  const volumeDir = path.join(pair.root, 'volumes', 'default', 'v');
  await until('the partial receive to go', async () => (await fs.readdir(volumeDir).catch(() => [])).length === 0, 10_000);
  assert.equal(line?.transfer, partial.id, 'one log line names the transfer');
  assert.equal(line?.level, 40, 'logged as a warning');

  // tus: a server that keeps track of expired uploads answers 410 Gone; the body says why.
  const uploadUrl = `${server.url}${UPLOADS_PATH}/${partial.id}`;
  const head = await fetch(uploadUrl, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.status, 410);
  const patch = await fetch(uploadUrl, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(partial.wireOffset), 'Content-Type': 'application/offset+octet-stream' },
    body: Buffer.alloc(16),
  });
  assert.equal(patch.status, 410);
  assert.equal(((await patch.json()) as { error: { code: string } }).error.code, 'upload_expired');

  const status = await gatherStatus(api, server.url, {});
  assert.equal(status.lastError?.code, 'upload_expired', '`snapferry status` shows it as the last error');
  assert.deepEqual(status.inFlight, []);

  const report = recordingReporter();
  const again = await push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 64 * 1024 }, report);
  const transfer = again.sent[0]!.transfer;
  assert.notEqual(transfer.id, partial.id, 'a new upload');
  assert.match(report.notes.join('\n'), /s1: the server expired the unfinished upload after \S+ without data \(\S+ \S+ of it had arrived\); starting over/);
  assert.doesNotMatch(report.notes.join('\n'), /resuming at/, 'from zero');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('a push whose frames each take longer than the expiry period is never expired while its PATCH is in flight', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 3, seed: 'expiry-slow' });
  const server = await pair.startServer({ expireAfterMs: 1000, leaseMs: 500 });
  const s1 = await pair.snapshot('s1');
  const report = recordingReporter();
  const started = Date.now();
  // 1 MiB frames, uncompressed, at 256 KiB/s: about 4 s between two verified frames, four times the period, and
  // PATCHes that start well after the upload's creation + period (when @tus/server itself would answer 410). An
  // expiry would show as a retry that starts over: one is allowed, so the test fails fast rather than loops.
  const result = await push(
    { server: server.url, volume: 'v', snapshots: [s1], chunkSize: 1024 * 1024, patchBytes: 1024 * 1024, compress: NO_COMPRESSION, limitRate: 256 * 1024, retries: 1 },
    report,
  );
  t.diagnostic(`pushed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(Date.now() - started > 3000, 'the push lasted several periods');
  assert.equal(result.sent[0]!.transfer.state, 'received');
  assert.doesNotMatch(report.notes.join('\n'), /expired/);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('serve --expire-after takes a duration or 0, and refuses a bare number', async () => {
  const serve = (value: string) =>
    execa('node', [SNAPFERRY_BIN, 'serve', '--root', '/nonexistent-snapferry-root', '--no-auth', '--expire-after', value], { reject: false, timeout: 60_000 });
  const bare = await serve('7');
  assert.notEqual(bare.exitCode, 0);
  assert.match(bare.stderr, /--expire-after.*expected a duration like 90s, 30m, 1h, 1h30m, 7d or 2w/);
  // Valid values get past the command line, to the root check.
  for (const ok of ['0', '36h']) {
    const r = await serve(ok);
    assert.doesNotMatch(r.stderr, /expire-after/, r.stderr);
    assert.match(r.stderr, /nonexistent-snapferry-root/);
  }
});
