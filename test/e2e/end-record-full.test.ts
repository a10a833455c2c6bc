/**
 * The disk fills up just as the end of an upload is recorded: the end frame is spooled and verified, and the
 * catalog's write of the move to `receiving` fails with ENOSPC. Before, the catalog kept the move in memory only,
 * the receive never learned of the end, and the transfer showed `receiving` for ever with nothing running; the push
 * waited for ever and only a restart got it going. Now the move is taken back, made once it can be recorded, and the
 * stream waits for space as any other whose receive found the disk full: the push exits 75, and freed space is
 * enough for the server to receive it.
 *
 * The one failing write is made to fail (a writer that throws ENOSPC), because which write of a filling disk fails
 * first cannot be chosen; the disk is filled for real at that moment, all but 2 MiB (room for the catalog, not for
 * the stream), so everything after it meets a full disk.
 *
 * When even the catalog's reserve is used up and the disk stays full, the record fails at every look for as long as
 * that lasts. Before, `status` and /v1/status showed such a transfer `uploading` at 100%, with no word of the disk, and
 * its push waited; now they show the wait it is in, from memory, as for any stream whose receive found the disk full.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import type { SnapferryError } from '../../core/errors.ts';
import { writeFileDurably } from '../../core/durable-file.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { fillUntilFull } from './fill-disk.ts';
import { assertReceived, createPair, recordingReporter, until, type Pair } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
/** How often the server's retries look at the waiting receives, and try an unrecorded end again. */
const CHECK_MS = 200;

