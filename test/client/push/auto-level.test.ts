import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AutoLevel } from '../../../client/push/auto-level.ts';
import { LinkMeter } from '../../../client/upload/link-meter.ts';
import { RawPace } from '../../../client/push/raw-pace.ts';
import { parseCompressSetting } from '../../../client/push/compression.ts';

const MB = 1e6;

/** Feeds `frames` 4 MB frames at `level` compressed at `speed` raw bytes/s with `ratio`. */
function feed(auto: AutoLevel, level: number, speed: number, ratio: number, frames = 3): void {
  const raw = 4 * MB;
  for (let i = 0; i < frames; i++) auto.observe({ level, rawLength: raw, payloadLength: raw * ratio, compressNs: (raw / speed) * 1e9 });
}

/** An AutoLevel whose link runs at `link` bytes/s, with a machine that makes `l3` MB/s per worker at level 3. */
function autoOn(link: number | null, l3 = 300 * MB, ratio = 0.4) {
  let rate = link;
  const changes: { level: number; why: string }[] = [];
  const auto = new AutoLevel({ workers: 2, linkRate: () => rate, onChange: (level, why) => changes.push({ level, why }) });
  feed(auto, 3, l3, ratio);
  return { auto, changes, setLink: (r: number) => (rate = r) };
}

/** zstd's speed at each level relative to level 3, as a machine might measure it on compressible data. */
const SPEED: Record<number, number> = { 1: 1.5, 2: 1.2, 3: 1, 4: 0.8, 6: 0.45, 9: 0.3, 12: 0.12, 15: 0.06, 19: 0.012 };

/** What each level makes of data that level 3 takes to 0.4 (zstd's usual sizes relative to level 3). */
const RATIO: Record<number, number> = { 1: 0.44, 2: 0.42, 3: 0.4, 4: 0.396, 6: 0.38, 9: 0.368, 12: 0.36, 15: 0.348, 19: 0.332 };

/** Runs frames through the chooser as a push would, each level compressing at `speedAt(level)`; returns the levels. */
function climb(auto: AutoLevel, speedAt: (level: number) => number, frames = 60, ratioAt: (level: number) => number = (l) => RATIO[l]!): number[] {
  const levels: number[] = [];
  for (let i = 0; i < frames; i++) {
    const level = auto.next();
    levels.push(level);
    feed(auto, level, speedAt(level), ratioAt(level), 1);
  }
  return levels;
}

