// A push of a folder the server mostly holds (what `run` does every hour) says so in one line, not one per snapshot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { createPair } from './harness.ts';
import { snapferry } from './processes.ts';


test('snapshots already on the server are noted once per push, not once each', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  for (const name of ['s1', 's2', 's3']) await pair.snapshot(name);
  const first = await snapferry(['push', '--server', server.url, '--volume', 'home', pair.snaps]);
  assert.equal(first.exitCode, EXIT.ok, first.stderr);
  await pair.snapshot('s4');
  const again = await snapferry(['push', '--server', server.url, '--volume', 'home', pair.snaps]);
  assert.equal(again.exitCode, EXIT.ok, again.stderr);
  const present = again.stderr.split('\n').filter((l) => /already on the server/.test(l));
  assert.deepEqual(present, ['note: 3 of these snapshots are already on the server (the newest of them: s3)'], again.stderr);
  assert.match(again.stderr, /received s4/);
});
