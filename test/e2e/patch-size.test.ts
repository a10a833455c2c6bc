/**
 * A push sends PATCHes of the size its server says it takes best (SnapshotList.patchBytes), kept within
 * PATCH_BYTES_MIN..MAX, and not of the client's default. Observed on the wire: an HTTP proxy between a real push and
 * a real server counts every PATCH body's bytes and answers the snapshot list with the size under test, so a push
 * that ignored the field (or the bound) would send PATCHes of another size. Frames are raw (`compress: 0`), so each
 * is one 4 MiB chunk and its header: the largest PATCH is within a frame of the size in force, and over it by no more
 * than its frames' headers (a PATCH's size counts the frames' data, client/upload/source.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { API_PREFIX } from '../../core/protocol/routes.ts';
import { PATCH_BYTES_MAX } from '../../core/protocol/upload.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
const FRAME = CHUNK + FRAME_HEADER_SIZE;

interface PatchProxy {
  url: string;
  /** Body bytes of each PATCH that crossed, in order. */
  patches: number[];
  close(): Promise<void>;
}

/** Forwards every request to `target`; answers a volume's snapshot list with `patchBytes` in place of the server's. */
async function patchProxy(target: string, patchBytes: number): Promise<PatchProxy> {
  const patches: number[] = [];
  const listing = new RegExp(`^${API_PREFIX}/volumes/[^/]+/snapshots(\\?.*)?$`);
  const server = http.createServer((req, res) => {
    const isListing = req.method === 'GET' && listing.test(req.url ?? '');
    const headers = { ...req.headers };
    if (isListing) delete headers['accept-encoding'];
    const upstream = http.request(new URL(req.url ?? '/', target), { method: req.method, headers }, (answer) => {
      if (!isListing || answer.statusCode !== 200) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const parts: Buffer[] = [];
      answer.on('data', (b: Buffer) => parts.push(b));
      answer.on('end', () => {
        const body = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.concat(parts).toString('utf8')), patchBytes }));
        res.writeHead(200, { ...answer.headers, 'content-length': String(body.length) });
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    if (req.method === 'PATCH') {
      let bytes = 0;
      req.on('data', (b: Buffer) => (bytes += b.length));
      req.on('end', () => patches.push(bytes));
    }
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    patches,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The PATCH body sizes of one push of `fillMB` of files, through a proxy that says `saysPatchBytes`. */
async function pushThroughProxy(t: test.TestContext, saysPatchBytes: number, fillMB: number): Promise<number[]> {
  const pair = await createPair(t, { fillMB });
  const server = await pair.startServer();
  const proxy = await patchProxy(server.url, saysPatchBytes);
  t.after(() => proxy.close());
  const s1 = await pair.snapshot('s1');
  await push({ server: proxy.url, volume: 'home', snapshots: [s1], chunkSize: CHUNK, compress: 0 }, recordingReporter());
  await assertReceived(s1, pair.receivedPath('home', 's1'));
  return proxy.patches;
}

/** The largest PATCH carries as many whole frames as `limit` allows: within a frame of it, never over. */
function assertLargestNear(patches: number[], limit: number): void {
  const largest = Math.max(...patches);
  const headers = Math.ceil(limit / CHUNK) * FRAME_HEADER_SIZE;
  assert.ok(largest <= limit + headers && largest > limit - FRAME, `the largest PATCH (${largest} B) is within a frame of ${limit} B, and over it by its headers at most: ${patches.join(', ')}`);
}

test('push sends PATCHes of the size the server says, not its own default', rootOnly, async (t) => {
  // Three times the client's default (8 MiB), within the bound. The slow start (1, 2, 4 frames, then 5 of 4 MiB)
  // reaches it after 7 frames: 64 MB of files make about 16.
  const says = 24 * MiB;
  assertLargestNear(await pushThroughProxy(t, says, 64), says);
});

test('push keeps a server\'s PATCH size within PATCH_BYTES_MAX', rootOnly, async (t) => {
  // 1, 2, 4, then 7 frames a PATCH: 100 MB of files (about 25 frames) hold two PATCHes at the bound.
  assertLargestNear(await pushThroughProxy(t, 1024 * MiB, 100), PATCH_BYTES_MAX);
});
