/**
 * A server disk that fills up mid-upload: the push pauses on 507 (retryable, the message says to free space), what
 * was acknowledged stays, and once space is freed the same upload goes on from there and the snapshot arrives whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';

/** Writes random data to `file` until the filesystem says it is full; returns the bytes written. */
async function fillUntilFull(file: string): Promise<number> {
  const handle = await fs.open(file, 'w');
  let written = 0;
  try {
    for (;;) {
      await handle.write(crypto.randomBytes(1024 * 1024));
      written += 1024 * 1024;
      await handle.sync();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return written;
}

test('disk full on the server: 507 and retries, nothing acknowledged lost, done once space is freed', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { serverMiB: 128, fillMB: 16, seed: 'disk-full' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');

  // Leave a few MiB free: the upload starts, then runs out of space partway.
  const reserve = path.join(pair.server.mountPoint, 'reserve');
  await fs.writeFile(reserve, crypto.randomBytes(6 * 1024 * 1024));
  const filler = path.join(pair.server.mountPoint, 'filler');
  await fillUntilFull(filler);
  await fs.rm(reserve);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);

  const report = recordingReporter();
  // A push retries for ever: stop it when the test ends, whichever way, or it would keep the test file running.
  const stop = new AbortController();
  t.after(() => stop.abort());
  const pushing = push(
    { server: server.url, volume: 'v', snapshots: [s1], chunkSize: 256 * 1024, patchBytes: 1024 * 1024, pollMs: 50, backoff: { baseMs: 200, maxMs: 1000 }, signal: stop.signal },
    report,
  );
  pushing.catch(() => undefined);
  const fullNote = () => report.notes.find((n) => /out of disk space/.test(n) && /free space/.test(n));
  await until('a disk-full retry note', () => fullNote() !== undefined, 120_000);
  // Said once per retry: by tus-js-client's short inner retries, then by the push loop's backoff.
  assert.match(fullNote()!, /trying again in|resuming from the server's offset/);

  const [transfer] = server.service.catalog.transfers({ volume: 'v' }).filter((x) => x.state === 'uploading');
  assert.ok(transfer, 'the upload is still open, not failed');
  const held = (await server.service.store.progress(transfer.id)).wireOffset;
  assert.ok(held > 0, 'part of the stream was acknowledged before the disk filled');

  await fs.rm(filler);
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  const result = await pushing;
  assert.equal(result.sent[0]?.transfer.state, 'received');
  assert.equal(result.sent[0]?.transfer.id, transfer.id, 'the same upload went on; nothing was sent from scratch');
  // Resumed either within the upload (tus-js-client asks the offset) or by a new attempt that hashes up to it.
  assert.ok(report.notes.some((n) => /resuming at|resuming from the server's offset/.test(n)), `a resume from the acknowledged offset: ${report.notes.join(' | ')}`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
