import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';
import { encodeIndexRecord, readRecords, type IndexRecord } from '../../server/spool/frame-index.ts';

test('an upload with no verified frame yet has no records, not an error', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'frame-index-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'missing.index');
  assert.deepEqual(await readRecords(file, 0, 10), []);
  const record: IndexRecord = { index: 0, wireEnd: 100, rawEnd: 90, kind: 'data', chain: Buffer.alloc(32, 7) };
  await fs.writeFile(file, encodeIndexRecord(record));
  const [read] = await readRecords(file, 0, 10);
  assert.equal(read?.wireEnd, 100);
  assert.ok(read?.chain.equals(record.chain));
});
