/**
 * How a PATCH body is cut into pieces: small on a slow or unmeasured link (progress moves, the link meter has
 * samples), larger on a fast one (each piece is a socket write and, with TLS, a round of the record layer).
 * The upload test sends real frames through tus-js-client to a real @tus/server on loopback.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Server } from '@tus/server';
import { DefaultHttpStack, type HttpRequest } from 'tus-js-client';
import { createTransport } from '../../../client/http/transport.ts';
import { FileStore } from '@tus/file-store';
import { BODY_PIECE, LARGEST_BODY_PIECE, bodyPieceFor, patchBody } from '../../../client/upload/patch-body.ts';
import { LinkMeter } from '../../../client/upload/link-meter.ts';
import { UploadRateLimit, THROTTLED_PIECE } from '../../../client/upload/rate-limit.ts';
import { FramedUploadSource } from '../../../client/upload/source.ts';
import { uploadFramed } from '../../../client/upload/tus.ts';
import { FrameEncoder } from '../../../core/wire/index.ts';

const MiB = 1024 * 1024;

test('a piece is 64 KiB until the link is measured and on a slow link, and grows with a fast one up to 1 MiB', () => {
  assert.equal(bodyPieceFor(null), BODY_PIECE);
  assert.equal(bodyPieceFor(125_000), BODY_PIECE, '1 Mbit/s');
  assert.equal(bodyPieceFor(2_500_000), 64 * 1024, '20 Mbit/s: 125 kB in 50 ms');
  assert.equal(bodyPieceFor(6_000_000), 256 * 1024);
  assert.equal(bodyPieceFor(100_000_000), LARGEST_BODY_PIECE);
  assert.equal(bodyPieceFor(10_000_000_000), LARGEST_BODY_PIECE);
});

async function piecesOf(body: Readable): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const piece of body) out.push(piece as Buffer);
  return out;
}

test('a body goes out in views of its frames no larger than the piece size, and a rate limit keeps them small', async () => {
  const frames = [crypto.randomBytes(3 * MiB + 5), crypto.randomBytes(72), crypto.randomBytes(MiB)];
  const whole = Buffer.concat(frames);
  const large = await piecesOf(patchBody(frames, undefined, LARGEST_BODY_PIECE));
  assert.ok(Buffer.concat(large).equals(whole));
  assert.ok(Math.max(...large.map((p) => p.length)) === LARGEST_BODY_PIECE);
  const limited = await piecesOf(patchBody(frames, new UploadRateLimit(1e9), LARGEST_BODY_PIECE));
  assert.ok(Buffer.concat(limited).equals(whole));
  assert.ok(Math.max(...limited.map((p) => p.length)) <= THROTTLED_PIECE);
});

/** A LinkMeter that says `rate` bytes/s, learnt from a clock of its own, as an earlier attempt of the push left it. */
function meterSaying(rate: number): LinkMeter {
  let now = 0;
  const meter = new LinkMeter(() => now);
  meter.progress(0, 0);
  now = 3000;
  meter.progress(rate * 3, 0);
  meter.restart();
  return meter;
}

/** Uploads 12 MiB of raw frames to a real tus server; returns the largest piece of a PATCH body written. */
async function largestPiece(t: TestContext, linkMeter?: LinkMeter): Promise<number> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-piece-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const tus = new Server({ path: '/v1/uploads', datastore: new FileStore({ directory: dir }) });
  const listener = http.createServer((req, res) => void tus.handle(req, res));
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.after(() => new Promise<void>((r) => listener.close(() => r())));
  const { port } = listener.address() as AddressInfo;

  const out = new PassThrough({ readableObjectMode: true, readableHighWaterMark: 4 });
  const source: FramedUploadSource = new FramedUploadSource({ stream: out, startOffset: 0 }, 8 * MiB);
  const encoder = new FrameEncoder({ chunkSize: 4 * MiB, level: 0, onFrame: (f) => source.frameEnded(f.wireOffset + f.wireLength, f.kind === 'end') });
  const framing = pipeline(Readable.from([crypto.randomBytes(12 * MiB)]), encoder, out);
  // tus-js-client's own progress is throttled to 100 ms: the pieces are seen as its node stack gets them.
  let largest = 0;
  class PieceRecordingStack extends DefaultHttpStack {
    override createRequest(method: string, url: string): HttpRequest {
      const request = super.createRequest(method, url);
      const send = request.send.bind(request);
      request.send = (body) => {
        const answered = send(body);
        if (body instanceof Readable) body.on('data', (piece: Buffer) => void (largest = Math.max(largest, piece.length)));
        return answered;
      };
      return request;
    }
  }
  const server = `http://127.0.0.1:${port}`;
  const transport = { ...createTransport(server), httpStack: new PieceRecordingStack({}) };
  await uploadFramed({ server, metadata: {}, source, chunkSize: 8 * MiB, transport, ...(linkMeter ? { linkMeter } : {}) });
  await framing;
  await transport.close();
  return largest;
}

test('on a link measured fast the upload writes 1 MiB pieces; unmeasured, 64 KiB ones', { timeout: 60_000 }, async (t) => {
  assert.equal(await largestPiece(t, meterSaying(100_000_000)), LARGEST_BODY_PIECE);
  assert.equal(await largestPiece(t, meterSaying(100_000)), BODY_PIECE);
  assert.equal(await largestPiece(t), BODY_PIECE);
});
