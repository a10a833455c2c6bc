/**
 * Expiry in the upload store (server/upload-store/expiry.ts), through its tus adapter, on real files: which uploads the sweep deletes (idle ones the core lets go),
 * which it keeps, and what a request on an expired upload is told. The HTTP side is test/e2e/expiry.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TusStatusError } from '../../server/upload-store/tus-store.ts';
import type { ExpiredUpload } from '../../server/upload-store/index.ts';
import { SnapferryError } from '../../core/errors.ts';
import { formatDuration, startExpirySweep, sweepIntervalMs } from '../../server/expiry.ts';
import { silentLogger } from '../../server/log.ts';
import { uploadStoreIn } from './upload-store-fixture.ts';

const TTL = 60_000;

async function storeIn(t: { after(fn: () => Promise<void>): void }, decide: (id: string, facts: ExpiredUpload) => boolean) {
  const expired = new Map<string, ExpiredUpload>();
  /** Uploads whose expiry was reported, each with whether its spool file was still there at that moment. */
  const reported = new Map<string, boolean>();
  const { layout, store, create } = await uploadStoreIn(t, {
    expireAfterMs: TTL,
    expiry: {
      // As the core does: an upload already marked is not expired again, and marking it takes a moment (a disk write).
      expire: (id, facts) => {
        if (expired.has(id) || !decide(id, facts)) return null;
        expired.set(id, facts);
        return new Promise((resolve) => setTimeout(resolve, 30));
      },
      expired: (id) => void reported.set(id, existsSync(layout.spoolFile(id))),
      expiredError: (id) => (expired.has(id) ? new SnapferryError('upload_expired', `upload ${id} expired`) : null),
    },
  });
  /** An upload created `ageMs` ago and untouched since. */
  const upload = async (id: string, ageMs: number) => {
    const created = new Date(Date.now() - ageMs);
    await create(id, created);
    // An index, as every upload gets with its first frame: ID, ID.frames, ID.json side by side.
    await fs.writeFile(layout.frameIndexFile(id), '');
    await fs.utimes(layout.spoolFile(id), created, created);
  };
  return { layout, store, expired, reported, upload };
}

const exists = (file: string) => fs.access(file).then(() => true, () => false);

test('the sweep deletes uploads idle past the period and keeps the rest', async (t) => {
  const { layout, store, expired, reported, upload } = await storeIn(t, () => true);
  await upload('a'.repeat(32), TTL + 5000);
  await upload('b'.repeat(32), TTL - 5000);
  // Created long ago, but a request came a moment ago: a seed that takes longer than the period goes on.
  await upload('c'.repeat(32), 10 * TTL);
  await fs.utimes(layout.spoolFile('c'.repeat(32)), new Date(), new Date());

  assert.equal(await store.deleteExpired(), 1);
  assert.deepEqual([...expired.keys()], ['a'.repeat(32)]);
  assert.deepEqual([...reported], [['a'.repeat(32), false]], 'reported once, after its spool file was deleted');
  const facts = expired.get('a'.repeat(32))!;
  assert.ok(facts.idleMs >= TTL + 5000 && facts.idleMs < TTL + 60_000, `idle ${facts.idleMs}`);
  assert.deepEqual({ ...facts, idleMs: 0 }, { idleMs: 0, wireOffset: 0, rawBytes: 0, framesVerified: 0 });
  const kept = (id: string) => [id, `${id}.frames`, `${id}.json`];
  assert.deepEqual((await fs.readdir(layout.spool)).sort(), [...kept('b'.repeat(32)), ...kept('c'.repeat(32))]);
});

test('an upload the core keeps (in use, or being received) is not deleted, however idle', async (t) => {
  const { layout, store, upload } = await storeIn(t, () => false);
  await upload('d'.repeat(32), 3 * TTL);
  assert.equal(await store.deleteExpired(), 0);
  assert.ok(await exists(layout.spoolFile('d'.repeat(32))));
});

test('a request on an expired upload is told 410 upload_expired; any other request dates the upload anew', async (t) => {
  const { layout, store, upload } = await storeIn(t, () => true);
  await upload('e'.repeat(32), 2 * TTL);
  await upload('f'.repeat(32), 2 * TTL);
  // A HEAD or PATCH before the sweep: @tus/server must not answer 410 (it dates expiry from creation_date), and the
  // upload is active again.
  const before = Date.now();
  const got = await store.getUpload('f'.repeat(32));
  assert.ok(Date.parse(got.creation_date!) >= before - 1000, 'the date tus sees is the last activity');
  assert.ok((await fs.stat(layout.spoolFile('f'.repeat(32)))).mtimeMs >= before - 1000);

  assert.equal(await store.deleteExpired(), 1);
  await assert.rejects(store.getUpload('e'.repeat(32)), (err: unknown) => {
    assert.ok(err instanceof TusStatusError);
    assert.equal(err.status_code, 410);
    assert.equal(JSON.parse(err.body).error.code, 'upload_expired');
    return true;
  });
  assert.equal(await exists(layout.spoolFile('e'.repeat(32))), false);
  assert.ok(await exists(layout.spoolFile('f'.repeat(32))));
});

test('a period of 0 expires nothing and runs no sweep', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-expiry-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  let runs = 0;
  const sweep = startExpirySweep(() => Promise.resolve(runs++), 0, silentLogger());
  await new Promise((r) => setTimeout(r, 700));
  await sweep.stop();
  assert.equal(runs, 0);
  const running = startExpirySweep(() => Promise.resolve(runs++), 1000, silentLogger());
  await new Promise((r) => setTimeout(r, 1200));
  await running.stop();
  assert.ok(runs >= 1, 'a period of 1 s sweeps every 500 ms');
});

test('durations for people, and how often the sweep looks', () => {
  assert.equal(formatDuration(45_000), '45s');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(7 * 86_400_000), '7d');
  assert.equal(formatDuration(7 * 86_400_000 + 2 * 3_600_000 + 13 * 60_000), '7d2h');
  assert.equal(sweepIntervalMs(7 * 86_400_000), 10 * 60_000);
  assert.equal(sweepIntervalMs(2000), 500);
  assert.equal(sweepIntervalMs(60_000), 6000);
});

test('two sweeps at once: the second returns only once the first has deleted what it expired', async (t) => {
  const { layout, store, upload } = await storeIn(t, () => true);
  await upload('9'.repeat(32), TTL + 5000);
  const first = store.deleteExpired();
  const second = store.deleteExpired();
  assert.equal(await second, 0, 'nothing left for the second');
  assert.equal(await exists(layout.spoolFile('9'.repeat(32))), false, 'gone by the time the second returns');
  assert.equal(await first, 1);
});
