/**
 * Turns the bench's figures into its table: each figure beside the baseline measured in the same run, and the
 * issues' targets (issue 22's for speed, CPU and memory) judged where they apply. BenchResults is also what --json writes.
 */
import { archiveSection, type ArchiveResult } from './archive.ts';
import type { DigestBenchResult } from './digest.ts';
import type { HashResult } from './hashing.ts';
import type { LanResult, LanStreamResult, RunFigures, Skipped, SnapferryFigures } from './lan.ts';
import type { OneCoreResult } from './one-core.ts';
import type { RssFigures, RssResult } from './rss.ts';
import type { SilentLineResult, SilentPush } from './silent-line.ts';
import type { LineTimeline, SlowResult, SlowVariant } from './slow-link.ts';
import type { Section } from './options.ts';
import type { ClientStartup } from './snapferry.ts';
import { duration, megabytes, rate, times, verdict, type Row, type TableSection } from './table.ts';

export interface BenchResults {
  startedAt: string;
  seconds: number;
  quick: boolean;
  machine: { cpus: number; kernel: string; btrfsProgs: string; node: string };
  /** 1-minute load average when the bench started and when it ended: other work on the machine skews every figure. */
  load: { start: number; end: number };
  /** A snapferry process before it does anything (`push --help`). */
  startup: ClientStartup;
  data: { bytes: number; files: number; seconds: number };
  lan: LanResult | null;
  rss: RssResult | null;
  /** Push and serve on one CPU each (issue 22); absent in results written before it. */
  oneCore?: OneCoreResult | Skipped | null;
  slow: SlowResult | null;
  silent: SilentLineResult | null;
  hashing: HashResult | null;
  /** The tree digest of verify (issue 18); absent in results written before it. */
  digest?: DigestBenchResult | null;
  /** Archive mode on S3 against a btrfs server (issue 23); absent in results written before it. */
  archive?: ArchiveResult | Skipped | null;
  /** Sections that threw, with their error. */
  failed: Partial<Record<Section, string>>;
}

/** Peak RSS under this on each side, and the whole stream's within this factor of a quarter's (issue 22). */
const RSS_LIMIT_BYTES = 128e6;
const RSS_FLAT = 1.1;
/** On the slow line, auto's time on the line with the cuts aside at most this times its wire bytes at the line's rate (issue 22). */
const LINE_TIME_LIMIT = 1.05;
/** Each side's CPU per GB at most this times ssh's side (issue 22). */
const CPU_LIMIT = 1.5;
/** snapferry over http at least this fraction of `btrfs send | tee spool | btrfs receive` (issue 22). */
const SPOOL_PIPE_FLOOR = 0.85;
/** snapferry through nginx with TLS at least this fraction of snapferry over http in the same run (issue 22). */
const TLS_HTTP_FLOOR = 0.9;
/** A silence may cost the push at most the stall timeout plus this many seconds beyond the silence itself (issue 16). */
export const SILENCE_GRACE_SECONDS = 15;

export function buildSections(r: BenchResults): TableSection[] {
  const sections: TableSection[] = [];
  if (r.lan) {
    sections.push(lanSection('LAN, full stream', r.lan.full));
    sections.push(lanSection('LAN, incremental', r.lan.incremental));
    sections.push(cpuSection(r.lan.full));
  }
  if (r.slow) sections.push(slowSection(r.slow));
  if (r.silent) sections.push(silentSection(r.silent));
  if (r.rss) sections.push(rssSection(r.rss, r.startup));
  if (r.oneCore) sections.push(oneCoreSection(r.oneCore));
  if (r.hashing) sections.push(hashSection(r.hashing));
  if (r.digest) sections.push(digestSection(r.digest));
  if (r.archive) sections.push(archiveSection(r.archive));
  const failed = Object.entries(r.failed).map(([name, message]) => row(name, 'FAILED', firstLine(message)));
  if (failed.length > 0) sections.push({ title: 'Sections that failed (their figures are missing above; the error is in the log)', rows: failed });
  return sections;
}

function row(what: string, measured: string, baseline = '-', ratio = '', target = ''): Row {
  return { what, measured, baseline, ratio, target };
}

