/**
 * Direct measurement of the spool's frame-verifying write loop (server/spool/append.ts), no HTTP, no btrfs: CPU per GB
 * of the main thread (from /proc) and of the process, GC time, and wall time, for a stream of incompressible (raw
 * frames) or mixed (zstd frames) data. Compare two builds by running it on each, alternating, in the same minutes.
 *
 *   node --import tsx test/bench/spool-append-cpu.ts raw|zstd [MiB=256] [reps=3] [busy]
 *
 * `busy` gives each stored frame ~1 s/GB of later main-thread work, as the receive side (send-stream check, pipe to
 * btrfs receive) does in serve.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { encode, seededBytes, compressibleBytes } from '../wire/frame-helpers.ts';

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
const mode = process.argv[2] ?? 'raw';
const size = Number(process.argv[3] ?? 256) * MiB;
const reps = Number(process.argv[4] ?? 3);
let raw: Buffer;
if (mode === 'raw') raw = seededBytes(size, 5);
else { raw = Buffer.allocUnsafe(size); for (let at = 0, k = 0; at < size; at += 64 * 1024, k++) (k % 3 === 0 ? seededBytes(64 * 1024, k) : compressibleBytes(64 * 1024)).copy(raw, at); }
const { wire } = await encode(raw, { chunkSize: CHUNK, level: 1 }, [CHUNK]);
raw = Buffer.alloc(0);
import { readFileSync } from 'node:fs';
const tick = 100; // USER_HZ
function mainCpu(): number { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / tick; }
let gcMs = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) gcMs += e.duration; }).observe({ entryTypes: ['gc'] });
import { createHash } from 'node:crypto';
// 'busy' stands in for the receive side's own main-thread work (ingest: the send-stream check, the pipe to btrfs
// receive): each stored frame is consumed later on the event loop by ~1 s/GB of sync work, at most 2 frames queued.
const busy = process.argv[5] === 'busy';
let queued = 0;
let wake: (() => void) | null = null;
const sink: FrameSink = { start() {}, async stored(f) {
  if (!busy || !f.raw) return false;
  queued++;
  // One buffer (before 2026-12-05) or the pieces it arrived in: hashed piece by piece either way, as a consumer would.
  const pieces: Buffer[] = [f.raw].flat();
  setImmediate(() => { for (const h of ['sha1', 'md5']) { const hash = createHash(h); for (const p of pieces) hash.update(p); hash.digest(); } queued--; wake?.(); wake = null; });
  while (queued > 2) await new Promise<void>((r) => (wake = r));
  // Kept for the hashes above, later: never said done, so their memory is not used again.
  return true;
}, complete() {}, endRefused() {} };
for (let r = 0; r < reps; r++) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'perf2-'));
  const spool = new Spool(new ServerLayout(dir));
  const id = 'e'.repeat(32);
  await spool.create(id);
  async function* body() { for (let at = 0; at < wire.length; at += 65536) { yield Buffer.from(wire.subarray(at, at + 65536)); if ((at & 0xfffff) === 0) await new Promise(setImmediate); } }
  gcMs = 0;
  const cpu0 = process.cpuUsage();
  const m0 = mainCpu();
  const t0 = performance.now();
  await spool.append(id, Readable.from(body()), 0, CHUNK, sink);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const mainS = mainCpu() - m0;
  const gb = wire.length / 1e9;
  await new Promise((r) => setTimeout(r, 50));
  console.log(JSON.stringify({ mode, wireMB: Math.round(wire.length / 1e6), wall_s_per_GB: +(wall / 1000 / gb).toFixed(3), main_thread_cpu_s_per_GB: +(mainS / gb).toFixed(3), cpu_s_per_GB: +((cpu.user + cpu.system) / 1e6 / gb).toFixed(3), gc_s_per_GB: +(gcMs / 1000 / gb).toFixed(3) }));
  await fs.rm(dir, { recursive: true, force: true });
}
