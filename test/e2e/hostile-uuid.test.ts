/**
 * Each client's UUIDs in a namespace of their own on the server's disk (issue 17, server/uuid-namespace.ts), against
 * a real server on real btrfs: a UUID another client holds is received like any other, each client's snapshots and
 * incrementals stay their own, a stream that names another client's UUID finds nothing of it, and snapshots
 * received before namespacing (their raw UUID on disk) still take incrementals and restore; at start, the catalog
 * meets the disk through the same mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeTakeDown, createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { authHeaders } from '../../client/http/token.ts';
import { restore } from '../../client/restore/restore.ts';
import { startServer } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import { namespacedUuid } from '../../server/uuid-namespace.ts';
import { SendStreamBuilder, randomUuid } from '../fixtures/send-streams.ts';
import { createAs, hostileServer, sendAs, settled, twoClients, uploadStream, metadataFor, type HostileServer, type Reply } from './hostile-client.ts';
import { recordingReporter } from './harness.ts';

const uuidTest = { ...rootOnly, timeout: 120_000 };

function full(uuid: string, name = 'snap'): SendStreamBuilder {
  return new SendStreamBuilder().subvol(name, uuid);
}

async function received(h: HostileServer, token: string, volume: string, snapshot: string, uuid: string, raw: Buffer, parentUuid?: string): Promise<void> {
  const created = await createAs(h, token, volume, uuid, snapshot, parentUuid);
  assert.equal(created.status, 201, created.text);
  assert.equal((await sendAs(h, token, created.id!, raw)).status, 204);
  const t = await settled(h, created.id!);
  assert.equal(t.state, 'received', JSON.stringify(t.error));
}

const snapDir = (h: HostileServer, client: string, volume: string, name: string) => path.join(h.root, 'volumes', client, volume, name);
const read = (h: HostileServer, client: string, volume: string, name: string, file: string) => fs.readFile(path.join(snapDir(h, client, volume, name), file), 'utf8').catch(() => null);

/** A reply with everything that names this one upload (its id, a UUID) replaced, to compare with another's. */
function shape(r: Reply & { id?: string | null }, ...names: string[]) {
  let text = r.text;
  for (const n of [r.id, ...names]) if (n) text = text.replaceAll(n, '<X>');
  // Times (Date, Upload-Expires) differ by the clock alone: their names are compared, not their values.
  const headers = [...r.headers.entries()].map(([k, v]) => [k, ['date', 'upload-expires'].includes(k) ? '<time>' : r.id ? v.replaceAll(r.id, '<id>') : v]);
  return { status: r.status, code: r.code, text, headers };
}

