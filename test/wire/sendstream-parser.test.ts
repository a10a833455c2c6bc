import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { SendStreamParser } from '../../core/wire/sendstream-parser.ts';
import type { SendCommand, SendStreamParserOptions, SendStreamSummary } from '../../core/wire/sendstream-parser.ts';
import { SendStreamError } from '../../core/wire/sendstream-errors.ts';
import { SnapferryError } from '../../core/errors.ts';
import { sendAttributeString } from '../../core/wire/sendstream-attributes.ts';
import {
  formatSendUuid,
  SEND_MAX_COMMAND_LENGTH,
  sendAttributeName,
  sendCommandCrc,
  sendCommandName,
  SendAttr,
  SendCmd,
} from '../../core/wire/sendstream-format.ts';
import {
  Attr,
  Cmd,
  command,
  dataTlv,
  END,
  kernelCrc32c,
  SAMPLE,
  sampleBody,
  sampleStream,
  slices,
  snapshotCommand,
  streamHeader,
  streamWithFirst,
  subvolCommand,
  tlv,
  u64,
  uuidBytes,
  writeCommand,
} from './sendstream-builder.ts';

function parse(chunks: Buffer[], options: SendStreamParserOptions = {}): SendStreamSummary {
  const parser = new SendStreamParser(options);
  for (const chunk of chunks) parser.push(chunk);
  return parser.end();
}

/** The error a stream fails with, and whether push() or end() threw it. */
function failure(chunks: Buffer[], options: SendStreamParserOptions = {}): { err: SendStreamError; at: 'push' | 'end' } {
  const parser = new SendStreamParser(options);
  let at: 'push' | 'end' = 'push';
  try {
    for (const chunk of chunks) parser.push(chunk);
    at = 'end';
    parser.end();
  } catch (err) {
    assert.ok(err instanceof SendStreamError, `expected a SendStreamError, got ${String(err)}`);
    return { err, at };
  }
  assert.fail('the stream was accepted');
}

void test('a valid version 1 stream yields its header, every command and a summary', () => {
  const bytes = sampleStream(1);
  const seen: Array<{ name: string; offset: number; length: number; path: string | undefined }> = [];
  const summary = parse([bytes], {
    onCommand: (c) => seen.push({ name: c.name, offset: c.offset, length: c.length, path: sendAttributeString(c.attributes, SendAttr.PATH) }),
  });
  assert.deepEqual(summary.header, { kind: 'subvol', path: SAMPLE.path, uuid: SAMPLE.uuid, ctransid: SAMPLE.ctransid, version: 1 });
  assert.equal(summary.version, 1);
  assert.equal(summary.commands, 7);
  assert.equal(summary.bytes, bytes.length);
  assert.deepEqual(seen.map((c) => c.name), ['SUBVOL', 'MKFILE', 'RENAME', 'WRITE', 'CHOWN', 'CHMOD', 'END']);
  assert.equal(seen[0]?.offset, 17);
  for (const c of seen) assert.equal(bytes.readUInt32LE(c.offset), c.length);
  assert.deepEqual(seen.map((c) => c.path).slice(1, 4), ['o257-7-0', 'o257-7-0', 'hello.txt']);
});

void test('version 2 DATA has no length and runs to the end of the command; its value is a view, not a copy', () => {
  for (const version of [2, 3]) {
    const bytes = sampleStream(version);
    let data: Buffer | undefined;
    let sameMemory = false;
    parse([bytes], {
      onCommand: (c: SendCommand) => {
        if (c.cmd !== SendCmd.WRITE) return;
        data = Buffer.from(c.attributes.find((a) => a.type === SendAttr.DATA)?.value ?? Buffer.alloc(0));
        sameMemory = c.attributes[0]?.value.buffer === bytes.buffer;
      },
    });
    assert.deepEqual(data, SAMPLE.fileData);
    assert.ok(sameMemory, 'attribute values of a command inside one chunk point into that chunk');
  }
  // The same bytes read as version 1 are a DATA TLV whose length field is the payload's first bytes: rejected.
  const v2 = sampleStream(2);
  v2.writeUInt32LE(1, 13);
  assert.equal(failure([v2]).err.code, 'sendstream_bad_attribute');
});

