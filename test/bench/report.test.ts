// The bench's table: targets judged the right way round, columns aligned, and the command line it accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LanStreamResult, SnapferryFigures } from './lan.ts';
import { parseBenchArgs } from './options.ts';
import { buildSections, lineCutsAside, lostSeconds, type BenchResults } from './report.ts';
import type { SilentPush } from './silent-line.ts';
import type { LineTimeline, SlowVariant } from './slow-link.ts';
import { renderTable } from './table.ts';

const push = (mbps: number, wireBytes: number): SnapferryFigures => ({
  seconds: 1000 / mbps, mbps, clientCpuSeconds: 5, serverCpuSeconds: 6, wireBytes, clientMaxRssBytes: 90e6, serverMaxRssBytes: 100e6, levelNotes: [],
});

function lanStream(nginxMBps: number): LanStreamResult {
  return {
    rawBytes: 1e9,
    zstd3Bytes: 600e6,
    pipe: { seconds: 6.5, mbps: 155, clientCpuSeconds: 4, serverCpuSeconds: null },
    pipeSpool: { seconds: 10, mbps: 100, clientCpuSeconds: 7, serverCpuSeconds: null },
    ssh: { seconds: 9, mbps: 110, clientCpuSeconds: 3, serverCpuSeconds: 4 },
    direct: push(120, 610e6),
    nginx: push(nginxMBps, 610e6),
  };
}

function silentPush(seconds: number, forget: boolean): SilentPush {
  return {
    silence: { seconds, forget }, seconds: 0, upstreamBytes: 7e6, interruptions: 1,
    silentAfter: 12.5, silentSeconds: seconds, crossedBeforeSilence: 2.6e6, movingAfter: 3, notes: [],
  };
}

function results(over: Partial<BenchResults> = {}): BenchResults {
  return {
    startedAt: '2026-01-01T00:00:00.000Z', seconds: 600, quick: false,
    machine: { cpus: 2, kernel: '6.1', btrfsProgs: 'btrfs-progs v6.2', node: 'v20' },
    load: { start: 0.1, end: 0.5 },
    startup: { cpuSeconds: 0.8, maxRssBytes: 70e6 },
    data: { bytes: 1.07e9, files: 20000, seconds: 20 },
    lan: { full: lanStream(120), incremental: lanStream(100) },
    rss: { small: { rawBytes: 250e6, clientMaxRssBytes: 90e6, serverMaxRssBytes: 100e6 }, large: { rawBytes: 1e9, clientMaxRssBytes: 92e6, serverMaxRssBytes: 180e6 } },
    slow: {
      rawBytes: 46e6, zstd3Bytes: 30e6, zstdBestBytes: 27.6e6, linkBytesPerSecond: 250_000, cutEveryBytes: 7.5e6,
      variants: [
        { setting: '3', seconds: 130, wireBytes: 30.9e6, upstreamBytes: 35e6, cuts: 4, resentBytes: 4.1e6, frameBytes: 4194376, levelNotes: [] },
        { setting: 'auto', seconds: 120, wireBytes: 27e6, upstreamBytes: 40e6, cuts: 4, resentBytes: 20e6, frameBytes: 4194376, levelNotes: [] },
      ],
    },
    silent: {
      rawBytes: 5.3e6, wireBytes: 5.3e6, rates: { upKbit: 2000, downKbit: 8000 }, stallSeconds: 30, idleSeconds: 60, silenceAt: 0.5,
      baseline: { seconds: 25, upstreamBytes: 5.31e6, interruptions: 0 },
      silences: [
        { ...silentPush(20, false), seconds: 50 },
        { ...silentPush(20, true), seconds: 75 },
        { ...silentPush(60, true), seconds: 131 },
      ],
    },
    hashing: { rawBytes: 1e9, sendToNullMBps: 410, hashOnlyMBps: 900, resumePathMBps: 380 },
    failed: {},
    ...over,
  };
}

const find = (sections: ReturnType<typeof buildSections>, section: RegExp, what: RegExp) => {
  const rows = sections.find((s) => section.test(s.title))?.rows ?? [];
  const row = rows.find((r) => what.test(r.what));
  assert.ok(row, `a row ${what} in section ${section}`);
  return row;
};

