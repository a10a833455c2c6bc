// From frames and upload offsets to the figures a push reports: wire -> raw mapping, totals, rates, resume, ETA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FrameEncoder, type EncodedFrameInfo } from '../../../core/wire/index.ts';
import { WireToRaw } from '../../../client/push/wire-to-raw.ts';
import { TransferProgress } from '../../../client/push/progress.ts';
import type { ProgressFigures } from '../../../client/progress/figures.ts';
import type { Reporter } from '../../../client/progress/report.ts';
import { mixedBytes } from '../../wire/frame-helpers.ts';

function recorder(): Reporter & { figures: ProgressFigures[] } {
  const figures: ProgressFigures[] = [];
  return { figures, note: () => {}, startTransfer: () => {}, progress: (f) => figures.push(f), waiting: () => {}, received: () => {} };
}

/** A data frame of `rawLength` raw bytes that took `wireLength` bytes on the wire. */
function frame(index: number, rawOffset: number, rawLength: number, wireOffset: number, wireLength: number): EncodedFrameInfo {
  return { kind: 'data', index, codec: 'zstd', rawOffset, rawLength, payloadLength: wireLength - 72, wireOffset, wireLength, chain: Buffer.alloc(32) };
}

function endFrame(frames: number, rawTotal: number, wireOffset: number): EncodedFrameInfo {
  return { kind: 'end', index: frames, codec: 'raw', rawOffset: rawTotal, rawLength: 0, payloadLength: 0, wireOffset, wireLength: 112, chain: Buffer.alloc(32) };
}

test('wire offsets map to raw exactly on frame ends and proportionally inside a frame', () => {
  const map = new WireToRaw({ wireEnd: 0, rawEnd: 0 }, 1 << 30);
  map.add({ wireEnd: 500, rawEnd: 1000 });
  map.add({ wireEnd: 1500, rawEnd: 2000 });
  map.add({ wireEnd: 1600, rawEnd: 2000 }); // the end frame: no raw bytes of its own
  assert.equal(map.rawAt(0), 0);
  assert.equal(map.rawAt(250), 500);
  assert.equal(map.rawAt(500), 1000);
  assert.equal(map.rawAt(1000), 1500);
  assert.equal(map.rawAt(1500), 2000);
  assert.equal(map.rawAt(1550), 2000);
  assert.equal(map.rawAt(1600), 2000);
});

test('the map keeps only the frames a retry could still land in', () => {
  const frameWire = 1000;
  const map = new WireToRaw({ wireEnd: 0, rawEnd: 0 }, 10 * frameWire);
  for (let i = 1; i <= 10_000; i++) {
    map.add({ wireEnd: i * frameWire, rawEnd: i * 2 * frameWire });
    // The upload trails the encoder by three frames.
    if (i > 3) assert.equal(map.rawAt((i - 3) * frameWire - 10), (i - 3) * 2 * frameWire - 20);
  }
  assert.ok(map.kept <= 15, `${map.kept} frames kept`);
  // A retry goes back to the server's offset, within a PATCH of the furthest point: still mapped exactly.
  const furthest = (10_000 - 3) * frameWire - 10;
  assert.equal(map.rawAt(furthest - 8 * frameWire), 2 * (furthest - 8 * frameWire));
});

test("a real encoder's frames: the last upload offset is the whole raw stream, and the total turns exact", async () => {
  const raw = mixedBytes(1_000_000, 40_000);
  const frames: EncodedFrameInfo[] = [];
  let wireTotal = 0;
  await pipeline(
    Readable.from([raw]),
    new FrameEncoder({ chunkSize: 64 * 1024, level: 3, onFrame: (f) => frames.push(f) }),
    new Writable({ write: (chunk: Buffer, _e, cb) => ((wireTotal += chunk.length), cb()) }),
  );
  const report = recorder();
  const progress = new TransferProgress(report, 's1', { patchBytes: 256 * 1024, now: () => 0 });
  progress.setEstimate(990_000);
  progress.newAttempt();
  progress.begin({ wireOffset: 0, rawOffset: 0 });
  for (const f of frames) progress.onFrame(f);
  progress.uploaded(0);
  progress.uploaded(frames[3]!.wireOffset);
  progress.uploaded(wireTotal);
  const [first, middle, last] = report.figures;
  assert.equal(first?.rawBytes, 0);
  assert.equal(middle?.rawBytes, 3 * 64 * 1024);
  assert.equal(last?.rawBytes, raw.length);
  assert.equal(last?.wireBytes, wireTotal);
  assert.equal(last?.rawTotal, raw.length, 'the end frame replaced the estimate');
  assert.equal(last?.rawTotalExact, true);
  assert.ok(last!.ratio! > 1, `ratio ${last?.ratio}`);
});

