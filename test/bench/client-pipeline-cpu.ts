/**
 * Direct measurement of the client's pipeline without HTTP (issue 22): `btrfs send` of a read-only snapshot ->
 * send-stream check -> frame encoder on the compression pool -> upload source, read as tus-js-client reads it (one
 * 16 MiB PATCH body at a time, piece by piece, then acknowledged by asking for the next offset). Prints, per run: CPU
 * per GB of this process (all threads; the main thread alone) and of its children (btrfs send), peak RSS, the peak
 * of process.memoryUsage() (sampled every 20 ms: what the pipeline holds in ArrayBuffers), and wall time. Compare two
 * builds by running it on each, alternating, in the same minutes. Needs root and a read-only btrfs snapshot.
 *
 *   node --import tsx test/bench/client-pipeline-cpu.ts SNAPSHOT [level=0] [reps=3] [link MB/s]
 *
 * With a link rate, each PATCH body is read at about that rate (as a socket drains it), so the source's read-ahead
 * and the encoder fill up as they do behind a real link; without one, the pipeline runs as fast as it can.
 * POOL=N sets the compression pool's size (default: as push chooses).
 */
import { readFileSync } from 'node:fs';
import { openFramedSend } from '../../client/push/framed-send.ts';
import { patchBody } from '../../client/upload/patch-body.ts';
import { CompressionPool } from '../../core/wire/index.ts';

const MiB = 1024 * 1024;
const PATCH = 16 * MiB;
/** USER_HZ: /proc's CPU times are in these ticks. */
const TICK = 100;

const snapshot = process.argv[2];
if (snapshot === undefined) throw new Error('usage: client-pipeline-cpu.ts SNAPSHOT [level=0] [reps=3] [link MB/s]');
const level = Number(process.argv[3] ?? 0);
const reps = Number(process.argv[4] ?? 3);
const linkBytesPerMs = process.argv[5] === undefined ? null : Number(process.argv[5]) * 1000;
const poolSize = process.env.POOL ? Number(process.env.POOL) : undefined;

const peak = { rss: 0, arrayBuffers: 0 };
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  peak.rss = Math.max(peak.rss, m.rss);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
}, 20);

/** utime + stime (fields 14, 15) or cutime + cstime (16, 17) of a /proc stat line, in seconds. */
function statCpu(path: string, children: boolean): number {
  const f = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
  const at = children ? 13 : 11;
  return (Number(f[at]) + Number(f[at + 1])) / TICK;
}

for (let r = 0; r < reps; r++) {
  const pool = new CompressionPool(poolSize);
  const cpu0 = process.cpuUsage();
  const main0 = statCpu(`/proc/self/task/${process.pid}/stat`, false);
  const child0 = statCpu('/proc/self/stat', true);
  const t0 = performance.now();
  const send = await openFramedSend({ snapshotPath: snapshot, parentPath: null, chunkSize: 4 * MiB, level, pool, maxSlice: PATCH });
  let offset = 0;
  for (;;) {
    const { value, done } = await send.source.slice(offset, offset + PATCH);
    if (value) {
      for await (const piece of patchBody(value.pieces)) {
        if (linkBytesPerMs !== null) await new Promise((resolve) => setTimeout(resolve, (piece as Buffer).length / linkBytesPerMs));
      }
      offset += value.size;
    }
    if (done) break;
  }
  await send.done;
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const gb = offset / 1e9;
  const perGb = (seconds: number): number => +(seconds / gb).toFixed(2);
  const figures = {
    level,
    wireMB: Math.round(offset / 1e6),
    cpuPerGb: perGb((cpu.user + cpu.system) / 1e6),
    userPerGb: perGb(cpu.user / 1e6),
    sysPerGb: perGb(cpu.system / 1e6),
    mainThreadPerGb: perGb(statCpu(`/proc/self/task/${process.pid}/stat`, false) - main0),
    btrfsSendPerGb: perGb(statCpu('/proc/self/stat', true) - child0),
    wallSeconds: +wall.toFixed(2),
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    peakArrayBuffersMB: Math.round(peak.arrayBuffers / 1e6),
  };
  await pool.close();
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}
clearInterval(sampler);