test('targets are judged as the issue states them', () => {
  const sections = buildSections(results());
  assert.match(find(sections, /^LAN, full/, /nginx \+ TLS, against http/).target, /met/, '120 MB/s through nginx, as fast as http');
  assert.equal(find(sections, /^LAN, incremental/, /nginx \+ TLS, against http/).ratio, '0.83×');
  assert.match(find(sections, /^LAN, incremental/, /nginx \+ TLS, against http/).target, /MISSED/, '100 MB/s against 120 is below 0.90×');
  assert.equal(find(sections, /^LAN, full/, /nginx \+ TLS, against ssh/).target, '', 'ssh is shown for scale, without a target');
  assert.match(find(sections, /^CPU/, /client: push .*http/).target, /MISSED/, '5 s/GB against ssh at 3 is 1.67×');
  assert.match(find(sections, /^CPU/, /server: serve .*http/).target, /met/, '6 s/GB against ssh at 4 is 1.50×');
  assert.match(find(sections, /^Slow link/, /wire bytes, --compress 3/).target, /MISSED/, '30.9 MB is 1.03× zstd -3');
  assert.match(find(sections, /^Slow link/, /wire bytes, --compress auto/).target, /met/, 'auto at 0.90× zstd -3');
  assert.equal(find(sections, /^Slow link/, /zstd -19 --long=27/).ratio, '0.92×', 'the best whole-stream compressor against zstd -3');
  const slow = results().slow!;
  slow.variants[1] = { ...(slow.variants[1] as SlowVariant), wireBytes: 28e6 };
  assert.match(find(buildSections(results({ slow })), /^Slow link/, /wire bytes, --compress auto/).target, /MISSED/, '0.93× is not 0.90×');
  assert.match(find(sections, /^Slow link/, /re-sent per cut, --compress 3/).target, /met/, 'about a quarter frame per cut');
  assert.match(find(sections, /^Slow link/, /re-sent per cut, --compress auto/).target, /MISSED/, '5 MB per cut is more than a 4 MiB frame');
  assert.match(find(sections, /^Peak RSS/, /push$/).target, /met/, 'flat and under 128 MB');
  assert.match(find(sections, /^Peak RSS/, /serve$/).target, /MISSED/, 'grew 1.8× and passed 128 MB');
  assert.match(find(sections, /^Resume hashing/, /alone/).target, /met/);
  assert.equal(find(sections, /^LAN, full/, /http on loopback/).ratio, '0.77×', 'ratio to the pipe');
  assert.equal(find(sections, /^LAN, full/, /http on loopback/).target, '', 'the bare pipe is shown for scale, without a target');
  assert.equal(find(sections, /^LAN, full/, /against the pipe \+ spool/).ratio, '1.20×', '120 MB/s against the spooling pipe at 100');
  assert.match(find(sections, /^LAN, full/, /against the pipe \+ spool/).target, /met/, 'at least 0.85× the spooling pipe');
  const slowHttp = { lan: { full: { ...lanStream(80), direct: push(84, 610e6) }, incremental: lanStream(100) } };
  assert.match(find(buildSections(results(slowHttp)), /^LAN, full/, /against the pipe \+ spool/).target, /MISSED/, '0.84× is below 0.85×');
  assert.equal(find(sections, /^LAN, full/, /tee spool/).ratio, '0.65×', 'the spooling pipe against the plain one');
  assert.equal(find(sections, /^CPU/, /client: push .*http/).baseline, 'btrfs send + ssh 3.00 s/GB');
});

test('peak RSS: at most 128 MB on each side, and the whole stream at most 1.10× a quarter of it', () => {
  const rss = (quarter: number, whole: number) =>
    buildSections(results({ rss: { small: { rawBytes: 250e6, clientMaxRssBytes: quarter, serverMaxRssBytes: 100e6 }, large: { rawBytes: 1e9, clientMaxRssBytes: whole, serverMaxRssBytes: 100e6 } } }));
  assert.match(find(rss(120e6, 128e6), /^Peak RSS/, /push$/).target, /met/, '128 MB is the limit, 1.07× is flat');
  assert.match(find(rss(120e6, 129e6), /^Peak RSS/, /push$/).target, /MISSED/, '129 MB is past it');
  assert.match(find(rss(100e6, 111e6), /^Peak RSS/, /push$/).target, /MISSED/, '1.11× grew with the stream');
  const row = find(rss(100e6, 110e6), /^Peak RSS/, /push$/);
  assert.equal(row.ratio, '1.10×');
  assert.match(row.baseline, /quarter/);
});

