import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { mutate, rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import type { RunConfig } from '../../client/run/run.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { assertReceived, createPair, until } from './harness.ts';
import { homeRun, runAt } from './run-helpers.ts';
import { unreachableServer } from '../fixtures/local-port.ts';

const T = ['2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z', '2026-11-01T12:00:00Z', '2026-11-01T13:00:00Z'];
const NAME = ['home.20261101T100000Z', 'home.20261101T110000Z', 'home.20261101T120000Z', 'home.20261101T130000Z'];

test('run twice with a change between: two snapshots pushed, the second incremental; dry-run changes nothing; pruning keeps the next parent', rootOnly, async (t) => {
  const { pair, server, api, run, home, config } = await homeRun(t, { fillMB: 4 });
  const local = async () => (await fs.readdir(pair.snaps)).sort();

  const r1 = await run(config, T[0]!);
  assert.equal(r1.exitCode, EXIT.ok, r1.lines.join('\n'));
  assert.match(r1.lines[0]!, /^home: snapshot home\.20261101T100000Z, pushed 1 \(\d+\.\d (KiB|MiB)\), pruned 0$/);
  assert.deepEqual(r1.started, [{ snapshot: NAME[0], parent: null }]);

  await mutate(pair.source, 'run-1');
  const r2 = await run(config, T[1]!);
  assert.equal(r2.exitCode, EXIT.ok, r2.lines.join('\n'));
  assert.match(r2.lines[0]!, /^home: snapshot home\.20261101T110000Z, pushed 1 \(.+\), pruned 0$/);
  assert.deepEqual(r2.started, [{ snapshot: NAME[1], parent: NAME[0] }], 'the second run is incremental on the first');
  await assertReceived(path.join(pair.snaps, NAME[1]!), pair.receivedPath('home', NAME[1]!));
  const held = (await api.snapshots('home')).snapshots;
  assert.deepEqual(held.map((s) => s.name), [NAME[0], NAME[1]]);
  assert.ok(held[1]!.wireBytes < held[0]!.wireBytes / 2, `incremental ${held[1]!.wireBytes} vs full ${held[0]!.wireBytes}`);

  // A policy now, tried first with --dry-run: it says what it would do and does nothing.
  const pruning: RunConfig = { server: server.url, volumes: { home: { ...home, retention: { last: 1 } } } };
  const dry = await run(pruning, T[2]!, { dryRun: true });
  assert.equal(dry.exitCode, EXIT.ok);
  assert.deepEqual(dry.lines, [`home: would snapshot ${NAME[2]}, would push 1, would prune 1`]);
  assert.deepEqual(dry.notes, [
    `home: would send ${NAME[2]} once taken (incremental from ${NAME[1]}), size unknown until then`,
    'home: 1 snapshot(s) would be sent; nothing was sent (--dry-run)',
    `home: delete ${NAME[0]}`,
    `home: keep   ${NAME[1]}  (newest snapshot both sides hold: the parent of the next incremental; one of the last 1)`,
  ]);
  assert.deepEqual(await local(), [NAME[0], NAME[1]], 'dry-run took and deleted nothing');
  assert.equal((await api.snapshots('home')).snapshots.length, 2, 'dry-run pushed nothing');

  await mutate(pair.source, 'run-2');
  const r3 = await run(pruning, T[2]!);
  assert.equal(r3.exitCode, EXIT.ok, r3.lines.join('\n'));
  assert.match(r3.lines[0]!, /^home: snapshot home\.20261101T120000Z, pushed 1 \(.+\), pruned 2$/);
  assert.deepEqual(await local(), [NAME[2]], 'only the newest, which the server now holds too');

  await mutate(pair.source, 'run-3');
  const r4 = await run(pruning, T[3]!);
  assert.equal(r4.exitCode, EXIT.ok, r4.lines.join('\n'));
  assert.deepEqual(r4.started, [{ snapshot: NAME[3], parent: NAME[2] }], 'the kept snapshot is the parent');
  await assertReceived(path.join(pair.snaps, NAME[3]!), pair.receivedPath('home', NAME[3]!));
  assert.deepEqual(await local(), [NAME[3]]);
});

test('a failing volume does not stop the others; without the server nothing is pruned', rootOnly, async (t) => {
  const { pair, server, run, home: plain } = await homeRun(t, { fillMB: 1 });
  const home = { ...plain, retention: { last: 1 } };
  const broken = { source: path.join(pair.client.mountPoint, 'no-such-subvolume'), snapshotDir: path.join(pair.client.mountPoint, 'broken-snaps') };

  const r1 = await run({ server: server.url, volumes: { broken, home } }, T[0]!);
  assert.equal(r1.lines.length, 2);
  assert.match(r1.lines[0]!, /^broken: snapshot failed: the source of volume broken, .*no-such-subvolume, is not a btrfs subvolume.*, nothing to push, pruned 0$/);
  assert.match(r1.lines[1]!, /^home: snapshot home\.20261101T100000Z, pushed 1 /);
  assert.equal(r1.exitCode, EXIT.usage, 'the most serious of the volumes: a config mistake');

  // The server unreachable: the snapshot is still taken, the push is a temporary failure, and nothing is deleted.
  const r2 = await run({ server: await unreachableServer(), volumes: { home } }, T[1]!);
  assert.equal(r2.exitCode, EXIT.temporary, r2.lines.join('\n'));
  assert.match(r2.lines[0]!, /^home: snapshot home\.20261101T110000Z, push failed: cannot reach .*, prune failed: cannot reach /);
  assert.deepEqual((await fs.readdir(pair.snaps)).sort(), [NAME[0], NAME[1]]);

  // --volume picks one; a name not in the config is a usage error before anything runs.
  const r3 = await run({ server: server.url, volumes: { broken, home } }, T[2]!, { only: ['home'] });
  assert.equal(r3.exitCode, EXIT.ok, r3.lines.join('\n'));
  assert.match(r3.lines[0]!, /^home: snapshot home\.20261101T120000Z, pushed 2 \(.+\), pruned 2$/);
  await assert.rejects(run({ server: server.url, volumes: { home } }, T[3]!, { only: ['nope'] }), /no volume nope in the config; it has home/);
});

test('run pushes the snapshots taken by hand or by btrbk in the snapshotDir too, not only its own', rootOnly, async (t) => {
  const { pair, api, run, config } = await homeRun(t, { fillMB: 2 });
  assert.equal((await run(config, T[0]!)).exitCode, EXIT.ok);
  // Between two runs, a snapshot in btrbk's name format (no seconds, no Z), as the README says one may take.
  await mutate(pair.source, 'by-hand');
  const byHand = await pair.snapshot('home.20261101T1030');
  await mutate(pair.source, 'after-hand');
  const r2 = await run(config, T[1]!);
  assert.equal(r2.exitCode, EXIT.ok, r2.lines.join('\n'));
  // Sent in order, each on the one before: before, run sent only its own, on NAME[0], and every later push skipped
  // the hand-made one as older than the server's newest.
  assert.deepEqual(r2.started, [{ snapshot: 'home.20261101T1030', parent: NAME[0] }, { snapshot: NAME[1], parent: 'home.20261101T1030' }]);
  assert.deepEqual((await api.snapshots('home')).snapshots.map((s) => s.name), [NAME[0], 'home.20261101T1030', NAME[1]]);
  await assertReceived(byHand, pair.receivedPath('home', 'home.20261101T1030'));

  // One more by hand, after run's newest, and pushed: the next incremental is from it, not from run's NAME[1], and
  // prune --dry-run says so. Before, prune planned on run's own snapshots alone and named NAME[1] the next parent.
  await mutate(pair.source, 'by-hand-2');
  await pair.snapshot('home.20261101T1130');
  assert.equal((await run(config, T[2]!, { steps: ['push'] })).exitCode, EXIT.ok);
  const pruning: RunConfig = { ...config, volumes: { home: { ...config.volumes['home']!, retention: { last: 5 } } } };
  const dry = await run(pruning, T[2]!, { steps: ['prune'], dryRun: true });
  assert.equal(dry.exitCode, EXIT.ok, dry.lines.join('\n'));
  // The two taken by hand are pushed like the others but never pruned, which the dry run says.
  assert.deepEqual(dry.notes, [
    'home: left alone whatever the retention: home.20261101T1030, home.20261101T1130 (retention prunes only the names snapferry snapshot gives, home.YYYYMMDDTHHMMSSZ)',
    `home: keep   ${NAME[0]}  (one of the last 5)`,
    `home: keep   ${NAME[1]}  (one of the last 5)`,
  ]);
});

test('every volume gets its snapshot before the pushes: a push that does not end keeps no later volume from its snapshot', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  // A server that takes every request and never answers: the first volume's push waits on it as on a seed of days.
  const held = http.createServer(() => undefined);
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    held.closeAllConnections();
    held.close();
  });
  const url = `http://127.0.0.1:${(held.address() as AddressInfo).port}`;
  const workSource = path.join(pair.client.mountPoint, 'work');
  await btrfs.createSubvolume(workSource);
  const workSnaps = path.join(pair.client.mountPoint, 'work-snaps');
  await fs.mkdir(workSnaps);
  const config: RunConfig = { server: url, volumes: { home: { source: pair.source, snapshotDir: pair.snaps }, work: { source: workSource, snapshotDir: workSnaps } } };
  const stop = new AbortController();
  const run = runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`))(config, T[0]!, { signal: stop.signal, push: { pollMs: 50, stallMs: 600_000 } });
  run.catch(() => undefined);
  let stopped = 0;
  try {
    await until('work\'s snapshot', async () => (await fs.readdir(workSnaps)).includes('work.20261101T100000Z'), 10_000);
  } finally {
    stop.abort();
    stopped = Date.now();
  }
  assert.deepEqual(await fs.readdir(pair.snaps), [NAME[0]]);
  const record = await run;
  assert.equal(record.exitCode, EXIT.interrupted, record.lines.join('\n'));
  // The stop cancels the request that waits on the server, as Ctrl-C would: not its 10-minute stall timeout (nor
  // undici's 300 s for headers, which is what ended it before).
  const waited = Date.now() - stopped;
  assert.ok(waited < 20_000, `the run went on ${Math.round(waited / 1000)} s after its stop`);
});
