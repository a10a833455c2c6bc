/**
 * What a restore refuses, and what it leaves when it fails: another client's snapshot (404, like a missing one), a
 * resume whose chain differs from the server's regenerated stream (409), a spool damaged on disk (never fed to
 * btrfs receive: downloaded again), a receive that fails (no partial subvolume left), and a final refusal (no empty
 * spool folder left in DEST_DIR; one that holds part of the stream stays).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createBtrfs, createSmallBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore, type RestoreOptions } from '../../client/restore/restore.ts';
import { authHeaders } from '../../client/http/token.ts';
import { routes, type RestoreQuery } from '../../core/protocol.ts';
import { FrameParser } from '../../core/wire/index.ts';
import { aliceBobAdmin, assertReceived, createPair, recordingReporter } from './harness.ts';
import { snapferry } from './processes.ts';
import crypto from 'node:crypto';
import { execa } from 'execa';

const restoreTest = { ...rootOnly, timeout: 180_000 };
const CHUNK = 64 * 1024;

async function get(url: string, token: string | null = null): Promise<{ status: number; body: Buffer; json: { error?: { code: string; message: string } } | null; headers: Headers }> {
  const res = await fetch(url, { headers: authHeaders(token) });
  const body = Buffer.from(await res.arrayBuffer());
  let json = null;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = null;
  }
  return { status: res.status, body, json, headers: res.headers };
}

function options(server: string, snapshot: string, destDir: string, extra: Partial<RestoreOptions> = {}): RestoreOptions {
  return { server, volume: 'v', snapshot, destDir, chunkSize: CHUNK, backoff: { baseMs: 50, maxMs: 200 }, stallMs: 5000, ...extra };
}

type Cleanup = { after(fn: () => Promise<void>): void };

/** A folder to restore into on the filesystem mounted at `mountPoint`. */
async function destOn(mountPoint: string): Promise<string> {
  const dest = path.join(mountPoint, 'restored');
  await fs.mkdir(dest);
  return dest;
}

/** A folder to restore into, alone on a new filesystem. */
async function freshDest(t: Cleanup): Promise<string> {
  return destOn((await createBtrfs(t, { sizeMiB: 256 })).mountPoint);
}

/** A folder to restore into, alone on a small new filesystem (createSmallBtrfs) that a test fills; and its mount point. */
async function smallDest(t: Cleanup): Promise<{ mountPoint: string; dest: string }> {
  const { mountPoint } = await createSmallBtrfs(t);
  return { mountPoint, dest: await destOn(mountPoint) };
}

test("another client's snapshot answers like a missing one; an admin restores it by naming the client", restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const server = await pair.startServer({ tokensFile: file });
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'home', snapshots: [s1], headers: authHeaders(alice), retries: 0 }, recordingReporter());
  const stream = (name: string, query: Partial<RestoreQuery> = {}) => `${server.url}${routes.restoreStream('home', name, { chunkSize: CHUNK, ...query })}`;

  assert.equal((await get(stream('s1'), alice)).status, 200, "alice reads her own");
  const theirs = await get(stream('s1'), bob);
  const missing = await get(stream('nothing'), bob);
  assert.equal(theirs.status, 404);
  assert.deepEqual([theirs.json?.error?.code, theirs.json?.error?.message], ['not_found', 'snapshot home/s1 not found']);
  assert.deepEqual([missing.status, missing.json?.error?.code], [404, 'not_found'], 'the same answer as for a name that never existed');
  // ?client= does not open another namespace to a client token: naming another client is refused, not answered with
  // the caller's own snapshot of the same name; naming itself is its own namespace.
  const named = await get(stream('s1', { client: 'alice' }), bob);
  assert.deepEqual([named.status, named.json?.error?.code], [403, 'forbidden']);
  assert.match(named.json?.error?.message ?? '', /reads only bob's volumes, not alice's: naming a client \(\?client=, --client\) takes an admin token/);
  assert.equal((await get(stream('s1', { client: 'bob' }), bob)).status, 404);
  assert.equal((await get(stream('s1'))).status, 401);
  await assert.rejects(
    restore({ ...options(server.url, 's1', await freshDest(t)), volume: 'home', headers: authHeaders(bob) }, recordingReporter()),
    (err: Error & { code?: string }) => err.code === 'snapshot_not_on_server',
  );

  const noClient = await get(stream('s1'), admin);
  assert.equal(noClient.status, 400);
  assert.match(noClient.json?.error?.message ?? '', /\?client=NAME \(snapferry restore --client NAME\)/);
  const dest = await freshDest(t);
  const done = await restore({ ...options(server.url, 's1', dest), volume: 'home', client: 'alice', headers: authHeaders(admin) }, recordingReporter());
  assert.equal(done.restored, true);
  await assertReceived(s1, path.join(dest, 's1'));
});

