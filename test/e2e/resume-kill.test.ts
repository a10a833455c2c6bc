/**
 * Resume survives processes killed with SIGKILL (docs/design.md, "Resume": "client killed, server restarted"; "Crash recovery and start-up": "a
 * server restarted mid-receive cleans up and receives again from the spool"). Real btrfs, real processes, and the
 * chaos proxy between client and server: it slows the upload down enough to kill something mid-way, and counts the
 * bytes that crossed, so each test can show that nothing the server acknowledged was sent twice.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ClientRequest, IncomingMessage, Server as HttpServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { prng } from '../fixtures/prng.ts';
import { startChaosProxy, type ChaosProxy } from '../chaos/chaos-proxy.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { ACK_SYNCED_OFFSET_HEADER, SESSION_HEADER, type Transfer } from '../../core/protocol.ts';
import { ServerLayout } from '../../server/layout.ts';
import { readLastRecord, readRecord } from '../../server/spool/frame-index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { formatBytes } from '../../client/progress/format.ts';
import { assertReceived, createPair, framedLength, recordingReporter, until } from './harness.ts';
import { ChildProcesses, freePort } from './processes.ts';

const CHUNK = 256 * 1024;
/** What a cut or a kill may cost on top of the stream: the one frame that was in flight. */
const FRAME_BYTES = CHUNK + FRAME_HEADER_SIZE;
/** Headers of one HTTP request, generously. */
const REQUEST_OVERHEAD = 2048;
/**
 * What a SIGKILL loses besides the frame in flight: bytes that had crossed the link but had not reached the spool.
 * A killed server takes its socket's receive buffer and its HTTP stream queues with it; for a killed client, the
 * server drops the chunks queued between its socket and the store when the request aborts. Measured on loopback:
 * up to ~100 KB on top of the frame for a killed client, 200-310 KB for a killed server. How far the server lags
 * behind the link decides it, so the allowance is generous; assertResumedExactly is the exact check that not one
 * acknowledged byte is sent again.
 */
const IN_FLIGHT_BYTES = 1024 * 1024;

/**
 * Longer than tus-js-client's own retries within one attempt (client/upload/tus.ts: after 0, 1 and 3 s): such an
 * outage fails the attempt, and the push's own loop has to resume.
 */
const LONGER_THAN_TUS_RETRIES_MS = 6000;