describe('--compress auto', () => {
  it('stays at level 3 until the link has been measured', () => {
    const { auto } = autoOn(null);
    assert.equal(auto.next(), 3);
    assert.equal(new AutoLevel({ workers: 2, linkRate: () => 1000 }).next(), 3, 'nothing measured on this machine yet');
  });

  it('on 2 Mbit/s goes to level 19 as soon as every worker has measured level 3, and stays there', () => {
    const { auto, changes } = autoOn(250_000);
    const levels = climb(auto, (l) => 300 * MB * SPEED[l]!);
    assert.equal(levels.at(-1), 19);
    // Level 3 was measured on both workers (autoOn) before the first frame asked.
    assert.deepEqual([...new Set(levels)], [19], `levels: ${levels.join(' ')}`);
    assert.match(changes[0]!.why, /250 kB\/s/);
  });

  it('on a slow line does not climb on data that level 3 cannot shrink, and climbs at the first frames that do', () => {
    // Random bytes: zstd keeps each frame raw (ratio 1) and skims it fast, so every level's estimate looks ahead.
    const { auto } = autoOn(250_000, 2400 * MB, 1);
    const flat = climb(auto, (l) => 2400 * MB * SPEED[l]!, 10, () => 1);
    assert.deepEqual([...new Set(flat)], [3], `levels on random data: ${flat.join(' ')}`);
    const mixed = climb(auto, (l) => 300 * MB * SPEED[l]!, 10);
    assert.equal(mixed.at(-1), 19, `levels once the data compresses: ${mixed.join(' ')}`);
    assert.ok(mixed.indexOf(19) <= 2, `climbed within a frame or two: ${mixed.join(' ')}`);
  });

  it('names a link that barely moves in bytes per second, not as "0 kB/s"', () => {
    const { auto, changes } = autoOn(420);
    climb(auto, (l) => 300 * MB * SPEED[l]!);
    assert.match(changes[0]!.why, /the link carries 420 B\/s/);
    const kB = autoOn(12_345);
    climb(kB.auto, (l) => 300 * MB * SPEED[l]!);
    assert.match(kB.changes[0]!.why, /the link carries 12 kB\/s/);
  });

  it('on 2 Mbit/s takes level 19 for 3% fewer bytes at 100 times the CPU: the line is the bound, the cores idle', () => {
    // The bench's slow-link data (docs/performance.md): 45% random, level 19 makes 0.97x the bytes of level 3 at
    // 0.32 CPU s per MB (3 MB/s per worker) against 0.003. Before, the CPU test alone kept auto at level 9-12.
    const bench = { speed: { 1: 450, 2: 380, 3: 330, 4: 300, 6: 140, 9: 70, 12: 50, 15: 13, 19: 3.1 } as Record<number, number>,
      ratio: { 1: 0.68, 2: 0.665, 3: 0.661, 4: 0.66, 6: 0.657, 9: 0.655, 12: 0.657, 15: 0.65, 19: 0.641 } as Record<number, number> };
    const auto = new AutoLevel({ workers: 2, linkRate: () => 247_000 });
    feed(auto, 3, bench.speed[3]! * MB, bench.ratio[3]!);
    const levels = climb(auto, (l) => bench.speed[l]! * MB, 20, (l) => bench.ratio[l]!);
    assert.equal(levels.at(-1), 19, `levels: ${levels.join(' ')}`);
  });

  it('on a slow line compresses on every worker: a level that keeps ahead only on both is chosen', () => {
    // 250 kB/s at ratio 0.332 is 0.75 MB/s raw; level 19 makes 0.5 MB/s per worker: 1.0 MB/s on two, 0.5 on one.
    const auto = new AutoLevel({ workers: 2, linkRate: () => 250_000 });
    feed(auto, 3, 300 * MB, 0.4);
    const levels = climb(auto, (l) => (l === 19 ? 0.5 * MB : 300 * MB * SPEED[l]!));
    assert.equal(levels.at(-1), 19, `levels: ${levels.join(' ')}`);
  });

  it('never stays behind the line: whatever the machine and the data, it settles on a level that keeps ahead', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 50_000, max: 3_000_000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.double({ min: 20, max: 800, noNaN: true }),
        // How far each level's true speed is from zstd's usual ratios (random data at high levels: far slower).
        fc.array(fc.double({ min: 0.05, max: 2, noNaN: true }), { minLength: 10, maxLength: 10 }),
        fc.double({ min: 0.2, max: 0.99, noNaN: true }),
        (link, workers, l3, skew, r3) => {
          const auto = new AutoLevel({ workers, linkRate: () => link });
          const speedAt = (l: number) => l3 * MB * SPEED[l]! * skew[l % 10]!;
          const ratioAt = (l: number) => Math.min(1, r3 * (RATIO[l]! / RATIO[3]!));
          feed(auto, 3, speedAt(3), ratioAt(3), workers);
          const levels = climb(auto, speedAt, 40, ratioAt);
          const last = levels.at(-1)!;
          if (last === 0) return;
          // The level it settled on keeps ahead of the line on the workers, or it is level 1, which still carries
          // more than raw would.
          const raw = link / ratioAt(last);
          assert.ok(last === 1 || workers * speedAt(last) >= raw, `level ${last}: ${speedAt(last)} per worker, line takes ${raw} raw: ${levels.join(' ')}`);
          // And it spent few frames on levels above 1 that could not keep up on every worker (level 1 is the
          // fastest there is: behind the line, it still carries more than raw would).
          const behind = levels.filter((l) => l > 1 && workers * speedAt(l) < link / ratioAt(l));
          assert.ok(behind.length <= 8, `${behind.length} frames behind the line: ${levels.join(' ')}`);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('stops climbing where the measured speed, not the estimate, says the line would wait', () => {
    // Random data: high levels run far slower than zstd's usual ratios say (level 12 and up: 0.25 MB/s per worker).
    const { auto } = autoOn(250_000);
    const levels = climb(auto, (l) => (l >= 12 ? 0.25 * MB : 300 * MB * SPEED[l]!));
    assert.equal(levels.at(-1), 9, `settled at ${levels.at(-1)}: ${levels.join(' ')}`);
    assert.ok(levels.filter((l) => l >= 12).length <= 8, 'few frames at a level that cannot keep up');
  });

  it('comes back down when the measured speed of a high level cannot keep up', () => {
    const { auto } = autoOn(2 * MB);
    const first = climb(auto, (l) => 300 * MB * SPEED[l]!).at(-1)!;
    assert.ok(first >= 12, `climbed to ${first} on 2 MB/s`);
    // This data turns out slow at that level: 1 MB/s per worker, while the link takes 2 MB/s / 0.4 = 5 MB/s raw.
    feed(auto, first, 1 * MB, 0.35, 10);
    const after = auto.next();
    assert.ok(after < first, `went from ${first} to ${after}`);
    const { speed, ratio } = auto.estimate(after);
    assert.ok(2 * speed >= 1.3 * (2 * MB / ratio), `level ${after} keeps ahead: ${speed} per worker`);
  });

  it('on a LAN faster than level 1 compresses, sends raw; on one it can keep up with, compresses', () => {
    const { auto, changes, setLink } = autoOn(2000 * MB);
    assert.equal(auto.next(), 0, 'raw beats zstd when zstd is the bottleneck');
    assert.match(changes.at(-1)!.why, /cost more time than it saves on a link that carries 2000\.0 MB\/s/);
    setLink(100 * MB);
    const level = auto.next();
    assert.ok(level >= 1 && level <= 4, `100 MB/s: level ${level}`);
  });

  it('on a LAN pays no CPU for little line time: stays at the cheap levels although high ones would keep ahead', () => {
    // 30 MB/s is the receiver's pace on a LAN (both sides on two cores): level 9 would keep ahead (180 MB/s per
    // worker on this data), but saves 2.4 ns of line time per raw byte for 4.4 ns of CPU. Before, auto climbed to 9.
    const { auto, changes } = autoOn(30 * MB, 600 * MB);
    const levels = climb(auto, (l) => 600 * MB * SPEED[l]!);
    assert.ok(Math.max(...levels) <= 4, `levels: ${[...new Set(levels)].join(' ')}`);
    assert.ok(levels.at(-1)! >= 1, `settled at ${levels.at(-1)}: level 1 pays for itself here`);
    assert.ok(changes.length <= 3, `changes: ${changes.map((c) => c.level).join(' ')}`);
  });

  it('on a LAN climbs one measured level at a time: no jump on the estimate of data zstd skims at GB/s', () => {
    // The bench's quarter stream began with chunks level 3 made 0.66 of at 2.4 GB/s per worker (half of them random):
    // scaled by zstd's usual ratios, level 12 looked both cheap and 10% smaller, and auto jumped from 3 to 12 on a
    // 30 MB/s loopback, starting the second worker for frames that then came back slow and no smaller.
    for (const [l3, ratio] of [[2400, 0.66], [2400, 0.9], [1200, 0.5], [600, 0.66]] as const) {
      const { auto } = autoOn(30 * MB, l3 * MB, ratio);
      const first = auto.next();
      assert.ok(first <= 4, `level 3 measured at ${l3} MB/s, ratio ${ratio}: went to ${first}`);
    }
    // A slow line still goes straight up: there nothing competes for the cores, and keeping ahead is the only test.
    assert.equal(autoOn(250_000, 2400 * MB, 0.66).auto.next(), 19);
  });

  it('sends raw where level 1 saves less line time than it costs CPU, and compresses where it saves more', () => {
    // Data zstd hardly shrinks (0.95 at level 1) on a 200 MB/s line: 0.25 ns of line time saved per raw byte, for
    // 2.5 ns of CPU at 400 MB/s per worker, which keeps ahead of the line on two workers.
    const { auto, setLink } = autoOn(200 * MB, 300 * MB, 0.9);
    const levels = climb(auto, (l) => 270 * MB * SPEED[l]!, 20, () => 0.95);
    assert.equal(levels.at(-1), 0, `levels: ${levels.join(' ')}`);
    // The same data on 2 MB/s: 25 ns of line time saved per raw byte.
    setLink(2 * MB);
    assert.ok(auto.next() >= 1);
  });

  it('does not flap between levels on small changes of the link', () => {
    const { auto, setLink } = autoOn(20 * MB);
    const levels = new Set<number>();
    for (const r of [20, 21, 19, 22, 18, 20, 21]) {
      setLink(r * MB);
      levels.add(auto.next());
    }
    assert.equal(levels.size, 1, `levels seen: ${[...levels].join(', ')}`);
  });
});

describe('--compress auto across a cut', () => {
  it('frames the attempt after a cut at the level the line measured before it, not blind at the old level', () => {
    // The bench's slow link: the first attempt framed its frames at level 3 before its line was measured (the
    // upload reads ahead), then a cut; the next attempt's first frames are asked for before it has measured anything.
    let now = 0;
    const meter = new LinkMeter(() => now);
    const auto = new AutoLevel({ workers: 2, linkRate: () => meter.rate() });
    meter.restart();
    for (let s = 0; s <= 30; s++) {
      now = s * 1000;
      meter.progress(s * 250_000, 0);
    }
    feed(auto, 3, 300 * MB, 0.4, 4);
    meter.restart();
    now = 35_000;
    meter.progress(0, 0);
    assert.equal(auto.next(), 19, 'the line is the one measured before the cut');
  });
});

describe('link meter', () => {
  it('measures the link only over the time the upload had something to send', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    meter.restart();
    // 10 s: 1 MB sent per second, but the upload waited for frames half of each second.
    for (let s = 0; s <= 10; s++) {
      now = s * 1000;
      meter.progress(s * MB, s * 500);
    }
    assert.equal(Math.round(meter.rate()!), 2 * MB);
  });

  it('says nothing before two seconds of samples, and measures afresh after a cut, keeping the last rate until then', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    meter.progress(0, 0);
    now = 1500;
    meter.progress(10 * MB, 0);
    assert.equal(meter.rate(), null, 'a burst into socket buffers is not a link rate');
    now = 3000;
    meter.progress(11 * MB, 0);
    assert.ok(meter.rate()! > 0);
    const before = meter.rate();
    // A cut and 60 s of backoff: the next attempt counts from its own first sample, not across the gap; until its
    // own window is long enough, the line is the one the last attempt measured.
    meter.restart();
    now = 63_000;
    meter.progress(0, 0);
    now = 64_000;
    meter.progress(0.5 * MB, 0);
    assert.equal(meter.rate(), before, 'the same line as before the cut');
    now = 65_000;
    meter.progress(1 * MB, 0);
    assert.equal(Math.round(meter.rate()!), 0.5 * MB);
  });
});

