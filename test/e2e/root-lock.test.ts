/**
 * One server per root (issue 18, server/root-lock.ts), with real `snapferry serve` processes on a real btrfs root:
 * a second server on the root of a running one exits 1 naming the first's pid, and leaves the first one's receive
 * alone (without the lock it deleted it as "a partial receive left by a crash" and the push still reported success
 * over a truncated copy); a server killed with SIGKILL leaves no lock behind; `prune-server` applies the retention
 * only while no server holds the root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerLayout } from '../../server/layout.ts';
import { PRUNED_REASON } from '../../server/retention.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';
import { ChildProcesses, freePort, SNAPFERRY_BIN, type ChildExit, type SnapferryProcess } from './processes.ts';

const MiB = 1024 * 1024;
const snapferry = (args: string[]) => execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000 });

/** True once a receive is being written in the volume's folder (the live receive beside the upload). */
async function receiving(root: string, volume: string): Promise<boolean> {
  const names = await fs.readdir(path.join(root, 'volumes', 'default', volume)).catch(() => [] as string[]);
  return names.some((n) => n.startsWith('.incoming-'));
}

/** `serve` on `root`: resolves 'serving' once it listens, or its exit once it exits (whichever comes first). */
async function startOrExit(children: ChildProcesses, root: string): Promise<{ proc: SnapferryProcess; outcome: 'serving' | ChildExit }> {
  const proc = children.run(['serve', '--root', root, '--listen', `127.0.0.1:${await freePort()}`, '--no-auth']);
  const serving = proc.waitForStderr(/snapferry serving/, 30_000).then(() => 'serving' as const, () => proc.exited);
  const outcome = await Promise.race<'serving' | ChildExit>([serving, proc.exited]);
  return { proc, outcome };
}

test('a second serve on the root of a running one exits 1 naming its pid, and the running upload is received intact', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 2 });
  // 24 MiB that do not compress, at 3 MiB/s: the upload, and its live receive, last about eight seconds.
  await fs.writeFile(path.join(pair.source, 'big'), crypto.randomBytes(24 * MiB));
  const snap = await pair.snapshot('s1');
  const first = await children.serve({ root: pair.root, port: await freePort() });
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushed = push({ server: first.url, volume: 'v', snapshots: [snap], chunkSize: 256 * 1024, limitRate: 3 * MiB, compress: 0, signal: stop.signal }, recordingReporter());
  pushed.catch(() => undefined);
  await until('a receive under way', () => receiving(pair.root, 'v'), 30_000, 20);

  const second = await startOrExit(children, pair.root);
  assert.deepEqual(second.outcome, { code: 1, signal: null }, `the second serve should refuse:\n${second.proc.stderr}`);
  assert.match(second.proc.stderr, new RegExp(`the server root ${pair.root} is in use by snapferry serve \\(pid ${first.pid}, since \\S+\\)`));
  assert.ok(await receiving(pair.root, 'v'), 'the running receive is still there');

  const result = await pushed;
  assert.deepEqual(result.sent.map((s) => s.snapshot), ['s1']);
  await assertReceived(snap, pair.receivedPath('v', 's1'));
  assert.doesNotMatch(first.stderr, /partial receive/, 'the first server lost nothing');
  assert.ok(first.running, 'the first server still serves');
});

