/**
 * Speed sanity: the check sees every byte of a 100 GB seed, so it must run far above link speed. Prints MB/s; no
 * timing assertion (CI machines vary), but it does assert that every byte and command was seen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32c } from '@node-rs/crc32';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { END, streamHeader, subvolCommand, writeCommand } from './sendstream-builder.ts';

const TARGET = 200 * 1024 * 1024;

/**
 * ~200 MB of WRITE commands as `btrfs send` makes them (48 KiB payloads in v1, 128 KiB in v2), in `sliceSize`
 * slices that cut through commands the way pipe reads do. Built from one repeated block to keep memory small.
 */
function* syntheticStream(version: number, sliceSize: number): Generator<Buffer> {
  const payload = randomBytes(version === 1 ? 48 * 1024 : 128 * 1024);
  const write = writeCommand(version, 'o257-7-0', 0, payload);
  const block = Buffer.concat(Array.from({ length: Math.ceil((8 * 1024 * 1024) / write.length) }, () => write));
  yield Buffer.concat([streamHeader(version), subvolCommand()]);
  for (let sent = 0; sent < TARGET; sent += block.length) {
    for (let i = 0; i < block.length; i += sliceSize) yield block.subarray(i, i + sliceSize);
  }
  yield END;
}

function mbps(bytes: number, ms: number): string {
  return `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;
}

void test('parser speed over ~200 MB of WRITE commands', () => {
  for (const [version, sliceSize] of [[1, 64 * 1024], [2, 64 * 1024], [2, 1024 * 1024]] as const) {
    const parser = new SendStreamParser();
    let bytes = 0;
    const start = performance.now();
    for (const chunk of syntheticStream(version, sliceSize)) {
      parser.push(chunk);
      bytes += chunk.length;
    }
    const summary = parser.end();
    const ms = performance.now() - start;
    assert.equal(summary.bytes, bytes);
    console.log(`parser v${version}, ${sliceSize / 1024} KiB slices: ${(bytes / 1e6).toFixed(0)} MB, ${summary.commands} commands in ${ms.toFixed(0)} ms = ${mbps(bytes, ms)}`);
  }
  // The floor: native CRC32C alone over the same amount of data.
  const data = randomBytes(8 * 1024 * 1024);
  const start = performance.now();
  for (let sent = 0; sent < TARGET; sent += data.length) crc32c(data);
  console.log(`crc32c alone: ${mbps(TARGET, performance.now() - start)}`);
});

void test('SendStreamCheck pipeline speed over ~200 MB', async () => {
  const check = new SendStreamCheck();
  let out = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out += chunk.length;
      callback();
    },
  });
  const start = performance.now();
  await pipeline(Readable.from(syntheticStream(1, 64 * 1024)), check, sink);
  const ms = performance.now() - start;
  assert.equal(out, check.summary?.bytes);
  console.log(`SendStreamCheck v1, 64 KiB slices: ${mbps(out, ms)}`);
});