/** The size of the framed stream of `snapshot`, as one uninterrupted push makes it (same chunk size and level). */
async function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The only transfer on the server, read directly (not through the proxy, so the test's polls cost no link bytes). */
async function onlyTransfer(api: ServerApi): Promise<Transfer | undefined> {
  const { transfers } = await api.transfers();
  assert.ok(transfers.length <= 1, `one transfer at most, found ${transfers.map((x) => `${x.id} ${x.state}`).join(', ')}`);
  return transfers[0];
}

/** Counts the HTTP requests this process sends to `port` (tus-js-client uses node:http, the API client fetch). */
function countRequestsTo(t: TestContext, port: number): { readonly count: number } {
  const counter = { count: 0 };
  const onHttp = (message: unknown) => {
    const request = (message as { request: ClientRequest }).request;
    if (String(request.getHeader('host')).endsWith(`:${port}`)) counter.count++;
  };
  const onFetch = (message: unknown) => {
    const origin = (message as { request: { origin: string } }).request.origin;
    if (new URL(origin).port === String(port)) counter.count++;
  };
  dc.subscribe('http.client.request.start', onHttp);
  dc.subscribe('undici:request:create', onFetch);
  t.after(() => {
    dc.unsubscribe('http.client.request.start', onHttp);
    dc.unsubscribe('undici:request:create', onFetch);
  });
  return counter;
}

/** Counts the requests an in-process server gets from push sessions (the test's own polls carry no session). */
function countSessionRequests(t: TestContext, server: HttpServer): { readonly count: number } {
  const counter = { count: 0 };
  const onRequest = (req: IncomingMessage) => {
    if (req.headers[SESSION_HEADER] !== undefined) counter.count++;
  };
  server.on('request', onRequest);
  t.after(() => void server.off('request', onRequest));
  return counter;
}

/** The bytes that crossed the link and the requests made, at one moment. */
interface LinkMark {
  upstream: number;
  requests: number;
}

/** Bookkeeping of what crossed the link (the proxy's upstream count) against what the server kept. */
class LinkLedger {
  constructor(
    private readonly proxy: ChaosProxy,
    private readonly requests: { readonly count: number },
  ) {}

  mark(): LinkMark {
    return { upstream: this.proxy.stats().upstreamBytes, requests: this.requests.count };
  }

  /**
   * From `since` (a moment when the server held `held` of the `wire` bytes and nothing was on its way) to the end,
   * only what the server lacked crossed, plus the requests' own bytes: the resume sent not one acknowledged byte
   * again, not even a frame.
   */
  assertResumedExactly(t: TestContext, since: LinkMark, held: number, wire: number): void {
    const now = this.mark();
    const crossed = now.upstream - since.upstream;
    const requests = now.requests - since.requests;
    const allowed = wire - held + requests * REQUEST_OVERHEAD;
    t.diagnostic(`after the last resume ${crossed} B crossed for the ${wire - held} B the server lacked (${requests} requests)`);
    assert.ok(crossed <= allowed, `${crossed} B crossed after the resume at ${held}, more than the ${allowed} allowed: bytes the server held were sent again`);
  }

  /**
   * The whole run: the framed stream, plus at each interruption the frame in flight and what was past the link but
   * not yet in the spool, plus the requests' own bytes.
   */
  assertTotal(t: TestContext, wire: number, interruptions: number): void {
    const { upstream, requests } = this.mark();
    const perInterruption = FRAME_BYTES + IN_FLIGHT_BYTES;
    const allowed = wire + interruptions * perInterruption + requests * REQUEST_OVERHEAD;
    t.diagnostic(
      `upstream ${upstream} B for a ${wire} B stream: ${upstream - wire} B more (allowed ${allowed - wire}: ` +
        `${interruptions} interruptions x ${perInterruption} + ${requests} requests x ${REQUEST_OVERHEAD}; ` +
        `${interruptions} x one frame alone would allow ${interruptions * FRAME_BYTES + requests * REQUEST_OVERHEAD})`,
    );
    assert.ok(upstream <= allowed, `${upstream} B crossed the link, more than the ${allowed} allowed: acknowledged bytes were sent again`);
  }
}

/** Options of the in-process pushes: quick retries, and stopped when the test ends, whatever state it is in. */
function pushOptions(t: TestContext, server: string, snapshot: string) {
  const stop = new AbortController();
  t.after(() => stop.abort());
  return { server, volume: 'v', snapshots: [snapshot], chunkSize: CHUNK, compress: 3, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal };
}

test(
  'a push killed with kill -9 three times resumes each time, keeps every acknowledged frame, and never starts over',
  rootOnly,
  async (t) => {
    const children = new ChildProcesses(t);
    // A stream of about 31 MB: the three kills come within its first 4 to 12 MB, and what the killed pushes had handed
    // the kernel drains after them (up to 5 MB seen), so the last push still has most of it to resume. 80 MB of data,
    // a 52 MB stream, cost the CPU of 32 MB more to make, send, compress, receive and compare for nothing more tested.
    const pair = await createPair(t, { fillMB: 48, seed: 'kill-client' });
    const server = await pair.startServer({ leaseMs: 1000 });
    const s1 = await pair.snapshot('s1');
    const wire = await framedLength(s1, CHUNK);
    const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
    t.after(() => proxy.close());
    proxy.setRate({ upstream: 8_000_000 });
    const ledger = new LinkLedger(proxy, countSessionRequests(t, server.http));
    const api = new ServerApi({ server: server.url });

    // The client's whole world: an empty HOME and working directory. A push keeps no state of its own (the server
    // is the truth), so there is nothing to delete between kills, and they must still be empty after each one.
    const home = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-e2e-kill-${process.pid}-`));
    t.after(() => fs.rm(home, { recursive: true, force: true }));
    const env = { HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') };
    const args = ['push', '--server', proxy.url, '--volume', 'v', '--chunk-size', '256K', '--compress', '3', s1];

    const random = prng('resume-kill-client');
    const seen: number[] = [];
    const observe = (x: Transfer | undefined) => {
      if (!x) return;
      const before = seen.at(-1) ?? 0;
      assert.ok(x.framesVerified >= before, `framesVerified went down from ${before} to ${x.framesVerified}`);
      seen.push(x.framesVerified);
    };
    let from = 0;
    for (const kill of [1, 2, 3]) {
      const child = children.run(args, { cwd: home, env });
      // Each push gets 1-4 MB of its own through before its kill, wherever that falls in a frame.
      const target = from + random.int(1_000_000, 4_000_000);
      let latest: Transfer | undefined;
      const reached = await until(`push ${kill} to take the upload past ${target} bytes`, async () => {
        if (!child.running) throw new Error(`push ${kill} exited (${JSON.stringify(await child.exited)}) before its kill:\n${child.stderr}`);
        const x = (latest = await onlyTransfer(api));
        observe(x);
        return x?.state === 'uploading' && x.wireOffset >= target ? x : undefined;
      }, 30_000, 25).catch((err: Error) => {
        // What the push and the server were doing when it stalled: the timeout alone says nothing of why.
        throw new Error(`${err.message}; the server last said ${JSON.stringify(latest)}; push ${kill}'s stderr:\n${child.stderr}`);
      });
      await sleep(random.int(0, 200));
      const exit = await child.kill9();
      assert.equal(exit.signal, 'SIGKILL', `push ${kill} was killed, not finished: ${child.stderr}`);
      // What the dead push had handed to the kernel still drains through the link; the next push starts after it.
      await until('the killed push to be off the link', async () =>
        proxy.stats().live === 0 && !server.service.inFlight(reached.id) ? true : undefined, 30_000, 25,
      );
      const after = await api.transfer(reached.id);
      observe(after);
      assert.equal(after.state, 'uploading', 'the stream was not complete when the kills were over: use more data');
      from = after.wireOffset;
      t.diagnostic(
        `kill ${kill} at ${reached.wireOffset} of ${wire} B; after the drain the server holds ${after.wireOffset} B ` +
          `(${after.framesVerified} frames), ${proxy.stats().upstreamBytes - after.wireOffset} B crossed on top so far`,
      );
      assert.deepEqual(await fs.readdir(home), [], 'push wrote nothing locally: no state to lose or delete');
    }

    const beforeLast = ledger.mark();
    const last = children.run(args, { cwd: home, env });
    const exit = await withTimeout('the last push', last.exited, 60_000);
    assert.equal(exit.code, EXIT.ok, last.stderr);
    assert.match(last.stderr, /resuming at .*the rest was only hashed, not sent/);
    // Its figures count as sent only what it sent; what the server held from the killed runs is shown apart.
    const figures = `${formatBytes(wire - from)} sent (+${formatBytes(from)} from an earlier run)`;
    assert.ok(last.stderr.includes(figures), `"${figures}" in:\n${last.stderr}`);

    const { transfers } = await api.transfers();
    assert.equal(transfers.length, 1, 'one upload from start to end: no kill made the client start a second one');
    const done = transfers[0]!;
    observe(done);
    assert.equal(done.state, 'received');
    assert.equal(done.wireOffset, wire, 'the server holds exactly the stream one uninterrupted push makes');
    await assertReceived(s1, pair.receivedPath('v', 's1'));
    assert.deepEqual(await fs.readdir(home), []);
    ledger.assertResumedExactly(t, beforeLast, from, wire);
    ledger.assertTotal(t, wire, 3);
  },
);

