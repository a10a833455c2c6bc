/**
 * Resume through a link that breaks (the chaos proxy between client and server), on real btrfs. Every test ends with
 * the received tree equal to the source and checks the bytes that crossed: the framed stream, plus at most one frame
 * per interruption, plus HTTP overhead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeTakeDown, mutate, rootOnly } from '../fixtures/btrfs.ts';
import { push, type PushOptions } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { startChaosProxy, type ChaosProxy } from '../chaos/chaos-proxy.ts';
import { startFaultHttpProxy } from '../chaos/fault-http-proxy.ts';
import { assertReceived, createPair, disagreeFrom, framedLength, pushPart, recordingReporter, until, type Pair } from './harness.ts';
import type { RunningServer } from '../../server/serve.ts';
import type { SnapferryError } from '../../core/errors.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
  diagnostic(message: string): void;
}

/** HTTP requests cost a few hundred bytes each; a push makes dozens (creation, PATCHes, HEADs, polls). */
const OVERHEAD = 64 * 1024;
/**
 * Besides the frame in flight, a cut loses what had crossed the proxy but still sat in the server's socket buffer
 * (the kernel drops it on RST). On a real slow link that is little; on loopback it can be more, so allow some.
 */
const BUFFERED_PER_CUT = 512 * 1024;
/** A hang fails the test instead of blocking the run. */
const cutTest = { ...rootOnly, timeout: 150_000 };

async function linkedPair(t: AfterHook, fillMB: number, opts: { holdReceives?: boolean } = {}) {
  const pair = await createPair(t, { fillMB, clientMiB: fillMB > 100 ? 1536 : 512, serverMiB: fillMB > 100 ? 1536 : 512 });
  const server = await pair.startServer({ leaseMs: 1000, ...opts });
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
  t.after(() => proxy.close());
  // A link, not loopback: slower than the server verifies, so bytes do not pile up in socket buffers, where a cut
  // would lose them after they "crossed" (on loopback the buffers hold megabytes).
  proxy.setRate(8 * 1024 * 1024);
  return { pair, server, proxy };
}

function pushVia(proxy: Pick<ChaosProxy, 'url'>, snapshots: string[], extra: Partial<PushOptions> = {}) {
  const report = recordingReporter();
  const result = push(
    { server: proxy.url, volume: 'v', snapshots, backoff: { baseMs: 100, maxMs: 1000 }, pollMs: 100, stallMs: 5000, ...extra },
    report,
  );
  return { result, report };
}

/**
 * The stall timeout of a push whose request a test holds at the proxy on purpose, until another push has done
 * something: pushVia's 5 s let the held request count as a silent line on a loaded machine (the other push took
 * longer to send its stream), and the push dropped it and started again from what it read then.
 */
const HELD_REQUEST_STALL_MS = 60_000;

/** Asserts the bytes that crossed the proxy, and prints them. */
function assertWireBudget(t: AfterHook, proxy: ChaosProxy, wire: number, interruptions: number, frameBytes: number) {
  const crossed = proxy.stats().upstreamBytes;
  const budget = wire + interruptions * (frameBytes + BUFFERED_PER_CUT) + OVERHEAD;
  t.diagnostic(
    `crossed ${crossed} bytes for a ${wire}-byte framed stream with ${interruptions} interruption(s): ` +
      `${(((crossed - wire) / wire) * 100).toFixed(2)}% extra, budget ${budget}`,
  );
  assert.ok(crossed >= wire, 'at least the whole stream crossed');
  assert.ok(crossed <= budget, `crossed ${crossed} > budget ${budget}`);
}

