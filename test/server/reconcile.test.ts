/**
 * server/reconcile.ts where the catalog meets the spool, without root: a catalog with no snapshots asks nothing of
 * btrfs, and the spool's progress is handed in.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Catalog, type TransferRecord } from '../../server/catalog.ts';
import { ServerLayout } from '../../server/layout.ts';
import { silentLogger } from '../../server/log.ts';
import { reconcile } from '../../server/reconcile.ts';
import { progressFromRecord, type SpoolProgress } from '../../server/spool/progress.ts';
import { CHAIN_ZERO } from '../../core/wire/chain.ts';

const NOW = '2026-12-05T10:00:00.000Z';

const transfer = (id: string, over: Partial<TransferRecord> = {}): TransferRecord => ({
  id, client: 'alice', volume: id, snapshot: 'many.20261205T1000', uuid: `11111111-1111-4111-8111-${id.slice(0, 12).padEnd(12, '0')}`, parentUuid: null,
  chunkSize: 65536, sendStream: 'v1', snapshotCreatedAt: null, snapshotTakenAt: null, state: 'uploading', createdAt: NOW, updatedAt: NOW,
  rawEstimate: 8_600_000, error: null, lastInterruption: null, interruptions: 0, wireBytes: null, rawBytes: null, framesVerified: null, wait: null,
  ...over,
});

const whole: SpoolProgress = progressFromRecord({ index: 130, wireEnd: 8_400_000, rawEnd: 8_388_608, kind: 'end', chain: CHAIN_ZERO });
const partial: SpoolProgress = progressFromRecord({ index: 60, wireEnd: 4_000_000, rawEnd: 3_900_000, kind: 'data', chain: CHAIN_ZERO });

async function rootWith(t: TestContext, transfers: TransferRecord[]): Promise<{ layout: ServerLayout; catalog: Catalog }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-reconcile-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  const catalog = await Catalog.open(layout.catalog);
  for (const x of transfers) await catalog.putTransfer(x);
  return { layout, catalog };
}

test('an upload whose spool holds its end frame but whose record a crash left uploading: receiving, with the spool\'s final figures, and received again', async (t) => {
  const { layout, catalog } = await rootWith(t, [transfer('whole'), transfer('going-on'), transfer('no-spool')]);
  const spools: Record<string, SpoolProgress> = { whole, 'going-on': partial };
  const progressOf = (id: string) => (spools[id] ? Promise.resolve(spools[id]) : Promise.reject(Object.assign(new Error('gone'), { code: 'ENOENT' })));

  const again = await reconcile(layout, catalog, progressOf, silentLogger());

  assert.deepEqual(again, ['whole'], 'the whole stream is received from its spool; an upload going on waits for its frames');
  const t1 = catalog.transfer('whole')!;
  assert.deepEqual(
    { state: t1.state, wireBytes: t1.wireBytes, rawBytes: t1.rawBytes, framesVerified: t1.framesVerified },
    { state: 'receiving', wireBytes: 8_400_000, rawBytes: 8_388_608, framesVerified: 130 },
  );
  assert.equal(catalog.transfer('going-on')!.state, 'uploading');
  assert.equal(catalog.transfer('no-spool')!.state, 'uploading');
  // On disk too: a second crash before the receive ends finds it the same.
  assert.equal((await Catalog.open(layout.catalog)).transfer('whole')!.framesVerified, 130);
});

test('a transfer already past its upload keeps the figures on record, whatever the spool says', async (t) => {
  const recorded = { wireBytes: 8_400_000, rawBytes: 8_388_608, framesVerified: 130 };
  const { layout, catalog } = await rootWith(t, [transfer('receiving', { state: 'receiving', ...recorded })]);
  const again = await reconcile(layout, catalog, () => Promise.resolve({ ...whole, wireOffset: 1, rawBytes: 1, framesVerified: 1 }), silentLogger());
  assert.deepEqual(again, ['receiving']);
  const t1 = catalog.transfer('receiving')!;
  assert.deepEqual({ wireBytes: t1.wireBytes, rawBytes: t1.rawBytes, framesVerified: t1.framesVerified }, recorded);
});
