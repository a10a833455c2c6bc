/**
 * Pushes through a real nginx running the committed nginx/snapferry.conf, with real TLS (a throwaway CA the client
 * trusts through --ca-file) and real btrfs on both ends. Where a link is needed, the chaos proxy sits between the
 * client and nginx: client -> chaos proxy (plain TCP, so TLS passes through) -> nginx -> snapferry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import os from 'node:os';
import tls from 'node:tls';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly } from '../fixtures/btrfs.ts';
import { createTestCertificates, type TestCertificates } from '../fixtures/tls.ts';
import { SITE_CONF, startNginx, type RunningNginx } from '../fixtures/nginx.ts';
import { push, type PushOptions } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { META, UPLOADS_PATH, WIRE_FORMAT, type Transfer } from '../../core/protocol.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { assertReceived, createPair, recordingReporter, type Pair } from './harness.ts';
import type { RunningServer } from '../../server/serve.ts';
import { DEFAULT_CLIENT } from '../../server/auth.ts';
import { namespacedUuid } from '../../server/uuid-namespace.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

interface Setup {
  pair: Pair;
  server: RunningServer;
  certs: TestCertificates;
  nginx: RunningNginx;
}

async function behindNginx(t: AfterHook, fillMB: number): Promise<Setup> {
  const certs = await createTestCertificates(t);
  const pair = await createPair(t, { fillMB });
  // As deployed: the server on loopback, trusting the forwarded headers that nginx (and only nginx) sets.
  const server = await pair.startServer({ behindProxy: true });
  const nginx = await startNginx(t, { upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) }, cert: certs.serverCert, key: certs.serverKey });
  return { pair, server, certs, nginx };
}

/** Options every push here shares: no proxy from the environment, quick retries. */
function pushOptions(s: Setup, extra: Partial<PushOptions> & { server: string; snapshots: string[] }): PushOptions {
  return { volume: 'home', chunkSize: 256 * 1024, caFile: s.certs.caCert, env: {}, backoff: { baseMs: 100, maxMs: 1000 }, pollMs: 100, ...extra };
}

async function accessLog(nginx: RunningNginx): Promise<string[]> {
  return (await fs.readFile(path.join(nginx.prefix, 'access.log'), 'utf8')).split('\n').filter((l) => l.length > 0);
}

test('a push through nginx, the client checking the certificate against --ca-file, arrives whole', rootOnly, async (t) => {
  const s = await behindNginx(t, 8);
  const s1 = await s.pair.snapshot('s1');
  const result = await push(pushOptions(s, { server: s.nginx.url, snapshots: [s1], retries: 0 }), recordingReporter());
  assert.equal(result.sent[0]!.transfer.state, 'received');
  assert.equal(result.sent[0]!.transfer.interruptions, 0, 'every upload URL nginx handed out worked at once');
  await assertReceived(s1, s.pair.receivedPath('home', 's1'));
  // The server's copy carries the client's UUID in the client's namespace (server/uuid-namespace.ts).
  assert.equal((await btrfs.subvolumeShow(s.pair.receivedPath('home', 's1'))).receivedUuid, namespacedUuid(DEFAULT_CLIENT, (await btrfs.subvolumeShow(s1)).uuid));
  // Everything went through nginx: creation, PATCHes, polls.
  const log = await accessLog(s.nginx);
  assert.ok(log.some((l) => l.includes(`"POST ${UPLOADS_PATH}/ `)), 'the creation POST went through nginx');
  assert.ok(log.some((l) => l.includes(`"PATCH ${UPLOADS_PATH}/`)), 'the PATCHes went through nginx');
});

test('without --ca-file the push fails at once with a clear, non-retryable certificate error', rootOnly, async (t) => {
  const s = await behindNginx(t, 1);
  const s1 = await s.pair.snapshot('s1');
  const started = Date.now();
  // Default retries are "for ever": only a non-retryable error can end this push.
  const { caFile: _none, ...options } = pushOptions(s, { server: s.nginx.url, snapshots: [s1] });
  await assert.rejects(push(options, recordingReporter()), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'certificate_untrusted');
    assert.equal(err.retryable, false);
    assert.match(err.message, /the server's certificate is not trusted .*: pass --ca-file/);
    return true;
  });
  assert.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
  assert.deepEqual(await new ServerApi({ server: s.server.url }).transfers().then((l) => l.transfers), [], 'nothing was created');
});

