/**
 * Direct measurement of a PATCH body's way from Node's HTTP server to the upload store, no tus, no spool: the request
 * as the web stream tus is given (`toweb`: @hono/node-server's `Readable.toWeb`, which copies every chunk; `uncopied`:
 * server/upload-store/patch-body.ts), turned back into a Node stream and piped through a PassThrough as
 * @tus/server's writeToStore does, then read to the end. The body comes over loopback from a child process, so the
 * CPU measured (this process: main thread from /proc, whole process, GC) is the receiving side's alone.
 *
 *   node --import tsx test/bench/patch-body-cpu.ts toweb|uncopied|direct [MiB=1024] [reps=3]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { PassThrough, Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { uncopiedBody } from '../../server/upload-store/patch-body.ts';

const MiB = 1024 * 1024;
const mode = process.argv[2] ?? 'uncopied';
if (mode !== 'toweb' && mode !== 'uncopied' && mode !== 'direct') throw new Error('mode: toweb, uncopied or direct');
const size = Number(process.argv[3] ?? 1024) * MiB;
const reps = Number(process.argv[4] ?? 3);

const tick = 100; // USER_HZ
function mainCpu(): number {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / tick;
}
let gcMs = 0;
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

let measure: { cpu: NodeJS.CpuUsage; main: number; t0: number } | null = null;
const done: ((bytes: number) => void)[] = [];
const server = http.createServer((req, res) => {
  measure = { cpu: process.cpuUsage(), main: mainCpu(), t0: performance.now() };
  gcMs = 0;
  // direct: the request read as it is, the floor under both (socket reads, HTTP parsing, one async iterator).
  const web = mode === 'toweb' ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : mode === 'uncopied' ? uncopiedBody(req) : null;
  const body = web === null ? req : Readable.fromWeb(web as NodeWebStream).pipe(new PassThrough());
  void (async () => {
    let bytes = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) bytes += chunk.length;
    res.end('ok');
    done.shift()?.(bytes);
  })();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const { port } = server.address() as AddressInfo;

const sender = `
const http = require('node:http');
const piece = Buffer.alloc(65536, 7);
let left = ${size};
const req = http.request({ port: ${port}, host: '127.0.0.1', method: 'PATCH', headers: { 'content-length': left } }, (res) => res.resume());
function more() { while (left > 0) { left -= piece.length; if (!req.write(piece)) return req.once('drain', more); } req.end(); }
more();`;

for (let r = 0; r < reps; r++) {
  const got = new Promise<number>((resolve) => done.push(resolve));
  const child = spawn(process.execPath, ['-e', sender], { stdio: 'inherit' });
  const bytes = await got;
  const m = measure as unknown as { cpu: NodeJS.CpuUsage; main: number; t0: number };
  const wall = performance.now() - m.t0;
  const cpu = process.cpuUsage(m.cpu);
  const main = mainCpu() - m.main;
  await new Promise((resolve) => child.once('exit', resolve));
  const gb = bytes / 1e9;
  console.log(JSON.stringify({
    mode, MB: Math.round(bytes / 1e6), wall_s_per_GB: +(wall / 1000 / gb).toFixed(3), main_thread_cpu_s_per_GB: +(main / gb).toFixed(3),
    cpu_s_per_GB: +((cpu.user + cpu.system) / 1e6 / gb).toFixed(3), gc_s_per_GB: +(gcMs / 1000 / gb).toFixed(3),
  }));
}
server.close();