test("a UUID another client holds is received in the caller's own namespace, answered like a fresh one; each client's snapshots and incrementals stay their own", uuidTest, async (t) => {
  const keys = await twoClients(t);
  const h = await hostileServer(t, { tokensFile: keys.file });
  const u = randomUuid();
  // Bob's upload of the same UUID starts before Alice's snapshot exists (it used to be refused just before its rename).
  const early = await createAs(h, keys.bob, 'home', u);
  assert.equal(early.status, 201, early.text);
  await received(h, keys.alice, 'home', 'snap', u, full(u).file('who', Buffer.from('alice\n')).file('aonly', Buffer.from('a\n')).end().build());

  // In Alice's own namespace, another volume of hers: the helpful answer, naming where it is.
  const own = await createAs(h, keys.alice, 'other', u);
  assert.equal(own.status, 409, own.text);
  assert.equal(own.code, 'snapshot_uuid_taken');
  assert.match(own.text, /in volume home as snap/);

  // Bob: his creation for Alice's UUID is answered exactly as one for a UUID no one has.
  const fresh = randomUuid();
  const theirs = await createAs(h, keys.bob, 'docs', u);
  const control = await createAs(h, keys.bob, 'pics', fresh);
  assert.deepEqual(shape(theirs, u, 'docs'), shape(control, fresh, 'pics'));
  assert.equal(theirs.status, 201, theirs.text);
  for (const id of [theirs.id!, control.id!]) await h.server.service.abort('bob' as never, id);

  // Both are received, each into its own namespace, with its own content.
  assert.equal((await sendAs(h, keys.bob, early.id!, full(u).file('who', Buffer.from('bob\n')).file('bonly', Buffer.from('b\n')).end().build())).status, 204);
  assert.equal((await settled(h, early.id!)).state, 'received');
  assert.equal(await read(h, 'bob', 'home', 'snap', 'who'), 'bob\n');
  assert.equal(await read(h, 'alice', 'home', 'snap', 'who'), 'alice\n');

  // Incrementals on U: each built on its own client's snapshot.
  const b2 = randomUuid();
  await received(h, keys.bob, 'home', 'snap2', b2, new SendStreamBuilder().snapshot('snap2', b2, u).file('new', Buffer.from('b2\n')).end().build(), u);
  const a2 = randomUuid();
  await received(h, keys.alice, 'home', 'snap2', a2, new SendStreamBuilder().snapshot('snap2', a2, u).file('new', Buffer.from('a2\n')).end().build(), u);
  assert.deepEqual(
    await Promise.all([read(h, 'bob', 'home', 'snap2', 'who'), read(h, 'bob', 'home', 'snap2', 'bonly'), read(h, 'bob', 'home', 'snap2', 'aonly')]),
    ['bob\n', 'b\n', null],
    "Bob's incremental is built on his snapshot",
  );
  assert.deepEqual(
    await Promise.all([read(h, 'alice', 'home', 'snap2', 'who'), read(h, 'alice', 'home', 'snap2', 'aonly'), read(h, 'alice', 'home', 'snap2', 'bonly')]),
    ['alice\n', 'a\n', null],
    "Alice's incremental is built on hers",
  );

  // On disk: one Received UUID per client, neither the client's; to each client, the UUID it pushed and nothing else.
  const [onAlice, onBob] = await Promise.all([btrfs.subvolumeShow(snapDir(h, 'alice', 'home', 'snap')), btrfs.subvolumeShow(snapDir(h, 'bob', 'home', 'snap'))]);
  assert.equal(onAlice.receivedUuid, namespacedUuid('alice', u));
  assert.equal(onBob.receivedUuid, namespacedUuid('bob', u));
  assert.notEqual(onAlice.receivedUuid, onBob.receivedUuid);
  for (const [client, token] of [['alice', keys.alice], ['bob', keys.bob]] as const) {
    const list = (await (await fetch(`${h.server.url}/v1/volumes/home/snapshots`, { headers: authHeaders(token) })).json()) as { snapshots: Record<string, unknown>[] };
    const snap = list.snapshots.find((s) => s.name === 'snap');
    assert.equal(snap?.uuid, u, `${client} sees the UUID it pushed`);
    assert.equal('receivedUuid' in snap, false, 'where it is on disk is the server\'s business');
  }

  // Restored, Bob's snapshots come back as his, with the UUIDs he pushed as their Received UUIDs.
  const elsewhere = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(elsewhere.mountPoint, 'restored');
  await fs.mkdir(dest);
  for (const [name, uuid] of [['snap', u], ['snap2', b2]] as const) {
    const done = await restore({ server: h.server.url, volume: 'home', snapshot: name, destDir: dest, chunkSize: 65536, headers: authHeaders(keys.bob), env: {} }, recordingReporter());
    assert.equal(done.restored, true);
    assert.equal((await btrfs.subvolumeShow(path.join(dest, name))).receivedUuid, uuid);
  }
  assert.deepEqual((await fs.readdir(path.join(dest, 'snap2'))).sort(), ['bonly', 'new', 'who']);
  assert.equal(await fs.readFile(path.join(dest, 'snap2', 'who'), 'utf8'), 'bob\n');
});

