/**
 * Issue 22: a PATCH waited for its frames' sync before its answer, about a third of each request's time on a LAN.
 * A client that keeps its bytes back to the synced offset (ACK_HEADER) is answered once the frames are written,
 * and told how far the upload is on disk for certain (ACK_SYNCED_OFFSET_HEADER): one request behind, caught up by
 * the next. A client that does not say so is answered after the sync, as before. A power cut that takes back what
 * was not synced costs the client nothing it does not still hold.
 *
 * The power cut is made as one leaves the disk: the server stops (its process gone, as with the machine), and the
 * spool file loses what came after the last offset the server said was synced; the index, written beside it, keeps
 * its records, as it may.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { ACK_HEADER, ACK_SYNCED_OFFSET_HEADER, ACK_WRITTEN, UPLOADS_PATH } from '../../core/protocol.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { until } from '../fixtures/receive-exit.ts';
import { ServerLayout } from '../../server/layout.ts';
import { CHUNK, create, encodeMetadata, metadataFor, patch, restartableRoot, streamOfRandomFile } from './hostile-client.ts';

const FRAME = FRAME_HEADER_SIZE + CHUNK;
const early = { [ACK_HEADER]: ACK_WRITTEN };

test('answered once written, the synced offset one request behind and caught up; a power cut back to it resumes and the snapshot is received', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const { root, start, stop } = await restartableRoot(t);
  let server = await start();
  const uuid = randomUuid();
  const created = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('synced', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const id = created.id!;
  const framed = await frameStream(streamOfRandomFile(uuid, 40), CHUNK);
  const cuts = [0, 4, 10, 16, 22].map((frames) => frames * FRAME);
  const send = async (from: number, to: number, headers: Record<string, string>) => {
    const res = await patch(server.url, id, from, framed.subarray(from, to), headers);
    assert.equal(res.status, 204, res.text);
    assert.equal(res.headers.get('upload-offset'), String(to));
    return Number(res.headers.get(ACK_SYNCED_OFFSET_HEADER));
  };

  // Answered once written: each answer says the offset the request before it ended at, where its sync had reached.
  assert.equal(await send(cuts[0]!, cuts[1]!, early), 0, 'the first answer comes before its sync');
  assert.equal(await send(cuts[1]!, cuts[2]!, early), cuts[1], 'synced up to where the request before ended');
  // A client that does not keep its bytes back is answered after the sync, as before: caught up.
  assert.equal(await send(cuts[2]!, cuts[3]!, {}), cuts[3], 'answered after its sync');
  const lastSynced = await send(cuts[3]!, cuts[4]!, early);
  assert.equal(lastSynced, cuts[3]);

  // The power cut: the server gone, the spool back to the last offset it said was synced.
  await stop(server);
  const spool = new ServerLayout(root).spoolFile(id);
  assert.equal((await fs.stat(spool)).size, cuts[4], 'everything written before the cut');
  await fs.truncate(spool, lastSynced);

  // Started again: the upload is where the client still holds bytes, and the rest completes it.
  server = await start();
  const head = await fetch(`${server.url}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  assert.equal(offset, lastSynced, 'the server comes back at the synced offset');
  const rest = await patch(server.url, id, offset, framed.subarray(offset), { ...early, 'Upload-Length': String(framed.length) });
  assert.equal(rest.status, 204, rest.text);
  // The end frame is answered once it is on disk: nothing of the upload is unsynced then.
  assert.equal(rest.headers.get(ACK_SYNCED_OFFSET_HEADER), String(framed.length));
  await until('the snapshot to be received', async () => {
    await server.service.idle();
    return server.service.transferRecord(id)?.state === 'received';
  });
});
