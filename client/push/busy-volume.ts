/**
 * What a push does when the server refuses a new upload because another of this client's transfers holds the volume
 * (`volume_busy`; the server allows one unfinished upload per volume). Waiting is right only while that transfer can
 * still end: an upload whose snapshot is gone here, or whose parent is gone from the server, is never finished by
 * anyone, and every later push of the volume waited for it for ever, in silence. Such a one is ended here, as
 * `snapferry abort ID` ends it; one this machine can send is sent first (what a plain push of the folder does); only
 * one being received, or held by another push, is waited for, and that is said on every try. An upload a push holds
 * right now (Transfer.heldByPush: its lease on the server) is never ended: its snapshot missing here is no proof it
 * is abandoned when another machine pushes the volume under the same client name (a laptop restored from a backup, a
 * second machine given the same token), and each ended the other's live upload.
 */
import type { SnapferryError } from '../../core/errors.ts';
import type { LocalSnapshot, PlanStep } from '../../core/plan.ts';
import type { Transfer } from '../../core/protocol.ts';

/** What the push does about the transfer that holds the volume. */
export type BusyVerdict =
  | { kind: 'end'; transfer: Transfer; why: string }
  | { kind: 'sendFirst'; transfer: Transfer; snapshot: LocalSnapshot }
  | {
      kind: 'wait';
      transfer: Transfer | null;
      /** A push holds it whose snapshot this machine has not: that push runs on another machine under this client's name. */
      elsewhere?: boolean;
    };

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
  // Someone sends it right now: whatever this machine lacks, that push has it, and its lease says it is alive.
  if (t.heldByPush === true && (facts.local === null || !facts.parentHeld)) return { kind: 'wait', transfer: t, elsewhere: facts.local === null };
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
export function waitNote(step: PlanStep, busy: Extract<BusyVerdict, { kind: 'wait' }>, seconds: number): string {
  const t = busy.transfer;
  const what =
    t === null
      ? 'another transfer holds the volume'
      : t.state === 'uploading'
        ? `transfer ${t.id} of ${t.snapshot} holds the volume: ${sender(t, busy.elsewhere === true)}; \`snapferry abort ${t.id}\` ends it`
        : `transfer ${t.id} of ${t.snapshot} holds the volume while the server ${t.state === 'receiving' ? 'receives' : 'holds'} it (${t.state})`;
  return `${step.snapshot.name}: ${what}; trying again in ${seconds.toFixed(1)} s`;
}

/** Who sends an upload that holds the volume, as far as the server's answer tells. */
function sender(t: Transfer, elsewhere: boolean): string {
  if (!elsewhere) return t.heldByPush === true ? 'another push of this client is sending it right now' : 'another push of this client is sending it';
  // The likely misuse, named: only the user can sort it out (one client name, one token, per machine).
  return `another push of this client is sending it right now, from a machine that has ${t.snapshot} (not this one: do two machines push this volume under one client name?)`;
}