test('a resumed attempt counts its prefix in the bytes, not in the rate; the ETA follows the raw rate', () => {
  let now = 0;
  const report = recorder();
  const progress = new TransferProgress(report, 's1', { patchBytes: 1 << 20, now: () => now });
  progress.setEstimate(10_000_000);
  // The server holds 4 frames: 4 MB raw in 2 MB on the wire.
  progress.newAttempt();
  progress.begin({ wireOffset: 2_000_000, rawOffset: 4_000_000 });
  for (let i = 4; i < 10; i++) progress.onFrame(frame(i, i * 1_000_000, 1_000_000, i * 500_000, 500_000));
  // 100 kB/s on the wire, 200 kB/s raw, for 10 s.
  for (let t = 0; t <= 10_000; t += 100) {
    now = t;
    progress.uploaded(2_000_000 + t * 100);
  }
  const last = report.figures.at(-1)!;
  assert.equal(last.wireBytes, 3_000_000);
  assert.equal(last.wireBytesBefore, 2_000_000, 'what the server held when this run began');
  assert.equal(last.rawBytes, 6_000_000);
  assert.equal(last.ratio, 2);
  assert.ok(Math.abs(last.wireBytesPerSecond! - 100_000) < 1_000, `wire rate ${last.wireBytesPerSecond}`);
  assert.ok(Math.abs(last.rawBytesPerSecond! - 200_000) < 2_000, `raw rate ${last.rawBytesPerSecond}`);
  // 4 MB raw left at 200 kB/s.
  assert.ok(Math.abs(last.etaSeconds! - 20) < 0.5, `ETA ${last.etaSeconds}`);
  assert.equal(last.rawTotalExact, false);
  assert.equal(report.figures[0]!.rawBytesPerSecond, null, 'no rate from the first sample');
});

test('without an estimate there is no total and no ETA, until the end frame gives the total', () => {
  let now = 0;
  const report = recorder();
  const progress = new TransferProgress(report, 's1', { patchBytes: 1 << 20, now: () => now });
  progress.setEstimate(null);
  assert.equal(progress.estimated, true);
  progress.newAttempt();
  progress.begin({ wireOffset: 0, rawOffset: 0 });
  progress.onFrame(frame(0, 0, 1_000_000, 0, 400_000));
  now = 3_000;
  progress.uploaded(200_000);
  assert.equal(report.figures.at(-1)!.rawTotal, null);
  assert.equal(report.figures.at(-1)!.etaSeconds, null);
  assert.ok(report.figures.at(-1)!.rawBytesPerSecond! > 0);
  progress.onFrame(frame(1, 1_000_000, 500_000, 400_000, 300_000));
  progress.onFrame(endFrame(2, 1_500_000, 700_000));
  now = 4_000;
  progress.uploaded(500_000);
  const last = report.figures.at(-1)!;
  assert.equal(last.rawTotal, 1_500_000);
  assert.equal(last.rawTotalExact, true);
  assert.notEqual(last.etaSeconds, null);
});

test("what the server held when this run began stays apart from what it sent, through the run's own cuts", () => {
  const report = recorder();
  const progress = new TransferProgress(report, 's1', { patchBytes: 1 << 20, now: () => 0 });
  progress.newAttempt();
  progress.begin({ wireOffset: 2_000_000, rawOffset: 4_000_000 });
  progress.uploaded(2_500_000);
  // A cut: the next attempt resumes from what this run itself sent.
  progress.newAttempt();
  progress.begin({ wireOffset: 2_400_000, rawOffset: 4_800_000 });
  assert.equal(progress.uploaded(3_000_000).wireBytesBefore, 2_000_000);
  const fresh = new TransferProgress(recorder(), 's2', { patchBytes: 1 << 20, now: () => 0 });
  fresh.begin({ wireOffset: 0, rawOffset: 0 });
  fresh.newAttempt();
  fresh.begin({ wireOffset: 700_000, rawOffset: 1_400_000 });
  assert.equal(fresh.uploaded(900_000).wireBytesBefore, 0, 'a run that started at 0 sent all of it');
});
