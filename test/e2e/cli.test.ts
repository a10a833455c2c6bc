import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { assertReceived, createPair } from './harness.ts';
import { snapferry } from './processes.ts';
import { unreachableServer } from '../fixtures/local-port.ts';


test('snapferry push and status from the command line, with exit codes a timer can act on', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');

  const pushed = await snapferry(['push', '--server', server.url, '--volume', 'home', s1]);
  assert.equal(pushed.exitCode, EXIT.ok, pushed.stderr);
  assert.match(pushed.stderr, /received s1/);
  await assertReceived(s1, pair.receivedPath('home', 's1'));

  const json = await snapferry(['status', '--server', server.url, '--json']);
  assert.equal(json.exitCode, 0, json.stderr);
  const status = JSON.parse(json.stdout);
  assert.deepEqual(status.volumes.map((v: { name: string }) => v.name), ['home']);
  const text = await snapferry(['status', '--server', server.url]);
  assert.match(text.stdout, /home\s+1\s+s1/);

  const writable = await snapferry(['push', '--server', server.url, '--volume', 'home', pair.source]);
  assert.equal(writable.exitCode, EXIT.usage);
  assert.match(writable.stderr, /read-only/);

  const badName = await snapferry(['push', '--server', server.url, '--volume', '../etc', s1]);
  assert.equal(badName.exitCode, EXIT.usage);
  assert.match(badName.stderr, /volume .* is not allowed/);
});

test('an unreachable server is a temporary failure (exit 75): run again later', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const s1 = await pair.snapshot('s1');
  const r = await snapferry(['push', '--server', await unreachableServer(), '--volume', 'v', s1]);
  assert.equal(r.exitCode, EXIT.temporary, r.stderr);
  assert.match(r.stderr, /cannot reach/);
});

test('serve refuses a root that is not on btrfs, and says why', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-notbtrfs-'));
  try {
    const r = await snapferry(['serve', '--root', dir, '--listen', '127.0.0.1:0', '--no-auth']);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /not on a btrfs filesystem/);
    // A root that does not exist yet is judged by the folder it would be made in, and not made.
    const unmade = path.join(dir, 'backups', 'root');
    const again = await snapferry(['serve', '--root', unmade, '--listen', '127.0.0.1:0', '--no-auth']);
    assert.notEqual(again.exitCode, 0);
    assert.match(again.stderr, /not on a btrfs filesystem/);
    assert.deepEqual(await fs.readdir(dir), [], 'nothing made for a refused root');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
