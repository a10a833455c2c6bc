/**
 * When to ask the server again about something it is still doing (a receive after the upload, a verify's digest):
 * often at first, since it usually ends soon and each poll period of delay is a poll period the user waits, then
 * less often, since a long one costs a request a period for nothing. One rule for every such wait, so they cannot
 * drift apart.
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
