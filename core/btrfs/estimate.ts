/**
 * How long a send stream will be, without reading any file data: `btrfs send --no-data` makes the same stream with
 * every WRITE replaced by one UPDATE_EXTENT (path, file offset, length) per extent. The kernel produces both from
 * the same code (fs/btrfs/send.c send_extent_data: "if NO_FILE_DATA return send_update_extent"), so the real stream
 * is the no-data stream with each UPDATE_EXTENT of length L swapped for ceil(L / read size) WRITE commands, each
 * carrying the same PATH and FILE_OFFSET, a DATA attribute instead of SIZE, and its share of the L bytes.
 *
 * That makes the estimate exact for what the push sends today (measured byte for byte against real streams in
 * test/btrfs/estimate.test.ts). It overestimates streams made with --compressed-data (ENCODED_WRITE carries fewer
 * bytes than it unpacks to), which is why that option is not offered here.
 */
import { SendStreamParser, type SendCommand } from '../wire/sendstream-parser.ts';
import { SEND_TLV_HEADER_LENGTH, SEND_COMMAND_HEADER_LENGTH, SendAttr, SendCmd } from '../wire/sendstream-format.ts';
import { sendAttributeU64 } from '../wire/sendstream-attributes.ts';
import { readStdout, startBtrfs } from './run.ts';
import { sendArgs, type SendOptions } from './send.ts';
import { BtrfsOutputError } from './errors.ts';

export type EstimateOptions = Pick<SendOptions, 'parent' | 'cloneSources' | 'proto' | 'signal'>;

export interface SendEstimate {
  /** The estimated length of the real send stream in bytes. */
  rawBytes: number;
  /** Length of the `--no-data` stream itself. */
  noDataBytes: number;
  /** File data the real stream will carry (the sum of the UPDATE_EXTENT lengths). */
  dataBytes: number;
  /** WRITE commands the real stream will have. */
  writes: number;
  /** The stream's version (it decides the write size). */
  version: number;
}

/**
 * File data per WRITE: the kernel's send buffer minus 16 KiB for the header and the other attributes
 * (send.c max_send_read_size): 64 KiB - 16 KiB in version 1, 144 KiB - 16 KiB from version 2 on.
 */
export function sendWriteSize(version: number): number {
  return version === 1 ? 48 * 1024 : 128 * 1024;
}

/** A SIZE attribute (header + u64) gives way to DATA's header: 4 bytes in version 1, its type alone (2) after. */
function writeHeaderDelta(version: number): number {
  const dataHeader = version === 1 ? SEND_TLV_HEADER_LENGTH : 2;
  return dataHeader - (SEND_TLV_HEADER_LENGTH + 8);
}

/** Tallies a no-data stream's UPDATE_EXTENTs into what the real stream will carry instead. */
export class SendEstimator {
  #extra = 0;
  #data = 0;
  #writes = 0;

  /** Feed every command of the no-data stream. */
  command(command: SendCommand, version: number): void {
    if (command.cmd !== SendCmd.UPDATE_EXTENT) return;
    const length = sendAttributeU64(command.attributes, SendAttr.SIZE);
    if (length === undefined) {
      throw new BtrfsOutputError('btrfs send --no-data', '', `the UPDATE_EXTENT at stream offset ${command.offset} has no usable SIZE`);
    }
    const updateBytes = SEND_COMMAND_HEADER_LENGTH + command.length;
    const writes = Math.ceil(length / sendWriteSize(version));
    this.#writes += writes;
    this.#data += length;
    this.#extra += writes * (updateBytes + writeHeaderDelta(version)) + length - updateBytes;
  }

  result(noDataBytes: number, version: number): SendEstimate {
    return { rawBytes: noDataBytes + this.#extra, noDataBytes, dataBytes: this.#data, writes: this.#writes, version };
  }
}

/**
 * Runs `btrfs send --no-data` and tallies its stream as it passes (never buffered: it is parsed chunk by chunk).
 * Aborting the signal stops btrfs and rejects with code btrfs_cancelled; a failed btrfs rejects with
 * BtrfsCommandError, a malformed stream with the reader's SendStreamError.
 */
export async function estimateSend(subvolume: string, options: EstimateOptions = {}): Promise<SendEstimate> {
  // sendArgs starts with 'send'; the flag goes right after it, before the `--` that ends the options.
  const args = ['send', '--no-data', ...sendArgs(subvolume, options).slice(1)];
  const proc = startBtrfs(args, { signal: options.signal, stdout: 'stream' });
  const estimator = new SendEstimator();
  // Only UPDATE_EXTENTs count; the rest of the stream is still checked whole, but its attributes are not collected.
  const parser: SendStreamParser = new SendStreamParser({
    onCommand: (c) => estimator.command(c, parser.version ?? 1),
    onlyCommands: [SendCmd.UPDATE_EXTENT],
  });
  await readStdout(proc, (chunk) => parser.push(chunk), options.signal);
  const summary = parser.end();
  return estimator.result(summary.bytes, summary.version);
}
