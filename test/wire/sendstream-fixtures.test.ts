/**
 * Real streams written by the kernel (see expected.json for which), committed so that the reader is checked against
 * real bytes even where no btrfs can be made. Rewritten by sendstream-real.test.ts with
 * SNAPFERRY_WRITE_SENDSTREAM_FIXTURES=1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import type { SendStreamSummary } from '../../core/wire/sendstream-parser.ts';
import { sendCommandCrc } from '../../core/wire/sendstream-format.ts';
import { kernelCrc32c } from './sendstream-builder.ts';

const dir = join(import.meta.dirname, 'fixtures-sendstream');
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, string>;

function read(name: string): { bytes: Buffer; summary: SendStreamSummary; names: string[] } {
  const bytes = readFileSync(join(dir, name));
  const names: string[] = [];
  const parser = new SendStreamParser({ onCommand: (c) => names.push(c.name) });
  parser.push(bytes);
  return { bytes, summary: parser.end(), names };
}

void test('full v1 fixture: SUBVOL tiny-1 with its UUID, END last', () => {
  const { bytes, summary, names } = read('full-v1.bin');
  assert.deepEqual(
    { kind: summary.header.kind, path: summary.header.path, uuid: summary.header.uuid, version: summary.version },
    { kind: 'subvol', path: 'tiny-1', uuid: expected['tiny-1'], version: 1 },
  );
  assert.equal(summary.bytes, bytes.length);
  assert.equal(names.at(-1), 'END');
  assert.ok(names.includes('WRITE'));
});

void test('incremental v1 fixture: SNAPSHOT tiny-2 cloned from tiny-1', () => {
  const { header } = read('incremental-v1.bin').summary;
  assert.equal(header.kind, 'snapshot');
  assert.equal(header.path, 'tiny-2');
  assert.equal(header.uuid, expected['tiny-2']);
  assert.ok(header.kind === 'snapshot' && header.cloneUuid === expected['tiny-1']);
});

void test('v2 compressed fixture carries ENCODED_WRITE', () => {
  const { summary, names } = read('full-v2-compressed.bin');
  assert.equal(summary.version, 2);
  assert.ok(names.includes('ENCODED_WRITE'));
});

void test('what matched on kernel-written commands: raw crc32c(0, ...), i.e. ~crc32c(x, 0xffffffff); not the standard CRC-32C', () => {
  const bytes = readFileSync(join(dir, 'full-v1.bin'));
  const length = bytes.readUInt32LE(17);
  const header = bytes.subarray(17, 27);
  const body = bytes.subarray(27, 27 + length);
  const zeroed = Buffer.concat([header.subarray(0, 6), Buffer.alloc(4), body]);
  const stored = header.readUInt32LE(6);
  assert.equal(sendCommandCrc(header, body), stored);
  assert.equal(kernelCrc32c(0, zeroed), stored);
  assert.equal((crc32c(zeroed, 0xffffffff) ^ 0xffffffff) >>> 0, stored);
  assert.notEqual(crc32c(zeroed), stored);
  assert.notEqual(crc32c(zeroed, 0), stored);
});
