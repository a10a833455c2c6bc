import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { createPair } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '' } });

test('snapferry snapshot, run and prune-server from the command line; a second run while one runs exits 73', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  // The server receives nothing until told: the first run waits for it, holding the lock, as long as the test needs.
  const server = await pair.startServer({ holdReceives: true });
  const dir = path.join(pair.client.mountPoint, 'etc');
  await fs.mkdir(dir);
  const config = path.join(dir, 'client.yaml');
  const lockFile = path.join(dir, `run-${process.pid}.lock`);
  await fs.writeFile(config, [
    `server: ${server.url}`,
    'volumes:',
    '  home:',
    `    source: ${pair.source}`,
    `    snapshotDir: ${pair.snaps}`,
    '    snapshotEvery: 1h',
    '    retention:',
    '      last: 1',
    '',
  ].join('\n'));

  const taken = await snapferry(['snapshot', '--config', config]);
  assert.equal(taken.exitCode, EXIT.ok, taken.stderr);
  assert.match(taken.stdout, /^home: snapshot home\.\d{8}T\d{6}Z$/);
  const again = await snapferry(['snapshot', '--config', config]);
  assert.match(again.stdout, /^home: no snapshot \(the newest is \d+s old, under snapshotEvery 60m\)$/);
  assert.equal((await fs.readdir(pair.snaps)).length, 1);

  const first = snapferry(['run', '--config', config, '--lock-file', lockFile]);
  // The lock file holds the run's pid once it holds the lock (client/run/lock.ts).
  const holds = () => fs.readFile(lockFile, 'utf8').then((text) => text.includes(`"pid":${first.pid}`), () => false);
  for (let i = 0; i < 200 && !(await holds()); i++) await sleep(50);
  const second = await snapferry(['run', '--config', config, '--lock-file', lockFile]);
  assert.equal(second.exitCode, EXIT.locked, second.stderr);
  assert.match(second.stderr, new RegExp(`another snapferry run \\(pid ${first.pid}, started .*\\) holds ${lockFile}`));
  assert.equal(second.stdout, '', 'the second run did nothing');
  server.service.resumeReceives();
  const done = await first;
  assert.equal(done.exitCode, EXIT.ok, done.stderr);
  assert.match(done.stdout, /^home: no snapshot \(.*\), pushed 1 \(.+\), pruned 0$/);
  assert.equal(await fs.readFile(lockFile, 'utf8'), '', 'released at the end: no holder named');

  const dry = await snapferry(['run', '--config', config, '--lock-file', lockFile, '--dry-run', '--force']);
  assert.equal(dry.exitCode, EXIT.ok, dry.stderr);
  assert.match(dry.stdout, /^home: would snapshot home\.\d{8}T\d{6}Z, would push 1, would prune 0$/);
  assert.match(dry.stderr, /^home: would send home\.\d{8}T\d{6}Z once taken \(incremental from home\.\d{8}T\d{6}Z\), size unknown until then$/m);
  assert.match(dry.stderr, /home: keep {3}home\.\d{8}T\d{6}Z {2}\(newest snapshot both sides hold/);

  const preview = await snapferry(['prune-server', '--root', pair.root, '--dry-run']);
  assert.equal(preview.exitCode, EXIT.ok, preview.stderr);
  assert.match(preview.stdout, /^default\/home: no retention policy, all 1 kept$/);
  // Without --dry-run it would change the root, which the running server (this process) holds.
  const refused = await snapferry(['prune-server', '--root', pair.root]);
  assert.equal(refused.exitCode, EXIT.failed, refused.stderr);
  assert.match(refused.stderr, new RegExp(`in use by snapferry serve \\(pid ${process.pid}, since `));
});

test("run --digest-cache DIR: run's verify: keeps this machine's digests there, as verify --digest-cache does", rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const dir = path.join(pair.client.mountPoint, 'etc');
  await fs.mkdir(dir);
  const config = path.join(dir, 'client.yaml');
  await fs.writeFile(config, [
    `server: ${server.url}`,
    'verify: newest',
    'volumes:',
    '  home:',
    `    source: ${pair.source}`,
    `    snapshotDir: ${pair.snaps}`,
    '',
  ].join('\n'));
  const cache = path.join(pair.client.mountPoint, 'digests');
  const run = await snapferry(['run', '--config', config, '--lock-file', path.join(dir, `run-${process.pid}.lock`), '--digest-cache', cache]);
  assert.equal(run.exitCode, EXIT.ok, run.stderr);
  assert.match(run.stdout, /^home: snapshot home\.\d{8}T\d{6}Z, pushed 1 \(.+\), verified home\.\d{8}T\d{6}Z \(.+ on the line\), pruned 0$/);
  const [snapshot] = await fs.readdir(pair.snaps);
  const { uuid } = await btrfs.subvolumeShow(path.join(pair.snaps, snapshot!));
  assert.deepEqual(await fs.readdir(path.join(cache, 'home')), [`${uuid}.digest`]);
});
