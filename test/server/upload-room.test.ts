/** When an upload that found the server's disk full could never fit on its filesystem (server/upload-room.ts): pure, no disk. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spoolWhenWhole, tooBigFor, type UploadSoFar } from '../../server/upload-room.ts';

const MiB = 2 ** 20;
const disk = { totalBytes: 192 * MiB, compresses: false };
/** 100 MiB of a 240 MiB stream verified, 110 MiB on disk (its index and a frame in flight besides). */
const partway: UploadSoFar = { spoolBytes: 110 * MiB, wireOffset: 100 * MiB, rawBytes: 100 * MiB, rawEstimate: 240 * MiB };

describe('an upload that finds the disk full', () => {
  it('needs its spool so far and the rest of the stream by the estimate, shrunk as the wire has shrunk it so far', () => {
    assert.equal(spoolWhenWhole(partway), 250 * MiB);
    assert.equal(spoolWhenWhole({ ...partway, wireOffset: 50 * MiB, spoolBytes: 55 * MiB }), 125 * MiB);
    // An estimate below what arrived (it runs under for some streams): the rest is nothing, not a negative.
    assert.equal(spoolWhenWhole({ ...partway, rawEstimate: 90 * MiB }), 110 * MiB);
  });

  it('is too big for a filesystem smaller than that, even empty', () => {
    assert.equal(tooBigFor(partway, disk), 250 * MiB);
    assert.equal(tooBigFor(partway, { ...disk, totalBytes: 256 * MiB }), null, 'it fits once space is freed');
    assert.equal(tooBigFor({ ...partway, wireOffset: 50 * MiB, spoolBytes: 55 * MiB }, disk), null, 'compressed, it fits');
  });

  it('cannot be told without an estimate, before a frame verified, where the mount compresses, or of an unread filesystem', () => {
    assert.equal(tooBigFor({ ...partway, rawEstimate: null }, disk), null);
    assert.equal(tooBigFor({ ...partway, wireOffset: 0, rawBytes: 0, spoolBytes: 4 * MiB }, disk), null);
    assert.equal(tooBigFor(partway, { ...disk, compresses: true }), null);
    assert.equal(tooBigFor(partway, null), null);
  });
});
