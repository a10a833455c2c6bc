// Progress of real pushes (loop-mounted btrfs, a real server on loopback): the raw bytes rise to the stream's
// length, the estimate made before the send is within a few % of it (a full send's counts the fixture's reflinked
// copy again, which the send carries as a clone), a rate-limited push shows a rate and an ETA,
// and a resumed push counts the server's prefix in the bytes but not in the rate. Needs root.
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import assert from 'node:assert/strict';
import { push } from '../../../client/push/push.ts';
import type { ProgressFigures } from '../../../client/progress/figures.ts';
import type { Transfer } from '../../../core/protocol.ts';
import { mutate, rootOnly } from '../../fixtures/btrfs.ts';
import { assertReceived, createPair, recordingReporter } from '../../e2e/harness.ts';

const MiB = 1024 * 1024;

function progressReporter() {
  const report = recordingReporter();
  const figures: ProgressFigures[] = [];
  report.progress = (f) => figures.push(f);
  return Object.assign(report, { figures });
}

/**
 * The figures of one uninterrupted push against what the server received. `shared`: data reflinked within the
 * snapshot, which a full send's estimate (a walk of the tree) counts again and the stream carries as a clone.
 */
function checkFigures(label: string, figures: ProgressFigures[], transfer: Transfer, diagnostic: (m: string) => void, shared = 0): void {
  assert.ok(figures.length >= 2, `${label}: ${figures.length} progress events`);
  for (let i = 1; i < figures.length; i++) {
    assert.ok(figures[i]!.rawBytes >= figures[i - 1]!.rawBytes, `${label}: raw bytes went back at event ${i}`);
  }
  const first = figures[0]!;
  const last = figures.at(-1)!;
  assert.equal(last.rawBytes, transfer.rawBytes, `${label}: the last event has the whole stream`);
  assert.equal(last.wireBytes, transfer.wireOffset);
  assert.equal(last.rawTotal, transfer.rawBytes);
  assert.equal(last.rawTotalExact, true);
  assert.equal(first.rawTotalExact, false, `${label}: the first total is the estimate`);
  const error = (first.rawTotal! - shared - transfer.rawBytes) / transfer.rawBytes;
  diagnostic(`${label}: estimated ${first.rawTotal} raw bytes, ${shared} of them shared, the stream had ${transfer.rawBytes} (${(error * 100).toFixed(3)}%)`);
  assert.ok(Math.abs(error) <= 0.03, `${label}: the estimate is ${(error * 100).toFixed(2)}% off`);
  assert.ok(last.ratio !== null && last.ratio > 1, `${label}: ratio ${last.ratio}`);
  assert.equal(transfer.rawEstimate, first.rawTotal, `${label}: the server was told the estimate`);
}

test('a push reports progress up to the whole stream, from an estimate within a few %', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 12, seed: 'progress' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  // The resumed push must run past MIN_RATE_SPAN_MS (2 s) to show a rate: about 4 MiB at 1 MiB/s. At 2 MiB/s it
  // took 1.9 s and passed only while a stopped push kept its lease, which the resumed one waited a second for.
  const limit = MiB;

  // A push cut short after 4 MiB on the wire (of about 8), so the next one resumes.
  const controller = new AbortController();
  const cut = progressReporter();
  cut.progress = (f) => {
    if (f.wireBytes > 4 * MiB) controller.abort();
  };
  await assert.rejects(push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 256 * 1024, patchBytes: 1024 * 1024, limitRate: limit, signal: controller.signal }, cut));

  const resumed = progressReporter();
  const { sent } = await push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 256 * 1024, patchBytes: 1024 * 1024, limitRate: limit, backoff: { baseMs: 200 } }, resumed);
  const transfer = sent[0]!.transfer;
  const first = resumed.figures[0]!;
  assert.ok(resumed.notes.some((n) => /resuming at/.test(n)), resumed.notes.join('\n'));
  assert.ok(first.wireBytes >= 2 * MiB && first.rawBytes > first.wireBytes, `resumed at ${first.wireBytes} wire / ${first.rawBytes} raw`);
  const rated = resumed.figures.filter((f) => f.wireBytesPerSecond !== null);
  assert.ok(rated.length > 0 && resumed.figures.some((f) => f.etaSeconds !== null), 'a rate and an ETA once there is history');
  const fastest = Math.max(...rated.map((f) => f.wireBytesPerSecond!));
  t.diagnostic(`resumed from ${first.wireBytes} B; fastest wire rate shown ${(fastest / MiB).toFixed(2)} MiB/s against a limit of ${limit / MiB} MiB/s`);
  // Counting the prefix as sent (at least 2 MiB, checked above) would show a burst of at least twice the limit over
  // the first 2 s. Sent bytes alone reach 1.125x there: the limiter's quarter second of credit (rate-limit.ts) spent
  // at once over the shortest span a rate is shown for (MIN_RATE_SPAN_MS), and a loaded machine's timer adds a few %
  // (1.16x seen in CI, 1.08-1.10x on a quiet one).
  assert.ok(fastest <= limit * 1.3, `the rate ${fastest} counts bytes this run did not send`);
  const shared = (await stat(path.join(pair.source, 'random/r-000.reflink'))).size;
  checkFigures('full, resumed', resumed.figures.filter((f) => f.wireBytes >= first.wireBytes), transfer, (m) => t.diagnostic(m), shared);
  await assertReceived(s1, pair.receivedPath('v', 's1'));

  await mutate(pair.source, 'progress');
  // Enough new data that the upload trails the encoder, so the first events still carry the estimate.
  await writeFile(path.join(pair.source, 'grown.bin'), Buffer.concat([randomBytes(MiB), Buffer.alloc(3 * MiB, 'incremental progress ')]));
  const s2 = await pair.snapshot('s2');
  const incremental = progressReporter();
  const second = await push({ server: server.url, volume: 'v', snapshots: [s2], chunkSize: 64 * 1024, patchBytes: 256 * 1024 }, incremental);
  assert.deepEqual(incremental.started, [{ snapshot: 's2', parent: 's1' }]);
  checkFigures('incremental', incremental.figures, second.sent[0]!.transfer, (m) => t.diagnostic(m));
});