function lanSection(title: string, s: LanStreamResult): TableSection {
  const run = (f: RunFigures): string => `${duration(f.seconds)}  ${rate(f.mbps)}`;
  const pipe = `pipe ${rate(s.pipe.mbps)}`;
  const rows = [row('btrfs send | btrfs receive', run(s.pipe), '', times(1))];
  rows.push(row('btrfs send | tee spool | btrfs receive', run(s.pipeSpool), pipe, times(s.pipeSpool.mbps / s.pipe.mbps)));
  if ('skipped' in s.ssh) rows.push(row('btrfs send | ssh 127.0.0.1 btrfs receive', 'skipped', s.ssh.skipped));
  else rows.push(row('btrfs send | ssh 127.0.0.1 btrfs receive', run(s.ssh), pipe, times(s.ssh.mbps / s.pipe.mbps)));
  rows.push(row('snapferry push, http on loopback', run(s.direct), pipe, times(s.direct.mbps / s.pipe.mbps)));
  const toSpool = s.direct.mbps / s.pipeSpool.mbps;
  rows.push(
    row('snapferry push, http, against the pipe + spool', rate(s.direct.mbps), `pipe + spool ${rate(s.pipeSpool.mbps)}`, times(toSpool), verdict(`≥ ${times(SPOOL_PIPE_FLOOR)}`, toSpool >= SPOOL_PIPE_FLOOR)),
  );
  rows.push(row('snapferry push, nginx + TLS', run(s.nginx), pipe, times(s.nginx.mbps / s.pipe.mbps)));
  const tlsToHttp = s.nginx.mbps / s.direct.mbps;
  rows.push(row('snapferry push, nginx + TLS, against http', rate(s.nginx.mbps), `http ${rate(s.direct.mbps)}`, times(tlsToHttp), verdict(`≥ ${times(TLS_HTTP_FLOOR)}`, tlsToHttp >= TLS_HTTP_FLOOR)));
  if (!('skipped' in s.ssh)) rows.push(row('snapferry push, nginx + TLS, against ssh', rate(s.nginx.mbps), `ssh ${rate(s.ssh.mbps)}`, times(s.nginx.mbps / s.ssh.mbps)));
  const wire = (f: SnapferryFigures): string => `${megabytes(f.wireBytes)} (${times(f.wireBytes / s.rawBytes)} raw)`;
  rows.push(row('wire bytes, push (default --compress auto)', wire(s.direct), `zstd -3 ${megabytes(s.zstd3Bytes)}`, times(s.direct.wireBytes / s.zstd3Bytes)));
  return { title: `${title}: ${megabytes(s.rawBytes)} raw send stream, end to end (until received and checked)`, rows };
}

function cpuSection(s: LanStreamResult): TableSection {
  const perGB = (cpu: number): string => `${(cpu / (s.rawBytes / 1e9)).toFixed(2)} s/GB`;
  const rows: Row[] = [];
  const ssh = 'skipped' in s.ssh ? null : s.ssh;
  const side = (what: string, cpu: number, baseline: number | null, baselineName: string): Row =>
    baseline === null
      ? row(what, perGB(cpu), 'ssh skipped')
      : row(what, perGB(cpu), `${baselineName} ${perGB(baseline)}`, times(cpu / baseline), verdict(`≤ ${times(CPU_LIMIT)}`, cpu / baseline <= CPU_LIMIT));
  rows.push(side('client: push (node + btrfs send), http', s.direct.clientCpuSeconds, ssh?.clientCpuSeconds ?? null, 'btrfs send + ssh'));
  rows.push(side('client: push (node + btrfs send), nginx + TLS', s.nginx.clientCpuSeconds, ssh?.clientCpuSeconds ?? null, 'btrfs send + ssh'));
  rows.push(side('server: serve (node + btrfs receive), http', s.direct.serverCpuSeconds ?? 0, ssh?.serverCpuSeconds ?? null, 'sshd + btrfs receive'));
  rows.push(side('server: serve + nginx worker, TLS', s.nginx.serverCpuSeconds ?? 0, ssh?.serverCpuSeconds ?? null, 'sshd + btrfs receive'));
  rows.push(row('both: btrfs send | btrfs receive', perGB(s.pipe.clientCpuSeconds)));
  rows.push(row('both: btrfs send | tee spool | btrfs receive', perGB(s.pipeSpool.clientCpuSeconds)));
  return { title: `CPU seconds per GB of raw stream, full stream (kernel accounting, startup of push excluded)`, rows };
}

