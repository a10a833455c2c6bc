/**
 * A spool on a real folder of its own (server/spool/spool.ts), for the tests that drive it without tus or a receive.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { TestContext } from 'node:test';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink, type SpoolHooks } from '../../server/spool/spool.ts';

/** A spool in a new folder, deleted after the test, with upload `id` created in it. */
export async function spoolWith(t: TestContext, id: string, hooks: SpoolHooks = {}): Promise<{ layout: ServerLayout; spool: Spool }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-spool-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  const spool = new Spool(layout, hooks);
  await spool.create(id);
  return { layout, spool };
}

/** Appends `bytes` to upload `id` at `offset`, as one request whose body arrives whole. */
export function appendBody(spool: Spool, id: string, offset: number, bytes: Buffer, chunkSize: number, sink: FrameSink): Promise<number> {
  const body = new PassThrough();
  const appending = spool.append(id, body, offset, chunkSize, sink);
  body.end(bytes);
  return appending;
}