test('a 200 MB full send cut every 8 MB arrives whole, re-sending at most a frame per cut', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 220);
  const s1 = await pair.snapshot('s1');
  proxy.cutEvery(8 * 1024 * 1024);
  const chunk = 1024 * 1024;
  const { result, report } = pushVia(proxy, [s1], { chunkSize: chunk });
  const { sent } = await result;
  const transfer = sent[0]!.transfer;
  const cuts = proxy.stats().cuts;
  t.diagnostic(`${cuts} cuts, ${report.notes.length} notes`);
  assert.ok(cuts >= 15, `the link was cut ${cuts} times`);
  assert.ok(transfer.rawBytes >= 200 * 1000 * 1000, `a ${transfer.rawBytes}-byte stream`);
  assert.ok(transfer.interruptions >= 1, 'the server noticed the cuts');
  assertWireBudget(t, proxy, transfer.wireOffset, cuts, chunk + 72);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('an incremental cut midway resumes from the server offset', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 24);
  const s1 = await pair.snapshot('s1');
  await (pushVia(proxy, [s1]).result);
  await mutate(pair.source, 'inc');
  await fs.writeFile(path.join(pair.source, 'big-new-file'), crypto.randomBytes(12 * 1024 * 1024));
  const s2 = await pair.snapshot('s2');
  proxy.resetStats();
  proxy.cutAfter(4 * 1024 * 1024);
  const chunk = 256 * 1024;
  const { sent } = await pushVia(proxy, [s2], { chunkSize: chunk }).result;
  assert.equal(sent[0]!.parent, 's1');
  assert.equal(proxy.stats().cuts, 1);
  assert.ok(sent[0]!.transfer.wireOffset > 4 * 1024 * 1024, 'the cut fell inside the upload');
  // What status shows: a cut of the line, not a refusal by the server.
  assert.match(sent[0]!.transfer.lastInterruption ?? '', /: cut at byte \d+/);
  assertWireBudget(t, proxy, sent[0]!.transfer.wireOffset, 1, chunk + 72);
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});

/**
 * Upstream bytes of a whole upload (creation to the last PATCH), measured on a push of a twin: another snapshot of
 * the same data with a name of the same length, to another volume (one snapshot may live in one volume only).
 */
async function calibrate(proxy: ChaosProxy, snapshot: string, chunkSize: number): Promise<number> {
  proxy.resetStats();
  let uploaded = -1;
  const report = recordingReporter();
  report.waiting = () => {
    uploaded = proxy.stats().upstreamBytes;
  };
  // A fixed level: --compress auto frames by the line's rate, and the pushes measured against this one run at another.
  await push({ server: proxy.url, volume: 'w', snapshots: [snapshot], chunkSize, compress: 3 }, report);
  assert.ok(uploaded > 0);
  return uploaded;
}

test('a cut during the end frame, and a cut before the first frame, both resume', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 6);
  const s1 = await pair.snapshot('s1');
  const chunk = 128 * 1024;
  const whole = await calibrate(proxy, await pair.snapshot('t1'), chunk);
  // Slower than a loaded machine's server verifies, so no frame waits in its socket buffer when the cut comes (one
  // run of the whole suite lost half the stream there at 8 MB/s, with two test files running beside it).
  proxy.setRate(2 * 1024 * 1024);

  // Same sizes of request (volume names of one length, same snapshot): the last 40 bytes are inside the end frame.
  proxy.resetStats();
  proxy.cutAfter(whole - 40);
  const end = await pushVia(proxy, [s1], { chunkSize: chunk, compress: 3 }).result;
  assert.equal(proxy.stats().cuts, 1, 'the cut happened');
  assertWireBudget(t, proxy, end.sent[0]!.transfer.wireOffset, 1, chunk + 72);
  await assertReceived(s1, pair.receivedPath('v', 's1'));

  await mutate(pair.source, 'first');
  const s2 = await pair.snapshot('s2');
  proxy.resetStats();
  proxy.cutAfter(1500); // the listing and the creation take ~1 KB: this cuts the first PATCH inside frame 0
  const first = await pushVia(proxy, [s2], { chunkSize: chunk }).result;
  assert.equal(proxy.stats().cuts, 1);
  assertWireBudget(t, proxy, first.sent[0]!.transfer.wireOffset, 1, chunk + 72);
  await assertReceived(s2, pair.receivedPath('v', 's2'));
});

test('a link down for longer than tus-js-client would retry: the push waits it out', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 8);
  const s1 = await pair.snapshot('s1');
  proxy.setRate(1024 * 1024);
  const { result, report } = pushVia(proxy, [s1], { chunkSize: 128 * 1024 });
  const api = new ServerApi({ server: proxy.url });
  await until('1 MiB uploaded', async () => ((await api.transfers()).transfers[0]?.wireOffset ?? 0) > 1024 * 1024, 60_000, 50);
  proxy.refuse(true);
  await proxy.cutNow();
  await new Promise((r) => setTimeout(r, 8000));
  proxy.refuse(false);
  proxy.setRate(24 * 1024 * 1024);
  const { sent } = await result;
  assert.ok(report.notes.some((n) => /trying again/.test(n)), 'the push said it was retrying');
  assert.ok(proxy.stats().refused >= 4, `more connection attempts (${proxy.stats().refused}) than tus-js-client's four`);
  await assertReceived(s1, pair.receivedPath('v', sent[0]!.snapshot));
});

