/**
 * The store contract (store-contract.ts) run against the upload store as the server composes it (the spool's store
 * inside its ownership, expiry, quota and full-disk wrappers) and against the spool's store alone, each through the
 * one tus adapter, on real folders. Neither needs root.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { PassThrough } from 'node:stream';
import { deleteSpool } from '../../server/orphan-spools.ts';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { SpoolUploads } from '../../server/upload-store/spool-uploads.ts';
import { TusStore } from '../../server/upload-store/tus-store.ts';
import { cutRequest, uploadStoreIn } from './upload-store-fixture.ts';
import {
  shouldApplyLengthRules, shouldCreateUploads, shouldExpireUploads, shouldRemoveUploads, shouldResumeAfterCut, shouldWriteFrames,
  type ContractSubject, type MakeSubject,
} from './store-contract.ts';

const PERIOD_MS = 60_000;

/** How the contract looks at a spool store: through its files. */
function spoolSubject(store: TusStore, spool: Spool, layout: ServerLayout): ContractSubject {
  const exists = (f: string) => fs.stat(f).then(() => true, () => false);
  return {
    store,
    held: (id) => fs.readFile(layout.spoolFile(id)),
    verified: async (id) => (await spool.progress(id)).wireOffset,
    loseData: (id) => fs.rm(layout.spoolFile(id)),
    leftovers: async (id) => {
      const left: string[] = [];
      for (const f of layout.spoolFiles(id)) if (await exists(f)) left.push(f);
      return left;
    },
    idleSince: (id, when) => fs.utimes(layout.spoolFile(id), when, when),
    keepsCutTail: true,
    cut: (id, offset, bytes) => cutRequest(store, spool, id, offset, bytes),
  };
}

const composed: MakeSubject = async (t) => {
  const { store, spool, layout } = await uploadStoreIn(t, { expireAfterMs: PERIOD_MS, expiry: { expire: () => Promise.resolve() } });
  return spoolSubject(store, spool, layout);
};

const SINK: FrameSink = { start: () => undefined, stored: () => false, complete: () => undefined, endRefused: () => undefined };

const bare: MakeSubject = async (t: TestContext) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-bare-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  const spool = new Spool(layout);
  const store = new TusStore(new SpoolUploads(spool, { write: (id, body, offset, chunkSize) => spool.append(id, body, offset, chunkSize, SINK) }));
  return spoolSubject(store, spool, layout);
};

for (const [name, make] of [['the composed store', composed], ['the spool store alone', bare]] as const) {
  describe(name, () => {
    shouldCreateUploads(make);
    shouldWriteFrames(make);
    shouldResumeAfterCut(make);
    shouldRemoveUploads(make);
    shouldApplyLengthRules(make);
    if (make === composed) shouldExpireUploads(make, PERIOD_MS);
  });
}

// The spool's store keeps the records it read (a record never changes): one whose files are all deleted behind it,
// as the orphan sweep deletes them, must not answer from memory.
test('an upload read, then deleted behind the store, every file (the orphan sweep): not found for a HEAD and a PATCH, as one never created', async (t) => {
  const { store, layout, create } = await uploadStoreIn(t);
  const id = 'd'.repeat(32);
  await create(id);
  assert.equal((await store.getUpload(id)).offset, 0, "read once: its record is kept");
  await deleteSpool(layout, id);
  const code = (p: Promise<unknown>) => p.then(() => 'answered', (err: { code?: string; status_code?: number }) => `${err.code} ${err.status_code}`);
  assert.equal(await code(store.getUpload(id)), 'not_found 404');
  const body = new PassThrough();
  body.end(Buffer.alloc(100));
  assert.equal(await code(store.write(body, id, 0)), 'not_found 404');
});
