/**
 * Issue 17, item 4: a client that holds connections open, against a real server on real sockets. One token holding
 * trickling uploads up to its cap gets 429 on the next request while another client's still succeed; sockets
 * beyond the total cap get 503, and beyond the ceiling are not held at all; headers sent a byte at a time are cut
 * after the header timeout; a body slower than the floor is ended and keeps its verified frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeTakeDown, createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { API_PREFIX, UPLOADS_PATH } from '../../core/protocol.ts';
import { startServer, type ConnectionSettings, type RunningServer } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import { aliceBobAdmin, until } from './harness.ts';
import { freePort, SNAPFERRY_BIN } from './processes.ts';
import { CHUNK, create, encodeMetadata, metadataFor, patch, streamOfRandomFile } from './hostile-client.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

async function tokenServer(t: AfterHook, connections: ConnectionSettings, idleTimeoutMs?: number, tlsFiles?: { cert: string; key: string }) {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const tokens = await aliceBobAdmin(t);
  const server = await startServer({
    root: path.join(fsx.mountPoint, 'root'), host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 500,
    tokensFile: tokens.file, connections, ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}), ...(tlsFiles ? { tls: tlsFiles } : {}),
  });
  closeFirst(() => server.close());
  return { server, ...tokens };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A raw socket to the server, destroyed after the test; `closed` settles when the server closes it. */
async function rawSocket(t: AfterHook, server: RunningServer): Promise<{ sock: net.Socket; closed: Promise<unknown>; received: () => string }> {
  const sock = net.connect(Number(new URL(server.url).port), '127.0.0.1');
  sock.on('error', () => undefined);
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  // Not events.once, which rejects on an 'error' first: a server that ends a socket holding bytes it has not read
  // resets it (RST), and the cut is still the server closing it.
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  await once(sock, 'connect');
  t.after(() => void sock.destroy());
  return { sock, closed, received: () => text };
}

/** Settles true when `p` does within `ms`, false otherwise. */
const within = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), sleep(ms).then(() => false)]);

function patchHead(server: RunningServer, id: string, token: string, length: number, offset = 0): string {
  return (
    `PATCH ${UPLOADS_PATH}/${id} HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\nAuthorization: Bearer ${token}\r\n` +
    `Tus-Resumable: 1.0.0\r\nUpload-Offset: ${offset}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${length}\r\n\r\n`
  );
}

/** A tus creation on a connection of its own that closes with the answer (fetch would keep it alive, and Alice's). */
function createOnce(server: RunningServer, token: string, meta: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${server.url}${UPLOADS_PATH}/`,
      { method: 'POST', agent: false, headers: { ...bearer(token), Connection: 'close', 'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1', 'Upload-Metadata': encodeMetadata(meta) } },
      (res) => {
        res.resume();
        const id = res.headers.location?.split('/').pop();
        res.on('end', () => (res.statusCode === 201 && id ? resolve(id) : reject(new Error(`creation answered ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function errorOf(res: Response): Promise<{ code: string; retryable: boolean; message: string }> {
  return ((await res.json()) as { error: { code: string; retryable: boolean; message: string } }).error;
}

test('a token holding trickling uploads up to its cap gets 429 with Retry-After; another client is still served', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const cap = 4;
  const { server, alice, bob } = await tokenServer(t, { maxPerClient: cap });
  const held: Awaited<ReturnType<typeof rawSocket>>[] = [];
  for (let i = 0; i < cap; i++) {
    const uuid = randomUuid();
    const id = await createOnce(server, alice, metadataFor(`v${i}`, 'snap', uuid));
    const framed = await frameStream(streamOfRandomFile(uuid, 2), CHUNK);
    // Its headers and a few bytes of a valid frame, then it holds the body open.
    const s = await rawSocket(t, server);
    s.sock.write(patchHead(server, id, alice, framed.length));
    s.sock.write(framed.subarray(0, 10));
    held.push(s);
  }
  await sleep(300);

  const refused = await fetch(`${server.url}${API_PREFIX}/status`, { headers: bearer(alice) });
  assert.equal(refused.status, 429, 'the next request of the same token is refused');
  assert.equal(refused.headers.get('retry-after'), '10');
  assert.equal(refused.headers.get('connection'), 'close');
  const body = await errorOf(refused);
  assert.equal(body.code, 'too_many_connections');
  assert.equal(body.retryable, true);
  assert.match(body.message, /close some .* and try again/);

  const other = await fetch(`${server.url}${API_PREFIX}/status`, { headers: bearer(bob) });
  assert.equal(other.status, 200, 'another client is served');
  await other.text();

  // A PATCH beyond the cap is refused before its body is read: the answer comes though the body never does.
  const extra = await rawSocket(t, server);
  extra.sock.write(patchHead(server, 'anything', alice, 1_000_000));
  assert.ok(await within(extra.closed, 5_000), 'the refused PATCH was answered and its connection closed without its body');
  assert.match(extra.received(), /^HTTP\/1\.1 429 /);

  // Its requests that end give the token its room back.
  held[0]!.sock.destroy();
  await held[0]!.closed;
  await sleep(200);
  const again = await fetch(`${server.url}${API_PREFIX}/status`, { headers: bearer(alice) });
  assert.equal(again.status, 200);
  await again.text();
});

