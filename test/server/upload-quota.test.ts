/**
 * The core's quota verdict (server/upload-quota.ts) over a disk the test sets: an upload's own files (tus's record,
 * its frame index) are its own, never its client's other uploads', so an upload over the quota by itself is refused
 * for good (not retryable: waiting heals nothing), and every refusal keeps what the upload holds. Refused beside
 * other uploads, it is retryable only when those that hold it out will end by themselves (a push sends them, or they
 * wait for their receive); beside uploads nobody sends (kept after a refusal) or failed transfers' spools it is
 * final: retried, the push was refused every 15 s for as long as they were kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Catalog } from '../../server/catalog.ts';
import { ServerLayout } from '../../server/layout.ts';
import { silentLogger } from '../../server/log.ts';
import { SpoolUsage, type SpoolFiles } from '../../server/spool/usage.ts';
import { uploadQuota } from '../../server/upload-quota.ts';
import { uploadLimits } from '../../server/upload-limits.ts';

const ID = 'a'.repeat(32);
const OTHER = 'b'.repeat(32);

type State = 'uploading' | 'receiving' | 'failed';

async function guardOver(t: { after(fn: () => unknown): void }, quotaBytes: number, spools: SpoolFiles[], states: Record<string, State> = {}, sending: string[] = []) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-upload-quota-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const layout = new ServerLayout(root);
  await fs.mkdir(layout.spool);
  // The files checkSize reads from the spool folder, as usage measures them.
  for (const s of spools) {
    await fs.writeFile(path.join(layout.spool, s.id), Buffer.alloc(s.streamBytes));
    await fs.writeFile(path.join(layout.spool, `${s.id}.json`), Buffer.alloc(s.otherBytes));
  }
  const catalog = { transfer: (id: string) => ({ id, client: 'alice', state: states[id] ?? 'uploading' }) } as unknown as Catalog;
  const usage = new SpoolUsage(() => Promise.resolve(spools));
  return uploadQuota({ catalog, layout, usage, limits: uploadLimits({ quotaBytes }), log: silentLogger(), sending: (id) => sending.includes(id) });
}

test('an upload over the quota with its own record and frame index, and no other upload, is refused for good, as kept', async (t) => {
  // 9,000 bytes of stream and 2,000 of its own other files: 11,000 on disk, over a quota of 10,000 by itself.
  const guard = await guardOver(t, 10_000, [{ id: ID, streamBytes: 0, otherBytes: 2_000 }]);
  const meter = await guard.openWrite(ID, 0);
  const err = await meter.admit(9_000);
  meter.close();
  assert.equal(err?.code, 'quota_exceeded');
  // Its own files were counted as other uploads': retryable, and the push tried again and again for nothing.
  assert.equal(err.retryable, false, err.message);
  assert.equal(err.details.heldByOthers, 0);
  assert.equal(err.details.size, 11_000);
  assert.equal(err.details.transferId, ID);
  assert.match(err.message, new RegExp(`keeps what has arrived of it \\(transfer ${ID}.*push again and it resumes.*snapferry abort ${ID}`));
});

for (const [why, states, sending] of [
  ['a push is sending it', {}, [OTHER]],
  ['it waits for its receive', { [OTHER]: 'receiving' }, []],
] as [string, Record<string, State>, string[]][]) {
  test(`refused beside another upload that will end by itself (${why}): retryable, and it says what the others hold`, async (t) => {
    const guard = await guardOver(t, 10_000, [{ id: ID, streamBytes: 0, otherBytes: 500 }, { id: OTHER, streamBytes: 4_000, otherBytes: 500 }], states, sending);
    const meter = await guard.openWrite(ID, 0);
    const err = await meter.admit(6_000);
    meter.close();
    assert.equal(err?.code, 'quota_exceeded');
    assert.equal(err.retryable, true, err.message);
    assert.equal(err.details.heldByOthers, 4_500);
    assert.equal(err.details.heldByIdle, 0);
  });
}

for (const [why, states] of [
  ['an upload no push sends, kept after a refusal', {}],
  ["a failed transfer's kept spool", { [OTHER]: 'failed' }],
] as [string, Record<string, State>][]) {
  test(`refused beside ${why}, which nothing frees by itself: final, saying what to abort`, async (t) => {
    const guard = await guardOver(t, 10_000, [{ id: ID, streamBytes: 0, otherBytes: 500 }, { id: OTHER, streamBytes: 4_000, otherBytes: 500 }], states);
    const meter = await guard.openWrite(ID, 0);
    const err = await meter.admit(6_000);
    meter.close();
    assert.equal(err?.code, 'quota_exceeded');
    assert.equal(err.retryable, false, err.message);
    assert.equal(err.details.heldByIdle, 4_500);
    assert.match(err.message, /do not free themselves.*abort the ones not needed/);
    assert.match(err.message, new RegExp(`keeps what has arrived of it \\(transfer ${ID}`));
  });
}

test("a declared length is judged with the upload's own other files; a creation's refusal keeps nothing, a deferred length's keeps the upload", async (t) => {
  const guard = await guardOver(t, 10_000, [{ id: ID, streamBytes: 3_000, otherBytes: 1_500 }]);
  const declared = await guard.checkSize(ID, 9_000, true);
  assert.equal(declared?.retryable, false, declared?.message);
  assert.equal(declared.details.heldByOthers, 0);
  assert.equal(declared.details.transferId, ID);
  assert.equal(await guard.checkSize(ID, 8_000, true), null);
  const created = await guard.checkSize(ID, 20_000, false);
  assert.equal(created?.details.transferId, undefined);
  assert.doesNotMatch(created!.message, /keeps/);
});
