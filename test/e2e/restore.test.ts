/**
 * Restore over a link that breaks, on real btrfs: snapshots pushed to the server come back into a fresh filesystem,
 * full and incremental, through the chaos proxy cutting the download again and again, and a restore killed midway
 * (SIGKILL) goes on from its spool. Every test ends with the restored tree equal to the original snapshot and
 * nothing left of the restore's own (spool, staging subvolume). The server's copies are in the client's UUID
 * namespace; restored, they carry the client's own UUIDs again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createBtrfs, mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore, type RestoreOptions } from '../../client/restore/restore.ts';
import { startChaosProxy, type ChaosProxy } from '../chaos/chaos-proxy.ts';
import { assertReceived, createPair, framedLength, recordingReporter, until } from './harness.ts';
import { ChildProcesses } from './processes.ts';
import type { RunningServer } from '../../server/serve.ts';
import { DEFAULT_CLIENT } from '../../server/auth.ts';
import { namespacedUuid } from '../../server/uuid-namespace.ts';
import type { SafeName } from '../../core/names.ts';

const restoreTest = { ...rootOnly, timeout: 180_000 };
/** HTTP requests cost a few hundred bytes each; a restore makes one per attempt, plus the catalog. */
const OVERHEAD = 64 * 1024;
/** A cut loses what had crossed the proxy but still sat in the client's socket buffer, besides the frame in flight. */
const BUFFERED_PER_CUT = 512 * 1024;
const CHUNK = 256 * 1024;

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
  diagnostic(message: string): void;
}

/**
 * Cuts every connection each time another `bytes` have gone downstream. The proxy schedules cuts on upstream bytes
 * (a push's direction); a restore's bytes flow down, so this watches the count and cuts by hand.
 */
function cutDownstreamEvery(proxy: ChaosProxy, bytes: number): () => void {
  let next = proxy.stats().downstreamBytes + bytes;
  let cutting = false;
  const timer = setInterval(() => {
    if (cutting || proxy.stats().downstreamBytes < next) return;
    cutting = true;
    // The next cut is counted from where this one was decided, not from when the proxy's worker answered: on a loaded
    // machine that answer can come a megabyte later, and the test then saw too few cuts.
    next = proxy.stats().downstreamBytes + bytes;
    void proxy.cutNow().then((broken) => {
      cutting = false;
      return broken;
    });
  }, 5);
  return () => clearInterval(timer);
}