/** Sends a GET of /v1/status on `s` as `token` and waits for its whole answer; the socket stays open (kept alive). */
async function statusOn(s: Awaited<ReturnType<typeof rawSocket>>, token: string): Promise<number> {
  const before = s.received().length;
  s.sock.write(`GET ${API_PREFIX}/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  // A whole answer: its head, and a body of content-length bytes or chunks up to the last one.
  const whole = (text: string) => {
    const head = /^HTTP\/1\.1 (\d+)[^]*?\r\n\r\n/.exec(text);
    if (!head) return null;
    const length = /\r\ncontent-length: (\d+)\r\n/i.exec(head[0]);
    const done = length ? text.length >= head[0].length + Number(length[1]) : text.endsWith('\r\n0\r\n\r\n');
    return done ? Number(head[1]) : null;
  };
  return until('a whole answer', () => whole(s.received().slice(before)) ?? undefined, 10_000, 20);
}

test("a token's idle kept-alive connections count against its cap; a connection counts for whoever used it last", { ...rootOnly, timeout: 60_000 }, async (t) => {
  const { server, alice, bob } = await tokenServer(t, { maxPerClient: 2 });
  const a = await rawSocket(t, server);
  assert.equal(await statusOn(a, alice), 200);
  // One connection carries Alice's request, then Bob's (as a proxy's shared upstream connection does): it is Bob's.
  const shared = await rawSocket(t, server);
  assert.equal(await statusOn(shared, alice), 200);
  assert.equal(await statusOn(shared, bob), 200);
  const c = await rawSocket(t, server);
  assert.equal(await statusOn(c, alice), 200, 'Alice holds two connections now, idle');
  // Each idle connection can carry her next request...
  assert.equal(await statusOn(a, alice), 200);
  // ...but a third is refused, though none of hers is busy.
  const d = await rawSocket(t, server);
  assert.equal(await statusOn(d, alice), 429);
  assert.ok(await within(d.closed, 5_000), 'the refused connection is closed');
  assert.equal(await statusOn(shared, bob), 200, 'Bob is served on his');
});

test('sockets beyond the total cap get 503 with Retry-After, and beyond the ceiling are not held', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const { server, bob } = await tokenServer(t, { maxConnections: 4 });
  // Four sockets that never send a request (e.g. one client's, or nobody's) take the server's room.
  const idle = [];
  for (let i = 0; i < 4; i++) idle.push(await rawSocket(t, server));
  await sleep(100);

  const refused = await fetch(`${server.url}${API_PREFIX}/status`, { headers: bearer(bob) });
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('retry-after'), '30');
  const body = await errorOf(refused);
  assert.equal(body.code, 'server_busy');
  assert.equal(body.retryable, true);
  assert.match(body.message, /try again in a little while/);

  // A flood far beyond the cap: the server holds at most its ceiling (4 + 8 here) and closes the rest at accept.
  const flood = [];
  for (let i = 0; i < 40; i++) flood.push(await rawSocket(t, server));
  await sleep(300);
  const open = await new Promise<number>((resolve, reject) => server.http.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  assert.ok(open <= 12, `the server holds ${open} sockets, more than its ceiling of 12`);
  const closedByServer = (await Promise.all(flood.map((s) => within(s.closed, 0)))).filter(Boolean).length;
  assert.ok(closedByServer >= 40 - 12, `only ${closedByServer} of the flood's sockets were closed`);

  for (const s of [...idle, ...flood]) s.sock.destroy();
  await sleep(300);
  const served = await fetch(`${server.url}${API_PREFIX}/status`, { headers: bearer(bob) });
  assert.equal(served.status, 200, 'served again once the sockets are gone');
  await served.text();
});

