/**
 * Issue 19, part 1: a snapshot's time is when it was taken, carried from the client, never when it arrived. A
 * backlog (as after a first seed) arrives in one go, within a minute; retention must still see five days.
 *
 * The snapshots are made now, so their btrfs creation time (otime, which nobody can set by hand) is now; their names
 * carry the older dates, as btrbk's names do when a backlog is pushed late. The name's time wins (client/local/
 * taken-at.ts says why), and the creation time still travels, as `createdAt`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { createPair, recordingReporter, type Pair } from './harness.ts';
import { META } from '../../core/protocol.ts';
import { pruneLocal } from '../../client/run/prune.ts';
import { randomUuid } from '../fixtures/send-streams.ts';
import { create, encodeMetadata, hostileServer, metadataFor } from './hostile-client.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '' } });

/** btrbk's default ("long") names: local time to the minute. */
const backlog = [1, 2, 3, 4, 5].map((d) => `data.202611${String(d).padStart(2, '0')}T0100`);
const localTime = (d: number) => new Date(2026, 10, d, 1, 0, 0);

async function takeBacklog(pair: Pair): Promise<void> {
  for (const [i, name] of backlog.entries()) {
    await fs.writeFile(path.join(pair.source, `day-${i}`), `day ${i}\n`);
    await pair.snapshot(name);
  }
}

test('a backlog pushed in one go keeps its own dates: prune-server --dry-run keeps the three newest days', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  await takeBacklog(pair);
  const before = Date.now();
  // btrfs prints times to the second: a pause, so that a receive's time cannot be read as the snapshot's.
  await sleep(1100);
  const result = await push({ server: server.url, volume: 'data', snapshots: [pair.snaps] }, recordingReporter());
  assert.deepEqual(result.sent.map((s) => s.snapshot), backlog);
  // Why the server never dates an older record by its received subvolume's own Creation time: on the server that
  // is the time of the receive, not of the original (server/snapshot-time.ts).
  const original = (await btrfs.subvolumeShow(path.join(pair.snaps, backlog[4]!))).creationTime!;
  const received = (await btrfs.subvolumeShow(pair.receivedPath('data', backlog[4]!))).creationTime!;
  assert.ok(received.getTime() > original.getTime(), `received ${received.toISOString()} after the original ${original.toISOString()}`);

  // The API carries both times: the one that counts (the name's), and the btrfs creation time (now-ish).
  const list = await new ServerApi({ server: server.url }).snapshots('data');
  assert.deepEqual(list.snapshots.map((s) => s.name), backlog);
  for (const [i, s] of list.snapshots.entries()) {
    assert.equal(s.takenAt, localTime(i + 1).toISOString(), `${s.name}: its time is its name's`);
    const otime = (await btrfs.subvolumeShow(path.join(pair.snaps, s.name))).creationTime!;
    assert.equal(s.createdAt, otime.toISOString(), `${s.name}: createdAt is the client's btrfs Creation time`);
    assert.ok(Date.parse(s.createdAt!) >= before - 120_000, 'made by this test');
  }

  const dir = path.join(pair.client.mountPoint, 'etc');
  await fs.mkdir(dir);
  const config = path.join(dir, 'server.yaml');
  await fs.writeFile(config, `root: ${pair.root}\nretention:\n  daily: 3\n`);
  const dry = await snapferry(['prune-server', '--config', config, '--dry-run']);
  assert.equal(dry.exitCode, EXIT.ok, dry.stderr);
  const lines = dry.stdout.split('\n');
  assert.equal(lines[0], 'default/data: would delete 2, keep 3', dry.stdout);
  const kept = lines.filter((l) => /^ {2}keep /.test(l)).map((l) => l.trim().split(/\s+/)[1]);
  const deleted = lines.filter((l) => /^ {2}delete /.test(l)).map((l) => l.trim().split(/\s+/)[1]);
  assert.deepEqual(kept, backlog.slice(2), dry.stdout);
  assert.deepEqual(deleted, backlog.slice(0, 2), dry.stdout);
});

test("the server's own prune after each receive keeps the three newest by their own dates", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer({ retention: () => ({ daily: 3 }) });
  await takeBacklog(pair);
  const result = await push({ server: server.url, volume: 'data', snapshots: [pair.snaps] }, recordingReporter());
  assert.deepEqual(result.sent.map((s) => [s.snapshot, s.parent]), backlog.map((n, i) => [n, i === 0 ? null : backlog[i - 1]]));
  await server.service.idle();
  assert.deepEqual((await fs.readdir(path.join(pair.root, 'volumes', 'default', 'data'))).sort(), backlog.slice(2));
  const list = await new ServerApi({ server: server.url }).snapshots('data');
  assert.deepEqual(list.removed.map((r) => r.name).sort(), backlog.slice(0, 2));
});

test('the server validates the time metadata when the upload is created, and refuses a bad one before any byte', rootOnly, async (t) => {
  const h = await hostileServer(t);
  for (const [key, value] of [[META.takenAt, 'last tuesday'], [META.createdAt, '2026-02-31T00:00:00Z'], [META.takenAt, '2026-11-01T01:00:00+02:00']] as const) {
    const bad = await create(h.server.url, { 'Upload-Metadata': encodeMetadata({ ...metadataFor('v', 'snap', randomUuid()), [key]: value }) });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.code, 'invalid_input');
    assert.match(bad.text, new RegExp(`${key} is .*not a time in ISO 8601 UTC`));
  }
  assert.deepEqual(h.server.service.transferRecords(), [], 'no transfer was recorded');
});

test("the client's own prune of a backlog in snapferry's names goes by their dates too, and both sides keep the same three", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer({ retention: () => ({ daily: 3 }) });
  const names = [1, 2, 3, 4, 5].map((d) => `data.202611${String(d).padStart(2, '0')}T010000Z`);
  for (const [i, name] of names.entries()) {
    await fs.writeFile(path.join(pair.source, `day-${i}`), `day ${i}\n`);
    await pair.snapshot(name);
  }
  await push({ server: server.url, volume: 'data', snapshots: names.map((n) => path.join(pair.snaps, n)) }, recordingReporter());
  await server.service.idle();
  const outcome = await pruneLocal(new ServerApi({ server: server.url }), 'data', { snapshotDir: pair.snaps, retention: { daily: 3 } });
  assert.deepEqual(outcome.deleted, names.slice(0, 2));
  assert.deepEqual((await fs.readdir(pair.snaps)).sort(), names.slice(2), 'the client keeps the three newest days');
  assert.deepEqual((await fs.readdir(path.join(pair.root, 'volumes', 'default', 'data'))).sort(), names.slice(2), 'and so does the server');
});
