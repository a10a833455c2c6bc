/**
 * When to ask the server again about something it is still doing: often at first, since it usually ends soon and
 * each period of delay is one the user waits, then less often, since a long one costs a request a period for nothing.
 * One rule, and every wait's schedule beside it, so that they cannot drift apart.
 */

export interface PollSchedule {
  /** The period while the wait is young. */
  earlyMs: number;
  /** How long the wait counts as young. */
  earlyForMs: number;
  /** The period after that. */
  lateMs: number;
}

/** Pure: how long to wait before the next poll, `elapsedMs` after the wait began (never less than 1 ms). */
export function pollDelay(elapsedMs: number, schedule: PollSchedule): number {
  return Math.max(1, Math.round(elapsedMs < schedule.earlyForMs ? schedule.earlyMs : schedule.lateMs));
}

/**
 * The first second after the upload, a push polls its receive this many times as often as `pollMs`. The receive
 * usually ends a fraction of a second after the last byte (it runs beside the upload and has only the tail left),
 * and a push that polled every 250 ms learnt it 125 ms late on average: 5% of a daily incremental's time on a LAN. A
 * receive that takes longer is polled at `pollMs` from then on.
 */
export const EARLY_POLLS_FASTER = 5;

/** A push waiting for its receive (client/push/send-snapshot.ts), polling at `pollMs` once the first second is over. */
export function receiveSchedule(pollMs: number): PollSchedule {
  return { earlyMs: pollMs / EARLY_POLLS_FASTER, earlyForMs: 1_000, lateMs: pollMs };
}

/**
 * verify waiting for the server's digest (client/verify/check.ts): every `pollMs` (a second) for ten of them, then
 * every five, so that a long digest costs a few hundred bytes a poll and not more polls than it needs.
 */
export function digestSchedule(pollMs: number): PollSchedule {
  return { earlyMs: pollMs, earlyForMs: 10 * pollMs, lateMs: 5 * pollMs };
}