void test('a SNAPSHOT first command gives the clone UUID and ctransid', () => {
  const summary = parse([streamWithFirst(snapshotCommand())]);
  assert.deepEqual(summary.header, {
    kind: 'snapshot',
    path: SAMPLE.path,
    uuid: SAMPLE.uuid,
    ctransid: SAMPLE.ctransid,
    cloneUuid: SAMPLE.cloneUuid,
    cloneCtransid: SAMPLE.cloneCtransid,
    version: 1,
  });
});

void test('any slicing gives the same result as one buffer: 1-byte slices, every 2-way split, random slices', () => {
  const bytes = sampleStream(2);
  const whole = parse([bytes]);
  assert.deepEqual(parse(slices(bytes, 1)), whole);
  for (let cut = 0; cut <= bytes.length; cut++) {
    assert.deepEqual(parse([bytes.subarray(0, cut), bytes.subarray(cut)]), whole, `split at ${cut}`);
  }
  for (let round = 0; round < 50; round++) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; ) {
      const n = 1 + Math.floor(Math.random() * 40);
      chunks.push(bytes.subarray(i, i + n));
      i += n;
    }
    assert.deepEqual(parse(chunks), whole);
  }
  // Errors too are the same whatever the slicing.
  const damaged = Buffer.from(bytes);
  damaged[bytes.length - 20]! ^= 0x01;
  const one = failure([damaged]).err;
  const bytewise = failure(slices(damaged, 1)).err;
  assert.equal(bytewise.code, one.code);
  assert.deepEqual(bytewise.details, one.details);
});

void test('a stream that is not a send stream fails on its magic', () => {
  const bytes = sampleStream();
  bytes.write('BTRFS', 0, 'latin1');
  const { err, at } = failure([bytes]);
  assert.equal(err.code, 'sendstream_bad_magic');
  assert.equal(at, 'push');
  assert.equal(err.details.offset, 0);
  assert.equal(failure([Buffer.from('{"json": "not a stream at all"}')]).err.code, 'sendstream_bad_magic');
});

void test('versions other than 1, 2 and 3 are rejected', () => {
  for (const version of [0, 4, 0xffffffff]) {
    const bytes = sampleStream();
    bytes.writeUInt32LE(version, 13);
    const { err } = failure([bytes]);
    assert.equal(err.code, 'sendstream_bad_version');
    assert.equal(err.details.version, version);
  }
});

void test('a flipped bit in a command body fails its CRC, naming the command', () => {
  const bytes = sampleStream();
  const writeAt = 17 + sampleBody(1).slice(0, 3).reduce((n, c) => n + c.length, 0);
  bytes[writeAt + 30]! ^= 0x10;
  const { err, at } = failure([bytes]);
  assert.equal(err.code, 'sendstream_crc');
  assert.equal(at, 'push');
  assert.equal(err.details.offset, writeAt);
  assert.equal(err.details.commandIndex, 3);
  assert.equal(err.details.commandName, 'WRITE');
  assert.equal(err.retryable, false);
  assert.match(err.message, /CRC32C/);
});

void test('a flipped bit anywhere after the stream header never passes', () => {
  const bytes = sampleStream();
  for (let i = 17; i < bytes.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const damaged = Buffer.from(bytes);
      damaged[i]! ^= bit;
      const { err } = failure([damaged]);
      assert.ok(err.code.startsWith('sendstream_'), `byte ${i}: ${err.code}`);
    }
  }
});

void test('a stream cut at any byte fails as truncated at end(), not at push()', () => {
  const bytes = sampleStream(2);
  for (let cut = 0; cut < bytes.length; cut++) {
    const { err, at } = failure([bytes.subarray(0, cut)]);
    assert.equal(err.code, 'sendstream_truncated', `cut at ${cut}`);
    assert.equal(at, 'end', `cut at ${cut}`);
    assert.equal(err.details.offset, cut);
    assert.equal(err.retryable, true);
    assert.match(err.message, cut === 0 ? /empty/ : new RegExp(`truncated at byte ${cut}\\b.*run the push again`));
  }
  // The same cut fed byte by byte.
  assert.equal(failure(slices(bytes.subarray(0, bytes.length - 3), 1)).err.code, 'sendstream_truncated');
});

