/**
 * The catalog lost (moved away, as the server's own catalog_corrupt message advises) and rebuilt at start from the
 * subvolumes on disk (server/reconcile.ts). A snapshot adopted without its transfer has only its Received UUID left,
 * the client's UUID in the client's namespace (server/uuid-namespace.ts), which cannot be computed back. Before the
 * fix it was recorded as if that were the client's UUID: verify said the snapshot was not on the server, push planned
 * it again in full and then failed "already has a different snapshot named", nothing newer was ever sent, a restore
 * carried the server's own Received UUID, and the start dropped the snapshot's saved digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { createBtrfs, mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { ServerLayout } from '../../server/layout.ts';
import { formatProgress } from '../../client/progress/format.ts';
import type { ProgressFigures } from '../../client/progress/figures.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const verifyCli = (server: string, snapshot: string) => execa('node', [BIN, 'verify', '--server', server, '--volume', 'v', snapshot], { reject: false, timeout: 120_000 });

test('a catalog moved away and rebuilt from the disk: verify passes, the next push goes incremental on the adopted snapshot, a restore has the client\'s UUID, its saved digest stays', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 8, seed: 'catalog-rebuild' });
  const layout = new ServerLayout(pair.root);
  let server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const s1Uuid = (await btrfs.subvolumeShow(s1)).uuid;

  const rebuild = async () => {
    await server.close();
    await fs.rename(layout.catalog, path.join(pair.server.mountPoint, `catalog.json.moved-${Date.now()}`));
    server = await pair.startServer();
  };
  await rebuild();

  // Its size went with the catalog: `snapshots` and `status` say it is unknown, not 0 B (and not a volume of 0 B).
  const cli = async (...args: string[]) => (await execa('node', [BIN, ...args, '--server', server.url], { timeout: 60_000 })).stdout;
  assert.match(await cli('snapshots', '--volume', 'v'), /^v +s1 +.+ unknown$/m);
  const rows = JSON.parse(await cli('snapshots', '--volume', 'v', '--json')) as { name: string; rawBytes: number | null; wireBytes: number | null }[];
  assert.deepEqual(rows.map((r) => [r.name, r.rawBytes, r.wireBytes]), [['s1', null, null]]);
  const status = JSON.parse(await cli('status', '--json')) as { volumes: { name: string; rawBytes: number | null }[] };
  assert.deepEqual(status.volumes.map((v) => [v.name, v.rawBytes]), [['v', null]]);

  const verified = await verifyCli(server.url, s1);
  assert.equal(verified.exitCode, EXIT.ok, verified.stderr);

  await mutate(pair.source, 'catalog-rebuild');
  const s2 = await pair.snapshot('s2');
  const dry = await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0, dryRun: true }, recordingReporter());
  assert.deepEqual(dry.present, ['s1'], 'the adopted snapshot is the one here');
  const pushed = await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0 }, recordingReporter());
  assert.deepEqual(pushed.sent.map((s) => [s.snapshot, s.parent]), [['s2', 's1']], 'an incremental on the adopted snapshot');
  await assertReceived(s2, pair.receivedPath('v', 's2'));

  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  // The adopted snapshot's size is not known (its push's record went with the catalog): said so, not `0 B / ~0 B`.
  const figures: ProgressFigures[] = [];
  await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, chunkSize: 256 * 1024 }, { ...recordingReporter(), progress: (f) => figures.push(f) });
  const before = figures.filter((f) => !f.rawTotalExact);
  assert.ok(before.length > 0, 'progress before the end frame');
  assert.deepEqual([...new Set(before.map((f) => f.rawTotal))], [null], 'no total before the end frame tells it');
  assert.match(formatProgress(before.at(-1)!), /^s1 {2}[\d.]+ [KMG]?i?B raw \(size unknown\) {2}/);
  assert.ok(before.every((f) => f.etaSeconds === null), 'no ETA without a total');
  const restored = await btrfs.subvolumeShow(path.join(dest, 's1'));
  assert.equal(restored.receivedUuid, s1Uuid, 'the client\'s UUID, not the server\'s Received UUID');

  // Verified once the UUID is known: the digest is saved under it, and a second rebuild keeps it (and learns the
  // UUID from its name, so the listing knows it before the client says anything).
  assert.equal((await verifyCli(server.url, s1)).exitCode, EXIT.ok);
  const digest = layout.digestFile('default' as never, 'v' as never, s1Uuid as never);
  await fs.access(digest);
  await rebuild();
  await fs.access(digest).catch(() => assert.fail('the adopted snapshot\'s saved digest was dropped at start'));
  const listed = (await new ServerApi({ server: server.url }).snapshots('v')).snapshots.find((s) => s.name === 's1');
  assert.deepEqual({ uuid: listed?.uuid, uuidUnknown: listed?.uuidUnknown }, { uuid: s1Uuid, uuidUnknown: undefined });
});
