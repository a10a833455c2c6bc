// An unfinished upload holds its volume (one per volume): a push that meets one of its own client's it cannot wait
// out ends it or sends it first, and says so; it waited in silence for ever before. One a live push sends it waits
// for, even when it lacks its snapshot: that push may run on another machine under the same client name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { createBtrfs, fillVaried, rootOnly, mutate, snapshotReadonly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { push } from '../../client/push/push.ts';
import { assertReceived, createPair, pushPart, recordingReporter, until } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

// Retries bounded, so a push that would wait for ever fails (retries_exhausted) instead of hanging the test.
const quick = { backoff: { baseMs: 100, maxMs: 300 }, retries: 4 };

/** s1 received, then s2's upload on it stopped after 2 frames: what an interrupted incremental leaves. */
async function incrementalLeftUnfinished(t: Parameters<typeof createPair>[0]) {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1] }, recordingReporter());
  await fs.writeFile(path.join(pair.source, 'big'), crypto.randomBytes(3 * 1024 * 1024));
  const s2 = await pair.snapshot('s2');
  const partial = await pushPart(server, s2, 2);
  return { pair, server, s1, s2, partial };
}

test('an incremental whose parent an admin deleted on the server fails there (parent_missing), and the next push goes on', rootOnly, async (t) => {
  const { pair, server, s1, s2, partial } = await incrementalLeftUnfinished(t);
  await execa('btrfs', ['subvolume', 'delete', pair.receivedPath('v', 's1')]);
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [s1, s2], ...quick }, report);
  assert.deepEqual(result.sent.map((s) => s.snapshot), ['s1', 's2'], report.notes.join('\n'));
  assert.ok(!report.notes.some((n) => /holds the volume|already in progress/.test(n)), report.notes.join('\n'));
  const api = new ServerApi({ server: server.url });
  const ended = await api.transfer(partial.id);
  assert.equal(ended.state, 'failed');
  assert.equal(ended.error?.code, 'parent_missing');
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});

test('an upload whose parent was deleted while the server was down fails at start (parent_missing)', rootOnly, async (t) => {
  const { pair, server, partial } = await incrementalLeftUnfinished(t);
  await server.close();
  await execa('btrfs', ['subvolume', 'delete', pair.receivedPath('v', 's1')]);
  const again = await pair.startServer();
  const ended = await new ServerApi({ server: again.url }).transfer(partial.id);
  assert.equal(ended.state, 'failed', JSON.stringify(ended));
  assert.equal(ended.error?.code, 'parent_missing');
});

test('an upload of a snapshot deleted here is ended, and the newer one is sent', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const partial = await pushPart(server, s1, 2);
  // The stopped push's btrfs send may hold s1 a moment longer (EPERM until it is gone).
  await until('s1 deleted here', async () => (await execa('btrfs', ['subvolume', 'delete', s1], { reject: false })).exitCode === 0 || undefined);
  await mutate(pair.source, 'after-s1');
  const s2 = await pair.snapshot('s2');
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [s2], ...quick }, report);
  assert.deepEqual(result.sent.map((s) => s.snapshot), ['s2'], report.notes.join('\n'));
  assert.ok(report.notes.some((n) => n.includes(`ending transfer ${partial.id}`) && /s1 is no longer here/.test(n)), report.notes.join('\n'));
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});

test('a push of a newer snapshot sends the older one whose upload holds the volume first, then its own on it', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const partial = await pushPart(server, s1, 2);
  await mutate(pair.source, 'after-s1');
  const s2 = await pair.snapshot('s2');
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [s2], ...quick }, report);
  assert.ok(report.notes.some((n) => n.includes(`(transfer ${partial.id}) holds the volume: sending it first`)), report.notes.join('\n'));
  assert.equal(result.sent[0]?.parent, 's1', report.notes.join('\n'));
  const api = new ServerApi({ server: server.url });
  assert.equal((await api.transfer(partial.id)).state, 'received');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});

