import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { pino } from 'pino';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import type { RunConfig } from '../../client/run/run.ts';
import type { RetentionPolicy } from '../../core/retention-policy.ts';
import type { RunningServer } from '../../server/serve.ts';
import { PRUNED_REASON } from '../../server/retention.ts';
import { assertReceived, createPair, recordingReporter, until, type Pair } from './harness.ts';
import { push } from '../../client/push/push.ts';
import { routes } from '../../core/protocol.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { runAt } from './run-helpers.ts';

const at = (hour: number) => `2026-11-02T${String(hour).padStart(2, '0')}:00:00Z`;
const name = (hour: number) => `home.20261102T${String(hour).padStart(2, '0')}0000Z`;

function serverWith(pair: Pair, policy: RetentionPolicy, extra: Parameters<Pair['startServer']>[0] = {}): Promise<RunningServer> {
  return pair.startServer({ retention: (client, volume) => (client === 'default' && volume === 'home' ? policy : {}), ...extra });
}

test('retention on both sides: each side deletes what its policy lets go, and the next incremental still has its parent', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  let server = await serverWith(pair, { last: 2 });
  const run = runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`));
  const config = (url: string): RunConfig => ({ server: url, volumes: { home: { source: pair.source, snapshotDir: pair.snaps, retention: { last: 1 } } } });
  const onServer = async () => (await fs.readdir(path.join(pair.root, 'volumes', 'default', 'home'))).sort();

  for (const hour of [1, 2, 3, 4]) {
    await fs.writeFile(path.join(pair.source, `change-${hour}`), `hour ${hour}\n`);
    const r = await run(config(server.url), at(hour));
    assert.equal(r.exitCode, EXIT.ok, r.lines.join('\n'));
    assert.deepEqual(r.started, [{ snapshot: name(hour), parent: hour === 1 ? null : name(hour - 1) }]);
  }
  // The server prunes after it has told the client the snapshot is received: wait for that to end.
  await server.service.idle();
  assert.deepEqual(await onServer(), [name(3), name(4)], 'the server keeps its last 2, deleted from disk');
  assert.deepEqual(await fs.readdir(pair.snaps), [name(4)], 'the client keeps its last 1');
  const list = await new ServerApi({ server: server.url }).snapshots('home');
  assert.deepEqual(list.snapshots.map((s) => s.name), [name(3), name(4)]);
  assert.deepEqual(list.removed.map((r) => [r.name, r.reason]), [[name(1), PRUNED_REASON], [name(2), PRUNED_REASON]]);

  // A stricter policy is applied at start.
  await server.close();
  server = await serverWith(pair, { last: 1, daily: 0 });
  assert.deepEqual(await onServer(), [name(4)]);

  await fs.writeFile(path.join(pair.source, 'change-5'), 'hour 5\n');
  const r5 = await run(config(server.url), at(5));
  assert.equal(r5.exitCode, EXIT.ok, r5.lines.join('\n'));
  assert.deepEqual(r5.started, [{ snapshot: name(5), parent: name(4) }], 'incremental from the one both sides kept');
  await assertReceived(path.join(pair.snaps, name(5)), pair.receivedPath('home', name(5)));
  await server.service.idle();
  assert.deepEqual(await onServer(), [name(5)]);
});

test('an upload in progress survives a stricter policy at restart: its parent is kept, and it resumes onto it', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await serverWith(pair, {});
  const run = runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`));
  const config: RunConfig = { server: server.url, volumes: { home: { source: pair.source, snapshotDir: pair.snaps } } };
  for (const hour of [1, 2]) assert.equal((await run(config, at(hour))).exitCode, EXIT.ok);
  // A newer snapshot whose push is cut off once its upload has begun (1.5 MB that does not compress, at 64 KiB/s):
  // the server then holds an upload in progress whose parent is name(2).
  await fs.writeFile(path.join(pair.source, 'noise'), crypto.randomBytes(1536 * 1024));
  await run(config, at(3), { steps: ['snapshot'] });
  const controller = new AbortController();
  const cut = await run(config, at(3), {
    steps: ['push'], signal: controller.signal,
    push: { pollMs: 50, chunkSize: 64 * 1024, limitRate: 64 * 1024, compress: 0 },
    reporter: () => ({ note: () => undefined, startTransfer: () => undefined, progress: () => controller.abort(), waiting: () => undefined, received: () => undefined }),
  });
  assert.equal(cut.exitCode, EXIT.interrupted, cut.lines.join('\n'));
  const transfers = (await new ServerApi({ server: server.url }).transfers()).transfers;
  assert.deepEqual(transfers.filter((x) => x.state === 'uploading').map((x) => [x.snapshot, x.parentUuid !== null]), [[name(3), true]]);
  assert.deepEqual(await fs.readdir(path.join(pair.root, 'volumes', 'default', 'home')), [name(1), name(2)], 'no policy: nothing pruned');

  // Closed only once the server has seen the cut: closing it under a PATCH still in flight throws an unhandled
  // 'aborted' from that request in this process (a server of its own would be exiting anyway).
  const cutId = transfers.find((x) => x.snapshot === name(3))!.id;
  for (let i = 0; i < 100 && server.service.inFlight(cutId); i++) await sleep(100);
  await server.close();
  // Restarted with last: 1, the server prunes at start: name(1) goes, name(2) stays as the upload's parent (which
  // one upload at a time per volume makes the newest received too; test/server/retention.test.ts parts the two).
  const strict = await serverWith(pair, { last: 1 });
  const list = await new ServerApi({ server: strict.url }).snapshots('home');
  assert.deepEqual(list.snapshots.map((s) => s.name), [name(2)]);
  // The interrupted upload resumes onto the parent that was kept.
  const resumed = await run({ ...config, server: strict.url }, at(3), { steps: ['push'] });
  assert.equal(resumed.exitCode, EXIT.ok, resumed.lines.join('\n'));
  const after = (await new ServerApi({ server: strict.url }).transfers()).transfers.filter((x) => x.snapshot === name(3));
  assert.deepEqual(after.map((x) => [x.id, x.state]), [[cutId, 'received']], 'the same upload, resumed');
  await strict.service.idle();
  assert.deepEqual((await new ServerApi({ server: strict.url }).snapshots('home')).snapshots.map((s) => s.name), [name(3)]);
});

