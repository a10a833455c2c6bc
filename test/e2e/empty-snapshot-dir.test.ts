/**
 * A configured snapshotDir with no snapshot in it yet (a new subvolume, as /.snapshots/NAME often is, or a plain
 * folder): `push --config` says there is none yet and how to take one, not how to snapshot the folder itself, and
 * `status` shows the volume with none, not "(cannot list)".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { createPair } from './harness.ts';
import { SNAPFERRY_BIN } from './processes.ts';

const snapferry = (args: string[]) => execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '' } });

for (const kind of ['subvolume', 'folder'] as const) {
  test(`an empty snapshotDir (a ${kind}): push says no snapshots yet, status lists none without an error`, rootOnly, async (t) => {
    const pair = await createPair(t, { fillMB: 1 });
    const server = await pair.startServer();
    const dir = path.join(pair.client.mountPoint, 'snapshots-home');
    if (kind === 'subvolume') await btrfs.createSubvolume(dir);
    else await fs.mkdir(dir);
    const config = path.join(pair.client.mountPoint, 'client.yaml');
    await fs.writeFile(config, `server: ${server.url}\nvolumes:\n  home:\n    source: ${pair.source}\n    snapshotDir: ${dir}\n`);

    const pushed = await snapferry(['push', '--config', config]);
    assert.equal(pushed.exitCode, EXIT.usage, pushed.stderr);
    assert.match(pushed.stderr, new RegExp(`no snapshots yet in ${dir} \\(take one with \`snapferry snapshot\`\\)`));
    assert.doesNotMatch(pushed.stderr, /btrfs subvolume snapshot/);

    const status = await snapferry(['status', '--config', config, '--json']);
    assert.equal(status.exitCode, EXIT.ok, status.stderr);
    const report = JSON.parse(status.stdout) as { volumes: { name: string; local: unknown }[] };
    assert.deepEqual(report.volumes.find((v) => v.name === 'home')?.local, { dir, snapshots: 0, newest: null, notOnServer: 0 });
  });
}
