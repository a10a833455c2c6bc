/**
 * The fuzz targets, one function per target taking the fuzzer's bytes. test/fuzz/run.ts bundles this file into
 * CommonJS for jsfuzz (see there why jsfuzz), which instruments it for coverage.
 *
 * Random bytes rarely get past a checksum, so each target first repairs what a checksum guards, as libFuzzer
 * harnesses for checksummed formats do: the fuzzer then explores what lies behind the checks. (A checksum that is
 * wrong is refused before anything is read; the unit tests hold that.)
 * - frames: CRC32C of every frame header, SHA-256 of raw payloads, the end frame's chain; then FrameParser, whole
 *   and in slices, and any raw stream it verifies goes on to the send-stream oracle.
 * - sendstream: the CRC32C of every send-stream command; then the send-stream oracle (oracle.ts).
 * - policy: the bytes are read as a list of commands and attributes, built into a well-formed stream (SUBVOL first,
 *   END last, right lengths and CRCs), so that every input reaches the policy's rules.
 */
import { crc32c } from '@node-rs/crc32';
import { CHAIN_ZERO, chainStep, sha256 } from '../../core/wire/chain.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { FrameParser } from '../../core/wire/frame-parser.ts';
import { SEND_COMMAND_HEADER_LENGTH, SEND_STREAM_HEADER_LENGTH, SendAttr, SendCmd } from '../../core/wire/sendstream-format.ts';
import { command, kernelCrc32c, streamHeader, tlv, u64 } from '../wire/sendstream-builder.ts';
import { checkSendStream, expectTyped, sliceSizes, sliced } from './oracle.ts';

const FRAME_CRC_OFFSET = 68;
const KIND_DATA = 1;
const KIND_END = 2;

/** `input` with every frame header's CRC, every raw payload's hash and the end frame's chain made right. */
export function repairFrames(input: Buffer): Buffer {
  const out = Buffer.from(input);
  let chain = CHAIN_ZERO;
  for (let pos = 0; out.length - pos >= FRAME_HEADER_SIZE; ) {
    const kind = out[pos + 4];
    const payloadLength = kind === KIND_DATA ? out.readUInt32BE(pos + 16) : 0;
    const payloadEnd = pos + FRAME_HEADER_SIZE + payloadLength;
    if (kind === KIND_DATA) {
      // Raw (0) and sealed (2, 3) frames carry the hash of their payload as it travels: made right, the fuzzer gets
      // past it to what comes after (a sealed payload's decoding is the restore's, with a key: not here).
      const payloadHashed = [0, 2, 3].includes(out[pos + 5]!) && payloadEnd <= out.length;
      if (payloadHashed) sha256(out.subarray(pos + FRAME_HEADER_SIZE, payloadEnd)).copy(out, pos + 36);
      chain = chainStep(chain, out.subarray(pos + 36, pos + 68));
    } else if (kind === KIND_END) {
      chain.copy(out, pos + 36);
    }
    out.writeUInt32BE(crc32c(out.subarray(pos, pos + FRAME_CRC_OFFSET)), pos + FRAME_CRC_OFFSET);
    pos = payloadEnd;
  }
  return out;
}

/** Verifies frames; returns the raw stream when they all pass, else the error's code. */
function parseFrames(chunks: readonly Buffer[]): { raw: Buffer } | { code: string; frameIndex: unknown } {
  const parser = new FrameParser({ keepRaw: true });
  const raw: Buffer[] = [];
  let sealed = 0;
  try {
    for (const chunk of chunks) {
      for (const frame of parser.push(chunk)) {
        if (frame.raw) raw.push(Buffer.from(frame.raw));
        if (frame.sealed) sealed += 1;
      }
    }
    parser.finish();
    // Sealed frames verify without a key and give no raw bytes: the verdict is the frames', with no stream to check.
    if (sealed > 0) return { code: `verified, ${sealed} sealed`, frameIndex: null };
    return { raw: Buffer.concat(raw) };
  } catch (err) {
    const typed = expectTyped(err);
    return { code: typed.code, frameIndex: typed.details.frameIndex };
  }
}

