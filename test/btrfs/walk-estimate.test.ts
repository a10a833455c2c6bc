/**
 * core/btrfs/walk-estimate.ts without root: find's NUL-ended records cut the same however its output is split, a
 * name's bytes are counted whatever they are, output that does not parse is refused, and the tally counts what a
 * full send carries once (an inode's data under several names, nothing of a hole). Its estimates against real
 * streams are in estimate.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FullSendTally, WalkRecords, type WalkEntry } from '../../core/btrfs/walk-estimate.ts';

function recordOf(e: { ino: number; links: number; type: string; size: number; blocks: number; name: Buffer }): Buffer {
  return Buffer.concat([Buffer.from(`${e.ino} ${e.links} ${e.type} ${e.size} ${e.blocks} `), e.name, Buffer.from([0])]);
}

function parseAll(chunks: Buffer[]): WalkEntry[] {
  const records = new WalkRecords();
  const out: WalkEntry[] = [];
  for (const c of chunks) records.push(c, (e) => out.push(e));
  records.end();
  return out;
}

const entryArb = fc.record({
  ino: fc.nat(),
  links: fc.integer({ min: 1, max: 5 }),
  type: fc.constantFrom('f', 'd', 'l', 'p', 's', 'c', 'b'),
  size: fc.nat(),
  blocks: fc.nat(),
  // Any bytes but NUL: spaces, newlines, bytes that are not UTF-8.
  name: fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a.map((b) => (b === 0 ? 1 : b)))),
});

describe('WalkRecords', () => {
  it('cuts the same entries however the output is split, counting each name in bytes', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1 }), (entries, cuts) => {
        const all = Buffer.concat(entries.map(recordOf));
        const chunks: Buffer[] = [];
        for (let at = 0, i = 0; at < all.length; i++) {
          const n = cuts[i % cuts.length]!;
          chunks.push(all.subarray(at, at + n));
          at += n;
        }
        const parsed = parseAll(chunks);
        assert.deepEqual(
          parsed,
          entries.map((e) => ({ ino: e.ino, links: e.links, type: e.type, size: e.size, blocks: e.blocks, pathBytes: e.name.length })),
        );
      }),
    );
  });

  it("the snapshot's own root has a path of no bytes", () => {
    assert.deepEqual(parseAll([Buffer.from('256 1 d 0 0 \0')]), [{ ino: 256, links: 1, type: 'd', size: 0, blocks: 0, pathBytes: 0 }]);
  });

  it('refuses output that is cut off or does not parse, saying what it read', () => {
    assert.throws(() => parseAll([Buffer.from('256 1 d 0 0 \u0000257 1 f 10')]), /ends in the middle of an entry: "257 1 f 10"/);
    assert.throws(() => parseAll([Buffer.from('257 1 f 10\0')]), /without its fields/);
    assert.throws(() => parseAll([Buffer.from('257 one f 10 8 a\0')]), /does not parse/);
    assert.throws(() => parseAll([Buffer.from('257 1 x 10 8 a\0')]), /does not parse/);
    assert.throws(() => parseAll([Buffer.from('257 1 f -1 8 a\0')]), /does not parse/);
  });
});

function tally(entries: Partial<WalkEntry>[], version = 1) {
  const t = new FullSendTally('snap', version);
  for (const e of entries) t.entry({ ino: 300, links: 1, type: 'f', size: 0, blocks: 0, pathBytes: 5, ...e });
  return t.result();
}

describe('FullSendTally', () => {
  it("counts a file's data once however many names it has; each further name costs a LINK, less than a file", () => {
    const one = tally([{ ino: 300, links: 2, size: 100_000, blocks: 200 }]);
    const two = tally([{ ino: 300, links: 2, size: 100_000, blocks: 200 }, { ino: 300, links: 2, size: 100_000, blocks: 200 }]);
    const distinct = tally([{ ino: 300, size: 100_000, blocks: 200 }, { ino: 301, size: 100_000, blocks: 200 }]);
    assert.equal(two.dataBytes, 100_000);
    assert.ok(two.rawBytes > one.rawBytes && two.rawBytes - one.rawBytes < 100, `${two.rawBytes} against ${one.rawBytes}`);
    assert.equal(distinct.dataBytes, 200_000);
  });

  it('sends no hole: only the blocks a file has, and the stream grows with the data and the writes it takes', () => {
    const sparse = tally([{ size: 10 * 1024 * 1024, blocks: 0 }]);
    const partly = tally([{ size: 10 * 1024 * 1024, blocks: 24 }]);
    const dense = tally([{ size: 12_288, blocks: 24 }]);
    assert.equal(sparse.dataBytes, 0);
    assert.equal(sparse.writes, 0);
    assert.equal(partly.dataBytes, 12_288);
    // The same data with a hole after it takes a TRUNCATE more.
    assert.ok(partly.rawBytes > dense.rawBytes && partly.rawBytes - dense.rawBytes < 64);
    // A tail block not full is counted as far as the file goes.
    assert.equal(tally([{ size: 100, blocks: 8 }]).dataBytes, 100);
  });

  it("cuts data into the version's writes: 48 KiB in version 1, 128 KiB after", () => {
    const size = 1024 * 1024;
    assert.equal(tally([{ size, blocks: size / 512 }], 1).writes, Math.ceil(size / (48 * 1024)));
    assert.equal(tally([{ size, blocks: size / 512 }], 2).writes, size / (128 * 1024));
    assert.ok(tally([{ size, blocks: size / 512 }], 2).rawBytes < tally([{ size, blocks: size / 512 }], 1).rawBytes);
  });

  it('longer paths make a longer stream: every command names its inode', () => {
    const short = tally([{ pathBytes: 5, size: 1_000_000, blocks: 2000 }]);
    const long = tally([{ pathBytes: 105, size: 1_000_000, blocks: 2000 }]);
    // RENAME (from its temporary name, which is not the path), CHOWN, CHMOD, UTIMES, and each of 21 WRITEs.
    assert.equal(long.rawBytes - short.rawBytes, 100 * (4 + 21));
  });
});
