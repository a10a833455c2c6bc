/**
 * What SendStreamParser hands on: each command once it has passed every check, and the summary of a whole stream.
 * The policy, the UUID rewrite and the size estimate read commands in this shape, never the bytes.
 */
import type { SendAttribute, SendStreamHeader } from './sendstream-attributes.ts';

export interface SendCommand {
  /** 0-based position among the stream's commands. */
  index: number;
  cmd: number;
  name: string;
  /** Byte offset of the command header in the stream. */
  offset: number;
  /** Length of the body (the TLVs), header excluded. */
  length: number;
  /** Every attribute, in stream order; values are views valid only during the visit (see SendAttribute). */
  attributes: readonly SendAttribute[];
}

export interface SendStreamSummary {
  version: number;
  header: SendStreamHeader;
  /** Commands, END included. */
  commands: number;
  /** Stream bytes, stream header through END. */
  bytes: number;
}