/** A pair with snapshot s1, a snapferry server child behind the chaos proxy, and a ledger of what crosses it. */
async function serverBehindLink(t: TestContext, seed: string, fillMB: number) {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB, seed });
  const s1 = await pair.snapshot('s1');
  const wire = await framedLength(s1, CHUNK);
  const port = await freePort();
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port } });
  t.after(() => proxy.close());
  const ledger = new LinkLedger(proxy, countRequestsTo(t, proxy.port));
  const server = await children.serve({ root: pair.root, port });
  return { children, pair, s1, wire, port, proxy, ledger, server, api: new ServerApi({ server: server.url }) };
}

/** Starts a push of `s1` and returns once the server has acknowledged 40% of its `wire` bytes. */
async function pushPastFortyPercent(t: TestContext, url: string, s1: string, api: ServerApi, wire: number) {
  const report = recordingReporter();
  const pushing = push(pushOptions(t, url, s1), report);
  pushing.catch(() => undefined);
  const before = await until('the upload to pass 40%', async () => {
    const x = await onlyTransfer(api);
    return x?.state === 'uploading' && x.wireOffset >= wire * 0.4 ? x : undefined;
  }, 30_000, 25);
  return { pushing, report, before };
}

test(
  'the server killed with kill -9 mid-upload and restarted: the push carries on by itself from the acknowledged frames',
  rootOnly,
  async (t) => {
    const { children, pair, s1, wire, port, proxy, ledger, server: first, api } = await serverBehindLink(t, 'kill-server-upload', 48);
    let server = first;
    proxy.setRate({ upstream: 6_000_000 });

    const { pushing, before } = await pushPastFortyPercent(t, proxy.url, s1, api, wire);
    const exit = await server.kill9();
    assert.equal(exit.signal, 'SIGKILL');
    const atKill = ledger.mark();
    await sleep(1000);

    // The link stays down until the test has read where the restarted server stands, so that it knows exactly
    // what the push still has to send.
    proxy.refuse(true);
    server = await children.serve({ root: pair.root, port });
    const restarted = await api.transfer(before.id);
    const afterRestart = ledger.mark();
    proxy.refuse(false);
    t.diagnostic(
      `server killed at ${before.wireOffset} of ${wire} B acknowledged (${before.framesVerified} frames) with ${atKill.upstream} B ` +
        `across the link; after the restart it holds ${restarted.wireOffset} B (${restarted.framesVerified} frames)`,
    );
    assert.ok(
      restarted.framesVerified >= before.framesVerified,
      `after the restart the server holds ${restarted.framesVerified} frames, fewer than the ${before.framesVerified} it had acknowledged`,
    );

    const result = await withTimeout('the push', pushing, 45_000);
    const done = result.sent[0]!.transfer;
    assert.equal(done.id, before.id, 'the same upload went on');
    assert.equal(done.state, 'received');
    assert.equal(done.wireOffset, wire);
    assert.equal((await api.transfers()).transfers.length, 1);
    await assertReceived(s1, pair.receivedPath('v', 's1'));
    ledger.assertResumedExactly(t, afterRestart, restarted.wireOffset, wire);
    ledger.assertTotal(t, wire, 1);
  },
);

