/**
 * Wire bytes of each compression option on one send stream (test/bench/slow-stream.ts writes the bench's), for
 * issue 22's slow line: zstd levels per chunk, bigger chunks, a window as large as the chunk, long-distance
 * matching, and a chunk that may refer to the raw chunk before it (a raw-content dictionary). Payload bytes plus
 * the 72-byte frame header per frame; CPU seconds of this thread per MB of raw stream.
 * Usage: node --import tsx test/bench/slow-compress-table.ts STREAM [quick]
 */
import { readFileSync } from 'node:fs';
import binding from 'zstd-napi/binding.js';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';

const MiB = 1024 * 1024;
const [file, mode] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: slow-compress-table.ts STREAM [quick]');
const stream = readFileSync(file);
const P = binding.CParameter;

interface Option {
  name: string;
  chunk: number;
  level: number;
  /** Production's caps (core/wire/zstd-chunk.mjs): hashLog/chainLog 21 from level 10. */
  capped?: boolean;
  windowLog?: number;
  ldm?: boolean;
  /** Each chunk may refer to the raw chunk before it. */
  previous?: boolean;
}

function measure(o: Option): { bytes: number; cpu: number } {
  const cctx = new binding.CCtx();
  cctx.setParameter(P.compressionLevel, o.level);
  if (o.capped !== false && o.level >= 10) {
    cctx.setParameter(P.hashLog, 21);
    cctx.setParameter(P.chainLog, 21);
  }
  if (o.windowLog !== undefined) cctx.setParameter(P.windowLog, o.windowLog);
  if (o.ldm) cctx.setParameter(P.enableLongDistanceMatching, 1);
  const out = Buffer.allocUnsafe(binding.compressBound(o.chunk));
  let bytes = 0;
  const started = process.cpuUsage();
  for (let at = 0; at < stream.length; at += o.chunk) {
    const raw = stream.subarray(at, Math.min(at + o.chunk, stream.length));
    if (o.previous && at > 0) cctx.loadDictionary(stream.subarray(at - o.chunk, at));
    const n = cctx.compress2(out, raw);
    bytes += FRAME_HEADER_SIZE + Math.min(n, raw.length);
  }
  const used = process.cpuUsage(started);
  return { bytes: bytes + FRAME_HEADER_SIZE, cpu: (used.user + used.system) / 1e6 };
}

const options: Option[] = [];
const levels = mode === 'quick' ? [3, 19] : [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
for (const level of levels) options.push({ name: `4 MiB, level ${level}`, chunk: 4 * MiB, level });
options.push({ name: '4 MiB, level 19, uncapped tables', chunk: 4 * MiB, level: 19, capped: false });
options.push({ name: '4 MiB, level 19, long-distance matching', chunk: 4 * MiB, level: 19, ldm: true });
options.push({ name: '4 MiB, level 19, refers to the chunk before', chunk: 4 * MiB, level: 19, previous: true });
options.push({ name: '4 MiB, level 15, refers to the chunk before', chunk: 4 * MiB, level: 15, previous: true });
for (const size of [8, 16]) {
  for (const level of [3, 9, 15, 19]) options.push({ name: `${size} MiB, level ${level}`, chunk: size * MiB, level });
  options.push({ name: `${size} MiB, level 19, window = chunk`, chunk: size * MiB, level: 19, windowLog: Math.log2(size * MiB) });
  options.push({ name: `${size} MiB, level 19, window = chunk, long-distance matching`, chunk: size * MiB, level: 19, windowLog: Math.log2(size * MiB), ldm: true });
}

const base = measure({ name: '', chunk: stream.length, level: 3, capped: false });
console.log(`stream ${stream.length} bytes; zstd -3 of the whole stream (one frame) ${base.bytes - 2 * FRAME_HEADER_SIZE} bytes`);
console.log('| option | wire bytes | / zstd -3 whole | CPU s per MB raw |');
console.log('| --- | --- | --- | --- |');
for (const o of options) {
  const r = measure(o);
  console.log(`| ${o.name} | ${r.bytes} | ${(r.bytes / (base.bytes - 2 * FRAME_HEADER_SIZE)).toFixed(3)}× | ${(r.cpu / (stream.length / 1e6)).toFixed(3)} |`);
}