/** A client and server with s1 and s2 (incremental) pushed, a chaos proxy in front of the server, a fresh btrfs. */
async function restoreWorld(t: AfterHook, fillMB: number) {
  const pair = await createPair(t, { fillMB, seed: 'restore' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'restore');
  await fs.writeFile(path.join(pair.source, 'big-new-file'), crypto.randomBytes(6 * 1024 * 1024));
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0 }, recordingReporter());
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
  t.after(() => proxy.close());
  const fresh = await createBtrfs(t, { sizeMiB: 512 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  return { pair, server, proxy, s1, s2, dest };
}

function restoreVia(proxy: ChaosProxy, snapshot: string, destDir: string, extra: Partial<RestoreOptions> = {}) {
  const report = recordingReporter();
  const result = restore(
    { server: proxy.url, volume: 'v', snapshot, destDir, chunkSize: CHUNK, backoff: { baseMs: 50, maxMs: 500 }, stallMs: 5000, ...extra },
    report,
  );
  return { result, report };
}

/** The restored snapshot is the pushed one: its tree, read-only, and the UUID it was pushed with as Received UUID. */
async function assertRestored(original: string, restored: string): Promise<void> {
  await assertReceived(original, restored);
  const [was, now] = await Promise.all([btrfs.subvolumeShow(original), btrfs.subvolumeShow(restored)]);
  assert.equal(now.receivedUuid, was.uuid);
  assert.equal(now.readonly, true);
}

/** Only the restored snapshots are in the folder: no spool, no staging subvolume. */
async function assertOnly(dest: string, names: string[]): Promise<void> {
  assert.deepEqual((await fs.readdir(dest)).sort(), names);
}

function assertBudget(t: AfterHook, proxy: ChaosProxy, wire: number, cuts: number): void {
  const crossed = proxy.stats().downstreamBytes;
  const budget = wire + cuts * (CHUNK + 72 + BUFFERED_PER_CUT) + OVERHEAD;
  t.diagnostic(`${crossed} bytes came down for a ${wire}-byte framed stream with ${cuts} cut(s); budget ${budget}`);
  assert.ok(crossed >= wire, 'at least the whole stream came down');
  assert.ok(crossed <= budget, `${crossed} bytes came down, more than the budget of ${budget}`);
}

/**
 * The server's copy is in the client's UUID namespace (server/uuid-namespace.ts): its Received UUID is not the
 * client's UUID, so the restore must map it back for assertRestored to hold.
 */
async function assertNamespacedOnServer(server: RunningServer, name: string, original: string): Promise<void> {
  const [was, copy] = await Promise.all([btrfs.subvolumeShow(original), btrfs.subvolumeShow(server.service.snapshotPath(DEFAULT_CLIENT, 'v' as SafeName, name as SafeName))]);
  assert.equal(copy.receivedUuid, namespacedUuid(DEFAULT_CLIENT, was.uuid));
  assert.notEqual(copy.receivedUuid, was.uuid);
}

test('a full and then an incremental restore into a fresh filesystem, each cut several times, equal the originals', restoreTest, async (t) => {
  const { server, proxy, s1, s2, dest } = await restoreWorld(t, 12);
  await assertNamespacedOnServer(server, 's1', s1);
  await assertNamespacedOnServer(server, 's2', s2);
  // Slower than a loaded machine's client verifies and spools: bytes must not pile up in its socket buffer, where a
  // cut loses them after they "came down" (on loopback the kernel lets that buffer grow to megabytes).
  proxy.setRate({ downstream: 2 * 1024 * 1024 });

  proxy.resetStats();
  let stopCutting = cutDownstreamEvery(proxy, 512 * 1024);
  const full = restoreVia(proxy, 's1', dest);
  const first = await full.result.finally(stopCutting);
  const fullCuts = proxy.stats().cuts;
  t.diagnostic(`s1: ${fullCuts} cuts; ${full.report.notes.length} notes`);
  assert.equal(first.restored, true);
  assert.equal(first.parent, null);
  assert.ok(fullCuts >= 3, `the link was cut ${fullCuts} times`);
  assert.ok(first.interruptions >= fullCuts - 1, `${first.interruptions} interruptions for ${fullCuts} cuts`);
  assert.match(full.report.notes.join('\n'), /\(full\)/);
  assertBudget(t, proxy, first.wireBytes, fullCuts);
  await assertRestored(s1, path.join(dest, 's1'));
  await assertOnly(dest, ['s1']);

  proxy.resetStats();
  stopCutting = cutDownstreamEvery(proxy, 1024 * 1024);
  const inc = restoreVia(proxy, 's2', dest);
  const second = await inc.result.finally(stopCutting);
  const incCuts = proxy.stats().cuts;
  assert.equal(second.parent, 's1', 'incremental on the restored s1');
  assert.ok(incCuts >= 2, `the link was cut ${incCuts} times`);
  assert.ok(second.wireBytes < first.wireBytes, 'the incremental stream is the smaller one');
  assertBudget(t, proxy, second.wireBytes, incCuts);
  await assertRestored(s2, path.join(dest, 's2'));
  await assertOnly(dest, ['s1', 's2']);

  // Asked again, there is nothing to do.
  const again = await restoreVia(proxy, 's2', dest).result;
  assert.equal(again.restored, false);
});

test('an incremental restore onto the original parent (the client lost only the newer snapshot)', restoreTest, async (t) => {
  const { pair, proxy, s2 } = await restoreWorld(t, 4);
  await btrfs.deleteSubvolume(s2);
  const { result, report } = restoreVia(proxy, 's2', pair.snaps);
  const done = await result;
  assert.equal(done.parent, 's1');
  assert.match(report.notes.join('\n'), /incremental from s1/);
  const restored = await btrfs.subvolumeShow(path.join(pair.snaps, 's2'));
  assert.equal(restored.readonly, true);
  // The source has not changed since s2 was taken.
  await assertReceived(pair.source, path.join(pair.snaps, 's2'));
  await assertOnly(pair.snaps, ['s1', 's2']);
});

test('a restore killed midway goes on from its spool, downloading only the rest', restoreTest, async (t) => {
  const children = new ChildProcesses(t);
  const { pair, proxy, s1, dest } = await restoreWorld(t, 16);
  proxy.setRate({ downstream: 2 * 1024 * 1024 });
  const args = ['restore', '--server', proxy.url, '--volume', 'v', '--chunk-size', '256k', 's1', dest];
  const env = { ...process.env, SNAPFERRY_TOKEN: '' } as Record<string, string>;
  proxy.resetStats();
  const killed = children.run(args, { env });
  const spooled = path.join(dest, (await until('the restore to make its spool folder', async () => (await fs.readdir(dest)).find((n) => n.startsWith('.snapferry-restore-')), 60_000, 20)), 'frames');
  await until('4 MiB in the restore spool', async () => ((await fs.stat(spooled).catch(() => null))?.size ?? 0) > 4 * 1024 * 1024, 60_000, 20);
  await killed.kill9();
  assert.ok(await killed.groupGone(10_000), 'nothing of the killed restore runs on');
  const kept = (await fs.stat(spooled)).size;
  const firstRun = proxy.stats().downstreamBytes;

  proxy.resetStats();
  const second = children.run(args, { env });
  const exit = await second.exited;
  assert.equal(exit.code, 0, second.stderr);
  assert.match(second.stderr, /resuming the download at frame \d+/);
  assert.match(second.stderr, /done: restored s1 to .*s1 \(full/);
  // Its figures count as downloaded what it downloaded; what the spool kept from the killed run is shown apart.
  assert.match(second.stderr, / downloaded \(\+[\d.]+ [KM]iB from an earlier run\)/);
  // The server frames its own send of what it received, as push frames: same chunk size, zstd level 3.
  const total = await framedLength(pair.receivedPath('v', 's1'), CHUNK, 3, true);
  t.diagnostic(`first run: ${firstRun} bytes down, ${kept} spooled; second run: ${proxy.stats().downstreamBytes} of a ${total}-byte stream`);
  assert.ok(proxy.stats().downstreamBytes <= total - kept + CHUNK + OVERHEAD, 'the second run downloaded only what the spool lacked');
  await assertRestored(s1, path.join(dest, 's1'));
  await assertOnly(dest, ['s1']);
});

test('a restore stopped through a proxy goes on from its spool when run again with the server\'s direct address', restoreTest, async (t) => {
  const { server, proxy, s1, dest } = await restoreWorld(t, 16);
  proxy.setRate({ downstream: 2 * 1024 * 1024 });
  const controller = new AbortController();
  const first = restoreVia(proxy, 's1', dest, { signal: controller.signal });
  first.result.catch(() => undefined);
  const spooled = path.join(dest, (await until('the restore to make its spool folder', async () => (await fs.readdir(dest)).find((n) => n.startsWith('.snapferry-restore-')), 60_000, 20)), 'frames');
  await until('2 MiB in the restore spool', async () => ((await fs.stat(spooled).catch(() => null))?.size ?? 0) > 2 * 1024 * 1024, 60_000, 20);
  controller.abort();
  await first.result.catch(() => undefined);

  // Another URL of the same server (the proxy left out): the same stream, so the spool is the one to go on from.
  const report = recordingReporter();
  await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, chunkSize: CHUNK, backoff: { baseMs: 50, maxMs: 500 }, stallMs: 5000 }, report);
  const notes = report.notes.join('\n');
  assert.doesNotMatch(notes, /started the download of s1 over/);
  assert.match(notes, /resuming the download at frame [1-9]\d*/);
  await assertRestored(s1, path.join(dest, 's1'));
  await assertOnly(dest, ['s1']);
});