void test('bytes after END are trailing data; a whole second magic is named a second stream', () => {
  const bytes = sampleStream();
  for (const extra of [Buffer.from([0]), Buffer.from('garbage'), Buffer.alloc(4096)]) {
    const { err, at } = failure([bytes, extra]);
    assert.equal(err.code, 'sendstream_trailing_data');
    assert.equal(at, 'push');
    assert.equal(err.details.offset, bytes.length);
  }
  // A prefix of the magic is still only trailing data, found at end().
  const partial = failure([bytes, Buffer.from('btrfs-str')]);
  assert.equal(partial.err.code, 'sendstream_trailing_data');
  assert.equal(partial.at, 'end');

  for (const chunks of [[bytes, bytes], [Buffer.concat([bytes, bytes])], slices(Buffer.concat([bytes, bytes]), 1)]) {
    const { err } = failure(chunks);
    assert.equal(err.code, 'sendstream_second_stream');
    assert.equal(err.details.offset, bytes.length);
    assert.equal(err.retryable, true);
    assert.match(err.message, /a second send stream follows the first/);
  }
});

void test('a second stream that starts before the first ended is named as such, not as an oversize command', () => {
  const withoutEnd = bytesWithoutEnd();
  const { err } = failure([withoutEnd, sampleStream()]);
  assert.equal(err.code, 'sendstream_second_stream');
  assert.equal(err.details.offset, withoutEnd.length);
});

function bytesWithoutEnd(): Buffer {
  return Buffer.concat([streamHeader(1), ...sampleBody(1)]);
}

void test('a second SUBVOL or SNAPSHOT inside the stream (btrfs send -e with several subvolumes) is rejected', () => {
  for (const second of [subvolCommand('other', SAMPLE.cloneUuid, 1), snapshotCommand()]) {
    const bytes = Buffer.concat([bytesWithoutEnd(), second, ...sampleBody(1).slice(1), END]);
    const { err } = failure([bytes]);
    assert.equal(err.code, 'sendstream_second_subvolume');
    assert.equal(err.details.commandIndex, 6);
  }
});

void test('a stream without END fails as truncated', () => {
  const { err } = failure([bytesWithoutEnd()]);
  assert.equal(err.code, 'sendstream_truncated');
  assert.match(err.message, /before the END command/);
});

void test('attributes must lie inside their command', () => {
  const overrun = Buffer.concat([tlv(Attr.PATH, 'hello.txt'), Buffer.from([Attr.MODE, 0, 200, 0, 1, 2, 3])]);
  const cases: Array<[string, Buffer]> = [
    ['overrun', overrun],
    ['cut header', Buffer.concat([tlv(Attr.PATH, 'x'), Buffer.from([Attr.MODE, 0, 8])])],
    ['cut type', Buffer.concat([tlv(Attr.PATH, 'x'), Buffer.from([Attr.MODE])])],
    ['type 0', tlv(0, 'x')],
    ['type 36', tlv(36, 'x')],
  ];
  for (const [label, body] of cases) {
    const bytes = Buffer.concat([streamHeader(1), subvolCommand(), command(Cmd.CHMOD, body), END]);
    const { err } = failure([bytes]);
    assert.equal(err.code, 'sendstream_bad_attribute', label);
    assert.equal(err.details.commandIndex, 1, label);
    assert.equal(err.details.commandName, 'CHMOD', label);
  }
  // The overrun's offset points at the MODE attribute, inside the CHMOD command.
  const bytes = Buffer.concat([streamHeader(1), subvolCommand(), command(Cmd.CHMOD, overrun), END]);
  const chmodAt = 17 + subvolCommand().length;
  assert.equal(failure([bytes]).err.details.attributeOffset, chmodAt + 10 + tlv(Attr.PATH, 'hello.txt').length);
});