test('one core each: snapferry against the pinned spooling pipe and ssh of the same run', () => {
  const oneCore = {
    rawBytes: 1e9, cpus: { client: '0', server: '1' },
    pipeSpool: { seconds: 20, mbps: 50, clientCpuSeconds: 9, serverCpuSeconds: null },
    ssh: { seconds: 16, mbps: 62.5, clientCpuSeconds: 4, serverCpuSeconds: 5 },
    push: { ...push(40, 1e9), clientCpuSeconds: 6, serverCpuSeconds: 8 },
  };
  const sections = buildSections(results({ oneCore }));
  const speed = find(sections, /^One core each/, /snapferry push/);
  assert.equal(speed.ratio, '0.80×', '40 MB/s against the spooling pipe at 50');
  assert.match(speed.target, /MISSED/, 'below 0.85×');
  const client = find(sections, /^One core each/, /client/);
  assert.equal(client.ratio, '1.50×');
  assert.match(client.target, /met/, '6 s/GB against ssh at 4 is 1.5×');
  assert.match(find(sections, /^One core each/, /server/).target, /MISSED/, '8 against 5 is 1.6×');
  const skipped = buildSections(results({ oneCore: { skipped: 'needs 2 CPUs: one for each side' } }));
  assert.match(find(skipped, /^One core each/, /one CPU each/).baseline, /needs 2 CPUs/);
});

/**
 * A line sampled every 0.1 s as slow-link.ts samples the proxy: `spans` are [seconds, bytes per second] in order, and
 * `extra` bytes cross at given moments (a request's headers while the line is otherwise idle).
 */
function timeline(spans: Array<[number, number]>, cuts: number[], extra: Array<[number, number]> = []): LineTimeline {
  const bytesAt = (t: number): number => {
    let bytes = 0;
    let at = 0;
    for (const [seconds, rate] of spans) {
      bytes += Math.max(0, Math.min(t, at + seconds) - at) * rate;
      at += seconds;
    }
    return Math.round(bytes + extra.filter(([when]) => when <= t).reduce((sum, [, n]) => sum + n, 0));
  };
  const end = spans.reduce((sum, [seconds]) => sum + seconds, 0);
  const samples: Array<[number, number]> = [];
  for (let i = 0; i * 0.1 <= end + 1e-9; i++) samples.push([i * 0.1, bytesAt(i * 0.1)]);
  return { samples, cuts };
}

test('slow line: the time on the line with the cuts aside, from the first byte to the last, and judged for auto', () => {
  const rate = 250_000;
  // 2 s before the first byte; a cut at 30.05 s, the line idle until 31.5 s but for a HEAD's 300 bytes at 31.0 s; the
  // push's own 5 s wait for frames at 60 s; the line idle for the last 5 s while the server receives.
  const spans = (wait: number): Array<[number, number]> => [[2, 0], [28.05, rate], [1.45, 0], [28.5, rate], [wait, 0], [17, rate], [5, 0]];
  const line = timeline(spans(5), [30.05], [[31, 300]]);
  const resent = 300 + 1000;
  // Truly: 2 s to 82 s less the gap of 1.45 s, less the re-sent bytes' line time (5.2 ms).
  const truly = 80 - 1.45 - resent / rate;
  const figures = lineCutsAside(line, rate, resent)!;
  const onLine = figures.seconds;
  assert.ok(onLine >= truly - 0.001 && onLine <= truly + 0.25, `${onLine} s: at most a sample longer than ${truly} s, never shorter`);
  assert.ok(Math.abs(figures.idleSeconds - 5) <= 0.25, `the 5 s wait for frames is the idle time (${figures.idleSeconds} s)`);
  assert.ok(Math.abs(figures.busyBytesPerSecond - rate) <= 0.02 * rate, `the line carried its rate when busy (${figures.busyBytesPerSecond})`);
  // Two cuts in one gap count once.
  assert.deepEqual(lineCutsAside({ ...line, cuts: [30.05, 30.3] }, rate, resent), figures);
  assert.equal(lineCutsAside(timeline([[1.05, 0], [0.95, rate]], []), rate, 0)?.seconds, 1, 'from the sample before the first byte, 1.0 s, to the end');
  assert.equal(lineCutsAside(timeline([[1, 0]], []), rate, 0), null, 'nothing crossed');

  const slow = results().slow!;
  const wireBytes = line.samples.at(-1)![1] - resent;
  const variant = (wait: number, setting: string): SlowVariant => ({
    setting, seconds: 92, wireBytes, upstreamBytes: wireBytes + resent, cuts: 1, resentBytes: resent, frameBytes: 4194376, levelNotes: [],
    line: timeline(spans(wait), [30.05], [[31, 300]]),
  });
  slow.variants = [variant(5, '3'), variant(5, 'auto')];
  const waited = buildSections(results({ slow }));
  const auto = find(waited, /^Slow link/, /on the line, cuts aside, --compress auto/);
  assert.equal(auto.ratio, `${(onLine / (wireBytes / rate)).toFixed(2)}×`);
  assert.match(auto.target, /≤ 1.05×: MISSED/, '5 s waiting for frames in 73.5 s is 1.07×');
  assert.match(find(waited, /^Slow link/, /of it idle, --compress auto/).measured, /^5\.\d s$/);
  assert.equal(find(waited, /^Slow link/, /on the line, cuts aside, --compress 3/).target, '', 'the target is auto\'s');
  slow.variants = [variant(1, 'auto')];
  assert.match(find(buildSections(results({ slow })), /^Slow link/, /on the line, cuts aside, --compress auto/).target, /met/, 'a 1 s wait is 1.01×');
  assert.ok(!buildSections(results()).some((s) => s.rows.some((r) => /cuts aside/.test(r.what))), 'no row from results without the line');
});