test("a stream naming another client's UUID as its parent or clone source fails as a random UUID's does and tells nothing; a client's own copy of that UUID gives its own bytes", uuidTest, async (t) => {
  const keys = await twoClients(t);
  const h = await hostileServer(t, { tokensFile: keys.file });
  const secret = Buffer.alloc(4096, 0x5a);
  const mine = Buffer.alloc(4096, 0x42);
  const u = randomUuid();
  await received(h, keys.alice, 'home', 'snap', u, full(u).file('secret', secret).end().build());
  const b1 = randomUuid();
  await received(h, keys.bob, 'home', 'snap', b1, full(b1).file('src', mine).end().build());

  // A parent Bob does not hold: Alice's UUID and a random one get the same answer.
  const random = randomUuid();
  const asParent = async (parent: string) => createAs(h, keys.bob, 'home', randomUuid(), 'snap2', parent);
  const [alices, randoms] = [await asParent(u), await asParent(random)];
  assert.equal(alices.code, 'parent_missing', alices.text);
  assert.deepEqual(shape(alices, u), shape(randoms, random));

  // A clone source Bob does not hold, in an incremental on his own snapshot: the same failure either way.
  const cloneFrom = async (source: string) => {
    const b2 = randomUuid();
    const created = await createAs(h, keys.bob, 'home', b2, 'snap2', b1);
    assert.equal(created.status, 201, created.text);
    const stream = new SendStreamBuilder().snapshot('snap2', b2, b1).file('f', Buffer.alloc(4096, 1)).clone('f', 0, 4096, source, 'secret').end().build();
    assert.equal((await sendAs(h, keys.bob, created.id!, stream)).status, 204);
    const got = await settled(h, created.id!);
    const seen = (await (await fetch(`${h.server.url}/v1/transfers/${created.id}`, { headers: authHeaders(keys.bob) })).json()) as { state: string; error: { code: string; message: string; retryable?: boolean } };
    assert.equal(got.state, 'failed');
    const { at: _at, ...error } = seen.error as typeof seen.error & { at?: string };
    return { state: seen.state, error: { ...error, message: error.message.replaceAll(source, '<X>').replaceAll(b2, '<B>').replaceAll(created.id!, '<id>') } };
  };
  assert.deepEqual(await cloneFrom(u), await cloneFrom(random));
  assert.deepEqual(await fs.readdir(path.join(h.root, 'volumes', 'bob', 'home')), ['snap']);

  // Bob may hold U himself now (another volume). His incremental on it, cloning from U, gets his own bytes: btrfs
  // receive is handed Bob's namespaced UUID, which names his subvolume and never Alice's.
  await received(h, keys.bob, 'mirror', 'snap', u, full(u).file('secret', mine).end().build());
  const b3 = randomUuid();
  const stream = new SendStreamBuilder().snapshot('snap3', b3, u).file('f', Buffer.alloc(4096, 1)).clone('f', 0, 4096, u, 'secret').end().build();
  await received(h, keys.bob, 'mirror', 'snap3', b3, stream, u);
  const cloned = await fs.readFile(path.join(snapDir(h, 'bob', 'mirror', 'snap3'), 'f'));
  assert.deepEqual(cloned, mine, "the clone holds Bob's bytes");
  assert.notDeepEqual(cloned, secret);
});