export function fuzzFrames(input: Buffer): void {
  const bytes = repairFrames(input);
  const whole = parseFrames([bytes]);
  const pieces = parseFrames(sliced(bytes, sliceSizes(bytes)));
  const show = (v: typeof whole) => ('raw' in v ? `${v.raw.length} raw bytes ${sha256(v.raw).toString('hex')}` : JSON.stringify(v));
  if (show(whole) !== show(pieces)) throw new Error(`frame verdict depends on slicing: ${show(whole)} vs ${show(pieces)}`);
  if ('raw' in whole) checkSendStream(whole.raw);
}

/** `input` with the CRC of every command that lies whole inside it made right (the kernel's crc32c, seed 0). */
export function repairCommandCrcs(input: Buffer): Buffer {
  const out = Buffer.from(input);
  for (let pos = SEND_STREAM_HEADER_LENGTH; out.length - pos >= SEND_COMMAND_HEADER_LENGTH; ) {
    const end = pos + SEND_COMMAND_HEADER_LENGTH + out.readUInt32LE(pos);
    if (end > out.length) break;
    out.writeUInt32LE(0, pos + 6);
    out.writeUInt32LE(kernelCrc32c(0, out.subarray(pos, end)), pos + 6);
    pos = end;
  }
  return out;
}

export function fuzzSendStream(input: Buffer): void {
  checkSendStream(repairCommandCrcs(input));
}

/** Attribute lengths the policy decoder can express beyond 0..63: the sizes of typed values. */
const TYPED_LENGTHS = [1, 2, 4, 8, 16];

/**
 * Reads `input` as: version byte, then commands of [command byte, attribute count byte, then per attribute a type
 * byte, a length byte and the value]. Commands are 3..26 (never a second SUBVOL/SNAPSHOT, which the parser refuses
 * before the policy sees anything), attribute types 1..35; a length byte with its top bit set picks a typed length
 * (1, 2, 4, 8, 16), else it is its low 6 bits. Missing bytes read as zero.
 */
export function policyStream(input: Buffer): Buffer {
  let at = 0;
  const next = (): number => (at < input.length ? input[at++]! : 0);
  const version = 1 + (next() % 3);
  const parts = [
    streamHeader(version),
    command(SendCmd.SUBVOL, tlv(SendAttr.PATH, 'snap'), tlv(SendAttr.UUID, Buffer.alloc(16, 0x5a)), tlv(SendAttr.CTRANSID, u64(1))),
  ];
  while (at < input.length) {
    const cmd = 3 + (next() % 24);
    const count = next() % 8;
    const attrs: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const type = 1 + (next() % 35);
      const l = next();
      const length = l & 0x80 ? TYPED_LENGTHS[l % TYPED_LENGTHS.length]! : l & 0x3f;
      const value = Buffer.alloc(length);
      for (let k = 0; k < length; k++) value[k] = next();
      attrs.push(version >= 2 && type === SendAttr.DATA ? Buffer.concat([Buffer.from([type, 0]), value]) : tlv(type, value));
    }
    parts.push(command(cmd, ...attrs));
  }
  parts.push(command(SendCmd.END));
  return Buffer.concat(parts);
}

/** The inverse of policyStream's reading, for seeds: a version and commands of [type, value] attributes. */
export function policyInput(version: number, cmds: readonly { cmd: number; attrs: readonly [number, Buffer][] }[]): Buffer {
  const bytes = [version - 1];
  for (const { cmd, attrs } of cmds) {
    bytes.push(cmd - 3, attrs.length);
    for (const [type, value] of attrs) {
      if (value.length > 63) throw new RangeError('a seed value must be at most 63 bytes');
      bytes.push(type - 1, value.length, ...value);
    }
  }
  return Buffer.from(bytes);
}

export function fuzzPolicy(input: Buffer): void {
  checkSendStream(policyStream(input));
}

export const targets = { frames: fuzzFrames, sendstream: fuzzSendStream, policy: fuzzPolicy } as const;
export type TargetName = keyof typeof targets;
