/**
 * The raw stream's length before the send, for the progress line's total and ETA and the server's percentage. Only
 * a nicety: when it fails the push goes on, without a total, and says why once.
 *
 * A full send is estimated from a walk of the snapshot (core/btrfs estimateFullSend), a tenth of the CPU of
 * `btrfs send --no-data`, which cost a full push 0.5-0.9 CPU s per GB before its first byte (issue 22); it runs over
 * by the data the snapshot shares within itself (reflinked copies, sent as clones). An incremental send is
 * estimated by `btrfs send --no-data` (estimateSend), exactly for 'v1' streams: only the kernel knows what changed.
 * For 'v2-compressed' both are upper bounds: they count compressed extents' data uncompressed. The line shows the
 * exact total once the whole stream is framed.
 */
import * as btrfs from '../../core/btrfs/index.ts';
import { describeError } from '../../core/errors.ts';
import type { PlanStep } from '../../core/plan.ts';
import type { SendStream } from '../../core/protocol.ts';
import { btrfsFeatures, sendOptionsFor } from '../../core/btrfs/features.ts';
import type { Reporter } from '../progress/report.ts';

export async function estimateRawTotal(step: PlanStep, sendStream: SendStream, report: Reporter, signal?: AbortSignal): Promise<number | null> {
  try {
    // The same stream version as the send itself: it decides how file data is cut into WRITEs.
    const { proto } = sendOptionsFor(sendStream, await btrfsFeatures());
    const estimate = step.parent
      ? await btrfs.estimateSend(step.snapshot.path, { parent: step.parent.path, ...(proto !== undefined ? { proto } : {}), ...(signal ? { signal } : {}) })
      : await btrfs.estimateFullSend(step.snapshot.path, { version: proto ?? 1, ...(signal ? { signal } : {}) });
    return estimate.rawBytes;
  } catch (err) {
    // A cancelled push stops at its next step; no note for what the user asked for.
    if (signal?.aborted !== true) {
      report.note(`${step.snapshot.name}: could not estimate the stream's size, so no ETA (${describeError(err)})`);
    }
    return null;
  }
}
