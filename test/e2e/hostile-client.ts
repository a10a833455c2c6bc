/**
 * A client that does what no snapferry client would: raw tus requests with any headers and any body, for the hostile
 * input tests. Also a before/after listing of the server's filesystem, to show that nothing was written outside
 * the one volume folder a request may touch.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import fs from 'node:fs/promises';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { startServer, type RunningServer, type ServeOptions } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import type { ServiceOptions } from '../../server/replication.ts';
import { beforeTakeDown, createBtrfs } from '../fixtures/btrfs.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { addClient } from '../../server/tokens.ts';
import { authHeaders } from '../../client/http/token.ts';
import os from 'node:os';
import assert from 'node:assert/strict';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { receiveRunsIn, until } from '../fixtures/receive-exit.ts';

export const CHUNK = 65536;

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The JSON error's code, when the body is one. */
  code: string | undefined;
}

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

export interface HostileServer {
  server: RunningServer;
  mount: string;
  root: string;
  volumeDir(volume: string): string;
}

export interface HostileOptions extends Partial<ServiceOptions> {
  sizeMiB?: number;
  idleTimeoutMs?: number;
  behindProxy?: boolean;
  publicUrl?: string;
  tokensFile?: string;
  endedTransfers?: ServeOptions['endedTransfers'];
}

/** A server root on btrfs that a test stops and starts servers on (a restart, a power cut between two). */
export interface RestartableRoot {
  root: string;
  /** A server on the root, closed before the filesystem comes down unless the test stopped it. */
  start(): Promise<RunningServer>;
  stop(server: RunningServer): Promise<void>;
}

export async function restartableRoot(t: AfterHook, options: Partial<Omit<ServeOptions, 'root' | 'host' | 'port'>> = {}): Promise<RestartableRoot> {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const running = new Set<RunningServer>();
  closeFirst(async () => {
    for (const s of running) await s.close();
  });
  return {
    root,
    async start() {
      const s = await startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 500, ...options });
      running.add(s);
      return s;
    },
    async stop(server) {
      running.delete(server);
      await server.close();
    },
  };
}

/**
 * An upload of `pieces` random pieces (48 KiB each) of snapshot `snapshot` into `volume` on `server` (whose --root is
 * `root`), its first `headFrames` frames sent: resolves once its receive runs beside it, in the volume's folder.
 */
export async function uploadWithReceiveRunning(
  server: RunningServer,
  root: string,
  options: { volume: string; snapshot?: string; pieces: number; headFrames?: number },
): Promise<{ id: string; framed: Buffer; head: number; volumeDir: string }> {
  const volumeDir = path.join(root, 'volumes', 'default', options.volume);
  const uuid = randomUuid();
  const created = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor(options.volume, options.snapshot ?? 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const framed = await frameStream(streamOfRandomFile(uuid, options.pieces), CHUNK);
  const head = (options.headFrames ?? 8) * (CHUNK + FRAME_HEADER_SIZE);
  const sent = await patch(server.url, created.id!, 0, framed.subarray(0, head));
  assert.equal(sent.status, 204, sent.text);
  await until('the receive to run beside the upload', () => receiveRunsIn(volumeDir));
  return { id: created.id!, framed, head, volumeDir };
}

export async function hostileServer(t: AfterHook, options: HostileOptions = {}): Promise<HostileServer> {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: options.sizeMiB ?? 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const server = await startServer({
    root, host: '127.0.0.1', port: 0, behindProxy: options.behindProxy ?? false, log: silentLogger(), leaseMs: 500,
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
    ...(options.tokensFile !== undefined ? { tokensFile: options.tokensFile } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.privilegedFiles ? { privilegedFiles: options.privilegedFiles } : {}),
    ...(options.idleTimeoutMs ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
    ...(options.expireAfterMs !== undefined ? { expireAfterMs: options.expireAfterMs } : {}),
    ...(options.endedTransfers ? { endedTransfers: options.endedTransfers } : {}),
  });
  closeFirst(() => server.close());
  return { server, mount: fsx.mountPoint, root, volumeDir: (v) => path.join(root, 'volumes', 'default', v) };
}

async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, headers: res.headers, text, code };
}