/** ENOSPC as btrfs refuses a write on a full disk. */
function enospc(): Error {
  return Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

/** Fills the server's disk for real, all but a little room: less than the stream needs, enough for the catalog's writes. */
async function fillLeavingRoom(mountPoint: string, filler: string): Promise<void> {
  const room = path.join(mountPoint, 'room');
  await fs.writeFile(room, Buffer.alloc(2 * 1024 * 1024, 1));
  await fillUntilFull(filler);
  await fs.rm(room);
  await execa('btrfs', ['filesystem', 'sync', mountPoint]);
}

/**
 * A server whose receives are held (none runs beside the upload, so the room the stream needs is all the filler's to
 * give back) and whose catalog writes go through `catalogWriter`; s1 pushed to it in the background, stopped when the
 * test ends, its outcome read by the test.
 */
async function pushOnto(t: TestContext, pair: Pair, catalogWriter: (file: string, text: string) => Promise<void>) {
  const server = await pair.startServer({ holdReceives: true, catalogWriter, receiveRetry: { firstMs: 300_000, maxMs: 300_000, checkMs: CHECK_MS } });
  const s1 = await pair.snapshot('s1');
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushing = push({ server: server.url, volume: 'v', snapshots: [s1], pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal }, recordingReporter());
  pushing.catch(() => undefined);
  return { server, s1, pushing, api: new ServerApi({ server: server.url }) };
}

test('disk full as the end of the upload is recorded: the stream waits for space, push exits 75, received once space is freed', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { serverMiB: 128, fillMB: 4, seed: 'end-record-full' });
  const filler = path.join(pair.server.mountPoint, 'filler');
  const failed: string[] = [];
  // The first write that records a transfer `receiving` (the end frame's) finds the disk full: filled for real, and
  // refused as btrfs refuses a write then.
  const catalogWriter = async (file: string, text: string): Promise<void> => {
    const receiving = (JSON.parse(text) as { transfers: { id: string; state: string }[] }).transfers.find((x) => x.state === 'receiving');
    if (receiving && failed.length === 0) {
      failed.push(receiving.id);
      // Full but for a little room, less than the stream needs: the catalog's next writes fit, the receive does not.
      await fillLeavingRoom(pair.server.mountPoint, filler);
      throw enospc();
    }
    await writeFileDurably(file, text);
  };
  const { server, s1, pushing, api } = await pushOnto(t, pair, catalogWriter);

  // Before the fix: `receiving` in memory, `uploading` on disk, no wait, for ever (until this gives up).
  const waiting = await until('the whole stream waiting for space', async () => {
    const [now] = (await api.transfers()).transfers;
    return now?.state === 'waiting_for_space' && now;
  }, 60_000, 100);
  assert.deepEqual(failed, [waiting.id], 'the end record was the write that failed');
  assert.equal(waiting.wait?.reason, 'disk_full');
  assert.ok((waiting.wait?.neededBytes ?? 0) >= waiting.rawBytes, `needs at least the raw stream: ${JSON.stringify(waiting.wait)}`);
  assert.ok(waiting.rawBytes > 0 && waiting.framesVerified > 0, 'the final figures are on record');
  assert.match(waiting.error?.message ?? '', /no space left on device/i);
  // Shown from memory while the end and then the wait are being written (ReceiveRetries.unrecordedEnd); the file
  // says so too once they are written.
  let onFile: string | undefined;
  await until('the wait on record', async () => {
    const onDisk = JSON.parse(await fs.readFile(path.join(pair.root, 'catalog.json'), 'utf8')) as { transfers: { id: string; state: string }[] };
    onFile = onDisk.transfers.find((x) => x.id === waiting.id)?.state;
    return onFile === 'waiting_for_space';
  }, 10_000, 50).catch((err: unknown) => {
    throw new Error(`${String(err)}: the file still says ${onFile}`);
  });

  // The push is told as on any full disk: exit 75, the server holds the stream.
  const stopped = await pushing.then(() => null, (err: unknown) => err as SnapferryError);
  assert.ok(stopped, 'the push did not succeed');
  assert.equal(stopped.code, 'receive_waiting', stopped.message);
  assert.equal(exitCodeFor(stopped), EXIT.temporary);
  assert.match(stopped.message, /disk is full/);

  // Space freed: the server receives the stream by itself, from its spool.
  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  server.service.resumeReceives();
  await until('the snapshot received', async () => (await api.transfer(waiting.id)).state === 'received', 90_000, 200);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('disk full for the end record, reserve used up: status shows the stream waiting for space and why, the push exits 75', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { serverMiB: 128, fillMB: 4, seed: 'end-record-stuck' });
  const filler = path.join(pair.server.mountPoint, 'filler');
  let stuck = true;
  let refused = 0;
  // Every write that records the transfer `receiving` finds the disk full, as one does once the reserve was given to
  // an earlier write and the disk stays full: filled for real at the first, all but a little room. The refusals after
  // it take longer than a look of the retries, as a full btrfs's may: a look lands while the end is tried again (that
  // lost the end about one run in ten when the timing was left to chance), and so does many a read of the status.
  const catalogWriter = async (file: string, text: string): Promise<void> => {
    const receiving = (JSON.parse(text) as { transfers: { state: string }[] }).transfers.some((x) => x.state === 'receiving');
    if (receiving && stuck) {
      if (refused++ === 0) await fillLeavingRoom(pair.server.mountPoint, filler);
      else await new Promise((resolve) => setTimeout(resolve, 2 * CHECK_MS));
      throw enospc();
    }
    await writeFileDurably(file, text);
  };
  const { server, s1, pushing, api } = await pushOnto(t, pair, catalogWriter);

  // Before the fix: `uploading`, at 100%, no wait and no error, for as long as the disk stayed full.
  let seen: unknown = null;
  // Shown so from the first refusal on, and still once the record was tried again and refused again.
  const waiting = await until('the stream shown waiting for space after a second refusal', async () => {
    const [now] = (await api.transfers()).transfers;
    seen = now;
    return refused >= 2 && now?.state === 'waiting_for_space' && now;
  }, 30_000, 100).catch((err: unknown) => {
    throw new Error(`${String(err)}; the transfer was last ${JSON.stringify(seen)}; the record was refused ${refused} time(s)`);
  });
  assert.equal(waiting.wait?.reason, 'disk_full');
  assert.ok((waiting.wait?.neededBytes ?? 0) >= waiting.rawBytes && waiting.rawBytes > 0, JSON.stringify(waiting.wait));
  assert.equal(waiting.error?.code, 'end_not_recorded');
  assert.match(waiting.error?.message ?? '', /the server's disk is full: the whole stream is in its spool/);
  assert.match(waiting.error?.message ?? '', /free space on the server/);
  const onDisk = JSON.parse(await fs.readFile(path.join(pair.root, 'catalog.json'), 'utf8')) as { transfers: { id: string; state: string }[] };
  assert.equal(onDisk.transfers.find((x) => x.id === waiting.id)?.state, 'uploading', 'the record is still not made');
  const status = await api.status();
  assert.deepEqual(status.transfers, { waiting_for_space: 1 });
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /snapferry_transfers\{client="default",state="waiting_for_space"\} 1/);
  assert.match(metrics, /snapferry_waiting_raw_bytes\{client="default"\} [1-9]/);

  const stopped = await pushing.then(() => null, (err: unknown) => err as SnapferryError);
  assert.ok(stopped, 'the push did not succeed');
  assert.equal(stopped.code, 'receive_waiting', stopped.message);
  assert.equal(exitCodeFor(stopped), EXIT.temporary);
  assert.match(stopped.message, /disk is full/);
  const shown = await execa('node', [BIN, 'status', '--server', server.url], { reject: false, timeout: 60_000 });
  assert.equal(shown.exitCode, 0, shown.stderr);
  assert.match(shown.stdout, /waiting_for_space/);
  assert.match(shown.stdout, /disk is full/);

  // Space freed: the record is made, and the stream is received from its spool.
  stuck = false;
  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  server.service.resumeReceives();
  await until('the snapshot received', async () => (await api.transfer(waiting.id)).state === 'received', 90_000, 200);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
