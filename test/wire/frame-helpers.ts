// Shared helpers for the frame tests: seeded data, and running bytes through the encoder, decoder and parser.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FrameDecoder } from '../../core/wire/frame-decoder.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import type { EncodedFrameInfo, FrameEncoderOptions } from '../../core/wire/frame-encoder.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import type { FrameParserOptions, VerifiedFrame } from '../../core/wire/frame-parser.ts';

export const KiB = 1024;
export const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32), so a failing case can be rerun as it was. */
export function seededBytes(n: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function compressibleBytes(n: number): Buffer {
  const text = Buffer.from('btrfs send stream: write path=/home/user/file offset=4096 len=65536 data=');
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = text[i % text.length] as number;
  return out;
}

/** Alternating compressible and random blocks, so one stream has both zstd and raw frames. */
export function mixedBytes(n: number, block: number, seed = 7): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let at = 0, k = 0; at < n; at += block, k++) {
    const len = Math.min(block, n - at);
    (k % 2 === 0 ? compressibleBytes(len) : seededBytes(len, seed + k)).copy(out, at);
  }
  return out;
}

/** Splits `buf` into slices of the given sizes, cycling through them. */
export function slices(buf: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < buf.length; i++) {
    const n = sizes[i % sizes.length] as number;
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

export function randomSizes(count: number, max: number, seed = 3): number[] {
  const r = seededBytes(count * 4, seed);
  return Array.from({ length: count }, (_, i) => (r.readUInt32LE(i * 4) % max) + 1);
}

async function collect(source: Readable, transform: NodeJS.ReadWriteStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      cb();
    },
  });
  await pipeline(source, transform, sink);
  return Buffer.concat(parts);
}

export async function encode(
  raw: Buffer,
  opts: FrameEncoderOptions = {},
  sliceSizes: number[] = [64 * KiB],
): Promise<{ wire: Buffer; frames: EncodedFrameInfo[] }> {
  const frames: EncodedFrameInfo[] = [];
  const encoder = new FrameEncoder(opts);
  encoder.on('frame', (f: EncodedFrameInfo) => frames.push(f));
  const wire = await collect(Readable.from(slices(raw, sliceSizes)), encoder);
  return { wire, frames };
}

export async function decode(wire: Buffer, chunkSize?: number, sliceSizes: number[] = [64 * KiB]): Promise<Buffer> {
  const decoder = new FrameDecoder(chunkSize === undefined ? {} : { chunkSize });
  return collect(Readable.from(slices(wire, sliceSizes)), decoder);
}

/** Pushes `wire` in the given slice sizes and finishes; returns every verified frame. Throws what the parser throws. */
export function parseAll(wire: Buffer, sliceSizes: number[], opts: FrameParserOptions = {}): VerifiedFrame[] {
  const parser = new FrameParser(opts);
  const frames: VerifiedFrame[] = [];
  for (const s of slices(wire, sliceSizes)) frames.push(...parser.push(s));
  parser.finish();
  return frames;
}