test('two pushes of the same snapshot at once: one uploads, the other waits, nothing is mixed; a handover costs at most the refused PATCH', cutTest, async (t) => {
  const pair = await createPair(t, { fillMB: 16 });
  const server = await pair.startServer({ leaseMs: 1000 });
  const faults = await startFaultHttpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
  t.after(() => faults.close());
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: faults.port } });
  t.after(() => proxy.close());
  proxy.setRate(8 * 1024 * 1024);
  const s1 = await pair.snapshot('s1');
  const patchBytes = 512 * 1024;
  // The lease (1 s here) passes to the other push whenever the holder stops that long between requests, as a loaded
  // machine makes it (seen: 15.7 MB crossed for a 10.6 MB stream). Made certain here: a PATCH of the holder is held
  // at the proxy until the other push has taken the upload and sent frames of its own.
  let armed = false;
  const held = faults.hold((req) => armed && req.method === 'PATCH');
  const a = pushVia(proxy, [s1], { chunkSize: 256 * 1024, patchBytes, stallMs: HELD_REQUEST_STALL_MS });
  const b = pushVia(proxy, [s1], { chunkSize: 256 * 1024, patchBytes, stallMs: HELD_REQUEST_STALL_MS });
  const api = new ServerApi({ server: server.url });
  const atHold = await until('10 verified frames', async () => (await api.transfers()).transfers.find((x) => x.framesVerified >= 10), 60_000, 50);
  armed = true;
  await held.arrived;
  const frames = (await api.transfer(atHold.id)).framesVerified;
  await until('the other push to send frames', async () => (await api.transfer(atHold.id)).framesVerified > frames, 60_000, 50);
  held.release();
  const [ra, rb] = await Promise.all([a.result, b.result]);
  const { transfers } = await api.transfers();
  assert.equal(transfers.length, 1, 'one transfer: the second push joined or waited, it did not start another');
  assert.equal(transfers[0]!.state, 'received');
  assert.equal(ra.sent[0]!.transfer.id, rb.sent[0]!.transfer.id);
  const waited = [...a.report.notes, ...b.report.notes].join('\n');
  assert.match(waited, /another push|in progress|already/);
  // The push that lost the upload has its PATCH refused (409 transfer_locked, or the offset it no longer holds). Its
  // body went out ahead of the answer: up to the whole PATCH, as here where the proxy held it, or where a loaded
  // client reads the answer late. That, and the socket buffers, per refused PATCH is the scenario's cost; a push
  // that sent again what the server had goes over.
  const refused = Object.entries(faults.counts()).filter(([k]) => /^PATCH 4\d\d/.test(k)).reduce((n, [, v]) => n + v, 0);
  t.diagnostic(`answers: ${JSON.stringify(faults.counts())}`);
  assert.ok(refused >= 1, 'the held PATCH was refused: the other push had the upload');
  assertWireBudget(t, proxy, transfers[0]!.wireOffset, refused, patchBytes);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

