/**
 * `snapferry client remove` while a server runs: the client can push no more, so its uploads in progress end as an
 * abort ends them (receive stopped, partial subvolume deleted, spool deleted), with no request of its own to make the
 * server look. Before, the upload's `btrfs receive` waited in its volume until the upload expired (7 days), holding
 * the volume busy for a client re-added under the same name. Another client's upload goes on untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeTakeDown, createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { receiveRunsIn, until } from '../fixtures/receive-exit.ts';
import { authHeaders } from '../../client/http/token.ts';
import { ChildProcesses, freePort, snapferry } from './processes.ts';
import { aliceBobAdmin } from './harness.ts';
import { CHUNK, create, encodeMetadata, metadataFor, patch, streamOfRandomFile } from './hostile-client.ts';
import { startServer } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import { removeClient } from '../../server/tokens.ts';

test("removing a client ends its uploads in progress at once, as an abort does; another client's goes on", { ...rootOnly, timeout: 180_000 }, async (t) => {
  const children = new ChildProcesses(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const server = await children.serve({ root, port: await freePort(), tokensFile: file });

  // An upload of each client, part sent (no end frame): each has its receive running in its volume's folder.
  const begin = async (token: string, client: string) => {
    const uuid = randomUuid();
    const created = await create(server.url, { ...authHeaders(token), 'Upload-Metadata': encodeMetadata(metadataFor('home', 'snap', uuid)) });
    assert.equal(created.status, 201, created.text);
    const framed = await frameStream(streamOfRandomFile(uuid, 40), CHUNK);
    const part = await patch(server.url, created.id!, 0, framed.subarray(0, 8 * (CHUNK + FRAME_HEADER_SIZE)), authHeaders(token));
    assert.equal(part.status, 204, part.text);
    const dir = path.join(root, 'volumes', client, 'home');
    await until(`${client}'s receive to run`, () => receiveRunsIn(dir));
    return { id: created.id!, dir };
  };
  const alices = await begin(alice, 'alice');
  const bobs = await begin(bob, 'bob');
  const stateOf = async (id: string, client: string) => {
    const r = await fetch(`${server.url}/v1/transfers/${id}?client=${client}`, { headers: authHeaders(admin) });
    return ((await r.json()) as { state: string }).state;
  };

  const removed = await snapferry(['client', 'remove', 'alice', '--tokens', file]);
  assert.equal(removed.exitCode, 0, removed.stderr);

  // No request of alice's (she has no token now) nor anyone's: the server sees the change by itself.
  await until('the removed client\'s upload to end', async () => (await stateOf(alices.id, 'alice')) === 'aborted', 15_000);
  assert.equal(await receiveRunsIn(alices.dir), false, 'its btrfs receive was stopped');
  assert.deepEqual(await fs.readdir(alices.dir), [], 'its partial subvolume was deleted');
  assert.deepEqual((await fs.readdir(path.join(root, 'spool'))).filter((n) => n.startsWith(alices.id)), [], 'its spool was deleted');
  const line = await server.waitForStderr(/^\{[^\n]*"msg":"client removed from the tokens file[^\n]*$/m, 5_000);
  assert.match(line[0], /"client":"alice"/);
  assert.match(line[0], /"uploadsEnded":1/);
  // The command only edits the file: it says what the server does, and where the count is.
  assert.match(removed.stderr, /removed client alice; a running server ends its uploads in progress within 2 s .* its log says how many/);

  // Bob's upload is untouched, its receive still waiting for the rest.
  assert.equal(await stateOf(bobs.id, 'bob'), 'uploading');
  assert.equal(await receiveRunsIn(bobs.dir), true);
});

test('a client removed from the tokens file while the server was down has its uploads in progress ended as the server starts; another client\'s goes on', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const serve = () => startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), tokensFile: file });
  const first = await serve();
  const begin = async (token: string) => {
    const uuid = randomUuid();
    const created = await create(first.url, { ...authHeaders(token), 'Upload-Metadata': encodeMetadata(metadataFor('home', 'snap', uuid)) });
    assert.equal(created.status, 201, created.text);
    const framed = await frameStream(streamOfRandomFile(uuid, 40), CHUNK);
    const part = await patch(first.url, created.id!, 0, framed.subarray(0, 8 * (CHUNK + FRAME_HEADER_SIZE)), authHeaders(token));
    assert.equal(part.status, 204, part.text);
    return created.id!;
  };
  const [alices, bobs] = await Promise.all([begin(alice), begin(bob)]).finally(() => first.close());

  // alice is removed while no server runs: nothing sees the file change.
  await removeClient(file, 'alice');
  const second = await serve();
  closeFirst(() => second.close());
  const stateOf = async (id: string, client: string) =>
    ((await (await fetch(`${second.url}/v1/transfers/${id}?client=${client}`, { headers: authHeaders(admin) })).json()) as { state: string }).state;
  // Ended before the server answers anything, as an abort ends it.
  assert.equal(await stateOf(alices, 'alice'), 'aborted');
  const aliceDir = path.join(root, 'volumes', 'alice', 'home');
  assert.equal(await receiveRunsIn(aliceDir), false, 'its btrfs receive, started again from the spool, was stopped');
  assert.deepEqual(await fs.readdir(aliceDir), [], 'its partial subvolume was deleted');
  assert.deepEqual((await fs.readdir(path.join(root, 'spool'))).filter((n) => n.startsWith(alices)), [], 'its spool was deleted');
  assert.equal(await stateOf(bobs, 'bob'), 'uploading');
  await until('bob\'s receive to run again', () => receiveRunsIn(path.join(root, 'volumes', 'bob', 'home')));
});