test('a restore through a link cut every 1 MB gets 4 MiB frames of random data down: each cut keeps what arrived of the frame', restoreTest, async (t) => {
  const { proxy, s2, dest } = await restoreWorld(t, 1);
  proxy.setRate({ downstream: 1024 * 1024 });
  proxy.resetStats();
  const stopCutting = cutDownstreamEvery(proxy, 1024 * 1024);
  const chunk = 4 * 1024 * 1024;
  // Before the client kept the part of a frame a cut left, no 4 MiB frame of s2's random file ever came down whole.
  const done = await restoreVia(proxy, 's2', dest, { chunkSize: chunk }).result;
  stopCutting();
  const cuts = proxy.stats().cuts;
  const crossed = proxy.stats().downstreamBytes;
  t.diagnostic(`${crossed} bytes came down for a ${done.wireBytes}-byte framed stream with ${cuts} cut(s)`);
  // Two 4 MiB frames: any cut falls inside one. Two cuts at the least (a loaded machine answers a cut late, and
  // fewer fall in the stream), so that a frame is resumed from its part at least once more after the first.
  assert.ok(cuts >= 2, `the link was cut ${cuts} times`);
  // No frame came down twice: a cut costs only what sat in socket buffers (before, every cut cost the frame in flight).
  assert.ok(crossed <= done.wireBytes + cuts * BUFFERED_PER_CUT + OVERHEAD, `${crossed} bytes came down`);
  await assertRestored(s2, path.join(dest, 's2'));
});