describe('link meter, acknowledged bytes', () => {
  it('gives a rate from the first answer on a fast line, never more than the line carried, and none from a burst alone', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    meter.restart();
    // 100 MB/s: 8 MB handed to the socket over 100 ms, 20 of them waiting for frames (80 ms of the line); the answer
    // 10 ms later (the server's work and the round trip).
    meter.progress(0, 0);
    now = 100;
    meter.progress(8 * MB, 20);
    assert.equal(meter.atLeast(), null, 'handed to the socket is not carried');
    now = 110;
    meter.acknowledged(8 * MB, 20);
    assert.equal(meter.rate(), null, 'a lower bound is not the rate');
    const early = meter.atLeast()!;
    assert.ok(early > 50 * MB && early <= 100 * MB, `${early} B/s`);
    // A cut: the next attempt has its own answers to wait for, and the window's rate outranks an early one.
    meter.restart();
    now = 5000;
    meter.progress(8 * MB, 20);
    now = 5010;
    meter.progress(9 * MB, 20);
    assert.equal(meter.atLeast(), null, 'no window, no answer yet, and the attempt before had no window either');
  });

  it('takes no early rate that could be a slow line\'s: the first answer of a loaded machine is late', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    meter.restart();
    // 8 MB answered 2 s after the first bytes (the server starting up under load) of a line that carries 40 MB/s:
    // the bound says at least 4 MB/s, and auto took that for a line of 4 MB/s and compressed at level 15.
    meter.progress(0, 0);
    now = 200;
    meter.progress(8 * MB, 0);
    now = 1900;
    meter.acknowledged(8 * MB, 0);
    assert.equal(meter.atLeast(), null);
  });

  it('on a line shown fast by a lower bound, tests raw frames at once and chooses no level on it', () => {
    // The bench on loopback: the first answers proved 28 MB/s, auto took that for the rate and climbed to level 4 (a
    // second worker started) before its raw frames were measured.
    const auto = new AutoLevel({
      workers: 2, linkRate: () => null, linkAtLeast: () => 28 * MB, pace: new RawPace(), onChange: (level) => assert.fail(`chose level ${level}`),
    });
    feed(auto, 3, 300 * MB, 0.66, 2);
    assert.equal(auto.next(), 0, 'a raw probe');
    feed(auto, 0, 0, 1, 1);
    // Nothing has measured the raw frames yet (the pace saw no upload): the probe goes on, still with no level chosen.
    assert.equal(auto.next(), 0, 'the probe goes on until its raw frames are measured');
  });

  it('on a slow line takes nothing from an answer that comes before a megabyte crossed', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    meter.restart();
    // 2 Mbit/s: 4 MB into socket buffers at once, a small request answered after 2 s.
    meter.progress(0, 0);
    now = 10;
    meter.progress(4 * MB, 0);
    now = 1500;
    meter.acknowledged(0.4 * MB, 0);
    assert.equal(meter.atLeast(), null);
  });
});

