// A sealed push (encrypt:) into the archive (store: on a real RGW bucket), stopped partway, the snapshot renamed
// (mv), pushed again: the resume compresses and seals the prefix again to compare it with the server's chain, and the
// stream's first command names the snapshot's UUID, not its directory (core/wire/stream-naming.ts), so it goes on from
// the server's frame instead of from frame 0; the archive keeps the upload's name, and the stored stream restores
// under it, identical. Before, the renamed directory changed frame 0 and the push sent it all again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { ServerApi } from '../../client/http/api.ts';
import { generateKeyFile } from '../../core/crypto/key-file.ts';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import { sharedS3 } from '../archive/store-fixture.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';

const s3 = sharedS3();
const CHUNK = 64 * 1024;

test('a sealed push into the archive, stopped, the snapshot renamed: the next push resumes at the server\'s frame, and restores under the upload\'s name', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 6, seed: 'archive-resume-rename' });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-archive-rename-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'archive.key');
  await generateKeyFile(key);
  const bucket = await s3.bucket();
  const { server: rgw } = bucket;
  const server = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(),
    store: { endpoint: rgw.endpoint, bucket: bucket.name, prefix: 'rename', region: rgw.region, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } },
  });
  t.after(() => server.close());
  const api = new ServerApi({ server: server.url });
  const options = { server: server.url, volume: 'home', chunkSize: CHUNK, patchBytes: 256 * 1024, encrypt: key, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000 } };

  const taken = await pair.snapshot('home.20261206T014500Z');
  const stop = new AbortController();
  const first = push({ ...options, snapshots: [taken], limitRate: 1024 * 1024, signal: stop.signal }, recordingReporter());
  first.catch(() => undefined);
  await until('8 verified frames', async () => (await api.transfers()).transfers.find((x) => x.framesVerified >= 8), 60_000, 25);
  stop.abort();
  await first.catch(() => undefined);
  const held = (await api.transfers()).transfers[0]!;
  assert.equal(held.state, 'uploading');

  const renamed = path.join(pair.snaps, 'home.20261206T014400Z');
  await fs.rename(taken, renamed);
  const report = recordingReporter();
  const { sent } = await push({ ...options, snapshots: [renamed] }, report);
  const notes = report.notes.join('\n');
  assert.doesNotMatch(notes, /rewound|different stream/, notes);
  assert.match(notes, new RegExp(`resuming at .* \\(frame ${held.framesVerified}\\)`), notes);
  assert.match(notes, /renamed here since its upload began as home\.20261206T014500Z; the server keeps that name/);
  assert.equal(sent[0]!.transfer.id, held.id, 'the same upload went on');
  assert.equal(sent[0]!.transfer.snapshot, 'home.20261206T014500Z');

  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  await restore({ server: server.url, volume: 'home', snapshot: 'home.20261206T014500Z', destDir: dest, chunkSize: CHUNK, retries: 0, encrypt: key }, recordingReporter());
  await assertReceived(renamed, path.join(dest, 'home.20261206T014500Z'));
});
