// Preloaded into `snapferry serve` by hand (SNAPFERRY_BENCH_NODE_OPTIONS=--import=.../thread-cpu.mjs, with
// SNAPFERRY_THREAD_CPU=DIR): on exit it writes DIR/serve-PID.json with the process's CPU per thread (main is the
// event loop; the first threads after it are V8's platform workers (GC, compiling), the later ones libuv's
// threadpool, where the spool's writes and fsyncs run) and the GC pauses node reported, and with
// SNAPFERRY_THREAD_CPU_PROFILE=1 a CPU profile of the main thread (DIR/serve-PID.cpuprofile). A thread that ended
// before the exit is counted as last seen (sampled every 500 ms). GC pauses are wall time: on a busy machine they
// include time the thread waited for a core; the CPU per thread does not.
import inspector from 'node:inspector';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.SNAPFERRY_THREAD_CPU;

function threadCpu() {
  const out = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime in USER_HZ (100 here), after the ")" of the name: fields 14 and 15 of stat(5).
      out[Number(tid) === process.pid ? 'main' : `+${Number(tid) - process.pid}`] = (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

if (dir && isMainThread && process.argv.includes('serve')) {
  const gc = { count: 0, pauseMs: 0, pauseMsByKind: {} };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.count++;
      gc.pauseMs += e.duration;
      const kind = e.detail?.kind ?? 0;
      gc.pauseMsByKind[kind] = (gc.pauseMsByKind[kind] ?? 0) + e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  let session = null;
  if (process.env.SNAPFERRY_THREAD_CPU_PROFILE === '1') {
    session = new inspector.Session();
    session.connect();
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: 500 });
    session.post('Profiler.start');
  }
  let seen = {};
  setInterval(() => void (seen = { ...seen, ...threadCpu() }), 500).unref();
  process.on('exit', () => {
    const cpu = process.cpuUsage();
    const base = path.join(dir, `serve-${process.pid}`);
    writeFileSync(`${base}.json`, JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, threads: { ...seen, ...threadCpu() }, gc }));
    // The session belongs to this thread, so stop's answer comes before post() returns.
    session?.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(`${base}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