test('a resume whose chain differs is refused with 409; the right chain resumes at that frame; bad parameters are 4xx', restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const url = (query: Partial<RestoreQuery> = {}) => `${server.url}${routes.restoreStream('v', 's1', { chunkSize: CHUNK, ...query })}`;

  const whole = await get(url());
  assert.equal(whole.status, 200);
  const chains: Buffer[] = [];
  const wireEnds: number[] = [];
  const parser = new FrameParser({
    chunkSize: CHUNK,
    onFrame: (f) => {
      if (f.kind === 'end') return;
      chains.push(f.chain);
      wireEnds.push(f.wireEnd);
    },
  });
  parser.push(whole.body);
  parser.finish();
  assert.ok(chains.length >= 4, `${chains.length} frames`);

  // The right chain: the body is frames 2.. to the end frame, which a parser resumed at frame 2 verifies.
  const resumed = await get(url({ fromFrame: 2, chain: chains[1]!.toString('hex') }));
  assert.equal(resumed.status, 200);
  assert.equal(resumed.headers.get('snapferry-from-frame'), '2');
  const first = parser.state();
  const resumedParser = new FrameParser({
    chunkSize: CHUNK,
    state: { chunkSize: CHUNK, framesVerified: 2, wireOffsetVerified: wireEnds[1]!, rawOffset: 2 * CHUNK, chain: chains[1]!, ended: false },
  });
  resumedParser.push(resumed.body);
  resumedParser.finish();
  assert.equal(resumedParser.state().rawOffset, first.rawOffset);
  assert.equal(resumedParser.state().wireOffsetVerified, first.wireOffsetVerified, 'frames 2.. are as long as in the whole stream');

  for (const [query, status, code] of [
    [{ fromFrame: 2, chain: chains[2]!.toString('hex') }, 409, 'stream_mismatch'],
    [{ fromFrame: 2, chain: '0'.repeat(64) }, 409, 'stream_mismatch'],
    [{ fromFrame: chains.length + 3, chain: chains.at(-1)!.toString('hex') }, 409, 'stream_mismatch'],
    [{ parent: '01234567-89ab-cdef-0123-456789abcdef' }, 409, 'parent_missing'],
    [{ fromFrame: 2 }, 400, 'invalid_input'],
    [{ chunkSize: 1000 }, 400, 'invalid_input'],
  ] as const) {
    const r = await get(url(query));
    assert.deepEqual([r.status, r.json?.error?.code], [status, code], JSON.stringify(query));
  }
  const own = await get(url({ parent: (await btrfs.subvolumeShow(s1)).uuid }));
  assert.deepEqual([own.status, own.json?.error?.code], [400, 'invalid_input'], 'a snapshot is not its own parent');
});

test('a spool damaged on disk never reaches btrfs receive: the damaged frames are downloaded again', restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const dest = await freshDest(t);

  // Stop the first run the moment the download is complete, before the receive.
  const stop = new AbortController();
  const first = recordingReporter();
  first.note = (m) => {
    if (/downloaded and verified/.test(m)) stop.abort();
  };
  await assert.rejects(restore(options(server.url, 's1', dest, { signal: stop.signal }), first));
  const [spoolName] = (await fs.readdir(dest)).filter((n) => n.startsWith('.snapferry-restore-'));
  assert.ok(spoolName, 'the complete spool is kept');
  const spool = path.join(dest, spoolName);
  // Flip a byte inside frame 2's payload: frame 1's record says where frame 2 starts.
  const index = await fs.readFile(path.join(spool, 'frames.index'));
  const frame2 = Number(index.readBigUInt64BE(64 + 8));
  const handle = await fs.open(path.join(spool, 'frames'), 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, frame2 + 72 + 100);
  byte[0] = byte[0]! ^ 0xff;
  await handle.write(byte, 0, 1, frame2 + 72 + 100);
  await handle.close();

  const again = recordingReporter();
  const done = await restore(options(server.url, 's1', dest), again);
  assert.match(again.notes.join('\n'), /no longer verifies at frame 2/);
  assert.doesNotMatch(again.notes.join('\n'), /from the start/);
  assert.equal(done.restored, true);
  await assertReceived(s1, path.join(dest, 's1'));
  assert.deepEqual(await fs.readdir(dest), ['s1']);
});

test('a receive that fails (the disk fills) leaves no partial subvolume and keeps the download', restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  // 80 MB that compress to almost nothing: the spool fits on a small filesystem, the snapshot does not.
  const block = Buffer.alloc(1024 * 1024, 'snapferry restore ');
  const handle = await fs.open(path.join(pair.source, 'big'), 'w');
  for (let i = 0; i < 80; i++) await handle.write(block);
  await handle.close();
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const { mountPoint, dest } = await smallDest(t);

  await assert.rejects(restore(options(server.url, 's1', dest, { chunkSize: 1024 * 1024 }), recordingReporter()), (err: Error & { code?: string }) => {
    assert.match(err.message, /No space left|ENOSPC|space/i);
    assert.match(err.message, /the download is kept in .*\.snapferry-restore-/);
    return true;
  });
  const left = await fs.readdir(dest);
  assert.equal(left.length, 1, `only the spool is left: ${left.join(', ')}`);
  assert.match(left[0]!, /^\.snapferry-restore-/);
  assert.deepEqual(await btrfs.subvolumeList(mountPoint), [], 'no subvolume, partial or whole, on the filesystem');
});