test('connections refused for want of a token end with their 401: they cannot hold the total cap against the clients', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const { server, bob } = await tokenServer(t, { maxConnections: 4 });
  const strangers = [];
  // More than the cap in all, each once the one before had its answer: never more than the cap at once, so a 503 says
  // a refused one still held its place after its answer. (Opened all at once, a busy machine answered the fifth
  // before it had closed the first four: a 503 by the cap, not by a stranger kept.)
  for (let i = 0; i < 6; i++) {
    const s = await rawSocket(t, server);
    s.sock.write(`GET ${API_PREFIX}/status HTTP/1.1\r\nHost: ${new URL(server.url).host}\r\n\r\n`);
    assert.ok(await within(s.closed, 5000), `a socket was kept after its answer: ${s.received().slice(0, 40)}`);
    strangers.push(s);
  }
  assert.ok(strangers.every((s) => s.received().startsWith('HTTP/1.1 401')), strangers.map((s) => s.received().slice(0, 20)).join(', '));
  const served = await fetch(`${server.url}${API_PREFIX}/status`, { headers: bearer(bob) });
  assert.equal(served.status, 200, 'a client is served: the strangers hold nothing');
  await served.text();
});

test('with TLS: connections beyond the total cap get 503 once their handshake is done, and a silent handshake is cut', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const certs = await createTestCertificates(t);
  const headersTimeoutMs = 3000;
  const { server, bob } = await tokenServer(t, { maxConnections: 2, headersTimeoutMs }, undefined, { cert: certs.serverCert, key: certs.serverKey });
  const ca = await fs.readFile(certs.caCert);
  const port = Number(new URL(server.url).port);
  for (let i = 0; i < 2; i++) {
    const sock = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    sock.on('error', () => undefined);
    t.after(() => void sock.destroy());
    await once(sock, 'secureConnect');
  }
  await sleep(200);
  const answer = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve, reject) => {
    const req = https.request(`${server.url}${API_PREFIX}/status`, { ca, agent: false, headers: bearer(bob) }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(answer.status, 503, answer.body);
  assert.equal(answer.retryAfter, '30');
  assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, 'server_busy');

  // A TCP connection that never starts its handshake is cut after the header timeout too (Node's default: 120 s).
  const silent = await rawSocket(t, server);
  const start = Date.now();
  assert.ok(await within(silent.closed, 15_000), 'the silent handshake still held its socket 15 s later');
  assert.ok(Date.now() - start >= headersTimeoutMs - 200, 'not cut before the timeout');
});

test('headers sent a byte at a time are cut after the header timeout', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const headersTimeoutMs = 1000;
  const { server } = await tokenServer(t, { headersTimeoutMs });
  const s = await rawSocket(t, server);
  const start = Date.now();
  s.sock.write(`GET ${API_PREFIX}/status HTTP/1.1\r\nHost: x\r\n`);
  // Never quiet long enough for any idle timeout: a header byte every 100 ms.
  const trickle = setInterval(() => s.sock.writable && s.sock.write('X-Slow: a\r\n'.slice(0, 1)), 100);
  t.after(() => clearInterval(trickle));
  const cut = await within(s.closed, 10_000);
  clearInterval(trickle);
  assert.ok(cut, 'the half-sent request still held its socket 10 s later');
  assert.ok(Date.now() - start >= headersTimeoutMs - 100, 'not cut before the header timeout');
  assert.match(s.received(), /^HTTP\/1\.1 408 /, 'Node says why: Request Timeout');

  // A socket that sends nothing at all is cut as well.
  const silent = await rawSocket(t, server);
  assert.ok(await within(silent.closed, 10_000), 'the silent socket still held 10 s later');
});

