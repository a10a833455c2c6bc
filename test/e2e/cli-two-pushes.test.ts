// Two pushes of one snapshot at once, through the command as a user runs it: the second waits for the first without
// repeating itself, says once why it waits, and both end well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { assertReceived, createPair, until } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

test('a second push of a snapshot another push is uploading waits quietly, naming the cause once', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 6 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const args = ['push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', s1];
  const first = execa('node', [BIN, ...args], { reject: false, timeout: 120_000 });
  const api = new ServerApi({ server: server.url });
  await until('the first push uploads', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.wireOffset > 0));
  const second = await execa('node', [BIN, ...args], { reject: false, timeout: 120_000 });
  const one = await first;
  assert.equal(one.exitCode, EXIT.ok, one.stderr);
  assert.equal(second.exitCode, EXIT.ok, second.stderr);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
  const waits = second.stderr.split('\n').filter((l) => /another push holds this upload|409|transfer_locked/.test(l));
  assert.ok(waits.length <= 1, `said more than once:\n${second.stderr}`);
  assert.doesNotMatch(second.stderr, /answered 409: ?;/);
});
