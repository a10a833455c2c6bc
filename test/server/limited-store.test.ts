/**
 * The quota-keeping store on real files: a write refused at once (wrong offset) must not leave an error behind that
 * nobody hears, which crashes the server when @tus/server then destroys the request stream with that error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Upload } from '@tus/utils';
import { LimitedSpoolStore } from '../../server/limited-store.ts';
import { ServerLayout } from '../../server/layout.ts';

test('a write refused for its offset, whose request stream is then destroyed with that error, crashes nothing', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-limited-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  await fs.mkdir(layout.spool, { recursive: true });
  const store = new LimitedSpoolStore(
    layout,
    {
      chunkSizeOf: () => 64 * 1024,
      checkStreamStart: () => undefined,
      onFrameStored: () => undefined,
      onStreamComplete: () => undefined,
      closedError: () => null,
      expire: () => null,
      expired: () => undefined,
      expiredError: () => null,
    },
    0,
    { checkSize: () => Promise.resolve(null), byteLimit: () => Promise.resolve(1 << 30), onRefused: () => Promise.resolve() },
  );
  const id = 'a'.repeat(32);
  await store.create(new Upload({ id, offset: 0, size: undefined, creation_date: new Date().toISOString() }));

  const uncaught: unknown[] = [];
  const listener = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', listener);
  t.after(() => process.off('uncaughtException', listener));

  const request = new PassThrough();
  const refused = await store.write(request, id, 4096).then(() => null, (err: unknown) => err);
  assert.equal((refused as { code?: string } | null)?.code, 'offset_mismatch');
  // What @tus/server's pipeline does next: destroy the request stream with the store's error.
  request.destroy(refused as Error);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(uncaught, [], 'no error event went unheard');
});