test('silent line: the seconds each silence lost beyond itself, against the stall timeout plus 15 s', () => {
  const r = results();
  const sections = buildSections(r);
  assert.equal(lostSeconds(r.silent!, r.silent!.silences[1] as SilentPush), 30, '75 s less 25 with no silence, less the 20 s silence');
  const kept = find(sections, /^Silent line/, /^silence 20 s, connections kept$/);
  assert.equal(kept.measured, '5.0 s lost');
  assert.equal(kept.baseline, 'push 50.0 s, no silence 25.0 s');
  assert.equal(kept.ratio, '1.11×', '50 s against 25 + 20');
  assert.equal(kept.target, '≤ 45 s (stall timeout 30 s + 15 s): met');
  assert.match(find(sections, /^Silent line/, /^silence 20 s, connections forgotten$/).target, /: met$/, '30 s lost is within 45');
  const minute = find(sections, /^Silent line/, /^silence 60 s, connections forgotten$/);
  assert.equal(minute.measured, '46.0 s lost', '131 s less 25, less 60');
  assert.match(minute.target, /MISSED/, '46 s is past 30 s + 15');
  assert.equal(find(sections, /^Silent line/, /^no silence$/).measured, '25.0 s');
  assert.match(sections.find((s) => /^Silent line/.test(s.title))!.title, /--stall-timeout 30 s/);
});

test('silent line: a longer stall timeout moves the target; a silence that failed shows its error', () => {
  const r = results();
  r.silent!.stallSeconds = 40;
  r.silent!.silences[0] = { silence: { seconds: 20, forget: false }, failed: 'the push ended 24.0 s in, before its silence was due\nmore' };
  const sections = buildSections(r);
  assert.match(find(sections, /^Silent line/, /^silence 60 s/).target, /^≤ 55 s \(stall timeout 40 s \+ 15 s\): met$/, '46 s is within 40 + 15');
  const failed = find(sections, /^Silent line/, /^silence 20 s, connections kept$/);
  assert.equal(failed.measured, 'FAILED');
  assert.equal(failed.baseline, 'the push ended 24.0 s in, before its silence was due');
});

test('a run without an ssh row says why and judges nothing against it', () => {
  const full = { ...lanStream(120), ssh: { skipped: '/usr/sbin/sshd is missing: install openssh-server' } };
  const sections = buildSections(results({ lan: { full, incremental: full } }));
  assert.match(find(sections, /^LAN, full/, /ssh 127/).baseline, /install openssh-server/);
  assert.ok(!sections.some((s) => s.rows.some((r) => /against ssh/.test(r.what))));
  assert.equal(find(sections, /^CPU/, /server: serve .*http/).baseline, 'ssh skipped');
});

test('a failed section and a failed slow-link variant show in the table, with their error', () => {
  const r = results({ rss: null, failed: { rss: 'push of q1 failed: snapferry serve exited (1) during the push: TusStatusError: x\nmore' } });
  r.slow!.variants[1] = { setting: 'auto', failed: 'push of w1 failed: still running after 20 min\ncommand: ...' };
  const sections = buildSections(r);
  assert.equal(find(sections, /failed/, /^rss$/).baseline, 'push of q1 failed: snapferry serve exited (1) during the push: TusStatusError: x');
  assert.equal(find(sections, /^Slow link/, /push --compress auto/).measured, 'FAILED');
  assert.match(find(sections, /^Slow link/, /wire bytes, --compress 3/).target, /MISSED/, 'the other variant still judged');
  assert.ok(!sections.some((s) => /^Peak RSS/.test(s.title)));
});