test(
  'a power cut that kept the index\'s last records but not the end of the spool: the push resumes from the last whole frame',
  rootOnly,
  async (t) => {
    const { children, pair, s1, wire, port, proxy, server, api } = await serverBehindLink(t, 'lost-spool-tail', 48);
    proxy.setRate({ upstream: 6_000_000 });
    const { pushing, report, before } = await pushPastFortyPercent(t, proxy.url, s1, api, wire);
    proxy.refuse(true);
    assert.equal((await server.kill9()).signal, 'SIGKILL');

    // Neither file is synced until a PATCH ends: a power cut may keep the index's last record and lose the last byte of
    // its frame in the spool (kill -9 loses nothing, so the test takes that byte).
    const layout = new ServerLayout(pair.root);
    const last = await readLastRecord(layout.frameIndexFile(before.id));
    assert.ok(last !== null && last.kind === 'data' && last.index >= 1, 'frames to lose');
    await fs.truncate(layout.spoolFile(before.id), last.wireEnd - 1);
    const whole = (await readRecord(layout.frameIndexFile(before.id), last.index - 1))!;
    // Down for longer than tus-js-client's own retries: the push's own loop resumes, from what GET /v1/transfers says.
    await sleep(LONGER_THAN_TUS_RETRIES_MS);
    await children.serve({ root: pair.root, port });
    proxy.refuse(false);
    t.diagnostic(`index at ${last.wireEnd} B (${last.index + 1} frames), spool cut to ${last.wireEnd - 1} B: ${whole.wireEnd} B whole`);

    // Before the fix the transfer said `last`, the HEAD `whole`, and the push stopped with "the server asked for
    // offset WHOLE, before LAST which it had already acknowledged".
    const result = await withTimeout('the push', pushing, 60_000);
    const done = result.sent[0]!.transfer;
    assert.equal(done.id, before.id, 'the same upload went on');
    assert.equal(done.state, 'received');
    assert.equal(done.wireOffset, wire);
    assert.ok(
      report.notes.some((n) => n.includes(`(frame ${whole.index + 1})`)),
      `the push resumed at the last whole frame (${whole.index + 1}):\n${report.notes.join('\n')}`,
    );
    await assertReceived(s1, pair.receivedPath('v', 's1'));
  },
);

