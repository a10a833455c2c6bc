/**
 * Issue 19, part 2: one volume holds the snapshots of one source subvolume. A folder holding data.* and home.*
 * (btrbk's layout, two sources side by side) is refused as a whole, with the way to push each; pushed per source,
 * each goes in full and then incrementally from its own snapshots; a snapshot of another source is never a parent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { assertReceived, createPair, recordingReporter, type Pair } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

/** A second source, `home`, beside the pair's `data`, and a btrbk-style folder holding snapshots of both. */
async function twoSources(pair: Pair): Promise<{ home: string; folder: string; take: (source: 'data' | 'home', name: string) => Promise<string> }> {
  const home = path.join(pair.client.mountPoint, 'home');
  await btrfs.createSubvolume(home);
  await fs.writeFile(path.join(home, 'notes'), 'home\n');
  const folder = path.join(pair.client.mountPoint, 'snapshots');
  await fs.mkdir(folder);
  const take = async (source: 'data' | 'home', name: string) => {
    const p = path.join(folder, name);
    await snapshotReadonly(source === 'data' ? pair.source : home, p);
    return p;
  };
  return { home, folder, take };
}

test('a folder of two sources is refused with a way to push each; pushed per source, each chain stays its own', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const { home, folder, take } = await twoSources(pair);
  const d1 = await take('data', 'data.20261204T0100');
  const h1 = await take('home', 'home.20261204T0200');
  await fs.writeFile(path.join(pair.source, 'more'), 'more\n');
  await fs.writeFile(path.join(home, 'more'), 'more\n');
  const d2 = await take('data', 'data.20261204T0300');
  const h2 = await take('home', 'home.20261204T0400');

  await assert.rejects(push({ server: server.url, volume: 'all', snapshots: [folder] }, recordingReporter()), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'mixed_sources');
    assert.match(err.message, /of 2 different subvolumes/);
    assert.match(err.message, /data \(subvolume [0-9a-f-]{36}\): data\.20261204T0100, data\.20261204T0300 \(2 snapshots\)/);
    assert.match(err.message, new RegExp(`push it with: snapferry push --volume home ${folder}`));
    return true;
  });
  // From the command line: the usage exit code, and the same message.
  const cli = await execa('node', [BIN, 'push', '--server', server.url, '--volume', 'all', folder], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '' } });
  assert.equal(cli.exitCode, EXIT.usage, cli.stderr);
  assert.match(cli.stderr, /push it with: snapferry push --volume data /);
  assert.deepEqual((await new ServerApi({ server: server.url }).transfers()).transfers, [], 'refused before any upload');

  // Per source: full, then incremental from its own.
  const data = await push({ server: server.url, volume: 'data', snapshots: [d1, d2] }, recordingReporter());
  assert.deepEqual(data.sent.map((s) => [s.snapshot, s.parent]), [['data.20261204T0100', null], ['data.20261204T0300', 'data.20261204T0100']]);
  const homes = await push({ server: server.url, volume: 'home', snapshots: [h1, h2] }, recordingReporter());
  assert.deepEqual(homes.sent.map((s) => [s.snapshot, s.parent]), [['home.20261204T0200', null], ['home.20261204T0400', 'home.20261204T0200']]);
  for (const [volume, p] of [['data', d2], ['home', h2]] as const) await assertReceived(p, pair.receivedPath(volume, path.basename(p)));
});

test('a snapshot of another source is never the parent, even in a volume that already holds one (the issue: home from data)', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const { take } = await twoSources(pair);
  const d1 = await take('data', 'data.20261204T0100');
  const h1 = await take('home', 'home.20261204T0400');
  await push({ server: server.url, volume: 'mixed', snapshots: [d1] }, recordingReporter());
  const report = recordingReporter();
  const r = await push({ server: server.url, volume: 'mixed', snapshots: [h1] }, report);
  assert.deepEqual(r.sent.map((s) => [s.snapshot, s.parent]), [['home.20261204T0400', null]], 'in full, not incremental from data');
  assert.ok(report.notes.some((n) => /sending home\.20261204T0400 in full: the snapshots this volume holds \(data\.20261204T0100, \.\.\.\) are of another subvolume/.test(n)), report.notes.join('\n'));
  await assertReceived(h1, pair.receivedPath('mixed', 'home.20261204T0400'));
});