function slowSection(s: SlowResult): TableSection {
  const rows = [row('zstd -3 of the whole stream', megabytes(s.zstd3Bytes), `raw ${megabytes(s.rawBytes)}`, times(s.zstd3Bytes / s.rawBytes))];
  if (s.zstdBestBytes !== undefined) {
    rows.push(row('zstd -19 --long=27 of the whole stream (about the best any compressor makes of it)', megabytes(s.zstdBestBytes), `zstd -3 ${megabytes(s.zstd3Bytes)}`, times(s.zstdBestBytes / s.zstd3Bytes)));
  }
  for (const v of s.variants) {
    const name = `--compress ${v.setting}`;
    if ('failed' in v) {
      rows.push(row(`snapferry push ${name}`, 'FAILED', firstLine(v.failed)));
      continue;
    }
    const toZstd = v.wireBytes / s.zstd3Bytes;
    const target = v.setting === 'auto' ? verdict('≤ 0.90×', toZstd <= 0.9) : v.setting === '3' ? verdict('≤ 1.02×', toZstd <= 1.02) : '';
    rows.push(row(`wire bytes, ${name}`, `${megabytes(v.wireBytes)} (${times(v.wireBytes / s.rawBytes)} raw)`, `zstd -3 ${megabytes(s.zstd3Bytes)}`, times(toZstd), target));
    const atRate = v.wireBytes / s.linkBytesPerSecond;
    rows.push(row(`time, ${name}`, duration(v.seconds), `wire bytes at link rate ${duration(atRate)}`, times(v.seconds / atRate)));
    const onLine = v.line ? lineCutsAside(v.line, s.linkBytesPerSecond, v.resentBytes) : null;
    if (onLine !== null) {
      const ratio = onLine.seconds / atRate;
      const limit = v.setting === 'auto' ? verdict(`≤ ${times(LINE_TIME_LIMIT)}`, ratio <= LINE_TIME_LIMIT) : '';
      rows.push(row(`time on the line, cuts aside, ${name}`, duration(onLine.seconds), `wire bytes at link rate ${duration(atRate)}`, times(ratio), limit));
      const carried = `line carried ${(onLine.busyBytesPerSecond / 1e3).toFixed(0)} kB/s when busy`;
      rows.push(row(`  of it idle, ${name}`, duration(onLine.idleSeconds), carried, times(onLine.busyBytesPerSecond / s.linkBytesPerSecond)));
    }
    rows.push(resentRow(name, v));
  }
  const title =
    `Slow link: ${(s.linkBytesPerSecond * 8) / 1e6} Mbit/s, cut every ${megabytes(s.cutEveryBytes)} (${Math.round(s.cutEveryBytes / s.linkBytesPerSecond)} s), ${megabytes(s.rawBytes)} raw stream; ` +
    `time: the whole push; on the line, cuts aside: first byte to last, less each cut until the line carries again, less re-sent bytes`;
  return { title, rows };
}

function silentSection(s: SilentLineResult): TableSection {
  const atRate = s.wireBytes / ((s.rates.upKbit * 1000) / 8);
  const rows = [row('no silence', duration(s.baseline.seconds), `wire bytes at the line's rate ${duration(atRate)}`, times(s.baseline.seconds / atRate))];
  const limit = s.stallSeconds + SILENCE_GRACE_SECONDS;
  for (const p of s.silences) {
    const what = `silence ${p.silence.seconds} s, connections ${p.silence.forget ? 'forgotten' : 'kept'}`;
    if ('failed' in p) {
      rows.push(row(what, 'FAILED', firstLine(p.failed)));
      continue;
    }
    const lost = lostSeconds(s, p);
    rows.push(
      row(
        what,
        `${duration(lost)} lost`,
        `push ${duration(p.seconds)}, no silence ${duration(s.baseline.seconds)}`,
        times(p.seconds / (s.baseline.seconds + p.silentSeconds)),
        verdict(`≤ ${limit} s (stall timeout ${s.stallSeconds} s + ${SILENCE_GRACE_SECONDS} s)`, lost <= limit),
      ),
    );
  }
  const title =
    `Silent line: ${s.rates.upKbit / 1000} Mbit/s up, ${s.rates.downKbit / 1000} down, ${megabytes(s.rawBytes)} raw stream, --compress none, ` +
    `default --stall-timeout ${s.stallSeconds} s, serve --idle-timeout ${s.idleSeconds} s; a silence ${Math.round(s.silenceAt * 100)}% into the push; ` +
    `lost = push - no silence - silence; ratio: push / (no silence + silence)`;
  return { title, rows };
}

/** What a silence cost beyond itself: the push's time less the push's with no silence, less the silence. */
export function lostSeconds(s: Pick<SilentLineResult, 'baseline'>, p: Pick<SilentPush, 'seconds' | 'silentSeconds'>): number {
  return p.seconds - s.baseline.seconds - p.silentSeconds;
}