void test('an oversize length claim fails as soon as the command header arrives, without gathering the body', () => {
  const header = Buffer.alloc(10);
  header.writeUInt32LE(SEND_MAX_COMMAND_LENGTH + 1, 0);
  header.writeUInt16LE(Cmd.WRITE, 4);
  const parser = new SendStreamParser();
  parser.push(Buffer.concat([streamHeader(1), subvolCommand()]));
  assert.throws(
    () => parser.push(header),
    (err: unknown) => err instanceof SendStreamError && err.code === 'sendstream_too_large' && err.details.commandIndex === 1,
  );
  // The failure is sticky.
  assert.throws(() => parser.push(END), { code: 'sendstream_too_large' });
  assert.throws(() => parser.end(), { code: 'sendstream_too_large' });

  // The bound is inclusive and configurable.
  const write = writeCommand(2, 'f', 0, Buffer.alloc(1000));
  const length = write.readUInt32LE(0);
  const bytes = Buffer.concat([streamHeader(2), subvolCommand(), write, END]);
  assert.equal(parse(slices(bytes, 100), { maxCommandLength: length }).commands, 3);
  assert.equal(failure(slices(bytes, 100), { maxCommandLength: length - 1 }).err.code, 'sendstream_too_large');
});

void test('a command at the size limit spanning many chunks is gathered whole', () => {
  const data = randomBytes(SEND_MAX_COMMAND_LENGTH - 100);
  const write = writeCommand(2, 'big', 0, data);
  assert.ok(write.length - 10 <= SEND_MAX_COMMAND_LENGTH);
  let seen: Buffer | undefined;
  const bytes = Buffer.concat([streamHeader(2), subvolCommand(), write, END]);
  parse(slices(bytes, 65536), {
    onCommand: (c) => {
      if (c.cmd === SendCmd.WRITE) seen = Buffer.from(c.attributes.find((a) => a.type === SendAttr.DATA)!.value);
    },
  });
  assert.ok(seen?.equals(data));
});

void test('the first command must be SUBVOL or SNAPSHOT with its attributes', () => {
  const cases: Array<[string, Buffer]> = [
    ['MKFILE', command(Cmd.MKFILE, tlv(Attr.PATH, 'f'))],
    ['END', END],
    ['no UUID', command(Cmd.SUBVOL, tlv(Attr.PATH, 'x'), tlv(Attr.CTRANSID, u64(1)))],
    ['short UUID', command(Cmd.SUBVOL, tlv(Attr.PATH, 'x'), tlv(Attr.UUID, Buffer.alloc(8)), tlv(Attr.CTRANSID, u64(1)))],
    ['no PATH', command(Cmd.SUBVOL, tlv(Attr.UUID, uuidBytes(SAMPLE.uuid)), tlv(Attr.CTRANSID, u64(1)))],
    ['no CTRANSID', command(Cmd.SUBVOL, tlv(Attr.PATH, 'x'), tlv(Attr.UUID, uuidBytes(SAMPLE.uuid)))],
    ['snapshot without clone', command(Cmd.SNAPSHOT, tlv(Attr.PATH, 'x'), tlv(Attr.UUID, uuidBytes(SAMPLE.uuid)), tlv(Attr.CTRANSID, u64(1)))],
  ];
  for (const [label, first] of cases) {
    const { err } = failure([streamWithFirst(first)]);
    assert.equal(err.code, 'sendstream_bad_first_command', label);
    assert.equal(err.details.commandIndex, 0, label);
    assert.equal(err.details.offset, 17, label);
  }
});

void test('command numbers outside the stream version are rejected even with a good CRC', () => {
  const cases: Array<[number, number]> = [[1, Cmd.FALLOCATE], [1, 0], [2, 26], [3, 27], [2, 999]];
  for (const [version, cmd] of cases) {
    const bytes = Buffer.concat([streamHeader(version), subvolCommand(), command(cmd, tlv(Attr.PATH, 'f')), END]);
    const { err } = failure([bytes]);
    assert.equal(err.code, 'sendstream_bad_command', `v${version} cmd ${cmd}`);
    assert.equal(err.details.command, cmd);
  }
  // The same numbers are fine where the version has them.
  const fallocate = command(Cmd.FALLOCATE, tlv(Attr.PATH, 'f'), tlv(25, u64(0)), tlv(Attr.FILE_OFFSET, u64(0)), tlv(Attr.SIZE, u64(4096)));
  assert.equal(parse([Buffer.concat([streamHeader(2), subvolCommand(), fallocate, dataWrite(2), END])]).commands, 4);
});