// What the case above met now and then under load: the waiting push read the upload's offset, hashed its way to it,
// and by the time its HEAD came the other push had sent the end. Here the HEAD is held at a proxy until that happened.
test('a resume whose HEAD finds the upload whole (the rest sent by another push meanwhile) ends, without waiting for its own btrfs send', cutTest, async (t) => {
  const pair = await createPair(t, { fillMB: 8 });
  const server = await pair.startServer({ holdReceives: true });
  const s1 = await pair.snapshot('s1');
  const partial = await pushPart(server, s1, 2);
  const faults = await startFaultHttpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
  t.after(() => faults.close());
  const held = faults.hold((req) => req.method === 'HEAD');
  const stop = new AbortController();
  const late = pushVia({ url: faults.url }, [s1], { signal: stop.signal, retries: 4, stallMs: HELD_REQUEST_STALL_MS });
  late.result.catch(() => undefined);
  try {
    await held.arrived;
    const other = push({ server: server.url, volume: 'v', snapshots: [s1], pollMs: 100, signal: stop.signal }, recordingReporter());
    other.catch(() => undefined);
    const api = new ServerApi({ server: server.url });
    const whole = await until('the other push to send the end', async () => {
      const x = await api.transfer(partial.id);
      return x.state !== 'uploading' ? x : undefined;
    });
    held.release();
    server.service.resumeReceives();
    const ended = await within(30_000, late.result);
    // When it fails, what the server said when the end had come, and what it says now.
    const said = `${late.report.notes.join('\n')}\nthe server, once the other push had sent the end: ${JSON.stringify(whole)}\nnow: ${JSON.stringify(await api.transfer(partial.id))}`;
    assert.ok(ended !== null, `the late push did not end within 30 s of the upload's end:\n${said}`);
    assert.equal(ended.sent[0]!.transfer.id, partial.id, said);
    assert.match(said, /s1: the server has the whole upload already/);
    await other;
  } finally {
    // Stopped, the hung push still waited for its send (a stop kills btrfs send, but nothing ended the pipeline). The
    // other push too: after a failure here it waited for a receive nobody would finish, and the file ran into its
    // timeout (12 minutes) instead of ending with the failure.
    stop.abort();
    await within(10_000, late.result.catch(() => undefined));
  }
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

// The same race, with the other push stopping midway: its frames, at its own compression level, lie past where the
// late push hashed to, and the late push's frames there are cut elsewhere. It sliced its own stream at the server's
// offset and sent from inside a frame: refused as a frame with a bad header (frame_corrupt), the push failed.
test('a resume whose HEAD finds frames another push sent at another compression level resumes from them, sending nothing misaligned', cutTest, async (t) => {
  const pair = await createPair(t, { fillMB: 16 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const partial = await pushPart(server, s1, 2);
  const faults = await startFaultHttpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
  t.after(() => faults.close());
  const line = await startChaosProxy({ target: { host: '127.0.0.1', port: faults.port } });
  t.after(() => line.close());
  const held = faults.hold((req) => req.method === 'HEAD');
  const late = pushVia(line, [s1], { chunkSize: 64 * 1024, compress: 1, stallMs: HELD_REQUEST_STALL_MS });
  late.result.catch(() => undefined);
  await held.arrived;
  const stop = new AbortController();
  const other = push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 64 * 1024, compress: 19, limitRate: 2 * 1024 * 1024, signal: stop.signal }, recordingReporter());
  other.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  await until('the other push to send 20 frames more', async () => (await api.transfer(partial.id)).framesVerified >= partial.framesVerified + 20);
  stop.abort();
  await other.catch(() => undefined);
  const stoppedAt = (await api.transfer(partial.id)).wireOffset;
  const before = line.stats().upstreamBytes;
  held.release();
  const { sent } = await late.result;
  const said = late.report.notes.join('\n');
  assert.equal(sent[0]!.transfer.id, partial.id, said);
  assert.match(said, /s1: another push sent part of this upload meanwhile/);
  // The rest of the stream from where the other push stopped, and requests: no PATCH sent from inside a frame.
  const rest = sent[0]!.transfer.wireOffset - stoppedAt;
  const crossed = line.stats().upstreamBytes - before;
  t.diagnostic(`${crossed} bytes crossed for the ${rest} left after the other push`);
  assert.ok(crossed <= rest + OVERHEAD, `${crossed} bytes crossed for the ${rest} left`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

/** `promise`'s value, or null when it takes longer than `ms`. */
function within<T>(ms: number, promise: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(resolve, ms, null)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

test('a PATCH exactly as long as the stream (tus-js-client issue 779) completes', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 4);
  const s1 = await pair.snapshot('s1');
  const length = await framedLength(s1, 64 * 1024);
  const { sent } = await pushVia(proxy, [s1], { chunkSize: 64 * 1024, patchBytes: length, compress: 3 }).result;
  assert.equal(sent[0]!.transfer.wireOffset, length);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('an upload someone aborted on the server (404 on resume) stops the push: never begun again from zero, no byte sent twice', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 8);
  const s1 = await pair.snapshot('s1');
  proxy.setRate(2 * 1024 * 1024);
  const { result, report } = pushVia(proxy, [s1], { chunkSize: 128 * 1024, patchBytes: 512 * 1024 });
  // Handled from the start: the push may learn of the abort before the abort's own answer comes back, and a rejection
  // with no handler yet fails the test as unhandled (it did in CI).
  result.catch(() => undefined);
  const api = new ServerApi({ server: proxy.url });
  const first = await until('1 MiB uploaded', async () => (await api.transfers()).transfers.find((x) => x.wireOffset > 1024 * 1024), 60_000, 50);
  const crossedAtAbort = proxy.stats().upstreamBytes;
  await api.abort(first.id);
  await assert.rejects(result, (err: SnapferryError) => {
    assert.equal(err.code, 'transfer_aborted');
    assert.equal(err.retryable, false);
    assert.match(err.message, new RegExp(`^transfer ${first.id} of s1 was aborted on the server \\(snapferry abort\\); not sent again: push it again to start over$`));
    return true;
  });
  assert.doesNotMatch(report.notes.join('\n'), /starting over/);
  const { transfers } = await api.transfers();
  assert.deepEqual(transfers.map((x) => [x.id, x.state]), [[first.id, 'aborted']], 'no new upload');
  // After the abort only what was in flight crossed (the PATCH the server cut, HEADs, the transfer's state): less than
  // a PATCH and the socket buffers, never the stream again.
  const after = proxy.stats().upstreamBytes - crossedAtAbort;
  t.diagnostic(`${after} bytes crossed after the abort`);
  assert.ok(after < 512 * 1024 + BUFFERED_PER_CUT + OVERHEAD, `${after} bytes crossed after the abort`);
});

test('an abort ends the PATCH in flight at once: on a slow line the push stops with transfer_aborted in seconds, and the server writes nothing more of it', cutTest, async (t) => {
  // The spool held open below is closed before the server's filesystem comes down.
  const closeFirst = beforeTakeDown(t);
  const { pair, proxy } = await linkedPair(t, 10);
  const s1 = await pair.snapshot('s1');
  // PATCHes double from one frame up to 4 MiB (client/upload/source.ts); the 4 MiB one begins at about 4 MiB.
  const patchBytes = 4 * 1024 * 1024;
  proxy.setRate(1024 * 1024);
  const { result, report } = pushVia(proxy, [s1], { chunkSize: 128 * 1024, patchBytes, compress: 0, stallMs: 60_000 });
  // Handled from the start: the push may learn of the abort before the abort's own answer comes back.
  result.catch(() => undefined);
  const api = new ServerApi({ server: proxy.url });
  const held = (x: { wireOffset: number; wireHeld?: number | undefined }) => x.wireHeld ?? x.wireOffset;
  const first = await until('4.5 MiB uploaded', async () => (await api.transfers()).transfers.find((x) => held(x) > 4.5 * 1024 * 1024), 60_000, 50);
  // Then 2 Mbit/s up: the rest of that PATCH takes over ten seconds.
  const rate = 256 * 1024;
  proxy.setRate({ upstream: rate, downstream: null });
  await new Promise((r) => setTimeout(r, 500));
  // The spool as the PATCH writes it: held open here, it can still be looked at once the abort deleted it.
  const spool = await fs.open(path.join(pair.root, 'spool', first.id), 'r');
  closeFirst(() => spool.close());
  await api.abort(first.id);
  const aborted = Date.now();
  const atAbort = (await spool.stat()).size;
  await assert.rejects(result, (err: SnapferryError) => err.code === 'transfer_aborted');
  const took = Date.now() - aborted;
  const rest = (2 * patchBytes - atAbort) / rate;
  t.diagnostic(`the push stopped ${took} ms after the abort, at ${atAbort} bytes; the rest of its PATCH would have taken ${rest.toFixed(1)} s; notes: ${report.notes.join(' | ')}`);
  assert.ok(rest > 8, `the abort came ${rest.toFixed(1)} s before the PATCH's end: too late to tell`);
  assert.ok(took < 3000, `the push stopped ${took} ms after the abort`);
  // Time for a PATCH still read to write another frame (128 KiB at this rate: half a second).
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await spool.stat()).size, atAbort, 'nothing written to the spool after the abort');
});

test('bytes damaged in the spool never reach btrfs receive: the upload is rewound and resent', cutTest, async (t) => {
  const { pair, server, proxy } = await linkedPair(t, 6, { holdReceives: true });
  const s1 = await pair.snapshot('s1');
  const chunk = 128 * 1024;
  const { result, report } = pushVia(proxy, [s1], { chunkSize: chunk });
  const api = new ServerApi({ server: proxy.url });
  const done = await until('the upload to complete', async () => (await api.transfers()).transfers.find((x) => x.state === 'receiving'), 60_000, 50);
  const spool = path.join(pair.root, 'spool', done.id);
  const handle = await fs.open(spool, 'r+');
  const at = Math.floor(done.wireOffset / 2);
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, at);
  byte[0] = byte[0]! ^ 0x40;
  await handle.write(byte, 0, 1, at);
  await handle.close();
  server.service.resumeReceives();
  const { sent } = await result;
  const transfer = sent[0]!.transfer;
  assert.equal(transfer.id, done.id, 'the same upload, rewound and completed');
  assert.match(transfer.lastInterruption ?? '', /damaged at frame/);
  assert.ok(report.notes.some((n) => /needs part of s1 again/.test(n)), report.notes.join('\n'));
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('a regenerated stream that differs from what the server holds: rewound to the last matching frame', cutTest, async (t) => {
  const { pair, server, proxy } = await linkedPair(t, 6);
  const s1 = await pair.snapshot('s1');
  const chunk = 128 * 1024;
  proxy.setRate(2 * 1024 * 1024);
  const controller = new AbortController();
  const firstRun = pushVia(proxy, [s1], { chunkSize: chunk, signal: controller.signal });
  firstRun.result.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  const partial = await until('12 verified frames', async () => (await api.transfers()).transfers.find((x) => x.framesVerified >= 12), 60_000, 50);
  controller.abort();
  await firstRun.result.catch(() => undefined);
  // As a changed kernel would: the server's chain disagrees with what btrfs send produces from frame 5 on.
  await disagreeFrom(pair, server, partial.id, 5, 1000);

  proxy.setRate(24 * 1024 * 1024);
  const { result, report } = pushVia(proxy, [s1], { chunkSize: chunk });
  const { sent } = await result;
  assert.match(report.notes.join('\n'), /different stream.*\n?.*rewound the upload from frame \d+ to 5/s);
  assert.equal(sent[0]!.transfer.id, partial.id);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('the last response lost: the next run asks the server, sends nothing again, and succeeds', cutTest, async (t) => {
  const { pair, server, proxy } = await linkedPair(t, 6, { holdReceives: true });
  const s1 = await pair.snapshot('s1');
  const controller = new AbortController();
  const run1 = pushVia(proxy, [s1], { signal: controller.signal });
  run1.result.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  await until('the upload to complete', async () => (await api.transfers()).transfers.find((x) => x.state === 'receiving'), 60_000, 50);
  controller.abort(); // the client never hears that its upload completed
  await run1.result.catch(() => undefined);
  server.service.resumeReceives();
  await server.service.idle();

  proxy.resetStats();
  const { sent, present } = await pushVia(proxy, [s1]).result;
  assert.deepEqual([sent.length, present], [0, ['s1']]);
  assert.ok(proxy.stats().upstreamBytes < 4096, `only questions crossed: ${proxy.stats().upstreamBytes} bytes`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

export type { Pair, RunningServer };

test('a link cut every 1 MB gets 4 MiB frames of random data through: each cut keeps what arrived of the frame in flight', cutTest, async (t) => {
  const { pair, proxy } = await linkedPair(t, 1);
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(12 * 1024 * 1024));
  const s1 = await pair.snapshot('s1');
  proxy.cutEvery(1024 * 1024);
  const chunk = 4 * 1024 * 1024;
  // Before the server kept the part of a frame a cut left, this push sat at byte 0 for ever: no 4 MiB frame ever
  // arrived whole between two cuts.
  const { result } = pushVia(proxy, [s1], { chunkSize: chunk, compress: 0 });
  const { sent } = await result;
  const transfer = sent[0]!.transfer;
  const cuts = proxy.stats().cuts;
  assert.ok(cuts >= 10, `the link was cut ${cuts} times`);
  // At most one frame per interruption sent twice; in fact only what sat in socket buffers at each cut.
  assertWireBudget(t, proxy, transfer.wireOffset, cuts, chunk + 72);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