test('a restore request dropped while btrfs send starts ends that request only: the server stays up', restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [pair.snaps], retries: 0 }, recordingReporter());
  const { snapshots } = await (await fetch(`${server.url}${routes.snapshots('v')}`)).json() as { snapshots: { name: string; uuid: string }[] };
  const parent = snapshots.find((s) => s.name === 's1')!.uuid;
  // Dropped at every moment of the answer's making: before btrfs send starts, while its first command is awaited
  // (the window where its cancellation reached a stream nothing listened on yet, and serve exited), and after.
  for (let ms = 0; ms <= 30; ms++) {
    for (const query of [{}, { parent }]) {
      const url = `${server.url}${routes.restoreStream('v', 's2', { chunkSize: CHUNK, ...query })}`;
      await fetch(url, { signal: AbortSignal.timeout(ms) }).then((r) => r.body?.cancel(), () => undefined);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  const whole = await get(`${server.url}${routes.restoreStream('v', 's2', { chunkSize: CHUNK })}`);
  assert.equal(whole.status, 200, 'the server still answers a restore');
  assert.ok(whole.body.length > 0);
  void s1;
});

test('a download that fills the restoring disk exits 75 saying which disk, how much it needs, and that a rerun resumes; it does', restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(12 * 1024 * 1024));
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const { mountPoint, dest } = await smallDest(t);
  // Fill the disk, then give back a few MiB: room for the spool's first frames, not for the 12 MiB stream (the spool and the received snapshot of it fit once the filler is gone).
  const filler = path.join(mountPoint, 'filler');
  const handle = await fs.open(filler, 'w');
  const block = Buffer.alloc(1024 * 1024, 7);
  let size = 0;
  try {
    // Each block made durable: buffered writes reserve more than they take, and stop long before the disk is full.
    for (;;) {
      size += (await handle.write(block)).bytesWritten;
      await handle.datasync();
    }
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  await handle.truncate(Math.max(0, size - 4 * 1024 * 1024));
  await handle.close();
  await execa('btrfs', ['filesystem', 'sync', mountPoint]);

  const args = ['restore', '--server', server.url, '--volume', 'v', '--chunk-size', '256k', 's1', dest];
  const full = await snapferry(args);
  assert.equal(full.exitCode, 75, full.stderr);
  assert.doesNotMatch(full.stderr, /snapferry: ENOSPC/);
  assert.match(full.stderr, new RegExp(`the disk of ${dest} \\(the filesystem mounted at ${mountPoint}\\) is full`));
  assert.match(full.stderr, /restoring s1 needs about \d+(\.\d+)? MiB more \(the rest of the download, about/);
  assert.match(full.stderr, /the same restore run again goes on from the [\d.]+ [KM]iB of it already verified/);

  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', mountPoint]);
  const again = await snapferry(args);
  assert.equal(again.exitCode, 0, again.stderr);
  assert.match(again.stderr, /resuming the download at frame [1-9]/);
  assert.doesNotMatch(again.stderr, /frame \d+ at wire offset \d+:/, 'the spool held only whole frames and the part of the next, as its index says');
  await assertReceived(s1, path.join(dest, 's1'));
});

test('a final refusal leaves DEST_DIR as it found it: no empty spool folder; a spool an earlier run filled stays for resuming', restoreTest, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(4 * 1024 * 1024));
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());

  // A download broken off after its first frames: its spool is what the next run resumes from.
  const kept = await freshDest(t);
  const stop = new AbortController();
  await assert.rejects(restore(options(server.url, 's1', kept, { signal: stop.signal }), {
    ...recordingReporter(),
    progress: (f) => {
      if (f.rawBytes > 0) stop.abort();
    },
  }));
  const [spoolName] = await fs.readdir(kept);
  assert.match(spoolName ?? '', /^\.snapferry-restore-/);
  const framesBefore = (await fs.stat(path.join(kept, spoolName!, 'frames'))).size;
  assert.ok(framesBefore > 0, 'the broken-off download spooled frames');

  // The server's copy changed by hand: its send names another subvolume (restore_source_mismatch, final).
  const received = pair.receivedPath('v', 's1');
  await execa('btrfs', ['property', 'set', '-f', '-ts', received, 'ro', 'false']);
  await execa('btrfs', ['property', 'set', '-ts', received, 'ro', 'true']);
  const refused = (err: Error & { code?: string }) => err.code === 'restore_source_mismatch' || err.code === 'snapshot_altered';

  const fresh = await freshDest(t);
  await assert.rejects(restore(options(server.url, 's1', fresh, { retries: 0 }), recordingReporter()), refused);
  assert.deepEqual(await fs.readdir(fresh), [], 'nothing left in a DEST_DIR that was empty');

  await assert.rejects(restore(options(server.url, 's1', kept, { retries: 0 }), recordingReporter()), refused);
  assert.deepEqual(await fs.readdir(kept), [spoolName], 'the earlier spool stays');
  assert.equal((await fs.stat(path.join(kept, spoolName!, 'frames'))).size, framesBefore, 'with every byte it held');
});