/** The push on the slow line with its cuts set aside (lineCutsAside). */
export interface LineCutsAside {
  /** Time on the line, cuts aside. */
  seconds: number;
  /** Of it, sample intervals in which the line carried less than half its rate: the push's own idle time. */
  idleSeconds: number;
  /** What the line carried while it carried at least half its rate: the proxy's own rate, below the one set under load. */
  busyBytesPerSecond: number;
}

/**
 * The push's time on the slow line with its cuts set aside, the "time on the line ... cuts aside": from the
 * first byte upstream to the last, less each cut's gap (from the cut until the line carries at least half its rate
 * again: the push reconnects, runs btrfs send again and hashes it up to the server's offset), less the line time of
 * the bytes sent again (parts of frames after a cut, and every request's headers). What is left is the line carrying
 * the upload and the idle time that is the push's own: frames not ready, turnarounds between PATCHes. Neither the
 * push's start before its first byte nor the server's receive after the last is time on the line. The samples bound
 * each moment to an interval; each is taken at the end that makes the time longer, so it never flatters the push.
 * Null when nothing crossed the line.
 */
export function lineCutsAside(line: LineTimeline, bytesPerSecond: number, resentBytes: number): LineCutsAside | null {
  const samples = line.samples;
  const total = samples.at(-1)?.[1] ?? 0;
  const firstMoved = samples.findIndex(([, bytes]) => bytes > 0);
  if (total <= 0 || firstMoved < 0) return null;
  const first = samples[Math.max(0, firstMoved - 1)]![0];
  const last = samples.find(([, bytes]) => bytes >= total)![0];
  const carries = (i: number): boolean => samples[i]![1] - samples[i - 1]![1] >= (bytesPerSecond * (samples[i]![0] - samples[i - 1]![0])) / 2;
  // Each cut's gap: from the cut until the line is back, the first sample interval after the cut in which it carried
  // at least half its rate; it came back at that interval's start, or anywhere in the one before if that one carried
  // anything. Gaps that overlap count once.
  const backAfter = (cut: number): number => {
    for (let i = 1; i < samples.length; i++) {
      if (samples[i - 1]![0] < cut || !carries(i)) continue;
      const before = samples[i - 2];
      return before !== undefined && samples[i - 1]![1] > before[1] ? before[0] : samples[i - 1]![0];
    }
    return last;
  };
  let gaps = 0;
  let counted = -Infinity;
  for (const cut of [...line.cuts].sort((a, b) => a - b)) {
    const from = Math.max(cut, counted);
    const back = Math.min(backAfter(cut), last);
    if (back > from) gaps += back - from;
    counted = Math.max(counted, back);
  }
  let busy = 0;
  let busyBytes = 0;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i - 1]![0] < first || samples[i]![0] > last || !carries(i)) continue;
    busy += samples[i]![0] - samples[i - 1]![0];
    busyBytes += samples[i]![1] - samples[i - 1]![1];
  }
  const seconds = last - first - gaps - resentBytes / bytesPerSecond;
  return { seconds, idleSeconds: Math.max(0, last - first - gaps - busy), busyBytesPerSecond: busy > 0 ? busyBytes / busy : 0 };
}

/** The first line of an error, short enough for a table cell. */
export function firstLine(message: string, max = 110): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function resentRow(name: string, v: SlowVariant): Row {
  if (v.cuts === 0) return row(`re-sent after cuts, ${name}`, `no cuts (${megabytes(v.resentBytes)} of requests)`);
  const perCut = v.resentBytes / v.cuts;
  return row(`re-sent per cut, ${name}`, `${megabytes(perCut)} × ${v.cuts} cuts`, `one frame ${megabytes(v.frameBytes)}`, times(perCut / v.frameBytes), verdict('≤ 1 frame', perCut <= v.frameBytes));
}

function rssSection(r: RssResult, startup: ClientStartup): TableSection {
  const side = (what: string, pick: (f: RssFigures) => number): Row => {
    const small = pick(r.small);
    const large = pick(r.large);
    const ok = Math.max(small, large) <= RSS_LIMIT_BYTES && large / small <= RSS_FLAT;
    return row(what, `${megabytes(large)} (whole)`, `${megabytes(small)} (quarter)`, times(large / small), verdict(`≤ ${megabytes(RSS_LIMIT_BYTES)}, ≤ ${times(RSS_FLAT)}`, ok));
  };
  return {
    title: `Peak RSS of each process: a quarter of the stream ${megabytes(r.small.rawBytes)}, the whole ${megabytes(r.large.rawBytes)} (${times(r.large.rawBytes / r.small.rawBytes)}); ratio: whole / quarter`,
    rows: [
      side('snapferry push', (f) => f.clientMaxRssBytes),
      side('snapferry serve', (f) => f.serverMaxRssBytes),
      row('for scale: node + the code, idle (push --help)', megabytes(startup.maxRssBytes)),
    ],
  };
}

