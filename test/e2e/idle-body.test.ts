/**
 * A PATCH whose client went silent (no RST, no FIN: a line that dropped everything) is ended by the server after its
 * idle timeout: the frames that arrived stay, the upload's lock is free, and the client's next PATCH from the
 * offset the server reports completes the upload at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { CHUNK, create, encodeMetadata, hostileServer, metadataFor, patch, settled, streamOfRandomFile } from './hostile-client.ts';

async function headOffset(url: string, id: string): Promise<number> {
  const res = await fetch(`${url}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(res.status, 200);
  return Number(res.headers.get('upload-offset'));
}

test('a PATCH body that goes silent is ended after the idle timeout; its frames stay and the upload resumes at once', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const idleTimeoutMs = 1500;
  const h = await hostileServer(t, { idleTimeoutMs });
  const url = h.server.url;
  const uuid = randomUuid();
  const framed = await frameStream(streamOfRandomFile(uuid, 6), CHUNK);
  const frame = FRAME_HEADER_SIZE + CHUNK;
  assert.ok(framed.length > 4 * frame, 'the stream spans several frames');
  const created = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('idle', 'snap', uuid)) });
  assert.ok(created.id, created.text);

  // Two whole frames and part of a third, then silence: the socket stays open and sends nothing more.
  const { port } = new URL(url);
  const sock = net.connect(Number(port), '127.0.0.1');
  await once(sock, 'connect');
  // Not events.once, which rejects on an 'error' first: a socket the server ends may come as a reset (RST).
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => undefined);
  sock.write(
    `PATCH ${UPLOADS_PATH}/${created.id} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nContent-Length: ${framed.length}\r\n\r\n`,
  );
  sock.write(framed.subarray(0, 2 * frame + 1000));
  const silentAt = Date.now();
  const ended = await Promise.race([closed.then(() => true), sleep(idleTimeoutMs + 15_000).then(() => false)]);
  t.after(() => sock.destroy());
  assert.ok(ended, `the server still held the silent request ${idleTimeoutMs + 15_000} ms later`);
  assert.ok(Date.now() - silentAt >= idleTimeoutMs - 100, 'not ended before the idle timeout');

  const offset = await headOffset(url, created.id);
  assert.ok(offset >= 2 * frame, `the two whole frames are kept (offset ${offset})`);
  const rest = await patch(url, created.id, offset, framed.subarray(offset), { 'Upload-Length': String(framed.length) });
  assert.equal(rest.status, 204, rest.text);
  assert.equal(rest.headers.get('upload-offset'), String(framed.length));
  const done = await settled(h, created.id);
  assert.equal(done.state, 'received', JSON.stringify(done.error));
});
