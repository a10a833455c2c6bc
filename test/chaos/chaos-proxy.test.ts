import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startChaosProxyCore as startChaosProxy } from './proxy-core.ts';
import type { ChaosProxyCore as ChaosProxy, CutEvent } from './proxy-core.ts';
import { send, startSink, until } from './peers.ts';
import type { SinkConnection } from './peers.ts';

const RESET = ['ECONNRESET', 'EPIPE'];
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function proxyTo(t: { after(fn: () => Promise<void>): void }, port: number): Promise<ChaosProxy> {
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port } });
  t.after(() => proxy.close());
  return proxy;
}

test('passes 5 MB both ways unchanged and counts it', { timeout: 20_000 }, async (t) => {
  const sink = await startSink(t, { echo: true });
  const proxy = await proxyTo(t, sink.port);
  const data = randomBytes(5 << 20);
  const { outcome, received } = await send(proxy.port, data, { end: true }).done;
  assert.equal(outcome, 'end');
  assert.equal(sha(received), sha(data));
  // A connection counts as gone once both of its sockets closed, a moment after the client saw the end.
  await until('the counts', () => proxy.stats().downstreamBytes === data.length && proxy.stats().live === 0);
  assert.deepEqual(proxy.stats(), {
    upstreamBytes: data.length, downstreamBytes: data.length, connections: 1, refused: 0, cuts: 0, clientResets: 0, live: 0,
    queuedBytes: 0,
  });
});

test('carries an HTTP request and its response', { timeout: 10_000 }, async (t) => {
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => hash.update(chunk));
    req.on('end', () => res.end(hash.digest('hex')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const proxy = await proxyTo(t, (server.address() as { port: number }).port);
  const body = randomBytes(300_000);
  const res = await fetch(`${proxy.url}/upload`, { method: 'POST', body });
  assert.equal(await res.text(), sha(body));
  assert.ok(proxy.stats().upstreamBytes > body.length);
});

test('carries TLS end to end, and a cut breaks it', { timeout: 15_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), `chaos-tls-${process.pid}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' });
  } catch {
    return t.skip('openssl is not installed');
  }
  const server = https.createServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
    const hash = createHash('sha256');
    req.on('data', (chunk: Buffer) => hash.update(chunk));
    req.on('end', () => res.end(hash.digest('hex')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const proxy = await proxyTo(t, (server.address() as { port: number }).port);
  const ca = await readFile(cert);
  const post = (body: Buffer): Promise<string> => new Promise((resolve) => {
    const req = https.request(`https://127.0.0.1:${proxy.port}/`, { method: 'POST', ca, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(text));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(body);
  });
  const body = randomBytes(1 << 20);
  assert.equal(await post(body), sha(body));
  proxy.cutAfter(200_000);
  assert.ok(RESET.includes(await post(body)));
});

test('paces each direction at its rate, in small slices, even after an idle spell', { timeout: 15_000 }, async (t) => {
  const sink = await startSink(t, { greet: randomBytes(100_000) });
  const proxy = await proxyTo(t, sink.port);
  proxy.setRate({ upstream: 100_000, downstream: 100_000 });
  const connectedAt = performance.now();
  const sent = send(proxy.port, Buffer.alloc(0));
  let greeted = 0;
  sent.socket.on('data', (chunk: Buffer) => {
    greeted += chunk.length;
  });
  await sink.accepted(1);
  const conn = sink.connections[0]!;
  await until('the downstream greeting', () => greeted === 100_000);
  const downMs = performance.now() - connectedAt;
  assert.ok(downMs >= 800, `100 KB at 100 KB/s downstream took ${downMs} ms`);

  // Upstream sat idle for a second: a bucket that saved up a second's worth would let 100 KB through at once.
  const startedAt = performance.now();
  sent.socket.write(randomBytes(200_000));
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.ok(conn.bytes <= 50_000, `${conn.bytes} bytes upstream after 0.3 s at 100 KB/s`);
  await until('200 KB upstream', () => conn.bytes === 200_000);
  const upMs = performance.now() - startedAt;
  assert.ok(upMs >= 1600, `200 KB at 100 KB/s upstream took ${upMs} ms`);
  sent.socket.destroy();
});

test('connections share the link\'s rate and each gets its turn', { timeout: 15_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  proxy.setRate(60_000);
  const startedAt = performance.now();
  const pair = [send(proxy.port, randomBytes(60_000), { end: true }), send(proxy.port, randomBytes(60_000), { end: true })];
  await sink.accepted(2);
  const [a, b] = sink.connections as [SinkConnection, SinkConnection];
  await until('one connection to finish', () => a.bytes === 60_000 || b.bytes === 60_000);
  const other = Math.min(a.bytes, b.bytes);
  assert.ok(other >= 30_000, `the other connection had only ${other} of 60000 bytes through`);
  await Promise.all(pair.map((s) => s.done));
  const ms = performance.now() - startedAt;
  assert.ok(ms >= 1600, `2 x 60 KB over a 60 KB/s link took ${ms} ms`);
});