describe('link meter, a server that keeps the upload waiting', () => {
  it('does not count the waits for a server that refuses bytes (a 507, its retries and their delays) as the line\'s', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    const auto = new AutoLevel({ workers: 2, linkRate: () => meter.rate() });
    feed(auto, 3, 300 * MB, 0.4, 4);
    meter.restart();
    // 10 s at 1 MB/s, each request answered as the next begins.
    for (let s = 0; s <= 10; s++) {
      now = s * 1000;
      meter.progress(s * MB, 0);
      meter.answered(0, false);
    }
    // The disk fills: for 30 s each retry asks the offset (HEAD), hands 64 kB of the next request to the socket, and
    // is refused (507) 2 s later, btrfs having looked for the space; then tus-js-client's delay before the next.
    for (let at = 10_000; at < 40_000; at += 3000) {
      now = at + 50;
      meter.answered(0, false);
      now = at + 60;
      meter.progress(10 * MB + 64_000, 0);
      now = at + 2060;
      meter.answered(0, true);
    }
    // Space freed: 1 MB/s again, for a second.
    for (let i = 1; i <= 10; i++) {
      now = 40_000 + i * 100;
      meter.progress(10 * MB + i * 0.1 * MB, 0);
    }
    // Before: about 43 kB/s, the 30 s of waiting counted as the line's.
    assert.ok(meter.rate()! > 0.5 * MB, `the line's rate: ${meter.rate()} B/s`);
    assert.ok(auto.next() < 19, 'no level 19 for a line as fast as before');
  });

  it('counts an accepted request\'s wait for its answer (a slow line draining socket buffers), and not the gap after it', () => {
    let now = 0;
    const meter = new LinkMeter(() => now);
    meter.restart();
    // 2 MB handed to the socket at once, carried in 4 s: the answer comes when they have arrived.
    meter.progress(0, 0);
    now = 10;
    meter.progress(2 * MB, 0);
    now = 4000;
    meter.answered(0, false);
    // The next request, 3 s later (a HEAD, a retry's delay), 1 of them spent waiting for its first frame.
    now = 7000;
    meter.progress(2 * MB, 1000);
    assert.equal(Math.round(meter.rate()! / 1000), 500, 'kB/s: 2 MB in 4 s of the line');
  });
});

describe('--compress values', () => {
  it('takes auto, none and levels 1..19, and refuses the rest with the choices', () => {
    assert.equal(parseCompressSetting('auto'), 'auto');
    assert.equal(parseCompressSetting('none'), 0);
    assert.equal(parseCompressSetting('19'), 19);
    for (const bad of ['0', '20', '3.5', 'fast', '']) assert.throws(() => parseCompressSetting(bad), /auto, none or a zstd level from 1 to 19/);
  });
});
