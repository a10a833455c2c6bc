/**
 * core/btrfs/features.ts: what this machine's btrfs-progs and kernel can send and receive, the send options of each
 * way of sending, the mount's compression, and the choice --send-compressed makes from those facts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import crypto from 'node:crypto';
import { execa } from 'execa';
import * as btrfs from '../../core/btrfs/index.ts';
import {
  SEND_STREAM_VERSION_FILE,
  SendCompressedUnsupported,
  btrfsFeatures,
  canSend,
  chooseSendStream,
  featuresFrom,
  mountCompression,
  parseProgsVersion,
  sendOptionsFor,
  type BtrfsFeatures,
  type SendStreamFacts,
} from '../../core/btrfs/features.ts';
import { createBtrfs, fillVaried, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';

test('btrfs --version is read as major.minor, whatever follows it', () => {
  assert.deepEqual(parseProgsVersion('btrfs-progs v6.2\n'), { major: 6, minor: 2, text: 'v6.2' });
  assert.deepEqual(parseProgsVersion('btrfs-progs v6.10.1\n-EXPERIMENTAL -INJECT -STATIC +LZO +ZSTD\n'), { major: 6, minor: 10, text: 'v6.10.1' });
  assert.equal(parseProgsVersion('btrfs: command not found'), null);
});

test('version 2 needs btrfs-progs 6.0 and a kernel that writes it; receive needs btrfs-progs 6.0 only', () => {
  const both = featuresFrom('btrfs-progs v6.2\n', '2\n');
  assert.deepEqual([both.sendStreams, both.receiveStreamVersions, both.kernelSendStreamVersion], [['v1', 'v2-compressed'], [1, 2], 2]);
  const oldProgs = featuresFrom('btrfs-progs v5.19\n', '2\n');
  assert.deepEqual([oldProgs.sendStreams, oldProgs.receiveStreamVersions], [['v1'], [1]]);
  // Before Linux 5.16 there is no sysfs file: version 1. A server's receive does not need the kernel's send.
  const oldKernel = featuresFrom('btrfs-progs v6.6.3\n', null);
  assert.deepEqual([oldKernel.sendStreams, oldKernel.receiveStreamVersions, oldKernel.kernelSendStreamVersion], [['v1'], [1, 2], 1]);
  const none = featuresFrom(null, null);
  assert.deepEqual([none.progs, none.sendStreams, none.receiveStreamVersions], [null, ['v1'], [1]]);
});

test("this machine's features are what btrfs --version and sysfs say, and are read once", async () => {
  const features = await btrfsFeatures();
  const { stdout } = await execa('btrfs', ['--version']);
  assert.deepEqual(features.progs, parseProgsVersion(stdout));
  const sysfs = await readFile(SEND_STREAM_VERSION_FILE, 'utf8').catch(() => '1');
  assert.equal(features.kernelSendStreamVersion, Number(sysfs.trim()));
  assert.equal(await btrfsFeatures(), features, 'cached: the same object');
});

test('each way of sending has its own btrfs send options; version 1 is asked for by name where --proto exists', () => {
  const modern = featuresFrom('btrfs-progs v6.2', '2');
  assert.deepEqual(sendOptionsFor('v2-compressed', modern), { proto: 2, compressedData: true });
  assert.deepEqual(sendOptionsFor('v1', modern), { proto: 1 });
  assert.deepEqual(sendOptionsFor('v1', featuresFrom('btrfs-progs v5.10', null)), {}, 'older btrfs-progs have no --proto');
  assert.equal(canSend('v1', featuresFrom(null, null)), true);
  assert.equal(canSend('v2-compressed', featuresFrom('btrfs-progs v5.10', '2')), false);
});

const V2_HERE = featuresFrom('btrfs-progs v6.2', '2');

/** Facts for chooseSendStream that count how often each question was asked. */
function facts(local: BtrfsFeatures, compression: string | null, server: number[]) {
  const asked = { compression: 0, server: 0 };
  const f: SendStreamFacts = {
    local,
    sourceCompression: async () => {
      asked.compression++;
      return compression;
    },
    serverVersions: async () => {
      asked.server++;
      return server;
    },
  };
  return { f, asked };
}