test('a snapshot a restore is sending is not pruned under it: kept until the send ends, then deleted, and recorded as removed only once it is', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  // Far more than the server and the sockets buffer for a reader that does not read: its btrfs send stays blocked.
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(48 * 1024 * 1024));
  const server = await serverWith(pair, { last: 1 });
  const s1 = await pair.snapshot(name(1));
  await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());
  const res = await fetch(`${server.url}${routes.restoreStream('home', name(1), { chunkSize: 64 * 1024 })}`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();

  await fs.writeFile(path.join(pair.source, 'more'), 'after s1\n');
  const s2 = await pair.snapshot(name(2));
  await push({ server: server.url, volume: 'home', snapshots: [s2] }, recordingReporter());
  await server.service.idle();
  const api = new ServerApi({ server: server.url });
  const during = await api.snapshots('home');
  assert.deepEqual(during.snapshots.map((s) => s.name), [name(1), name(2)], 'kept while the restore sends it');
  assert.deepEqual(during.removed, [], 'no removal recorded that did not happen');
  assert.ok(await btrfs.isSubvolume(pair.receivedPath('home', name(1))));

  // The restore reads on to the end: its send ends, and the policy deletes what it passed over.
  for (;;) if ((await reader.read()).done) break;
  const removed = await until('name(1) pruned after its send ended', async () => {
    const list = await api.snapshots('home');
    return list.removed.some((r) => r.name === name(1)) && list;
  });
  assert.deepEqual(removed.snapshots.map((s) => s.name), [name(2)]);
  assert.equal(removed.removed.find((r) => r.name === name(1))?.reason, PRUNED_REASON);
  assert.equal(await btrfs.isSubvolume(pair.receivedPath('home', name(1))), false, 'deleted from disk');
});

