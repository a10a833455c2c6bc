// Preloaded into a snapferry process (`NODE_OPTIONS=--import=.../probe.mjs`) by the bench: on exit it writes the
// process's peak RSS and CPU time to the file named by SNAPFERRY_BENCH_PROBE. Plain JavaScript, because it loads
// before snapferry registers tsx.
//
// With SNAPFERRY_BENCH_MEMORY=DIR it also samples what the RSS is made of (every 20 ms: process.memoryUsage() and
// /proc/self/status) and writes to DIR, a file per process, the sample at the peak RSS and the peak of each part:
// where the 128 MB target's megabytes go (docs/performance.md).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

const file = process.env.SNAPFERRY_BENCH_PROBE;
const MiB = 1024 * 1024;

function statusKiB() {
  const out = {};
  for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const m = /^(VmRSS|RssAnon|RssFile|RssShmem|VmHWM|Threads):\s+(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function sample() {
  const m = process.memoryUsage();
  const s = statusKiB();
  return {
    rssMiB: m.rss / MiB,
    heapTotalMiB: m.heapTotal / MiB,
    heapUsedMiB: m.heapUsed / MiB,
    externalMiB: m.external / MiB,
    arrayBuffersMiB: m.arrayBuffers / MiB,
    rssAnonMiB: (s.RssAnon ?? 0) / 1024,
    rssFileMiB: (s.RssFile ?? 0) / 1024,
    threads: s.Threads ?? 0,
  };
}

let memory = null;
if (file && isMainThread && process.env.SNAPFERRY_BENCH_MEMORY) {
  memory = { atPeak: sample(), peaks: sample() };
  setInterval(() => {
    const now = sample();
    if (now.rssMiB >= memory.atPeak.rssMiB) memory.atPeak = now;
    for (const k of Object.keys(now)) memory.peaks[k] = Math.max(memory.peaks[k], now[k]);
  }, 20).unref();
}

if (file && isMainThread) {
  process.on('exit', () => {
    const usage = process.resourceUsage();
    // /proc/self/stat after the ")" of the name: field 16 and 17 (cutime, cstime) are the CPU ticks of children
    // already waited for (btrfs send or receive), which resourceUsage() does not count.
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    writeFileSync(
      file,
      JSON.stringify({
        // VmHWM: this process's own peak. Not usage.maxRSS (ru_maxrss), which Linux carries over from the parent
        // this process was forked from until its exec: started by the bench, a process read at least as large as
        // the bench was at that moment (test/bench/probe-own-peak.test.ts).
        maxRssKiB: statusKiB().VmHWM,
        selfCpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
        childTicks: Number(fields[13]) + Number(fields[14]),
      }),
    );
    if (memory) {
      const name = `${path.basename(file, '.json')}-${process.argv[2] ?? 'node'}-${process.pid}.json`;
      writeFileSync(path.join(process.env.SNAPFERRY_BENCH_MEMORY, name), JSON.stringify(memory, null, 1));
    }
  });
}