function dataWrite(version: number): Buffer {
  return command(Cmd.WRITE, tlv(Attr.PATH, 'f'), tlv(Attr.FILE_OFFSET, u64(0)), dataTlv(version, Buffer.from('x')));
}

void test('an error thrown by onCommand stops the parser and stays', () => {
  const parser = new SendStreamParser({
    onCommand: (c) => {
      if (c.cmd === SendCmd.WRITE) throw new Error('visitor says no');
    },
  });
  assert.throws(() => parser.push(sampleStream()), /visitor says no/);
  assert.throws(() => parser.end(), /visitor says no/);
});

void test('errors are SnapferryErrors with a code, honest retryable, and JSON details', () => {
  const { err } = failure([sampleStream().subarray(0, 60)]);
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.name, 'SendStreamError');
  assert.deepEqual(err.toJSON(), { code: err.code, message: err.message, retryable: true, details: err.details });
  assert.equal(failure([Buffer.from('nope, not a send stream')]).err.retryable, false);
});

void test('the command CRC is the kernel raw crc32c(0, ...) with the crc field zeroed, not the standard CRC-32C', () => {
  for (let i = 0; i < 20; i++) {
    const header = randomBytes(10);
    const body = randomBytes(i * 37);
    const zeroed = Buffer.concat([header.subarray(0, 6), Buffer.alloc(4), body]);
    assert.equal(sendCommandCrc(header, body), kernelCrc32c(0, zeroed));
    assert.notEqual(sendCommandCrc(header, body), crc32c(zeroed));
  }
});

void test('the command CRC of a header read in place (inside a larger buffer) is the same, for empty bodies too', () => {
  for (let i = 0; i < 40; i++) {
    const at = i % 9;
    const around = randomBytes(at + 10 + 5);
    const header = around.subarray(at, at + 10);
    const body = randomBytes(i % 4 === 0 ? 0 : i * 53);
    const zeroed = Buffer.concat([header.subarray(0, 6), Buffer.alloc(4), body]);
    assert.equal(sendCommandCrc(around, body, at), kernelCrc32c(0, zeroed));
    assert.equal(sendCommandCrc(around, body, at), sendCommandCrc(Buffer.from(header), body));
  }
});

void test('onlyCommands: onCommand sees only those commands, and every other command is still checked', () => {
  const bytes = sampleStream();
  const seen: string[] = [];
  const summary = parse(slices(bytes, 7), { onCommand: (c) => seen.push(`${c.name}:${c.attributes.length}`), onlyCommands: [SendCmd.WRITE, SendCmd.CHMOD] });
  assert.deepEqual(seen, ['WRITE:3', 'CHMOD:2']);
  assert.equal(summary.commands, 7);
  assert.equal(summary.header.path, SAMPLE.path);
  // A flipped bit in a command nobody asked for (MKFILE) still fails the stream.
  const mkfileAt = 17 + sampleBody(1)[0]!.length;
  bytes[mkfileAt + 14]! ^= 0x01;
  const { err } = failure([bytes], { onCommand: () => undefined, onlyCommands: [SendCmd.WRITE] });
  assert.equal(err.code, 'sendstream_crc');
  assert.equal(err.details.commandName, 'MKFILE');
});

void test('tables and UUID formatting', () => {
  assert.equal(sendCommandName(SendCmd.ENCODED_WRITE), 'ENCODED_WRITE');
  assert.equal(sendCommandName(SendCmd.END), 'END');
  assert.equal(sendCommandName(77), 'UNKNOWN_77');
  assert.equal(sendAttributeName(SendAttr.CLONE_PATH), 'CLONE_PATH');
  assert.equal(sendAttributeName(SendAttr.VERITY_SIG_DATA), 'VERITY_SIG_DATA');
  assert.equal(formatSendUuid(uuidBytes(SAMPLE.uuid)), SAMPLE.uuid);
  assert.equal(formatSendUuid(Buffer.from('00112233445566778899aabbccddeeff', 'hex')), '00112233-4455-6677-8899-aabbccddeeff');
});