/**
 * What the server told the push, as the push read it: the last Upload-Offset a PATCH was answered with, and the last
 * synced offset (ACK_SYNCED_OFFSET_HEADER).
 */
function answersSeen(t: TestContext, port: number): { acknowledged: number; synced: number | null } {
  const seen = { acknowledged: 0, synced: null as number | null };
  const onResponse = (message: unknown) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    if (request.method !== 'PATCH' || !String(request.getHeader('host')).endsWith(`:${port}`) || (response.statusCode ?? 0) >= 300) return;
    seen.acknowledged = Number(response.headers['upload-offset']);
    const synced = response.headers[ACK_SYNCED_OFFSET_HEADER];
    if (typeof synced === 'string') seen.synced = Number(synced);
  };
  dc.subscribe('http.client.response.finish', onResponse);
  t.after(() => void dc.unsubscribe('http.client.response.finish', onResponse));
  return seen;
}

test(
  'a power cut that took back what the server answered before syncing: the push resumes from the synced offset, whose bytes it kept',
  rootOnly,
  async (t) => {
    const { children, pair, s1, wire, port, proxy, server, api } = await serverBehindLink(t, 'lost-unsynced', 48);
    proxy.setRate({ upstream: 6_000_000 });
    const answers = answersSeen(t, proxy.port);
    const { pushing, before } = await pushPastFortyPercent(t, proxy.url, s1, api, wire);
    proxy.refuse(true);
    assert.equal((await server.kill9()).signal, 'SIGKILL');

    // The server answers a PATCH once its frames are written and syncs them while the next one comes: a power cut
    // then takes back everything after the synced offset it last gave, acknowledged or not (kill -9 loses nothing,
    // so the test takes it).
    const { acknowledged, synced } = answers;
    assert.ok(synced !== null && synced < acknowledged, `answered before synced: synced ${synced}, acknowledged ${acknowledged}`);
    await fs.truncate(new ServerLayout(pair.root).spoolFile(before.id), synced);
    // Back within tus-js-client's own retries: the same source goes on, and is asked for bytes it had acknowledged.
    await children.serve({ root: pair.root, port });
    proxy.refuse(false);
    t.diagnostic(`acknowledged ${acknowledged} B, synced ${synced} B: the spool was cut back ${acknowledged - synced} B`);

    const result = await withTimeout('the push', pushing, 60_000);
    const done = result.sent[0]!.transfer;
    assert.equal(done.id, before.id, 'the same upload went on');
    assert.equal(done.state, 'received');
    assert.equal(done.wireOffset, wire);
    await assertReceived(s1, pair.receivedPath('v', 's1'));
  },
);

