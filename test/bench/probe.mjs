// Preloaded into a snapferry process (`NODE_OPTIONS=--import=.../probe.mjs`) by the bench: on exit it writes the
// process's peak RSS and CPU time to the file named by SNAPFERRY_BENCH_PROBE. Plain JavaScript, because it loads
// before snapferry registers tsx.
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { isMainThread } from 'node:worker_threads';

const file = process.env.SNAPFERRY_BENCH_PROBE;
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
        maxRssKiB: usage.maxRSS,
        selfCpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
        childTicks: Number(fields[13]) + Number(fields[14]),
      }),
    );
  });
}
