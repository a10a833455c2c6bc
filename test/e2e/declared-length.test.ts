/**
 * A length declared with a PATCH that was cut must not bind the next one. tus-js-client declares Upload-Length with
 * its last PATCH; when that PATCH is cut and the client resumes with the tail framed anew (--compress auto chose
 * another level), the frames add up to another length. Before, the server kept the first declaration and refused
 * every later PATCH ("the upload was declared N bytes long, not M"): the only way out was to send the whole seed again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { FrameParser } from '../../core/wire/index.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { CHUNK, create, encodeMetadata, hostileServer, metadataFor, patch, settled } from './hostile-client.ts';

/** Where each frame of a framed stream ends. */
function frameEnds(wire: Buffer): number[] {
  return new FrameParser().push(wire).map((f) => f.wireEnd);
}

/** Text-like data that zstd compresses to different sizes at different levels. */
function compressible(n: number): Buffer {
  const words = ['snapshot', 'btrfs', 'frame', 'resume', 'silence', 'line', 'upload', 'chain'];
  let text = '';
  for (let i = 0; text.length < n; i++) text += `${words[(i * 7 + (i >> 3)) % words.length]} ${i % 997} `;
  return Buffer.from(text.slice(0, n));
}

test('a length declared with a PATCH that was cut binds nothing: the resumed push, framed anew, completes', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const h = await hostileServer(t);
  const url = h.server.url;
  const uuid = randomUuid();
  const data = compressible(6 * CHUNK);
  const b = new SendStreamBuilder().subvol('snap', uuid).file('f', data.subarray(0, 48 * 1024));
  for (let at = 48 * 1024; at < data.length; at += 48 * 1024) b.write('f', data.subarray(at, at + 48 * 1024), at);
  const raw = b.end().build();
  const first = await frameStream(raw, CHUNK, 1);
  const second = await frameStream(raw, CHUNK, 19);
  assert.notEqual(first.length, second.length, 'the two encodings differ in length');
  const firstEnds = frameEnds(first);
  const secondEnds = frameEnds(second);

  const created = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('declared', 'snap', uuid)) });
  assert.ok(created.id, created.text);
  // The "last PATCH" of the first encoding: it declares the whole length, and is cut after three whole frames.
  const { port } = new URL(url);
  const sock = net.connect(Number(port), '127.0.0.1');
  await once(sock, 'connect');
  sock.on('error', () => undefined);
  sock.write(
    `PATCH ${UPLOADS_PATH}/${created.id} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
      `Upload-Length: ${first.length}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${first.length}\r\n\r\n`,
  );
  sock.write(first.subarray(0, firstEnds[2]));
  const verified = firstEnds[2]!;
  for (let end = Date.now() + 10_000; Date.now() < end; await sleep(50)) {
    if (h.server.service.transferRecord(created.id) && (await h.server.service.progress(created.id)).wireOffset >= verified) break;
  }
  sock.destroy();

  // The resumed push framed the rest at another level: its frames 3.. follow the server's three.
  let offset = 0;
  for (let end = Date.now() + 10_000; Date.now() < end; await sleep(50)) {
    const res = await fetch(`${url}${UPLOADS_PATH}/${created.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    offset = Number(res.headers.get('upload-offset'));
    if (res.status === 200 && offset === verified) break;
  }
  assert.equal(offset, verified);
  const rest = second.subarray(secondEnds[2]);
  const r = await patch(url, created.id, offset, rest, { 'Upload-Length': String(offset + rest.length) });
  assert.equal(r.status, 204, `${r.status} ${r.text}`);
  const done = await settled(h, created.id);
  assert.equal(done.state, 'received', JSON.stringify(done.error));
});
