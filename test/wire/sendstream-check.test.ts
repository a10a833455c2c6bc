import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SendStreamCheck } from '../../core/wire/sendstream-check.ts';
import { SendStreamError } from '../../core/wire/sendstream-errors.ts';
import type { SendStreamHeader } from '../../core/wire/sendstream-attributes.ts';
import type { SendStreamSummary } from '../../core/wire/sendstream-parser.ts';
import { SAMPLE, sampleStream, slices } from './sendstream-builder.ts';

/** Runs `chunks` through a check into memory; returns what came out and how the pipeline ended. */
async function run(chunks: Buffer[], check = new SendStreamCheck()): Promise<{ out: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  let error: unknown;
  try {
    await pipeline(Readable.from(chunks), check, sink);
  } catch (err) {
    error = err;
  }
  return { out: Buffer.concat(out), error };
}

void test('a valid stream passes through unchanged, with its header and summary', async () => {
  const bytes = sampleStream(2);
  const check = new SendStreamCheck();
  const events: string[] = [];
  let headerEvent: SendStreamHeader | undefined;
  let summaryEvent: SendStreamSummary | undefined;
  check.on('header', (h: SendStreamHeader) => {
    headerEvent = h;
    events.push('header');
  });
  check.on('summary', (s: SendStreamSummary) => {
    summaryEvent = s;
    events.push('summary');
  });
  const { out, error } = await run(slices(bytes, 7), check);
  assert.equal(error, undefined);
  assert.ok(out.equals(bytes));
  const header = await check.header;
  assert.equal(header.path, SAMPLE.path);
  assert.equal(header.uuid, SAMPLE.uuid);
  assert.equal(header.version, 2);
  assert.deepEqual(headerEvent, header);
  assert.deepEqual(events, ['header', 'summary']);
  assert.deepEqual(check.summary, summaryEvent);
  assert.deepEqual({ commands: check.summary?.commands, bytes: check.summary?.bytes, version: check.summary?.version }, {
    commands: 7,
    bytes: bytes.length,
    version: 2,
  });
});

void test('a damaged stream fails the pipeline with the typed error, after the header was given', async () => {
  const bytes = sampleStream();
  bytes[bytes.length - 30]! ^= 0x04;
  const check = new SendStreamCheck();
  const { out, error } = await run(slices(bytes, 16), check);
  assert.ok(error instanceof SendStreamError);
  assert.equal(error.code, 'sendstream_crc');
  assert.ok(out.length < bytes.length, 'the damaged chunk is not passed on');
  assert.equal((await check.header).uuid, SAMPLE.uuid);
  assert.equal(check.summary, undefined);
});

void test('a truncated stream fails at the end of input, and the header promise rejects when it never came', async () => {
  const bytes = sampleStream();
  const cut = await run([bytes.subarray(0, bytes.length - 1)]);
  assert.ok(cut.error instanceof SendStreamError);
  assert.equal(cut.error.code, 'sendstream_truncated');
  assert.equal(cut.out.length, bytes.length - 1, 'every byte before the end was passed on');

  const check = new SendStreamCheck();
  const early = await run([bytes.subarray(0, 30)], check);
  assert.equal((early.error as SendStreamError).code, 'sendstream_truncated');
  await assert.rejects(check.header, { code: 'sendstream_truncated' });
});

void test('a check destroyed without an error before the header rejects the header promise', async () => {
  const check = new SendStreamCheck();
  check.write(sampleStream().subarray(0, 20));
  check.destroy();
  await assert.rejects(check.header, (err: unknown) => err instanceof SendStreamError && err.details.offset === 20);
});

void test('a second stream appended fails the pipeline as such', async () => {
  const bytes = sampleStream();
  const { error } = await run([bytes, bytes]);
  assert.equal((error as SendStreamError).code, 'sendstream_second_stream');
});
