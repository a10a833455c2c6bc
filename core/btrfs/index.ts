/**
 * core/btrfs: the only place that runs btrfs. Everything goes through run.ts (argv arrays, stderr tail, AbortSignal);
 * parse.ts turns output into typed values; failures are BtrfsCommandError.
 */
export { BtrfsCommandError, BtrfsOutputError, formatCommand } from './errors.ts';
export type { BtrfsCommandErrorFields } from './errors.ts';
export { send, sendArgs, sendInChunks } from './send.ts';
export type { ChunkedSendOptions, SendHandle, SendOptions, SendReads } from './send.ts';
export type { ReadStep } from './pipe-reads.ts';
export { ctransidOf } from './ctransid.ts';
export { estimateSend, type EstimateOptions, type SendEstimate } from './estimate.ts';
export { estimateFullSend, type WalkEstimateOptions } from './walk-estimate.ts';
export { receive, receiveArgs } from './receive.ts';
export type { ReceiveOptions } from './receive.ts';
export {
  createSubvolume,
  deleteSubvolume,
  getReadonly,
  isSubvolume,
  readOnlySubvolumeHolding,
  setReadonly,
  snapshot,
  subvolumeList,
  subvolumeShow,
} from './subvolume.ts';
export type { DeleteOptions, ListedSubvolume, ListOptions, SetReadonlyOptions, SnapshotOptions } from './subvolume.ts';
export type { SubvolumeInfo, SubvolumeListEntry } from './parse.ts';
export type { RunOptions } from './run.ts';