test('a PATCH body trickling below the floor is ended; its verified frames stay and the upload resumes', { ...rootOnly, timeout: 60_000 }, async (t) => {
  const idleTimeoutMs = 1000;
  const floor = { minBodyBytesPerSecond: 4096, bodyRateWindowMs: 2000 };
  const { server, alice } = await tokenServer(t, floor, idleTimeoutMs);
  const uuid = randomUuid();
  const framed = await frameStream(streamOfRandomFile(uuid, 6), CHUNK);
  const frame = FRAME_HEADER_SIZE + CHUNK;
  const created = await create(server.url, { ...bearer(alice), 'Upload-Metadata': encodeMetadata(metadataFor('slow', 'snap', uuid)) });
  assert.ok(created.id, created.text);

  // Two whole frames and part of a third at once, then 40 bytes every 200 ms (200 B/s): never silent for the
  // idle timeout, far below the floor.
  const s = await rawSocket(t, server);
  s.sock.write(patchHead(server, created.id, alice, framed.length));
  let sent = 2 * frame + 1000;
  s.sock.write(framed.subarray(0, sent));
  const burstAt = Date.now();
  const trickle = setInterval(() => {
    if (!s.sock.writable) return;
    s.sock.write(framed.subarray(sent, sent + 40));
    sent += 40;
  }, 200);
  t.after(() => clearInterval(trickle));
  const ended = await within(s.closed, 15_000);
  clearInterval(trickle);
  assert.ok(ended, 'the trickling body still held its request 15 s later');
  assert.ok(Date.now() - burstAt >= floor.bodyRateWindowMs - 100, 'not ended before a whole window below the floor');

  const head = await fetch(`${server.url}${UPLOADS_PATH}/${created.id}`, { method: 'HEAD', headers: { ...bearer(alice), 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.status, 200);
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset >= 2 * frame, `the two whole frames are kept (offset ${offset})`);
  const rest = await patch(server.url, created.id, offset, framed.subarray(offset), { ...bearer(alice), 'Upload-Length': String(framed.length) });
  assert.equal(rest.status, 204, rest.text);
  assert.equal(rest.headers.get('upload-offset'), String(framed.length));
});

test("the issue's attack: a token trickling hundreds of bodies into a server limited to 400 files; another client still pushes", { ...rootOnly, timeout: 120_000 }, async (t) => {
  // Killed first among the after hooks, before its filesystem is unmounted.
  const started: { pid?: number; exited?: Promise<unknown> } = {};
  t.after(async () => {
    if (started.pid !== undefined) process.kill(-started.pid, 'SIGKILL');
    await started.exited;
  });
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const { file, alice, bob } = await aliceBobAdmin(t);
  const port = await freePort();
  // A real `snapferry serve` with its defaults, its open-file limit at 400 (prlimit execs node: the pid is the server's).
  const child = execa('prlimit', ['--nofile=400:400', '--', 'node', SNAPFERRY_BIN, 'serve', '--root', path.join(fsx.mountPoint, 'root'), '--listen', `127.0.0.1:${port}`, '--tokens', file], {
    reject: false, buffer: false, detached: true, stdin: 'ignore',
  });
  started.pid = child.pid;
  started.exited = child.then(() => undefined);
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (log += d));
  await until('the server to listen', () => log.includes('snapferry serving'), 30_000);
  const url = `http://127.0.0.1:${port}`;
  assert.match(log, /does not fit the process's open-file limit; lowered/);

  // Alice: 450 requests whose JSON bodies trickle (two bytes, then nothing), more sockets than the server has files.
  const socks: net.Socket[] = [];
  t.after(() => socks.forEach((s) => s.destroy()));
  for (let i = 0; i < 450; i++) {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.write(`POST ${API_PREFIX}/transfers/t${i}/rewind HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"`);
    socks.push(sock);
  }
  await sleep(2000);

  // Bob pushes a snapshot meanwhile: creation, the upload, and its receive all need files.
  const uuid = randomUuid();
  const framed = await frameStream(streamOfRandomFile(uuid, 2), CHUNK);
  const created = await create(url, { ...bearer(bob), 'Upload-Metadata': encodeMetadata(metadataFor('home', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const sent = await patch(url, created.id!, 0, framed, { ...bearer(bob), 'Upload-Length': String(framed.length) });
  assert.equal(sent.status, 204, sent.text);
  const state = await until('the receive to end', async () => {
    const res = await fetch(`${url}${API_PREFIX}/transfers/${created.id}`, { headers: bearer(bob) });
    const tr = (await res.json()) as { state: string };
    return ['received', 'failed'].includes(tr.state) && tr.state;
  }, 30_000);
  assert.equal(state, 'received');
  assert.doesNotMatch(log, /EMFILE|too many open files/i);
});
