/**
 * Direct measurement of the receive's way from verified frames to `btrfs receive`'s stdin: zstd frames (4 MiB chunks,
 * each decoded into one buffer, as the store hands them on) offered to a LiveStreamSource, then the send-stream check
 * and a PassThrough into a child's stdin (`cat > /dev/null`), as server/live-receives.ts and core/receive do. Prints
 * this process's CPU per GB of raw stream. Decoding is done before the clock starts:
 * it is not what this measures. To compare two versions of server/live-source.ts, pass the other file's path.
 *
 *   node --import tsx test/bench/live-source-cpu.ts [reps=3] [path/to/live-source.ts]
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { compressibleBytes, parseAll, seededBytes } from '../wire/frame-helpers.ts';
import type { LiveStreamSource } from '../../server/live-source.ts';

const reps = Number(process.argv[2] ?? 3);
const modulePath = path.resolve(process.argv[3] ?? 'server/live-source.ts');
const { LiveStreamSource: Source } = (await import(pathToFileURL(modulePath).href)) as { LiveStreamSource: typeof LiveStreamSource };
const CHUNK = 4 << 20;
const builder = new SendStreamBuilder().subvol('s', randomUuid());
// Half text, half random: level 1 compresses it, every frame is zstd.
const data = Buffer.concat([compressibleBytes(512 << 10), seededBytes(512 << 10, 9)]);
for (let i = 0; i < 256; i++) {
  builder.mkfileAt(`f${i}`);
  for (let off = 0; off < data.length; off += 49152) builder.write(`f${i}`, data.subarray(off, off + 49152), off);
}
const raw = builder.end().build();
const wire = await frameStream(raw, CHUNK, 1);
const frames = parseAll(wire, [65536], { keepRaw: true });
const dataFrames = frames.filter((f) => f.kind === 'data');
const zstdFrames = dataFrames.filter((f) => f.codec === 'zstd').length;
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'live-source-cpu-'));
const spool = path.join(dir, 'spool');
await fs.writeFile(spool, wire);

for (let r = 0; r < reps; r++) {
  const source = new Source(spool, CHUNK);
  const cat = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'inherit', 'inherit'] });
  const before = process.cpuUsage();
  const piped = pipeline(source, new SendStreamCheck(), new PassThrough(), cat.stdin);
  for (const frame of dataFrames) {
    await source.roomFor(frame, 2000);
    source.offer(frame);
  }
  source.advance(wire.length, true);
  await piped;
  const cpu = process.cpuUsage(before);
  console.log(JSON.stringify({ rawMB: Math.round(raw.length / 1e6), zstdFrames: `${zstdFrames}/${dataFrames.length}`, cpu_s_per_GB: +((cpu.user + cpu.system) / 1e6 / (raw.length / 1e9)).toFixed(3), readBackMB: Math.round(source.spoolBytesRead / 1e6) }));
}
await fs.rm(dir, { recursive: true, force: true });