test('the server killed with kill -9 mid-receive: the restart drops the partial and receives again from the spool', rootOnly, async (t) => {
  const { children, pair, s1, port, proxy, ledger, server: first, api } = await serverBehindLink(t, 'kill-server-receive', 80);
  let server = first;
  const volumeDir = path.join(pair.root, 'volumes', 'default', 'v');

  const pushing = push(pushOptions(t, proxy.url, s1), recordingReporter());
  pushing.catch(() => undefined);

  // `btrfs receive` writes into .incoming-ID while it runs; kill the server the moment that appears.
  let staged: string | null = null;
  const end = Date.now() + 60_000;
  while (staged === null) {
    const names = await fs.readdir(volumeDir).catch(() => [] as string[]);
    const incoming = names.find((n) => n.startsWith('.incoming-'));
    if (incoming) {
      process.kill(server.pid, 'SIGKILL');
      staged = path.join(volumeDir, incoming);
      break;
    }
    if (names.includes('s1')) assert.fail('the receive finished before the test could kill the server: use a bigger stream');
    if (!server.running) assert.fail(`the server exited by itself:\n${server.stderr}`);
    if (Date.now() > end) assert.fail('no receive started within 60 s');
    await sleep(2);
  }
  const exit = await server.kill9();
  assert.equal(exit.signal, 'SIGKILL');
  // The crash is over once the `btrfs receive` it started has seen its input end, too.
  assert.ok(await server.groupGone(10_000), 'btrfs receive still runs 10 s after the server died');
  assert.ok(await btrfs.isSubvolume(staged), `the kill left the partial subvolume ${staged}: it came mid-receive`);
  const id = path.basename(staged).slice('.incoming-'.length);
  t.diagnostic(`server killed mid-receive of transfer ${id}`);

  server = await children.serve({ root: pair.root, port });
  const result = await withTimeout('the push', pushing, 60_000);
  const done = result.sent[0]!.transfer;
  assert.equal(done.id, id);
  assert.equal(done.state, 'received');
  assert.match(server.stderr, /removed a partial receive left by a crash/);
  assert.deepEqual(await fs.readdir(volumeDir), ['s1'], 'the partial is gone; only the checked snapshot is left');
  assert.equal((await api.transfer(id)).state, 'received');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  ledger.assertTotal(t, done.wireOffset, 1);
});

test(
  'the server down twice for longer than the upload library retries: the push resumes after each outage by itself',
  { ...rootOnly, timeout: 240_000 },
  async (t) => {
    const { children, pair, s1, wire, port, proxy, ledger, server: first, api } = await serverBehindLink(t, 'kill-server-twice', 48);
    let server = first;
    proxy.setRate({ upstream: 6_000_000 });

    const report = recordingReporter();
    // PATCHes of 1 MiB, as any stream more than the default 64 MiB from its end has: an attempt that fails has not
    // read its framed stream to the end.
    const pushing = push({ ...pushOptions(t, proxy.url, s1), patchBytes: 1024 * 1024 }, report);
    pushing.catch(() => undefined);
    // The second outage comes while the push uploads from the point it resumed at after the first.
    for (const share of [0.3, 0.65]) {
      const before = await until(`the upload to pass ${share * 100}%`, async () => {
        const x = await onlyTransfer(api);
        return x?.state === 'uploading' && x.wireOffset >= wire * share ? x : undefined;
      }, 30_000, 25);
      assert.equal((await server.kill9()).signal, 'SIGKILL');
      await sleep(LONGER_THAN_TUS_RETRIES_MS);
      server = await children.serve({ root: pair.root, port });
      const restarted = await api.transfer(before.id);
      assert.ok(restarted.framesVerified >= before.framesVerified, `${restarted.framesVerified} frames after the restart, ${before.framesVerified} before`);
      t.diagnostic(`server down ${LONGER_THAN_TUS_RETRIES_MS} ms at ${before.wireOffset} of ${wire} B; it holds ${restarted.wireOffset} B after the restart`);
    }

    const result = await withTimeout('the push', pushing, 30_000);
    const done = result.sent[0]!.transfer;
    assert.equal(done.state, 'received');
    assert.equal(done.wireOffset, wire);
    assert.equal((await api.transfers()).transfers.length, 1);
    assert.ok(report.notes.filter((n) => /resuming at/.test(n)).length >= 2, report.notes.join('\n'));
    await assertReceived(s1, pair.receivedPath('v', 's1'));
    ledger.assertTotal(t, wire, 2);
  },
);