/** Pushes the next snapshot (a change, then NAME(hour)) and waits for the server's pruning after it. */
function pusher(pair: Pair, server: { url: string; service: { idle(): Promise<void> } }) {
  return async (hour: number): Promise<void> => {
    await fs.writeFile(path.join(pair.source, `change-${hour}`), `${hour}\n`);
    await push({ server: server.url, volume: 'home', snapshots: [await pair.snapshot(name(hour))] }, recordingReporter());
    await server.service.idle();
  };
}

/**
 * An admin's `btrfs send` of `snapshot`, its output never read: it stays in progress, and btrfs refuses to delete what
 * it reads (EPERM) until it ends. Resolves once it runs; the function it gives ends it.
 */
async function heldBySend(t: TestContext, snapshot: string): Promise<() => Promise<void>> {
  const foreign = spawn('btrfs', ['send', snapshot], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = once(foreign, 'exit');
  t.after(() => void foreign.kill('SIGKILL'));
  foreign.stdout.pause();
  await sleep(1000);
  return async () => {
    foreign.kill('SIGKILL');
    await exited;
  };
}

test('a delete btrfs refuses (a btrfs send the server does not run reads the snapshot) records no removal: it stays listed, and a later pruning deletes it', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(16 * 1024 * 1024));
  const server = await serverWith(pair, { last: 1 });
  const pushed = pusher(pair, server);
  await pushed(1);
  const release = await heldBySend(t, pair.receivedPath('home', name(1)));

  await pushed(2);
  const api = new ServerApi({ server: server.url });
  const during = await api.snapshots('home');
  assert.deepEqual(during.snapshots.map((s) => s.name), [name(1), name(2)], 'still listed: it is still on disk');
  assert.deepEqual(during.removed, [], 'no removal recorded that did not happen');
  assert.ok(await btrfs.isSubvolume(pair.receivedPath('home', name(1))));

  await release();
  await pushed(3);
  const after = await api.snapshots('home');
  assert.deepEqual(after.snapshots.map((s) => s.name), [name(3)]);
  assert.deepEqual(after.removed.map((r) => [r.name, r.reason]), [[name(1), PRUNED_REASON], [name(2), PRUNED_REASON]]);
  assert.equal(await btrfs.isSubvolume(pair.receivedPath('home', name(1))), false);
});

test('a delete btrfs refused is tried again on a timer: once the send that held it is gone, the snapshot goes without another push', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(16 * 1024 * 1024));
  const logged: { msg: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string }) });
  const server = await serverWith(pair, { last: 1 }, { pruneRetry: { firstMs: 300, maxMs: 1000 }, log });
  const pushed = pusher(pair, server);
  await pushed(1);
  const release = await heldBySend(t, pair.receivedPath('home', name(1)));
  await pushed(2);
  const api = new ServerApi({ server: server.url });
  // Several retries fail meanwhile (300 ms, then 600, then every second): it stays, listed.
  await sleep(2500);
  assert.deepEqual((await api.snapshots('home')).snapshots.map((s) => s.name), [name(1), name(2)]);
  assert.ok(await btrfs.isSubvolume(pair.receivedPath('home', name(1))));
  assert.equal(logged.filter((l) => l.msg.startsWith('could not delete a pruned snapshot')).length, 1, 'logged once, not at every try');

  await release();
  const after = await until('name(1) deleted by a retry', async () => {
    const list = await api.snapshots('home');
    return list.removed.length > 0 && list;
  }, 10_000);
  assert.deepEqual(after.snapshots.map((s) => s.name), [name(2)]);
  assert.deepEqual(after.removed.map((r) => [r.name, r.reason]), [[name(1), PRUNED_REASON]]);
  assert.equal(await btrfs.isSubvolume(pair.receivedPath('home', name(1))), false);
});