test('holds back a fast sender instead of buffering it', { timeout: 10_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  proxy.setRate(50_000);
  // More than the kernel buffers on both sides can hold (tcp_rmem may reach 32 MiB), so the sender must wait.
  const sent = send(proxy.port, Buffer.alloc(64 << 20));
  await new Promise((resolve) => setTimeout(resolve, 700));
  const { queuedBytes } = proxy.stats();
  assert.ok(queuedBytes <= 160 * 1024, `${queuedBytes} bytes queued in the proxy`);
  assert.ok(sent.socket.writableLength > 0, 'the sender should be waiting on the slow link');
  sent.socket.destroy();
});

test('a client\'s reset ends its connection at once: what the proxy took but had not passed on is dropped', { timeout: 10_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  proxy.setRate(1 << 20);
  // More than the kernel buffers can hold, so the proxy's side holds as much as the kernel lets it.
  const sent = send(proxy.port, Buffer.alloc(16 << 20));
  await until('some bytes to cross', () => proxy.stats().upstreamBytes > 300_000);
  sent.socket.resetAndDestroy();
  const atReset = proxy.stats().upstreamBytes;
  await until('the connection to end', () => proxy.stats().live === 0, 3000);
  const after = proxy.stats().upstreamBytes - atReset;
  t.diagnostic(`${after} bytes crossed after the client's reset`);
  // What a tick or two of the limiter lets out while the reset is noticed (30 KB each at 1 MB/s), not the
  // hundreds of KB the proxy's kernel had taken (they crossed before, until the proxy read its way to the reset).
  assert.ok(after <= 96 * 1024, `${after} bytes crossed after the client's reset`);
  assert.equal(proxy.stats().clientResets, 1);
  assert.ok(['ECONNRESET', 'end'].includes(await sink.connections[0]!.done));
});

test('cutAfter(N) delivers exactly N bytes upstream, then both ends see a reset', { timeout: 10_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  const cuts: CutEvent[] = [];
  proxy.onCut((cut) => cuts.push(cut));
  proxy.cutAfter(123_457);
  const client = await send(proxy.port, randomBytes(1 << 20)).done;
  const server = sink.connections[0]!;
  assert.ok(RESET.includes(client.outcome), `the client saw ${client.outcome}`);
  // libuv reports a reset that arrives together with the last data as EOF (a short read with POLLHUP), so a raw
  // TCP server may see 'end' here; an HTTP server sees its request aborted either way (the next test).
  assert.ok(['ECONNRESET', 'end'].includes(await server.done));
  assert.equal(server.bytes, 123_457);
  assert.deepEqual(cuts, [{ kind: 'after', position: 123_457, connections: 1 }]);
  assert.equal(proxy.stats().upstreamBytes, 123_457);

  // One-shot: the next connection goes through whole.
  const again = await send(proxy.port, randomBytes(300_000), { end: true }).done;
  assert.equal(again.outcome, 'end');
  assert.equal(await sink.connections[1]!.done, 'end');
  assert.equal(sink.connections[1]!.bytes, 300_000);
  assert.equal(proxy.stats().cuts, 1);
});