test('a push from another machine under the same client name waits for the upload a live push sends, and does not end it', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 6 });
  // A lease that outlasts A being held still below, between two of its PATCHes too.
  const server = await pair.startServer({ leaseMs: 30_000 });
  const sA = await pair.snapshot('sA');
  // Machine B: its own filesystem, so sA is not there, with its own source pushed to the same volume name.
  const b = await createBtrfs(t, { sizeMiB: 256 });
  const sourceB = path.join(b.mountPoint, 'data');
  await btrfs.createSubvolume(sourceB);
  await fillVaried(sourceB, { seed: 'machine-b', sizeMB: 1 });
  const sB = path.join(b.mountPoint, 'sB');
  await snapshotReadonly(sourceB, sB);
  const pushA = execa('node', [BIN, 'push', '--server', server.url, '--volume', 'v', '--compress', 'none', '--limit-rate', '1M', sA], { reject: false, timeout: 120_000 });
  const api = new ServerApi({ server: server.url });
  const sending = await until('A uploads sA', async () => (await api.transfers()).transfers.find((x) => x.snapshot === 'sA' && x.state === 'uploading' && x.wireOffset > 0));
  // A is held still until B has found the volume held: at 1 MB/s A's upload could end before B's first try on a busy
  // machine (in CI, B's first try came while sA was being received).
  process.kill(pushA.pid!, 'SIGSTOP');
  const goOn = () => void (pushA.exitCode === null && pushA.signalCode === null && process.kill(pushA.pid!, 'SIGCONT'));
  t.after(goOn);
  const report = recordingReporter();
  const stopB = new AbortController();
  // Retries enough to outlast A's upload: B is stopped once A is over, whatever it does then.
  const pushB = push({ server: server.url, volume: 'v', snapshots: [sB], backoff: { baseMs: 200, maxMs: 1000 }, retries: 1000, signal: stopB.signal }, report).catch((err: unknown) => err);
  await until('B finds the volume held', () => report.notes.some((n) => n.includes(`transfer ${sending.id} of sA holds the volume`)), 30_000).finally(goOn);
  const a = await pushA;
  stopB.abort();
  await pushB;
  const said = `A:\n${a.stderr}\nB:\n${report.notes.join('\n')}`;
  assert.ok(!report.notes.some((n) => n.includes('ending transfer')), said);
  assert.equal((await api.transfer(sending.id)).state, 'received', said);
  assert.equal(a.exitCode, EXIT.ok, said);
  assert.ok(report.notes.some((n) => n.includes(`transfer ${sending.id} of sA holds the volume: another push of this client is sending it right now, from a machine that has sA`)), said);
  await assertReceived(sA, pair.receivedPath('v', 'sA'));
});

test('a folder push that sends first an upload begun on an older parent names that parent, and sends and receives it once', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s0 = await pair.snapshot('s0');
  await push({ server: server.url, volume: 'v', snapshots: [s0] }, recordingReporter());
  await mutate(pair.source, 'after-s0');
  const s1 = await pair.snapshot('s1');
  await fs.writeFile(path.join(pair.source, 'big'), crypto.randomBytes(3 * 1024 * 1024));
  const s2 = await pair.snapshot('s2');
  // s2 alone: its upload goes on s0, the newest the server has; the folder's plan puts it on s1.
  const partial = await pushPart(server, s2, 2);
  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [pair.snaps], ...quick }, report);
  const said = JSON.stringify({ started: report.started, received: report.receivedSnapshots, notes: report.notes }, null, 1);
  const api = new ServerApi({ server: server.url });
  const s0Uuid = (await btrfs.subvolumeShow(s0)).uuid;
  assert.equal((await api.transfer(partial.id)).parentUuid, s0Uuid, said);
  assert.deepEqual(report.started.filter((s) => s.snapshot === 's2'), [{ snapshot: 's2', parent: 's0' }], said);
  assert.deepEqual(report.receivedSnapshots.filter((s) => s === 's2'), ['s2'], said);
  assert.deepEqual(result.sent.filter((s) => s.snapshot === 's2').map((s) => s.parent), ['s0'], said);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});
