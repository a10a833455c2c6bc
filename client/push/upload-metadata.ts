/**
 * The tus Upload-Metadata of a new upload (core/protocol/upload.ts META): which snapshot of which volume, on which
 * parent, how its stream is made, when it was taken, and what the stream's first command says of the snapshot and of
 * its parent now. Pure: push reads the facts, this writes them down.
 */
import type { SafeName } from '../../core/names.ts';
import type { PlanStep } from '../../core/plan.ts';
import { META, WIRE_FORMAT, type SendStream } from '../../core/protocol.ts';

/** What the metadata takes of the stream's first command as btrfs send wrote it (a SendStreamHeader is one). */
export type StreamStartFacts = { kind: 'subvol'; ctransid: number } | { kind: 'snapshot'; ctransid: number; cloneCtransid: number };

export function metadataFor(
  volume: SafeName, { snapshot, parent, takenAt }: PlanStep, chunkSize: number, sendStream: SendStream, start: StreamStartFacts,
): Record<string, string> {
  // The plan's time where the order does not believe the snapshot's own (null: none believed, so none is sent).
  const taken = takenAt === undefined ? snapshot.time : takenAt;
  return {
    [META.volume]: volume,
    [META.snapshot]: snapshot.name,
    [META.uuid]: snapshot.uuid,
    ...(parent ? { [META.parentUuid]: parent.uuid } : {}),
    // A received copy here (a restore) sends its own ctransid, which the server cannot compare (server/stream-start.ts).
    ...(parent && parent.uuid !== parent.localUuid ? { [META.parentReceived]: '1' } : {}),
    // An archive cannot read a sealed stream: it judges by these whether the parent changed here since it was sent
    // (server/archive/parent-ctransid.ts). A plain stream's server reads them from frame 0 itself.
    [META.ctransid]: String(start.ctransid),
    ...(parent && start.kind === 'snapshot' ? { [META.parentCtransid]: String(start.cloneCtransid) } : {}),
    [META.format]: WIRE_FORMAT,
    [META.chunkSize]: String(chunkSize),
    [META.sendStream]: sendStream,
    ...(snapshot.created ? { [META.createdAt]: snapshot.created.toISOString() } : {}),
    ...(taken ? { [META.takenAt]: taken.toISOString() } : {}),
  };
}
