/**
 * A server behind a line that went silent accepts nothing back: no answer, no RST, no FIN. Every request of the
 * client must give up after its stall timeout with a retryable error and drop the connection, never wait for ever.
 * The silent peer here is a real TCP server that reads and never answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { ServerApi } from '../../client/http/api.ts';
import { FramedUploadSource } from '../../client/upload/source.ts';
import { uploadFramed } from '../../client/upload/tus.ts';
import { SnapferryError } from '../../core/errors.ts';
import { RestoreSpool } from '../../client/restore/spool.ts';
import { downloadInto } from '../../client/restore/http.ts';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

interface SilentPeer {
  url: string;
  /** Connections the peer saw closed by the client. */
  closed(): number;
  close(): Promise<void>;
}

async function silentPeer(): Promise<SilentPeer> {
  const sockets = new Set<net.Socket>();
  let closed = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => {
      sockets.delete(s);
      closed++;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    closed: () => closed,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A stall of 700 ms given up on as it should be: retryably, with `code`, neither early nor late. */
function assertGaveUp(err: unknown, code: string, took: number): void {
  assert.ok(err instanceof SnapferryError, String(err));
  assert.equal(err.code, code);
  assert.equal(err.retryable, true);
  assert.ok(took >= 650 && took < 5000, `gave up after ${took} ms`);
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a JSON API request to a silent server gives up after the stall timeout, retryably, and drops its connection', { timeout: 20_000 }, async (t) => {
  const peer = await silentPeer();
  t.after(() => peer.close());
  const api = new ServerApi({ server: peer.url, stallMs: 700 });
  const started = Date.now();
  const err = await api.transfers().then(() => null, (e: unknown) => e);
  assertGaveUp(err, 'server_stalled', Date.now() - started);
  await until('the connection is closed', () => peer.closed() === 1);
});

test('a tus upload to a silent server gives up after the stall timeout, retryably, and drops its connection', { timeout: 20_000 }, async (t) => {
  const peer = await silentPeer();
  t.after(() => peer.close());
  const stream = new PassThrough({ readableObjectMode: true });
  const source = new FramedUploadSource({ stream, startOffset: 0 }, 1 << 20);
  t.after(() => source.close());
  const started = Date.now();
  const err = await uploadFramed({ server: peer.url, metadata: {}, source, chunkSize: 1 << 20, stallMs: 700, retryDelays: [] }).then(
    () => null,
    (e: unknown) => e,
  );
  assertGaveUp(err, 'upload_stalled', Date.now() - started);
  await until('the connection is closed', () => peer.closed() === 1);
});

test("a restore's download from a silent server gives up after the stall timeout, retryably", { timeout: 20_000 }, async (t) => {
  const peer = await silentPeer();
  t.after(() => peer.close());
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-stall-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const identity = { server: peer.url, client: null, volume: 'v', snapshot: 's1', uuid: crypto.randomUUID(), parentUuid: null, chunkSize: 65536 };
  const { spool } = await RestoreSpool.open(dir, identity);
  t.after(() => spool.close());
  const started = Date.now();
  const err = await downloadInto(spool, { api: new ServerApi({ server: peer.url }), headers: {} }, { volume: 'v', snapshot: 's1', parentUuid: null, stallMs: 700, sealing: null }).then(
    () => null,
    (e: unknown) => e,
  );
  assertGaveUp(err, 'download_stalled', Date.now() - started);
});

test('after a stall the next request takes a new connection, and looks the server name up again', { timeout: 20_000 }, async (t) => {
  // The first connection goes silent; the ones after it answer. A name that moved (a DSL line's new address behind
  // dynamic DNS) is found only by a new lookup.
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    if (++connections === 1) return;
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\nconnection: close\r\n\r\n{"transfers":[]}'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  const { port } = server.address() as net.AddressInfo;
  const lookups: string[] = [];
  const lookup = dns.lookup;
  dns.lookup = ((host: string, ...rest: unknown[]) => {
    lookups.push(host);
    return (lookup as (...a: unknown[]) => unknown).call(dns, host, ...rest);
  }) as typeof dns.lookup;
  t.after(() => {
    dns.lookup = lookup;
  });
  const api = new ServerApi({ server: `http://localhost:${port}`, stallMs: 500 });
  const first = await api.transfers().then(() => null, (e: unknown) => e);
  assert.equal((first as SnapferryError | null)?.code, 'server_stalled');
  assert.deepEqual((await api.transfers()).transfers, []);
  assert.ok(connections >= 2, 'the second request came on a new connection');
  // One lookup for the request that stalled, and one more at least for the new connection after it.
  assert.ok(lookups.filter((h) => h === 'localhost').length >= 2, `lookups: ${lookups.join(', ')}`);
});

test('an answer cut off halfway is said as such, retryably, not as an unreachable server', { timeout: 20_000 }, async (t) => {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"transfers":');
      setTimeout(() => s.destroy(), 50);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  const { port } = server.address() as net.AddressInfo;
  const err = await new ServerApi({ server: `http://127.0.0.1:${port}`, stallMs: 5000 }).transfers().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SnapferryError, String(err));
  assert.equal(err.code, 'answer_interrupted');
  assert.equal(err.retryable, true);
  assert.match(err.message, /broke off/);
});