export function encodeMetadata(meta: Record<string, string | Buffer>): string {
  return Object.entries(meta)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

export function metadataFor(volume: string, snapshot: string, uuid: string, parentUuid?: string): Record<string, string> {
  return { volume, snapshot, uuid, format: 'sfr1', chunkSize: String(CHUNK), ...(parentUuid ? { parentUuid } : {}) };
}

/** POST a tus creation; `length` undefined defers it. */
export async function create(url: string, headers: Record<string, string>, length?: number): Promise<Reply & { id: string | null }> {
  const res = await fetch(`${url}${UPLOADS_PATH}/`, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', ...(length === undefined ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }), ...headers },
  });
  const r = await reply(res);
  return { ...r, id: res.headers.get('location')?.split('/').pop() ?? null };
}

export async function patch(url: string, id: string, offset: number | string, body: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${url}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', ...headers },
    body,
  });
  return reply(res);
}

/** Creates an upload for `raw` (a send stream) with `meta`, sends it framed in one PATCH that declares its length. */
export async function uploadStream(url: string, meta: Record<string, string>, raw: Buffer): Promise<{ id: string; created: Reply; patched: Reply }> {
  const created = await create(url, { 'Upload-Metadata': encodeMetadata(meta) });
  if (created.id === null) throw new Error(`creation failed: ${created.status} ${created.text}`);
  const framed = await frameStream(raw, CHUNK);
  const patched = await patch(url, created.id, 0, framed, { 'Upload-Length': String(framed.length) });
  return { id: created.id, created, patched };
}

/** A GET with the path sent exactly as given (fetch would normalise `..` away). */
export function rawGet(url: string, rawPath: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path: rawPath, method: 'GET' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every path under `dir` (relative), directories marked with a trailing slash; subvolumes are directories too. */
export async function listTree(dir: string): Promise<Set<string>> {
  const out = new Set<string>();
  async function walk(rel: string): Promise<void> {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(rel, e.name);
      out.add(e.isDirectory() ? `${p}/` : p);
      if (e.isDirectory()) await walk(p);
    }
  }
  await walk('');
  return out;
}

/**
 * What appeared under `mount` since `before`, outside what the server may change for one client's volume: its
 * spool, its catalog (and the reserve beside it, server/catalog-reserve.ts), and `volumes/default/VOLUME/` (and the
 * folders leading to it).
 */
export async function writtenOutside(mount: string, before: Set<string>, volume: string): Promise<string[]> {
  const allowed = [/^root\/spool\//, /^root\/catalog\.json(\.tmp|\.reserve)?$/, new RegExp(`^root/volumes/default/${volume}/`)];
  const folders = ['root/', 'root/spool/', 'root/volumes/', 'root/volumes/default/'];
  const after = await listTree(mount);
  return [...after].filter((p) => !before.has(p) && !folders.includes(p) && !allowed.some((re) => re.test(p)));
}

/** The transfer once its receive is over (the receive is queued just after the last PATCH answers). */
export async function settled(h: HostileServer, id: string) {
  const end = Date.now() + 60_000;
  for (;;) {
    await h.server.service.idle();
    const t = h.server.service.transferRecord(id);
    if (t && ['received', 'failed', 'aborted'].includes(t.state)) return t;
    if (Date.now() > end) throw new Error(`transfer ${id} is still ${t?.state}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A send stream of one file of `pieces` random 48 KiB writes: incompressible, so every frame is CHUNK raw bytes. */
export function streamOfRandomFile(uuid: string, pieces: number): Buffer {
  const piece = 48 * 1024;
  const data = crypto.randomBytes(piece * pieces);
  const b = new SendStreamBuilder().subvol('snap', uuid).file('f', data.subarray(0, piece));
  for (let i = 1; i < pieces; i++) b.write('f', data.subarray(i * piece, (i + 1) * piece), i * piece);
  return b.end().build();
}

/** A tokens file with two clients, alice and bob, for the tests where one client goes after another's things. */
export async function twoClients(t: AfterHook): Promise<{ file: string; alice: string; bob: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-clients-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'tokens.json');
  return { file, alice: (await addClient(file, 'alice')).token, bob: (await addClient(file, 'bob')).token };
}

/** A creation as the client whose token is `token`, of snapshot `snapshot` (default `snap`) of `volume`. */
export async function createAs(h: HostileServer, token: string, volume: string, uuid: string, snapshot = 'snap', parentUuid?: string) {
  return create(h.server.url, { ...authHeaders(token), 'Upload-Metadata': encodeMetadata(metadataFor(volume, snapshot, uuid, parentUuid)) });
}

/** Sends the raw send stream `raw`, framed, in one PATCH that declares its length. */
export async function sendAs(h: HostileServer, token: string, id: string, raw: Buffer) {
  const framed = await frameStream(raw, CHUNK);
  return patch(h.server.url, id, 0, framed, { ...authHeaders(token), 'Upload-Length': String(framed.length) });
}