test('a snapshot received before namespacing (its raw UUID on disk, no receivedUuid in the catalog) still takes incrementals, and both restore with the client\'s UUIDs', uuidTest, async (t) => {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const volumeDir = path.join(root, 'volumes', 'default', 'home');
  await fs.mkdir(volumeDir, { recursive: true, mode: 0o700 });
  // What an older server left: the stream received as it came, and a catalog entry with no receivedUuid.
  const legacy = randomUuid();
  await btrfs.receive(volumeDir, Readable.from([full(legacy).file('old', Buffer.from('old\n')).end().build()]));
  const shown = await btrfs.subvolumeShow(path.join(volumeDir, 'snap'));
  assert.equal(shown.receivedUuid, legacy);
  const record = { client: 'default', volume: 'home', name: 'snap', uuid: legacy, serverUuid: shown.uuid, parentUuid: null, receivedAt: new Date().toISOString(), rawBytes: 1, wireBytes: 1, transferId: null };
  await fs.writeFile(path.join(root, 'catalog.json'), JSON.stringify({ version: 1, transfers: [], snapshots: [record], removed: [] }));

  const server = await startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 500 });
  closeFirst(() => server.close());
  assert.deepEqual(server.service.snapshotRecords('default').map((s) => [s.name, s.uuid, s.receivedUuid]), [['snap', legacy, undefined]], 'kept at start');
  const h: HostileServer = { server, mount: fsx.mountPoint, root, volumeDir: (v) => path.join(root, 'volumes', 'default', v) };

  const next = randomUuid();
  const { id } = await uploadStream(server.url, metadataFor('home', 'snap2', next, legacy), new SendStreamBuilder().snapshot('snap2', next, legacy).file('new', Buffer.from('new\n')).end().build());
  assert.equal((await settled(h, id)).state, 'received');
  assert.equal(await fs.readFile(path.join(volumeDir, 'snap2', 'old'), 'utf8'), 'old\n', 'built on the legacy snapshot');
  const onDisk = await btrfs.subvolumeShow(path.join(volumeDir, 'snap2'));
  assert.equal(onDisk.receivedUuid, namespacedUuid('default', next));
  assert.equal(onDisk.parentUuid, shown.uuid);

  // Restored into a fresh filesystem: the legacy one in full, the new one on it; each with the client's UUID.
  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  for (const [name, uuid] of [['snap', legacy], ['snap2', next]] as const) {
    const done = await restore({ server: server.url, volume: 'home', snapshot: name, destDir: dest, chunkSize: 65536, env: {} }, recordingReporter());
    assert.equal(done.restored, true);
    assert.equal((await btrfs.subvolumeShow(path.join(dest, name))).receivedUuid, uuid);
  }
  assert.deepEqual((await fs.readdir(path.join(dest, 'snap2'))).sort(), ['new', 'old']);
  assert.equal(await fs.readFile(path.join(dest, 'snap2', 'new'), 'utf8'), 'new\n');
});

test('at start, a snapshot moved into place whose catalog entry a crash lost is adopted under the client\'s UUID, found through its transfer by its namespaced Received UUID', uuidTest, async (t) => {
  // Its second server runs on h's filesystem: closed before that filesystem's take-down, which hostileServer registers.
  const closeFirst = beforeTakeDown(t);
  const h = await hostileServer(t);
  const u = randomUuid();
  const { id } = await uploadStream(h.server.url, metadataFor('home', 'snap', u), full(u).file('f', Buffer.from('one\n')).end().build());
  assert.equal((await settled(h, id)).state, 'received');
  await h.server.close();
  // What a crash between the rename and the catalog's update leaves: the snapshot in place, its transfer receiving.
  const file = path.join(h.root, 'catalog.json');
  const catalog = JSON.parse(await fs.readFile(file, 'utf8')) as { snapshots: unknown[]; transfers: { id: string; state: string }[] };
  catalog.snapshots = [];
  for (const tr of catalog.transfers) if (tr.id === id) tr.state = 'receiving';
  await fs.writeFile(file, JSON.stringify(catalog));

  const server = await startServer({ root: h.root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 500 });
  closeFirst(() => server.close());
  await server.service.idle();
  assert.deepEqual(
    server.service.snapshotRecords('default').map((s) => [s.name, s.uuid, s.receivedUuid, s.transferId]),
    [['snap', u, namespacedUuid('default', u), id]],
  );
  assert.equal(server.service.transferRecord(id)?.state, 'received');
  // And it is the parent it should be.
  const h2: HostileServer = { ...h, server };
  const next = randomUuid();
  const inc = await uploadStream(server.url, metadataFor('home', 'snap2', next, u), new SendStreamBuilder().snapshot('snap2', next, u).file('g', Buffer.from('two\n')).end().build());
  assert.equal((await settled(h2, inc.id)).state, 'received');
  assert.equal(await fs.readFile(path.join(h.volumeDir('home'), 'snap2', 'f'), 'utf8'), 'one\n');
});
