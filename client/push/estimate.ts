/**
 * The raw stream's length before the send (core/btrfs estimateSend: `btrfs send --no-data`), for the progress
 * line's total and ETA. Only a nicety: when it fails the push goes on, without a total, and says why once.
 *
 * Exact for 'v1' streams. For 'v2-compressed' it is an upper bound: --no-data cannot say how small a compressed
 * extent's ENCODED_WRITE will be, so it counts the extent's data uncompressed (the line shows the exact total once
 * the whole stream is framed).
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
    const estimate = await btrfs.estimateSend(step.snapshot.path, {
      ...(step.parent ? { parent: step.parent.path } : {}),
      ...(proto !== undefined ? { proto } : {}),
      ...(signal ? { signal } : {}),
    });
    return estimate.rawBytes;
  } catch (err) {
    // A cancelled push stops at its next step; no note for what the user asked for.
    if (signal?.aborted !== true) {
      report.note(`${step.snapshot.name}: could not estimate the stream's size, so no ETA (${describeError(err)})`);
    }
    return null;
  }
}
