/**
 * `btrfs send --proto 2 --compressed-data` end to end, from a client filesystem mounted compress=zstd to a real
 * server on real btrfs: full and incremental pushes whose trees arrive equal, smaller raw streams than version 1,
 * and a resumed upload that regenerates the version 2 stream it began with, whatever the resuming push would choose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { push, type PushOptions } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { startServer } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import { beforeTakeDown, createBtrfs, fillVaried, mutate, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { assertReceived, recordingReporter, until } from './harness.ts';

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
  diagnostic(message: string): void;
}

const CHUNK = 256 * 1024;
/** HTTP requests cost a few hundred bytes each; a resumed push makes a few dozen. */
const OVERHEAD = 64 * 1024;
const slow = { ...rootOnly, timeout: 180_000 };

/** Log lines: compressible as real text is, not one repeated line. */
async function writeLog(file: string, bytes: number): Promise<void> {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `2026-11-25T01:${String(i % 60).padStart(2, '0')}:00Z GET /api/item/${(i * 7919) % 10007} 200 ${(i * 31) % 997}ms\n`;
    lines.push(line);
    size += line.length;
  }
  await fs.writeFile(file, lines.join(''));
}

/** A client filesystem mounted compress=zstd and a server on plain btrfs, as the two ends usually are. */
async function compressedPair(t: AfterHook, fillMB: number) {
  const closeFirst = beforeTakeDown(t);
  const client = await createBtrfs(t, { sizeMiB: 512, mountOptions: ['compress=zstd'] });
  const serverFs = await createBtrfs(t, { sizeMiB: 512 });
  const source = path.join(client.mountPoint, 'data');
  const snaps = path.join(client.mountPoint, 'snaps');
  await btrfs.createSubvolume(source);
  await fs.mkdir(snaps);
  await fillVaried(source, { seed: 'send-compressed', sizeMB: fillMB });
  await writeLog(path.join(source, 'access.log'), 6 * 1024 * 1024);
  const root = path.join(serverFs.mountPoint, 'root');
  const server = await startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 1000 });
  closeFirst(() => server.close());
  return {
    source, server,
    async snapshot(name: string): Promise<string> {
      await snapshotReadonly(source, path.join(snaps, name));
      return path.join(snaps, name);
    },
    received: (volume: string, name: string) => path.join(root, 'volumes', 'default', volume, name),
  };
}

/** Bytes of a raw send stream. */
async function rawLength(handle: btrfs.SendHandle): Promise<number> {
  let bytes = 0;
  await pipeline(handle.stream, new Writable({ write: (chunk: Buffer, _e, cb) => ((bytes += chunk.length), cb()) }));
  await handle.done;
  return bytes;
}

function pushTo(server: string, snapshot: string, extra: Partial<PushOptions> = {}) {
  const report = recordingReporter();
  const options: PushOptions = { server, volume: 'v', snapshots: [snapshot], chunkSize: CHUNK, pollMs: 100, backoff: { baseMs: 100, maxMs: 1000 }, ...extra };
  return { result: push(options, report), report };
}