test('--send-compressed auto sends version 2 only from a compressed filesystem to a server that reads it', async () => {
  const yes = facts(V2_HERE, 'compress=zstd:3', [1, 2]);
  assert.deepEqual(await chooseSendStream('auto', yes.f), { stream: 'v2-compressed', why: "the snapshots' filesystem is mounted compress=zstd:3", fellBack: false });

  const plain = facts(V2_HERE, null, [1, 2]);
  const quiet = await chooseSendStream('auto', plain.f);
  assert.deepEqual([quiet.stream, quiet.fellBack], ['v1', false]);
  assert.equal(plain.asked.server, 0, 'the server is not asked when version 2 would not help');

  const oldServer = await chooseSendStream('auto', facts(V2_HERE, 'compress=zstd:3', [1]).f);
  assert.deepEqual([oldServer.stream, oldServer.fellBack], ['v1', true]);
  assert.match(oldServer.why, /server's btrfs receive reads send stream version 1 only/);

  const oldHere = facts(featuresFrom('btrfs-progs v5.16', '2'), 'compress=zstd', [1, 2]);
  const local = await chooseSendStream('auto', oldHere.f);
  assert.deepEqual([local.stream, local.fellBack, oldHere.asked.server], ['v1', true, 0]);
  assert.match(local.why, /btrfs-progs v5\.16 here cannot send stream version 2/);
});

test('--send-compressed on fails with the reason where either end cannot; off never asks', async () => {
  const on = await chooseSendStream('on', facts(V2_HERE, null, [1, 2]).f);
  assert.deepEqual(on, { stream: 'v2-compressed', why: '--send-compressed on', fellBack: false });
  await assert.rejects(chooseSendStream('on', facts(V2_HERE, null, [1]).f), (err: unknown) => {
    assert.ok(err instanceof SendCompressedUnsupported);
    assert.equal(err.code, 'send_compressed_unsupported');
    assert.equal(err.retryable, false);
    assert.match(err.message, /server's btrfs receive.*--send-compressed auto/);
    return true;
  });
  await assert.rejects(chooseSendStream('on', facts(featuresFrom('btrfs-progs v6.2', '1'), null, [1, 2]).f), /kernel writes send stream version 1 at most/);
  const off = facts(V2_HERE, 'compress=zstd', [1, 2]);
  assert.equal((await chooseSendStream('off', off.f)).stream, 'v1');
  assert.deepEqual(off.asked, { compression: 0, server: 0 });
});

test('mountCompression reads the compress option of the btrfs mount holding a path', rootOnly, async (t) => {
  const zstd = await createBtrfs(t, { sizeMiB: 128, mountOptions: ['compress=zstd'] });
  const plain = await createBtrfs(t, { sizeMiB: 128 });
  assert.match((await mountCompression(zstd.mountPoint)) ?? '', /^compress=zstd/);
  assert.equal(await mountCompression(plain.mountPoint), null);
  assert.equal(await mountCompression('/proc/self'), null, 'not btrfs');
});

async function streamOf(handle: btrfs.SendHandle): Promise<{ bytes: number; sha: string; version: number }> {
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  let version = 0;
  await pipeline(
    handle.stream,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        if (bytes === 0) version = chunk.readUInt32LE(13);
        bytes += chunk.length;
        hash.update(chunk);
        cb();
      },
    }),
  );
  await handle.done;
  return { bytes, sha: hash.digest('hex'), version };
}

test('--proto 1 makes the very stream btrfs send makes by default; version 2 is smaller from a compressed filesystem', rootOnly, async (t) => {
  const fsx = await createBtrfs(t, { sizeMiB: 256, mountOptions: ['compress=zstd'] });
  const vol = `${fsx.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  await fillVaried(vol, { seed: 'features', sizeMB: 2 });
  await writeFile(`${vol}/log.txt`, 'GET /index.html 200 snapferry\n'.repeat(100_000));
  await snapshotReadonly(vol, `${fsx.mountPoint}/s1`);
  const s1 = `${fsx.mountPoint}/s1`;
  const features = await btrfsFeatures();
  const byDefault = await streamOf(btrfs.send(s1));
  const v1 = await streamOf(btrfs.send(s1, sendOptionsFor('v1', features)));
  assert.equal(v1.sha, byDefault.sha, 'a transfer begun without --proto resumes byte for byte with it');
  assert.equal(v1.version, 1);
  const v2 = await streamOf(btrfs.send(s1, sendOptionsFor('v2-compressed', features)));
  assert.equal(v2.version, 2);
  t.diagnostic(`v1 ${v1.bytes} bytes, v2 compressed ${v2.bytes} bytes (${(v2.bytes / v1.bytes).toFixed(2)}x)`);
  assert.ok(v2.bytes < v1.bytes * 0.8, `v2 ${v2.bytes} against v1 ${v1.bytes}`);
});