test('the table is one block with aligned columns', () => {
  const text = renderTable('title', buildSections(results()));
  const lines = text.split('\n');
  assert.equal(lines[0], 'title');
  assert.match(lines[1]!, /^-+$/);
  const ratioEnd = lines[2]!.indexOf('ratio') + 'ratio'.length;
  const withRatio = lines.filter((l) => l.startsWith('  ') && /\d\.\d\d×/.test(l));
  assert.ok(withRatio.length > 20);
  for (const line of withRatio) assert.match(line.slice(0, ratioEnd), /\d\.\d\d×$/, `the ratio ends under the header's:\n${lines[2]}\n${line}`);
});

test('command line: --quick, --json, --only', () => {
  const quick = parseBenchArgs(['--quick', '--json', 'out.json', '--only', 'lan,hash'], {});
  assert.ok(quick !== 'help');
  assert.equal(quick.quick, true);
  assert.equal(quick.json, 'out.json');
  assert.deepEqual([...quick.only].sort(), ['hash', 'lan']);
  assert.ok(quick.scale.dataMiB < 1024);
  const full = parseBenchArgs([], {});
  assert.ok(full !== 'help');
  assert.ok(full.scale.dataMiB >= 1024, 'the full run writes at least 1 GiB');
  assert.ok(full.scale.cutEveryBytes > 4 * 1024 * 1024 + 72, 'cuts come further apart than a frame');
  const fromEnv = parseBenchArgs([], { SNAPFERRY_BENCH_QUICK: '1' });
  assert.ok(fromEnv !== 'help' && fromEnv.quick, 'SNAPFERRY_BENCH_QUICK=1 is --quick');
  const silent = parseBenchArgs(['--only', 'silent'], {});
  assert.ok(silent !== 'help');
  assert.deepEqual([...silent.only], ['silent'], 'the silent line runs alone');
  assert.ok(full.scale.silences.some((s) => s.seconds > 30 && s.forget), 'a silence past the default stall timeout, the line forgetting');
  assert.ok(full.scale.silentMiB <= 6, 'a few MB: the line carries 250 kB/s');
  assert.throws(() => parseBenchArgs(['--only', 'lan,nope'], {}), /unknown section nope/);
  assert.equal(parseBenchArgs(['--help'], {}), 'help');
});

test('archive: one and two instances against the btrfs server of the same run, and two against one; skipped says what to install', () => {
  const run = (mbps: number, serverCpuSeconds: number, storeCpuSeconds: number | null) => ({
    seconds: 250 / mbps, mbps, clientCpuSeconds: 3, serverCpuSeconds, storeCpuSeconds,
  });
  const archive = { rawBytes: 250e6, ceph: 'ceph version 16.2.15 pacific (stable)', rounds: 2, btrfs: run(50, 2, null), one: run(40, 1.5, 2), two: run(44, 1.75, 2.5) };
  const sections = buildSections(results({ archive }));
  assert.equal(find(sections, /^Archive/, /one serve instance/).ratio, '0.80×', '40 MB/s against the btrfs server at 50');
  assert.equal(find(sections, /^Archive/, /two serve instances/).ratio, '0.88×');
  assert.equal(find(sections, /^Archive/, /two instances against one/).ratio, '1.10×');
  const cpu = find(sections, /^Archive/, /CPU, serve .* one instance/);
  assert.equal(cpu.measured, '6.00 s/GB', '1.5 s for 0.25 GB');
  assert.equal(cpu.ratio, '0.75×', 'against the btrfs server at 8 s/GB');
  assert.equal(find(sections, /^Archive/, /Ceph daemons/).measured, '8.00 s/GB / 10.00 s/GB');
  const skipped = buildSections(results({ archive: { skipped: '/usr/bin/radosgw is missing: install Ceph (apt-get install -y radosgw)' } }));
  const row = find(skipped, /^Archive/, /one and two instances/);
  assert.equal(row.measured, 'skipped');
  assert.match(row.baseline, /install Ceph/);
  assert.ok(!buildSections(results()).some((s) => /^Archive/.test(s.title)), 'no archive section when it did not run');
  const only = parseBenchArgs(['--only', 'archive', '--quick'], {});
  assert.ok(only !== 'help');
  assert.deepEqual([...only.only], ['archive']);
  assert.equal(only.scale.archiveStream, 'full', '--quick pushes its whole (64 MiB) stream');
  const full = parseBenchArgs([], {});
  assert.ok(full !== 'help' && full.scale.archiveStream === 'quarter', 'a full run pushes the quarter stream: the OSD keeps the bucket in memory');
});