test('auto on a compress=zstd filesystem: full and incremental go as version 2, smaller than version 1, received equal', slow, async (t) => {
  const p = await compressedPair(t, 8);
  const s1 = await p.snapshot('s1');
  const full = pushTo(p.server.url, s1);
  const t1 = (await full.result).sent[0]!.transfer;
  assert.equal(t1.sendStream, 'v2-compressed');
  assert.match(full.report.notes.join('\n'), /--proto 2 --compressed-data\): the snapshots' filesystem is mounted compress=zstd/);
  await assertReceived(s1, p.received('v', 's1'));
  const v1Full = await rawLength(btrfs.send(s1, { proto: 1 }));
  t.diagnostic(`full: v2 ${t1.rawBytes} raw bytes (${t1.wireOffset} on the wire), v1 ${v1Full}: ${(t1.rawBytes / v1Full).toFixed(2)}x`);
  assert.ok(t1.rawBytes < v1Full * 0.8, `v2 ${t1.rawBytes} against v1 ${v1Full}`);
  assert.equal((await new ServerApi({ server: p.server.url }).transfer(t1.id)).sendStream, 'v2-compressed', 'the server shows it');

  await mutate(p.source, 'compressed-inc');
  await writeLog(path.join(p.source, 'access.log.1'), 3 * 1024 * 1024);
  const s2 = await p.snapshot('s2');
  const inc = (await pushTo(p.server.url, s2).result).sent[0]!;
  assert.deepEqual([inc.parent, inc.transfer.sendStream], ['s1', 'v2-compressed']);
  await assertReceived(s2, p.received('v', 's2'));
  const v1Inc = await rawLength(btrfs.send(s2, { parent: s1, proto: 1 }));
  t.diagnostic(`incremental: v2 ${inc.transfer.rawBytes} raw bytes, v1 ${v1Inc}`);
  assert.ok(inc.transfer.rawBytes < v1Inc, `v2 ${inc.transfer.rawBytes} against v1 ${v1Inc}`);

  // off: the same filesystem sends version 1, byte for byte what btrfs send makes by default, but for the name its
  // first command gives the subvolume: the snapshot's UUID (36 characters) in place of `t3` (core/wire/stream-naming.ts).
  const t3 = await p.snapshot('t3');
  const off = (await pushTo(p.server.url, t3, { volume: 'w', sendCompressed: 'off' }).result).sent[0]!.transfer;
  assert.equal(off.sendStream, 'v1');
  assert.equal(off.rawBytes, (await rawLength(btrfs.send(t3))) - 't3'.length + off.uuid.length);
  await assertReceived(t3, p.received('w', 't3'));
});

test('a version 2 upload cut once resumes as version 2, even when the resuming push says off, and sends nothing twice', slow, async (t) => {
  const p = await compressedPair(t, 16);
  const s1 = await p.snapshot('s1');
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(p.server.url).port) } });
  t.after(() => proxy.close());
  proxy.setRate(2 * 1024 * 1024);
  const api = new ServerApi({ server: p.server.url });

  const controller = new AbortController();
  const first = pushTo(proxy.url, s1, { sendCompressed: 'on', signal: controller.signal });
  first.result.catch(() => undefined);
  const partial = await until('8 verified frames', async () => (await api.transfers()).transfers.find((x) => x.framesVerified >= 8), 60_000, 50);
  // The link goes down, and the client with it (killed, or its machine slept): nothing is left but the server's state.
  proxy.refuse(true);
  await proxy.cutNow();
  controller.abort();
  await assert.rejects(first.result);
  const held = await quiet(api, partial.id);
  assert.equal(held.sendStream, 'v2-compressed');
  await new Promise((r) => setTimeout(r, 1100)); // the first push's lease runs out

  proxy.refuse(false);
  proxy.setRate(24 * 1024 * 1024);
  proxy.resetStats();
  const again = pushTo(proxy.url, s1, { sendCompressed: 'off' });
  const done = (await again.result).sent[0]!.transfer;
  const notes = again.report.notes.join('\n');
  assert.equal(done.id, partial.id, 'the same upload');
  assert.equal(done.sendStream, 'v2-compressed');
  assert.match(notes, /resuming its v2-compressed stream as it began \(new transfers of this push go v1\)/);
  assert.match(notes, /resuming at .* \(frame \d+\)/);
  assert.doesNotMatch(notes, /different stream|rewound/);
  const crossed = proxy.stats().upstreamBytes;
  t.diagnostic(`the server held ${held.wireOffset} of ${done.wireOffset} bytes; ${crossed} crossed after the cut`);
  assert.ok(crossed <= done.wireOffset - held.wireOffset + OVERHEAD, `${crossed} bytes crossed for ${done.wireOffset - held.wireOffset} missing`);
  await assertReceived(s1, p.received('v', 's1'));
});

/** The transfer once the server has stopped appending frames (bytes on their way still land after a cut). */
async function quiet(api: ServerApi, id: string) {
  let seen = -1;
  for (;;) {
    const now = await api.transfer(id);
    if (now.framesVerified === seen) return now;
    seen = now.framesVerified;
    await new Promise((r) => setTimeout(r, 500));
  }
}

