/**
 * Issue 19, part 3: folders laid out as btrbk and snapper lay them out, each pushed in full and then incrementally.
 * btrbk: `NAME.YYYYMMDD[Thhmm[ss]][_N]` in one folder, several sources side by side; `--volume NAME` picks NAME.*.
 * snapper: `.snapshots/N/snapshot` with `N/info.xml` beside it, whose <date> is the snapshot's time.
 * Read-write subvolumes in either are skipped with a note, and so are snapshots whose names snapferry cannot use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';
import { snapferry } from './processes.ts';

test('a btrbk folder of two sources: --volume NAME pushes NAME.*, full and then incremental; a read-write one is skipped', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const home = path.join(pair.client.mountPoint, 'home');
  await btrfs.createSubvolume(home);
  await fs.writeFile(path.join(home, 'notes'), 'home 1\n');
  const folder = path.join(pair.client.mountPoint, 'btrbk_snapshots');
  await fs.mkdir(folder);
  const take = (source: string, name: string) => snapshotReadonly(source, path.join(folder, name));
  await take(pair.source, 'data.20261203T2300');
  await take(home, 'home.20261203T2300');
  // Not a snapshot btrfs can send: left where it is, with a note.
  await btrfs.snapshot(home, path.join(folder, 'home.20261203T2330'));

  const first = recordingReporter();
  const r1 = await push({ server: server.url, volume: 'home', snapshots: [folder] }, first);
  assert.deepEqual(r1.sent.map((s) => [s.snapshot, s.parent]), [['home.20261203T2300', null]]);
  assert.ok(first.notes.some((n) => /skipping 1 read-write subvolume .*\(home\.20261203T2330\)/.test(n)), first.notes.join('\n'));
  assert.ok(first.notes.some((n) => /pushing the 1 snapshots named home\.<date> \(btrbk's layout\); the other 1 are not this volume's/.test(n)), first.notes.join('\n'));

  await fs.writeFile(path.join(home, 'notes'), 'home 2\n');
  await fs.writeFile(path.join(pair.source, 'more'), 'data 2\n');
  await take(home, 'home.20261204T2300_1');
  await take(pair.source, 'data.20261204T2300');
  const r2 = await push({ server: server.url, volume: 'home', snapshots: [folder] }, recordingReporter());
  assert.deepEqual(r2.sent.map((s) => [s.snapshot, s.parent]), [['home.20261204T2300_1', 'home.20261203T2300']]);
  const r3 = await push({ server: server.url, volume: 'data', snapshots: [folder] }, recordingReporter());
  assert.deepEqual(r3.sent.map((s) => [s.snapshot, s.parent]), [['data.20261203T2300', null], ['data.20261204T2300', 'data.20261203T2300']]);
  await assertReceived(path.join(folder, 'home.20261204T2300_1'), pair.receivedPath('home', 'home.20261204T2300_1'));
  await assertReceived(path.join(folder, 'data.20261204T2300'), pair.receivedPath('data', 'data.20261204T2300'));
  const list = await new ServerApi({ server: server.url }).snapshots('home');
  assert.deepEqual(list.snapshots.map((s) => [s.name, s.takenAt]), [
    ['home.20261203T2300', new Date(2026, 11, 3, 23, 0).toISOString()],
    ['home.20261204T2300_1', new Date(2026, 11, 4, 23, 0).toISOString()],
  ]);
});

test("a snapshot not named VOLUME.<date> that the server holds in this volume is not called another volume's: the next push builds on it", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const folder = pair.snaps;
  await snapshotReadonly(pair.source, path.join(folder, 'home.20261203T2300'));
  assert.equal((await push({ server: server.url, volume: 'home', snapshots: [folder] }, recordingReporter())).sent.length, 1);
  // Taken by hand under a name of the longest kind, and pushed into the volume by its path.
  await fs.writeFile(path.join(pair.source, 'by-hand'), 'by hand\n');
  const byHand = `home.${'x'.repeat(250)}`;
  await snapshotReadonly(pair.source, path.join(folder, byHand));
  assert.deepEqual((await push({ server: server.url, volume: 'home', snapshots: [path.join(folder, byHand)] }, recordingReporter())).sent.map((s) => s.snapshot), [byHand]);

  await fs.writeFile(path.join(pair.source, 'after'), 'after\n');
  await snapshotReadonly(pair.source, path.join(folder, 'home.20261205T2300'));
  const report = recordingReporter();
  const r = await push({ server: server.url, volume: 'home', snapshots: [folder] }, report);
  assert.deepEqual(r.sent.map((s) => [s.snapshot, s.parent]), [['home.20261205T2300', byHand]]);
  // Before, the note called it "not this volume's", and the push sent an incremental from it all the same.
  assert.ok(!report.notes.some((n) => n.includes("not this volume's")), report.notes.join('\n'));
  assert.ok(report.notes.some((n) => /pushing the 2 snapshots named home\.<date> \(btrbk's layout\); 1 not so named the server holds in this volume/.test(n)), report.notes.join('\n'));
});

const infoXml = (num: number, date: string, type = 'single') =>
  `<?xml version="1.0"?>\n<snapshot>\n  <type>${type}</type>\n  <num>${num}</num>\n  <date>${date}</date>\n  <description>timeline</description>\n  <cleanup>timeline</cleanup>\n</snapshot>\n`;

test("a snapper .snapshots folder is read as such: N/snapshot named N, dated by info.xml; full, then incremental", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  // As `snapper create-config` makes it: a subvolume .snapshots, one folder per snapshot. Beside the source here, not
  // inside it as snapper puts it: a snapshot holds a nested subvolume as an empty stub that btrfs send leaves out, so
  // the received tree would differ from the snapshot's by that stub alone.
  const dotSnapshots = path.join(pair.client.mountPoint, '.snapshots');
  await btrfs.createSubvolume(dotSnapshots);
  const takeSnapper = async (num: number, date: string, readonly = true) => {
    await fs.mkdir(path.join(dotSnapshots, String(num)));
    await btrfs.snapshot(pair.source, path.join(dotSnapshots, String(num), 'snapshot'), { readonly });
    await fs.writeFile(path.join(dotSnapshots, String(num), 'info.xml'), infoXml(num, date));
  };
  await takeSnapper(1, '2026-11-01 01:00:00');
  const r1 = await push({ server: server.url, volume: 'root', snapshots: [dotSnapshots] }, recordingReporter());
  assert.deepEqual(r1.sent.map((s) => [s.snapshot, s.parent]), [['1', null]]);

  await fs.writeFile(path.join(pair.source, 'changed'), 'after 1\n');
  await takeSnapper(2, '2026-11-02 01:00:00');
  await takeSnapper(10, '2026-11-03 01:00:00', false);
  const report = recordingReporter();
  const r2 = await push({ server: server.url, volume: 'root', snapshots: [dotSnapshots] }, report);
  assert.deepEqual(r2.sent.map((s) => [s.snapshot, s.parent]), [['2', '1']]);
  assert.ok(report.notes.some((n) => /skipping 1 read-write subvolume .*\(10\/snapshot\)/.test(n)), report.notes.join('\n'));
  await assertReceived(path.join(dotSnapshots, '2', 'snapshot'), pair.receivedPath('root', '2'));
  const list = await new ServerApi({ server: server.url }).snapshots('root');
  assert.deepEqual(list.snapshots.map((s) => [s.name, s.takenAt]), [['1', '2026-11-01T01:00:00.000Z'], ['2', '2026-11-02T01:00:00.000Z']]);
});

test('a folder push skips badly named snapshots with a note naming each and sends the rest; one named directly is refused (2)', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  await pair.snapshot('bad name');
  const good = await pair.snapshot('good.1');
  await pair.snapshot('-dash');

  const report = recordingReporter();
  const r = await push({ server: server.url, volume: 'home', snapshots: [pair.snaps] }, report);
  assert.deepEqual(r.sent.map((s) => [s.snapshot, s.parent]), [['good.1', null]]);
  await assertReceived(good, pair.receivedPath('home', 'good.1'));
  const note = report.notes.find((n) => n.startsWith('skipping 2 snapshots'));
  assert.ok(note !== undefined, report.notes.join('\n'));
  assert.match(note, new RegExp(`skipping 2 snapshots in ${pair.snaps} whose names snapferry cannot use \\("-dash", "bad name"\\)`));
  assert.match(note, /ASCII letters, digits and \. _ @ : \+ - \(not first\)/);

  // Named on the command line, the snapshot is what was asked for: refused, not skipped.
  const direct = await snapferry(['push', '--server', server.url, '--volume', 'home', path.join(pair.snaps, 'bad name')]);
  assert.equal(direct.exitCode, EXIT.usage, direct.stderr);
  assert.match(direct.stderr, /snapshot name "bad name" is not allowed: use ASCII letters/);

  // The fix the note gives: a read-only snapshot renamed is pushed by the next run.
  await fs.rename(path.join(pair.snaps, '-dash'), path.join(pair.snaps, 'dash'));
  const again = recordingReporter();
  const r2 = await push({ server: server.url, volume: 'home', snapshots: [pair.snaps] }, again);
  assert.deepEqual(r2.sent.map((s) => s.snapshot), ['dash']);
  assert.ok(again.notes.some((n) => /skipping 1 snapshot in .* whose name snapferry cannot use \("bad name"\): .*rename it \(mv\) to push it$/.test(n)), again.notes.join('\n'));
});