test('nginx streams the request body: the server verifies frames while one slow PATCH is still going', rootOnly, async (t) => {
  const s = await behindNginx(t, 6);
  const s1 = await s.pair.snapshot('s1');
  // 6 MB of mixed content frames to a few MB: at 400 kB/s the one PATCH lasts several seconds.
  const link = await startChaosProxy({ target: { host: '127.0.0.1', port: s.nginx.port } });
  t.after(() => link.close());
  link.setRate({ upstream: 400_000 });

  const api = new ServerApi({ server: s.server.url });
  // Each sample: the server's verified progress, and how many PATCHes nginx had finished by then.
  const seen: { wireOffset: number; framesVerified: number; patchesDone: number }[] = [];
  const patchesDone = async () => (await accessLog(s.nginx)).filter((l) => l.includes('"PATCH ')).length;
  let done = false;
  const pushing = push(pushOptions(s, { server: `https://127.0.0.1:${link.port}`, snapshots: [s1], patchBytes: 1 << 30, retries: 0 }), recordingReporter());
  void pushing.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) {
    const current = (await api.transfers()).transfers.find((x: Transfer) => x.volume === 'home' && x.state === 'uploading');
    if (current && !done) seen.push({ wireOffset: current.wireOffset, framesVerified: current.framesVerified, patchesDone: await patchesDone() });
    await new Promise((r) => setTimeout(r, 200));
  }
  const result = await pushing;
  const wire = result.sent[0]!.transfer.wireOffset;
  t.diagnostic(`${wire} bytes; the server's progress seen meanwhile: ${JSON.stringify(seen)}`);
  await assertReceived(s1, s.pair.receivedPath('home', 's1'));

  const patches = (await accessLog(s.nginx)).filter((l) => l.includes('"PATCH '));
  // The first PATCHes are short (a slow start that measures the link); the last ones carry most of the stream.
  assert.ok(patches.length < 10, `a few PATCHes carried the whole stream:\n${patches.join('\n')}`);
  // Frames verified while the same PATCH was still going: a buffering proxy would show them only as PATCHes end.
  const midPatch = seen.filter((x, i) => i > 0 && x.patchesDone === seen[i - 1]!.patchesDone && x.framesVerified > seen[i - 1]!.framesVerified);
  assert.ok(midPatch.length >= 3, `frames verified during a PATCH (a buffering proxy shows none): ${JSON.stringify(seen)}`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.wireOffset >= seen[i - 1]!.wireOffset, 'the offset only grows');
});

test('a cut between the client and nginx resumes like any other; the tree arrives equal', rootOnly, async (t) => {
  const s = await behindNginx(t, 8);
  const s1 = await s.pair.snapshot('s1');
  const link = await startChaosProxy({ target: { host: '127.0.0.1', port: s.nginx.port } });
  t.after(() => link.close());
  link.setRate({ upstream: 4 * 1024 * 1024 });
  link.cutAfter(3 * 1024 * 1024);
  const result = await push(
    pushOptions(s, { server: `https://127.0.0.1:${link.port}`, snapshots: [s1], patchBytes: 1024 * 1024, stallMs: 5000, retries: 5 }),
    recordingReporter(),
  );
  assert.equal(link.stats().cuts, 1, 'the link was cut once');
  const transfer = result.sent[0]!.transfer;
  assert.equal(transfer.state, 'received');
  assert.ok(transfer.interruptions >= 1, `the server saw the cut: ${JSON.stringify(transfer)}`);
  await assertReceived(s1, s.pair.receivedPath('home', 's1'));
  // Resumed, not restarted: what crossed is the stream plus about one PATCH lost to the cut, not twice the stream.
  const crossed = link.stats().upstreamBytes;
  assert.ok(crossed < transfer.wireOffset + 2 * 1024 * 1024 + 256 * 1024, `${crossed} bytes crossed for a ${transfer.wireOffset}-byte stream`);
});