test('a cut aborts an HTTP request on the server and fails it on the client', { timeout: 10_000 }, async (t) => {
  let serverSaw: Promise<{ complete: boolean; error: string }> | undefined;
  const server = http.createServer((req) => {
    serverSaw = new Promise((resolve) => {
      req.on('error', (err: NodeJS.ErrnoException) => resolve({ complete: req.complete, error: err.code ?? err.message }));
      req.on('end', () => resolve({ complete: req.complete, error: '' }));
      req.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const proxy = await proxyTo(t, (server.address() as { port: number }).port);
  proxy.cutAfter(50_000);
  const clientError = await new Promise<string>((resolve) => {
    const req = http.request(`${proxy.url}/upload`, { method: 'POST' }, () => resolve('response'));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(randomBytes(1 << 20));
  });
  assert.ok(RESET.includes(clientError), `the client saw ${clientError}`);
  await until('the request to reach the server', () => serverSaw !== undefined);
  assert.deepEqual(await serverSaw, { complete: false, error: 'ECONNRESET' });
});

test('cutEvery cuts at every N upstream bytes, across connections one after another and side by side', { timeout: 15_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  proxy.cutEvery(100_000);
  for (let i = 0; i < 4; i++) {
    const { outcome } = await send(proxy.port, randomBytes(250_000)).done;
    assert.ok(RESET.includes(outcome), `connection ${i} saw ${outcome}`);
  }
  assert.deepEqual(sink.connections.map((c) => c.bytes), [100_000, 100_000, 100_000, 100_000]);

  // Two live connections share the link: the cut falls on their sum and breaks both.
  const cuts: CutEvent[] = [];
  proxy.onCut((cut) => cuts.push(cut));
  const pair = [send(proxy.port, randomBytes(60_000)), send(proxy.port, randomBytes(60_000))];
  const outcomes = await Promise.all(pair.map((s) => s.done));
  assert.ok(outcomes.every((o) => RESET.includes(o.outcome)), JSON.stringify(outcomes.map((o) => o.outcome)));
  assert.equal(sink.connections[4]!.bytes + sink.connections[5]!.bytes, 100_000);
  assert.deepEqual(cuts, [{ kind: 'every', position: 500_000, connections: 2 }]);

  proxy.cutEvery(null);
  assert.equal((await send(proxy.port, randomBytes(250_000), { end: true }).done).outcome, 'end');
  assert.equal(sink.connections[6]!.bytes, 250_000);
  await until('the last connection to be counted gone', () => proxy.stats().live === 0);
  assert.deepEqual(proxy.stats(), {
    upstreamBytes: 750_000, downstreamBytes: 0, connections: 7, refused: 0, cuts: 5, clientResets: 0, live: 0,
    queuedBytes: 0,
  });
});

test('cutRandomly cuts at the seeded positions, the same on every run', { timeout: 15_000 }, async (t) => {
  const sink = await startSink(t);
  const positionsFor = async (seed: string): Promise<number[]> => {
    const proxy = await proxyTo(t, sink.port);
    const positions: number[] = [];
    proxy.onCut((cut) => positions.push(cut.position));
    proxy.cutRandomly({ meanBytes: 100_000, minBytes: 10_000, seed });
    for (let i = 0; i < 6; i++) await send(proxy.port, randomBytes(150_000), { end: true }).done;
    await proxy.close();
    return positions;
  };
  const first = await positionsFor('link-a');
  assert.ok(first.length >= 2, `only ${first.length} cuts in 900 KB at a mean of 100 KB`);
  assert.deepEqual(await positionsFor('link-a'), first);
  assert.notDeepEqual(await positionsFor('link-b'), first);
});

test('cutNow resets every live connection at both ends', { timeout: 10_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  const pair = [send(proxy.port, Buffer.from('a')), send(proxy.port, Buffer.from('b'))];
  await sink.accepted(2);
  await until('both connections to carry a byte', () => proxy.stats().upstreamBytes === 2);
  assert.equal(proxy.cutNow(), 2);
  for (const s of pair) assert.ok(RESET.includes((await s.done).outcome));
  // The sink's side: a reset, or a FIN (seen once in CI, on a loaded machine; likely an upstream socket that was
  // already shutting down when the cut came, which resetSocket can only destroy): either way the connection is
  // gone at once, which is what a test of a cut relies on (an HTTP server sees its request aborted both ways).
  for (const c of sink.connections) assert.ok(['ECONNRESET', 'end'].includes(await c.done));
  assert.equal(proxy.cutNow(), 0);
  assert.equal(proxy.stats().cuts, 1);
});

test('refuse(true) makes new connections fail at once; refuse(false) lets them through again', { timeout: 10_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await proxyTo(t, sink.port);
  proxy.refuse(true);
  const started = performance.now();
  const refused = await send(proxy.port, Buffer.from('hello')).done;
  assert.ok(performance.now() - started < 2000, 'a refused connect should fail fast');
  assert.ok(RESET.includes(refused.outcome), `the client saw ${refused.outcome}`);
  assert.equal(sink.connections.length, 0);
  proxy.refuse(false);
  assert.equal((await send(proxy.port, Buffer.from('hello'), { end: true }).done).outcome, 'end');
  assert.equal(sink.connections[0]!.bytes, 5);
  assert.equal(proxy.stats().refused, 1);
  assert.equal(proxy.stats().connections, 1);
});

test('close() leaves nothing that keeps the process alive', { timeout: 20_000 }, async () => {
  const probe = fileURLToPath(new URL('./close-probe.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', probe], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let closedAt = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (closedAt === 0 && out.includes('closed')) closedAt = performance.now();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.equal(code, 0, `the probe did not exit by itself; it printed: ${out}`);
  assert.ok(closedAt > 0, out);
  assert.ok(performance.now() - closedAt < 3000, `exited ${performance.now() - closedAt} ms after closing`);
});