function oneCoreSection(o: OneCoreResult | Skipped): TableSection {
  const title = 'One core each (a small machine at each end)';
  if ('skipped' in o) return { title, rows: [row('push and serve on one CPU each', 'skipped', o.skipped)] };
  const perGB = (cpu: number): string => `${(cpu / (o.rawBytes / 1e9)).toFixed(2)} s/GB`;
  const run = (f: RunFigures): string => `${duration(f.seconds)}  ${rate(f.mbps)}`;
  const toSpool = o.push.mbps / o.pipeSpool.mbps;
  const rows = [
    row('btrfs send | tee spool | btrfs receive', run(o.pipeSpool)),
    row('snapferry push, http on loopback', run(o.push), `pipe + spool ${rate(o.pipeSpool.mbps)}`, times(toSpool), verdict(`≥ ${times(SPOOL_PIPE_FLOOR)}`, toSpool >= SPOOL_PIPE_FLOOR)),
  ];
  if ('skipped' in o.ssh) {
    rows.push(row('btrfs send | ssh 127.0.0.1 btrfs receive', 'skipped', o.ssh.skipped));
  } else {
    const ssh = o.ssh;
    rows.push(row('btrfs send | ssh 127.0.0.1 btrfs receive', run(ssh), `pipe + spool ${rate(o.pipeSpool.mbps)}`, times(ssh.mbps / o.pipeSpool.mbps)));
    const client = o.push.clientCpuSeconds / ssh.clientCpuSeconds;
    const server = (o.push.serverCpuSeconds ?? 0) / (ssh.serverCpuSeconds ?? Number.NaN);
    rows.push(row('CPU, client: push (node + btrfs send)', perGB(o.push.clientCpuSeconds), `btrfs send + ssh ${perGB(ssh.clientCpuSeconds)}`, times(client), verdict(`≤ ${times(CPU_LIMIT)}`, client <= CPU_LIMIT)));
    rows.push(row('CPU, server: serve (node + btrfs receive)', perGB(o.push.serverCpuSeconds ?? 0), `sshd + btrfs receive ${perGB(ssh.serverCpuSeconds ?? 0)}`, times(server), verdict(`≤ ${times(CPU_LIMIT)}`, server <= CPU_LIMIT)));
  }
  rows.push(row('peak RSS, push / serve', `${megabytes(o.push.clientMaxRssBytes)} / ${megabytes(o.push.serverMaxRssBytes)}`));
  return { title: `${title}: push on CPU ${o.cpus.client}, serve on CPU ${o.cpus.server}, baselines pinned alike; ${megabytes(o.rawBytes)} full stream`, rows };
}

function digestSection(d: DigestBenchResult): TableSection {
  const cat = `cat ${rate(d.catMBps)}`;
  return {
    title: `Tree digest of verify (issue 18), ${megabytes(d.bytes)} in ${d.entries} entries, from the page cache`,
    rows: [
      row('digestTree of s1: walk, xattrs, every byte hashed', rate(d.digestMBps), cat, times(d.digestMBps / d.catMBps)),
      row('digestTree of s2 reusing s1 (a daily incremental)', duration(d.incrementalSeconds), `full ${duration(d.fullSeconds)}`, times(d.incrementalSeconds / d.fullSeconds)),
      row('bytes on the line to verify an identical tree', `${d.identicalLineBytes} B`, '-', '', verdict('< 1 KB', d.identicalLineBytes < 1000)),
    ],
  };
}

function hashSection(h: HashResult): TableSection {
  const send = `btrfs send > /dev/null ${rate(h.sendToNullMBps)}`;
  return {
    title: `Resume hashing (hashRawPrefix, 4 MiB chunks), full stream ${megabytes(h.rawBytes)}`,
    rows: [
      row('hashing alone (stream from the page cache)', rate(h.hashOnlyMBps), send, times(h.hashOnlyMBps / h.sendToNullMBps), verdict('> 1.00×', h.hashOnlyMBps > h.sendToNullMBps)),
      row('a resume: btrfs send | check | hash', rate(h.resumePathMBps), send, times(h.resumePathMBps / h.sendToNullMBps)),
    ],
  };
}