test('a server killed with SIGKILL mid-receive leaves no lock: the next one starts at once, and the push completes', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 2 });
  await fs.writeFile(path.join(pair.source, 'big'), crypto.randomBytes(16 * MiB));
  const snap = await pair.snapshot('s1');
  const port = await freePort();
  const first = await children.serve({ root: pair.root, port });
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushed = push(
    { server: first.url, volume: 'v', snapshots: [snap], chunkSize: 256 * 1024, limitRate: 4 * MiB, compress: 0, backoff: { baseMs: 100, maxMs: 500 }, signal: stop.signal },
    recordingReporter(),
  );
  pushed.catch(() => undefined);
  await until('a receive under way', () => receiving(pair.root, 'v'), 30_000, 20);

  await first.kill9();
  const next = await children.serve({ root: pair.root, port, readyTimeoutMs: 15_000 });
  const note = JSON.parse(await fs.readFile(new ServerLayout(pair.root).lockFile, 'utf8')) as { pid: number; command: string };
  assert.deepEqual([note.pid, note.command], [next.pid, 'snapferry serve'], 'the lock names the new server');

  const result = await pushed;
  assert.deepEqual(result.sent.map((s) => s.snapshot), ['s1']);
  await assertReceived(snap, pair.receivedPath('v', 's1'));
});

test('prune-server: refused while a server holds the root (dry run allowed), applied once it has stopped', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 1 });
  const names = ['home.20261102T010000Z', 'home.20261102T020000Z', 'home.20261102T030000Z'];
  const snaps = [];
  for (const name of names) {
    await fs.writeFile(path.join(pair.source, name), name);
    snaps.push(await pair.snapshot(name));
  }
  // Started without a policy: it keeps everything.
  const server = await children.serve({ root: pair.root, port: await freePort() });
  const sent = await push({ server: server.url, volume: 'home', snapshots: snaps }, recordingReporter());
  assert.equal(sent.sent.length, 3);
  const config = path.join(pair.server.mountPoint, 'server.yaml');
  await fs.writeFile(config, `root: ${pair.root}\nretention:\n  last: 1\n`);
  const onDisk = async () => (await fs.readdir(path.join(pair.root, 'volumes', 'default', 'home'))).sort();

  const refused = await snapferry(['prune-server', '--config', config, '--root', pair.root]);
  assert.equal(refused.exitCode, EXIT.failed, refused.stderr);
  assert.match(refused.stderr, new RegExp(`in use by snapferry serve \\(pid ${server.pid}, since `));
  assert.deepEqual(await onDisk(), names, 'nothing deleted');

  const dry = await snapferry(['prune-server', '--config', config, '--root', pair.root, '--dry-run']);
  assert.equal(dry.exitCode, EXIT.ok, dry.stderr);
  assert.match(dry.stdout, /^default\/home: would delete 2, keep 1$/m);

  process.kill(server.pid, 'SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
  const applied = await snapferry(['prune-server', '--config', config, '--root', pair.root]);
  assert.equal(applied.exitCode, EXIT.ok, applied.stderr);
  assert.match(applied.stdout, new RegExp(`deleted 2: default/home/${names[0]}, default/home/${names[1]}`));
  assert.match(applied.stdout, /^default\/home: deletes 2, keeps 1$/m, 'said as done, not as "would"');
  assert.doesNotMatch(applied.stdout, /would delete/);
  // A root that is not there: the dry run says so as the real run does, not "the server holds no snapshots".
  const nowhere = path.join(pair.server.mountPoint, 'no-such-root');
  for (const dryRun of [['--dry-run'], []]) {
    const r = await snapferry(['prune-server', '--config', config, '--root', nowhere, ...dryRun]);
    assert.equal(r.exitCode, EXIT.failed, `${dryRun.join('')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /there is no server root at .*no-such-root/);
  }
  assert.deepEqual(await onDisk(), [names[2]], 'the policy\'s deletions are gone from disk');
  const catalog = JSON.parse(await fs.readFile(new ServerLayout(pair.root).catalog, 'utf8')) as { snapshots: { name: string }[]; removed: { name: string; reason: string }[] };
  assert.deepEqual(catalog.snapshots.map((s) => s.name), [names[2]]);
  assert.deepEqual(catalog.removed.map((r) => [r.name, r.reason]), [[names[0], PRUNED_REASON], [names[1], PRUNED_REASON]]);

  // The next server starts on the pruned root and holds what is left.
  const again = await children.serve({ root: pair.root, port: await freePort() });
  assert.ok(again.running);
});
