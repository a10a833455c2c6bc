/**
 * Direct measurement of raw frames from request chunks to `btrfs receive`'s stdin, no HTTP, no spool: a send stream
 * of 256 files (1 MiB each, 48 KiB writes) framed raw in 4 MiB chunks, pushed in 64 KiB request chunks through the
 * FrameParser (keepRaw), then its raw bytes through the send-stream check and a PassThrough into a child's stdin
 * (`cat > /dev/null`), as the receive does. Prints this process's CPU per GB of raw stream. To compare two builds,
 * run this same file in each tree, alternating.
 *
 *   node --import tsx test/bench/raw-frames-pipe-cpu.ts [reps=3]
 */
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { seededBytes } from '../wire/frame-helpers.ts';

const reps = Number(process.argv[2] ?? 3);
const builder = new SendStreamBuilder().subvol('s', randomUuid());
const data = seededBytes(1 << 20, 9);
for (let i = 0; i < 256; i++) {
  builder.mkfileAt(`f${i}`);
  for (let off = 0; off < data.length; off += 49152) builder.write(`f${i}`, data.subarray(off, off + 49152), off);
}
const raw = builder.end().build();
const wire = await frameStream(raw, 4 << 20, 0);

for (let r = 0; r < reps; r++) {
  const chunks: Buffer[] = [];
  for (let at = 0; at < wire.length; at += 65536) chunks.push(Buffer.from(wire.subarray(at, at + 65536)));
  const parser = new FrameParser({ keepRaw: true });
  // One buffer per frame (before 2026-12-05) or the pieces it arrived in.
  const source = function* (): Generator<Buffer> {
    for (const chunk of chunks) for (const frame of parser.push(chunk)) yield* [frame.raw ?? []].flat();
  };
  const cat = spawn('sh', ['-c', 'cat > /dev/null'], { stdio: ['pipe', 'inherit', 'inherit'] });
  const before = process.cpuUsage();
  await pipeline(Readable.from(source(), { objectMode: false }), new SendStreamCheck(), new PassThrough(), cat.stdin);
  const cpu = process.cpuUsage(before);
  console.log(JSON.stringify({ rawMB: Math.round(raw.length / 1e6), cpu_s_per_GB: +((cpu.user + cpu.system) / 1e6 / (raw.length / 1e9)).toFixed(3) }));
}
