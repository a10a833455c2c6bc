/**
 * A server stopped (SIGTERM, a graceful close) just as an upload's end frame is answered. The end is recorded a moment
 * after the answer (server/ingest.ts), and only then may the receive read to the end. A close that did not wait for
 * that record stopped the receive as one of an upload in progress and was done; the record then landed and started a
 * new `btrfs receive` after the close, in a root the server had let go of (CI saw it write under a filesystem that
 * its test had unmounted). Nothing may start after a close, and nothing may be lost by it: the next start receives
 * the snapshot.
 *
 * The record is held back as a slow disk holds a write: the catalog's writer waits, for the write that records the
 * end, until the close has begun.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { writeFileDurably } from '../../core/durable-file.ts';
import { receiveRunsIn, until } from '../fixtures/receive-exit.ts';
import { patch, restartableRoot, uploadWithReceiveRunning } from './hostile-client.ts';

test('a close as an upload ends waits for its end to be recorded, starts no receive after it, and the next start receives the snapshot', { ...rootOnly, timeout: 120_000 }, async (t) => {
  let holdEnd: Promise<void> | null = null;
  let endHeld = false;
  const catalogWriter = async (file: string, text: string): Promise<void> => {
    const ending = (JSON.parse(text) as { transfers: { state: string }[] }).transfers.some((x) => x.state === 'receiving');
    if (ending && holdEnd !== null && !endHeld) {
      endHeld = true;
      await holdEnd;
    }
    await writeFileDurably(file, text);
  };
  const { root, start, stop } = await restartableRoot(t, { catalogWriter });
  let server = await start();
  const { id, framed, head, volumeDir } = await uploadWithReceiveRunning(server, root, { volume: 'ending', pieces: 40 });

  // The end frame is answered; its record waits until the close has begun.
  let letGo!: () => void;
  holdEnd = new Promise((resolve) => (letGo = resolve));
  const rest = await patch(server.url, id, head, framed.subarray(head), { 'Upload-Length': String(framed.length) });
  assert.equal(rest.status, 204, rest.text);
  let closed = false;
  const closing = stop(server).then(() => (closed = true));
  await sleep(300);
  assert.ok(endHeld, 'the record of the end is being written');
  assert.equal(closed, false, 'the close did not wait for the record of the end');
  letGo();
  await closing;

  // Closed: nothing of it runs or starts any more, nor changes what is in the volume's folder.
  const atClose = await fs.readdir(volumeDir).catch(() => []);
  for (const end = Date.now() + 1500; Date.now() < end; await sleep(20)) {
    assert.equal(await receiveRunsIn(volumeDir), false, 'a btrfs receive runs after the server closed');
  }
  assert.deepEqual(await fs.readdir(volumeDir).catch(() => []), atClose, 'the volume\'s folder changed after the server closed');

  // Nothing lost: the next start has the upload's end on record and receives the snapshot.
  server = await start();
  await until('the snapshot to be received after the start', async () => {
    await server.service.idle();
    return server.service.transferRecord(id)?.state === 'received';
  });
});
