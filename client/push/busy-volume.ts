/**
 * What a push does when the server refuses a new upload because another of this client's transfers holds the volume
 * (`volume_busy`; the server allows one unfinished upload per volume). Waiting is right only while that transfer can
 * still end: an upload whose snapshot is gone here, or whose parent is gone from the server, is never finished by
 * anyone, and every later push of the volume waited for it for ever, in silence. Such a one is ended here, as
 * `snapferry abort ID` ends it; one this machine can send is sent first (what a plain push of the folder does); only
 * one being received, or held by another push, is waited for, and that is said on every try.
 */
import type { SnapferryError } from '../../core/errors.ts';
import type { LocalSnapshot, PlanStep } from '../../core/plan.ts';
import type { Transfer } from '../../core/protocol.ts';

/** What the push does about the transfer that holds the volume. */
export type BusyVerdict =
  | { kind: 'end'; transfer: Transfer; why: string }
  | { kind: 'sendFirst'; transfer: Transfer; snapshot: LocalSnapshot }
  | { kind: 'wait'; transfer: Transfer | null };

export interface BusyFacts {
  /** The transfer the refusal names, or null when the server did not name one (an older server) or it is gone. */
  transfer: Transfer | null;
  /** The local snapshot of that UUID, or null when this machine no longer has it. */
  local: LocalSnapshot | null;
  /** Whether the server holds the transfer's parent (true for a full send). */
  parentHeld: boolean;
}

/** Pure: the verdict on what holds the volume while `step` waits. */
export function judgeBusy(step: PlanStep, facts: BusyFacts): BusyVerdict {
  const t = facts.transfer;
  // Being received (or waiting for a receive): the server finishes it by itself.
  if (t === null || t.state !== 'uploading') return { kind: 'wait', transfer: t };
  if (facts.local === null) return { kind: 'end', transfer: t, why: `${t.snapshot} is no longer here, so it can never be sent` };
  if (!facts.parentHeld) return { kind: 'end', transfer: t, why: `its parent is gone from the server, so it can never be received` };
  // Its own snapshot: the next attempt resumes it (a race with its end); nothing to send first.
  if (t.uuid === step.snapshot.uuid) return { kind: 'wait', transfer: t };
  return { kind: 'sendFirst', transfer: t, snapshot: facts.local };
}

/** The transfer id a volume_busy refusal names, or null. */
export function busyTransferId(err: SnapferryError): string | null {
  const id = err.details?.transferId;
  return typeof id === 'string' ? id : null;
}

/** The line said on each wait for a transfer that holds the volume: what it is, and how to end it instead. */
export function waitNote(step: PlanStep, t: Transfer | null, seconds: number): string {
  const what =
    t === null
      ? 'another transfer holds the volume'
      : t.state === 'uploading'
        ? `transfer ${t.id} of ${t.snapshot} holds the volume: another push of this client is sending it; \`snapferry abort ${t.id}\` ends it`
        : `transfer ${t.id} of ${t.snapshot} holds the volume while the server ${t.state === 'receiving' ? 'receives' : 'holds'} it (${t.state})`;
  return `${step.snapshot.name}: ${what}; trying again in ${seconds.toFixed(1)} s`;
}