test('spoofed Forwarded / X-Forwarded-* on the creation POST do not change the Location nginx returns', rootOnly, async (t) => {
  const s = await behindNginx(t, 1);
  const s1 = await s.pair.snapshot('s1');
  const uuid = (await btrfs.subvolumeShow(s1)).uuid;
  const b64 = (v: string) => Buffer.from(v).toString('base64');
  const metadata = [
    [META.volume, 'home'], [META.snapshot, 's1'], [META.uuid, uuid], [META.format, WIRE_FORMAT], [META.chunkSize, String(256 * 1024)],
  ].map(([k, v]) => `${k} ${b64(v!)}`).join(',');
  const ca = await fs.readFile(s.certs.caCert, 'utf8');
  const api = new ServerApi({ server: s.server.url });
  const create = (extra: Record<string, string>) =>
    new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
      const req = https.request(`${s.nginx.url}${UPLOADS_PATH}/`, {
        method: 'POST',
        ca,
        headers: { 'tus-resumable': '1.0.0', 'upload-defer-length': '1', 'upload-metadata': metadata, 'content-length': '0', ...extra },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
      });
      req.on('error', reject);
      req.end();
    });
  const honest = await create({});
  assert.equal(honest.status, 201);
  assert.match(honest.location ?? '', new RegExp(`^${s.nginx.url.replace(/\./g, '\\.')}${UPLOADS_PATH}/[0-9a-f]{32}$`));
  // One live transfer per snapshot: clear the way for the next creation.
  await api.abort(honest.location!.split('/').pop()!);

  const spoofed = await create({
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'http',
    forwarded: 'for=1.2.3.4;host=evil.example;proto=http',
  });
  assert.equal(spoofed.status, 201);
  assert.match(spoofed.location ?? '', new RegExp(`^${s.nginx.url.replace(/\./g, '\\.')}${UPLOADS_PATH}/[0-9a-f]{32}$`), 'same origin as without the spoofed headers');
  await api.abort(spoofed.location!.split('/').pop()!);

  // The check can fail: straight to the server (no nginx in between) the same headers do move the Location.
  const direct = await fetch(`${s.server.url}${UPLOADS_PATH}/`, {
    method: 'POST',
    headers: { 'tus-resumable': '1.0.0', 'upload-defer-length': '1', 'upload-metadata': metadata, 'x-forwarded-host': 'evil.example' },
  });
  assert.match(direct.headers.get('location') ?? '', /^http:\/\/evil\.example\//);
});

test('the ChaCha20 lines the site file offers for servers without AES instructions work once uncommented', rootOnly, async (t) => {
  const certs = await createTestCertificates(t);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-nginx-chacha-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const committed = await fs.readFile(SITE_CONF, 'utf8');
  const lines = /^([ \t]*)#(ssl_prefer_server_ciphers on;|ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256:[^;]*;)$/gm;
  assert.equal(committed.match(lines)?.length, 2, 'the two commented lines are in the site file');
  const site = path.join(dir, 'chacha.conf');
  await fs.writeFile(site, committed.replace(lines, '$1$2'));
  // Only the handshake is looked at: nothing behind nginx is needed.
  const upstream = { host: '127.0.0.1', port: 9 };
  const cipherOf = async (nginx: RunningNginx) => {
    const socket = tls.connect({ host: '127.0.0.1', port: nginx.port, ca: await fs.readFile(certs.caCert) });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const name = socket.getCipher().name;
    socket.destroy();
    return name;
  };
  // Node's client lists AES-256-GCM first: as committed, that is what it gets; uncommented, nginx's order wins.
  assert.equal(await cipherOf(await startNginx(t, { upstream, cert: certs.serverCert, key: certs.serverKey })), 'TLS_AES_256_GCM_SHA384');
  assert.equal(await cipherOf(await startNginx(t, { upstream, cert: certs.serverCert, key: certs.serverKey, site })), 'TLS_CHACHA20_POLY1305_SHA256');
});
